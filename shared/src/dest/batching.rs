//! What every vendor destination needs around its own mapping: the event's
//! `integrations` switch, its time, stable ids derived from the messageId,
//! JSON batches cut to a vendor's count and byte limits, `Retry-After` and
//! `X-RateLimit-Reset`, Basic auth, and the verdict an HTTP status implies.
//!
//! Pure: callers pass `now_ms` in.

use super::{HttpAnswer, HttpRequest, Limits, Verdict};
use crate::{Event, EventType, Timestamp};
use serde::Deserialize;
use serde_json::Value;
use std::borrow::Cow;
use std::collections::BTreeMap;

/// Whether the event's `integrations` object lets it go to destination `name`.
///
/// Segment's rule: a key for the destination wins (`false` disables it;
/// `true` or an options object enables it); otherwise `All` decides, and
/// everything is enabled when neither is present. Keys are matched exactly,
/// then ignoring ASCII case (`"mixpanel"` is taken as `"Mixpanel"`).
pub fn integration_enabled(event: &Event, name: &str) -> bool {
    let Some(integrations) = event.integrations.as_ref() else {
        return true;
    };
    let own = integrations.get(name).or_else(|| {
        integrations
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    });
    match own {
        Some(Value::Bool(on)) => *on,
        Some(Value::Null) | None => !matches!(integrations.get("All"), Some(Value::Bool(false))),
        Some(_) => true,
    }
}

/// The reason recorded when `integrations` turns a destination off.
pub fn disabled_by_integrations(name: &str) -> Verdict {
    Verdict::Skipped {
        reason: format!("integrations: {name} is disabled for this event"),
    }
}

/// Per-destination overrides of the default mapping, applied before it:
/// `{"allow": [...], "deny": [...], "rename": {"Order Completed": "purchase"},
/// "properties": {"revenue": "amount"}}`.
///
/// `allow` / `deny` name track events by their name and the other calls by
/// their type (`"page"`, `"identify"`, …); a non-empty `allow` sends only
/// what it lists, `deny` wins over `allow`. `rename` renames track events
/// (so a renamed event no longer gets the vendor's standard mapping of its
/// Segment name); `properties` renames keys of `properties` and `traits`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Overrides {
    #[serde(default)]
    pub allow: Vec<String>,
    #[serde(default)]
    pub deny: Vec<String>,
    #[serde(default)]
    pub rename: BTreeMap<String, String>,
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
}

impl Overrides {
    /// Whether nothing is overridden.
    pub fn is_empty(&self) -> bool {
        self.allow.is_empty()
            && self.deny.is_empty()
            && self.rename.is_empty()
            && self.properties.is_empty()
    }

    /// The event as this destination should see it, or why it is not sent.
    pub fn apply<'e>(&self, event: &'e Event) -> Result<Cow<'e, Event>, Verdict> {
        if self.is_empty() {
            return Ok(Cow::Borrowed(event));
        }
        let name = match event.kind {
            EventType::Track => event.event.as_deref().unwrap_or(""),
            kind => kind.as_str(),
        };
        let listed = |list: &[String]| list.iter().any(|n| n == name);
        if listed(&self.deny) {
            return Err(Verdict::Skipped {
                reason: format!("{name:?} is on this destination's deny list"),
            });
        }
        if !self.allow.is_empty() && !listed(&self.allow) {
            return Err(Verdict::Skipped {
                reason: format!("{name:?} is not on this destination's allow list"),
            });
        }
        let mut e = event.clone();
        if event.kind == EventType::Track {
            if let Some(to) = self.rename.get(name) {
                e.event = Some(to.clone());
            }
        }
        for object in [&mut e.properties, &mut e.traits].into_iter().flatten() {
            for (from, to) in &self.properties {
                if let Some(v) = object.remove(from) {
                    object.insert(to.clone(), v);
                }
            }
        }
        Ok(Cow::Owned(e))
    }
}

/// Whether `url` may carry credentials: `https://host…`, or plain `http://`
/// to a loopback host only (a local vendor stub in tests).
pub fn is_safe_base_url(url: &str) -> bool {
    match split_url(url) {
        Some(parts) if parts.scheme == "https" => true,
        Some(parts) if parts.scheme == "http" => {
            let host = parts.host.rsplit_once(':').map_or(parts.host, |(h, _)| h);
            matches!(host, "127.0.0.1" | "localhost" | "[::1]")
        }
        _ => false,
    }
}

/// Deserialize a base URL that passes [`is_safe_base_url`], without a trailing slash.
pub fn base_url<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let url = String::deserialize(d)?;
    if !is_safe_base_url(&url) {
        return Err(serde::de::Error::custom(format_args!(
            "{url:?} is not an https:// URL (plain http is allowed to loopback hosts only)"
        )));
    }
    Ok(url.trim_end_matches('/').to_owned())
}

/// [`base_url`] for an optional field (use with `#[serde(default)]`).
pub fn opt_base_url<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    base_url(d).map(Some)
}

/// When the event happened (Unix ms): `timestamp`, else `originalTimestamp`,
/// else `receivedAt`, else `now_ms`.
pub fn event_time_ms(event: &Event, now_ms: i64) -> i64 {
    [
        &event.timestamp,
        &event.original_timestamp,
        &event.received_at,
    ]
    .into_iter()
    .flatten()
    .find_map(|t| Timestamp::parse(t).ok())
    .map_or(now_ms, |t| t.0)
}

/// The event's time as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn event_time_rfc3339(event: &Event, now_ms: i64) -> String {
    Timestamp(event_time_ms(event, now_ms)).to_rfc3339()
}

/// 128 bits of FNV-1a over `bytes` (two 64-bit lanes with different offset
/// bases). Stable across versions and platforms: used to derive vendor ids
/// from a messageId, never for security.
pub fn stable_hash(bytes: &[u8]) -> [u8; 16] {
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut a: u64 = 0xcbf2_9ce4_8422_2325;
    let mut b: u64 = 0x6c62_272e_07bb_0142;
    for &byte in bytes {
        a = (a ^ u64::from(byte)).wrapping_mul(PRIME);
        b = (b ^ u64::from(byte.rotate_left(3))).wrapping_mul(PRIME);
    }
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&a.to_be_bytes());
    out[8..].copy_from_slice(&b.to_be_bytes());
    out
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    bytes
        .iter()
        .flat_map(|b| [HEX[usize::from(b >> 4)], HEX[usize::from(b & 0x0f)]])
        .map(char::from)
        .collect()
}

/// A UUID (version 8, "custom", RFC 9562) derived from `seed`: the same seed
/// always gives the same UUID, so a re-sent event keeps its vendor id.
pub fn uuid_from_seed(seed: &str) -> String {
    let mut bytes = stable_hash(seed.as_bytes());
    bytes[6] = (bytes[6] & 0x0f) | 0x80;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let h = hex(&bytes);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// How a batch of JSON items is laid out on the wire: `prefix`, the items
/// joined by `separator`, `suffix`.
#[derive(Debug, Clone, Copy)]
pub struct Framing<'a> {
    pub prefix: &'a [u8],
    pub separator: &'a [u8],
    pub suffix: &'a [u8],
}

impl Framing<'_> {
    /// A bare JSON array.
    pub const ARRAY: Framing<'static> = Framing {
        prefix: b"[",
        separator: b",",
        suffix: b"]",
    };

    /// The body for `items`, byte for byte.
    pub fn body<'i>(&self, items: impl IntoIterator<Item = &'i [u8]>) -> Vec<u8> {
        let mut out = self.prefix.to_vec();
        for (n, item) in items.into_iter().enumerate() {
            if n > 0 {
                out.extend_from_slice(self.separator);
            }
            out.extend_from_slice(item);
        }
        out.extend_from_slice(self.suffix);
        out
    }
}

/// Batches cut by [`chunk`]: positions into its `items`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Chunks {
    pub groups: Vec<Vec<usize>>,
    /// Items that alone exceed a limit (they can never be sent).
    pub oversize: Vec<usize>,
}

/// Cut `items` (each `(weight, bytes)`: how many of the vendor's objects it
/// makes and its serialized length) into consecutive batches whose summed
/// weight is at most `limits.max_events` and whose framed body is at most
/// `limits.max_bytes`. Order is kept; greedy (each batch is filled before the
/// next is opened).
pub fn chunk(items: &[(usize, usize)], limits: Limits, framing: Framing<'_>) -> Chunks {
    let frame = framing.prefix.len() + framing.suffix.len();
    let mut out = Chunks::default();
    let mut current: Vec<usize> = Vec::new();
    let (mut weight, mut bytes) = (0usize, frame);
    for (i, &(w, b)) in items.iter().enumerate() {
        if w > limits.max_events || frame + b > limits.max_bytes {
            out.oversize.push(i);
            continue;
        }
        let sep_len = framing.separator.len();
        if !current.is_empty()
            && (weight + w > limits.max_events || bytes + sep_len + b > limits.max_bytes)
        {
            out.groups.push(core::mem::take(&mut current));
            weight = 0;
            bytes = frame;
        }
        let sep = if current.is_empty() { 0 } else { sep_len };
        current.push(i);
        weight += w;
        bytes += sep + b;
    }
    if !current.is_empty() {
        out.groups.push(current);
    }
    out
}

/// Where a batch goes and how it is authorised; the body is the framed items.
#[derive(Debug, Clone)]
pub struct Target<'a> {
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub framing: Framing<'a>,
}

/// One request per batch of `items` (`(event index, serialized item)`, one
/// vendor object each), cut to `limits`; items too large for any request come
/// back as permanent verdicts.
pub fn requests_for(
    items: &[(usize, Vec<u8>)],
    limits: Limits,
    target: &Target<'_>,
) -> (Vec<HttpRequest>, Vec<(usize, Verdict)>) {
    let sizes: Vec<(usize, usize)> = items.iter().map(|(_, b)| (1, b.len())).collect();
    let chunks = chunk(&sizes, limits, target.framing);
    let requests = chunks
        .groups
        .iter()
        .map(|group| HttpRequest {
            method: "POST",
            url: target.url.clone(),
            headers: target.headers.clone(),
            body: target
                .framing
                .body(group.iter().map(|&k| items[k].1.as_slice())),
            events: group.iter().map(|&k| items[k].0).collect(),
        })
        .collect();
    let rejected = chunks
        .oversize
        .iter()
        .map(|&k| (items[k].0, too_large(items[k].1.len(), limits)))
        .collect();
    (requests, rejected)
}

/// `(name, value)` header pairs from string literals and values.
pub fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// The verdict for an event too large for any request.
pub fn too_large(bytes: usize, limits: Limits) -> Verdict {
    Verdict::Permanent {
        reason: format!(
            "event is {bytes} bytes serialized: larger than the vendor's {} bytes per request",
            limits.max_bytes
        ),
    }
}

/// `Authorization: Basic base64(user:password)`.
pub fn basic_auth(user: &str, password: &str) -> String {
    format!("Basic {}", base64(format!("{user}:{password}").as_bytes()))
}

/// Standard base64 with padding (RFC 4648 §4).
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for group in bytes.chunks(3) {
        let n = group
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= group.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 0x3f) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Braze's `X-RateLimit-Reset` (Unix seconds when the window resets) as a
/// delay in milliseconds from `now_ms`.
pub fn rate_limit_reset_ms(value: &str, now_ms: i64) -> Option<u64> {
    let at = value.trim().parse::<i64>().ok()?.checked_mul(1000)?;
    Some(u64::try_from(at - now_ms).unwrap_or(0))
}

/// IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), the form RFC 9110 requires senders to use.
/// The verdict an HTTP status implies when the vendor gave no per-event
/// detail: 408, 429 and 5xx retry (after `Retry-After` when given), 413 retries
/// so the batch is split, other 4xx are permanent.
pub fn by_status(answer: &HttpAnswer, vendor: &str, detail: &str) -> Verdict {
    let reason = if detail.is_empty() {
        format!("{vendor} answered {}", answer.status)
    } else {
        format!("{vendor} answered {}: {detail}", answer.status)
    };
    match answer.status {
        200..=299 => Verdict::Delivered,
        408 | 429 | 500..=599 => Verdict::Retry {
            after_ms: answer.retry_after_ms,
            reason,
        },
        413 => Verdict::Retry {
            after_ms: None,
            reason: format!("{reason} (request too large: split and re-send)"),
        },
        _ => Verdict::Permanent { reason },
    }
}

/// [`by_status`] for each of the `n` events of a request, except that a 413
/// for a request of one event is permanent: splitting cannot help it.
pub fn for_all(answer: &HttpAnswer, vendor: &str, detail: &str, n: usize) -> Vec<Verdict> {
    let verdict = match by_status(answer, vendor, detail) {
        Verdict::Retry { reason, .. } if answer.status == 413 && n <= 1 => Verdict::Permanent {
            reason: format!("{reason}: the event alone is too large"),
        },
        v => v,
    };
    vec![verdict; n]
}

/// A short excerpt of an answer body for a reason string (at most 300 bytes, on a char boundary).
pub fn excerpt(body: &str) -> &str {
    let body = body.trim();
    let mut end = body.len().min(300);
    while !body.is_char_boundary(end) {
        end -= 1;
    }
    &body[..end]
}

/// The string at `key` of a JSON object, if it is one.
pub fn str_at<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key)?.as_str()
}

/// A value at a dotted path inside `context` (`"page.url"`).
pub fn context_at<'a>(event: &'a Event, path: &str) -> Option<&'a Value> {
    let mut parts = path.split('.');
    let mut v = event.context.as_ref()?.get(parts.next()?)?;
    for p in parts {
        v = v.get(p)?;
    }
    Some(v)
}

/// A string at a dotted path inside `context`, non-empty.
pub fn context_str<'a>(event: &'a Event, path: &str) -> Option<&'a str> {
    context_at(event, path)?.as_str().filter(|s| !s.is_empty())
}

/// A JSON value's bytes (serializing a `Value` cannot fail).
pub fn to_bytes(v: &Value) -> Vec<u8> {
    v.to_string().into_bytes()
}

/// The parts of an absolute URL the vendors ask for, split by hand (no URL
/// crate): `https://shop.example/p/1?x=1#top` gives scheme `https`, host
/// `shop.example`, path `/p/1`, query `?x=1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlParts<'a> {
    pub scheme: &'a str,
    pub host: &'a str,
    pub path: &'a str,
    pub query: &'a str,
}

/// Split `url`; `None` when it is not `scheme://host...`.
pub fn split_url(url: &str) -> Option<UrlParts<'_>> {
    let (scheme, rest) = url.split_once("://")?;
    let rest = rest.split('#').next().unwrap_or("");
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (host, tail) = rest.split_at(end);
    let (path, query) = match tail.find('?') {
        Some(q) => tail.split_at(q),
        None => (tail, ""),
    };
    if scheme.is_empty() || host.is_empty() {
        return None;
    }
    Some(UrlParts {
        scheme,
        host,
        path: if path.is_empty() { "/" } else { path },
        query,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn with_integrations(v: Value) -> Event {
        let mut e = Event::new(EventType::Track, "m1");
        e.integrations = v.as_object().cloned();
        e
    }

    #[test]
    fn integrations_follow_segments_rule() {
        let on = |v: Value| integration_enabled(&with_integrations(v), "Mixpanel");
        assert!(integration_enabled(
            &Event::new(EventType::Track, "m"),
            "Mixpanel"
        ));
        assert!(on(json!({})));
        assert!(on(json!({"All": true})));
        assert!(!on(json!({"All": false})));
        assert!(on(json!({"All": false, "Mixpanel": true})));
        assert!(on(json!({"All": false, "Mixpanel": {"some": "option"}})));
        assert!(!on(json!({"All": true, "Mixpanel": false})));
        assert!(!on(json!({"mixpanel": false})));
        assert!(on(json!({"All": false, "mixpanel": true})));
        assert!(!on(json!({"All": false, "Amplitude": true})));
    }

    #[test]
    fn overrides_filter_rename_and_remap() {
        let o: Overrides = serde_json::from_value(json!({
            "deny": ["Product Viewed", "page"],
            "rename": {"Order Completed": "purchase"},
            "properties": {"revenue": "amount", "email": "mail"},
        }))
        .unwrap();
        let mut t = Event::new(EventType::Track, "m");
        t.event = Some("Order Completed".into());
        t.properties = json!({"revenue": 3, "kept": 1}).as_object().cloned();
        let out = o.apply(&t).unwrap();
        assert_eq!(out.event.as_deref(), Some("purchase"));
        assert_eq!(
            Value::from(out.properties.clone().unwrap()),
            json!({"amount": 3, "kept": 1})
        );
        t.event = Some("Product Viewed".into());
        assert!(matches!(o.apply(&t), Err(Verdict::Skipped { reason }) if reason.contains("deny")));
        assert!(o.apply(&Event::new(EventType::Page, "p")).is_err());
        let mut i = Event::new(EventType::Identify, "i");
        i.traits = json!({"email": "a@b.c"}).as_object().cloned();
        assert_eq!(
            o.apply(&i).unwrap().traits.as_ref().unwrap()["mail"],
            "a@b.c"
        );
        let allow: Overrides = serde_json::from_value(json!({"allow": ["identify"]})).unwrap();
        assert!(allow.apply(&i).is_ok());
        assert!(
            matches!(allow.apply(&t), Err(Verdict::Skipped { reason }) if reason.contains("allow"))
        );
        let none = Overrides::default();
        assert!(matches!(none.apply(&t), Ok(Cow::Borrowed(_))));
        assert!(serde_json::from_value::<Overrides>(json!({"alow": []})).is_err());
    }

    #[test]
    fn time_falls_back_in_order() {
        let mut e = Event::new(EventType::Track, "m");
        assert_eq!(event_time_ms(&e, 7), 7);
        e.received_at = Some("2024-05-01T10:05:00.000Z".into());
        assert_eq!(event_time_ms(&e, 7), 1_714_557_900_000);
        e.original_timestamp = Some("2024-05-01T10:04:00.000Z".into());
        assert_eq!(event_time_ms(&e, 7), 1_714_557_840_000);
        e.timestamp = Some("not a time".into());
        assert_eq!(event_time_ms(&e, 7), 1_714_557_840_000, "bad time skipped");
        e.timestamp = Some("2024-05-01T10:03:00Z".into());
        assert_eq!(event_time_rfc3339(&e, 7), "2024-05-01T10:03:00.000Z");
    }

    #[test]
    fn derived_ids_are_stable_and_distinct() {
        assert_eq!(uuid_from_seed("abc"), uuid_from_seed("abc"));
        assert_ne!(uuid_from_seed("abc"), uuid_from_seed("abd"));
        let id = uuid_from_seed("abc");
        assert!(crate::id::is_uuid(&id), "{id}");
        assert_eq!(&id[14..15], "8", "version 8");
        assert_eq!(hex(&stable_hash(b"")).len(), 32);
    }

    #[test]
    fn chunks_respect_count_bytes_and_order() {
        let limits = Limits {
            max_events: 3,
            max_bytes: 12,
        };
        // "[" + items joined by "," + "]": 2 bytes of frame.
        let items = [(1, 3), (1, 3), (1, 3), (1, 1), (2, 1), (1, 11), (1, 10)];
        let c = chunk(&items, limits, Framing::ARRAY);
        // [3,3] = 2+3+1+3 = 9; +1+3 = 13 > 12 -> new. [3,1] = 2+3+1+1 = 7 w=2;
        // + (2,1): w=4 > 3 -> new. [(2,1)] w=2; 11 alone is 13 > 12: oversize;
        // (1,10): 2+1+1+10 = 14 > 12 -> new.
        assert_eq!(c.groups, vec![vec![0, 1], vec![2, 3], vec![4], vec![6]]);
        assert_eq!(c.oversize, vec![5]);
        let weight_too_big = chunk(&[(4, 1)], limits, Framing::ARRAY);
        assert_eq!(weight_too_big.oversize, vec![0]);
        assert!(weight_too_big.groups.is_empty());
    }

    #[test]
    fn framed_bodies_match_the_byte_count_chunk_assumes() {
        let items: Vec<&[u8]> = vec![b"{\"a\":1}", b"{}", b"2"];
        let framing = Framing {
            prefix: b"{\"batch\":[",
            separator: b",",
            suffix: b"]}",
        };
        let body = framing.body(items.iter().copied());
        assert_eq!(body, b"{\"batch\":[{\"a\":1},{},2]}");
        let sized: Vec<(usize, usize)> = items.iter().map(|i| (1, i.len())).collect();
        let exact = Limits {
            max_events: 10,
            max_bytes: body.len(),
        };
        assert_eq!(chunk(&sized, exact, framing).groups, vec![vec![0, 1, 2]]);
        let one_less = Limits {
            max_bytes: body.len() - 1,
            ..exact
        };
        assert_eq!(chunk(&sized, one_less, framing).groups.len(), 2);
    }

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (input, out) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()), out, "{input}");
        }
        assert_eq!(basic_auth("token", ""), "Basic dG9rZW46");
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let now = 1_445_412_480_000; // 2015-10-21T07:28:00Z
        assert_eq!(crate::dest::retry_after_ms("120", now), Some(120_000));
        assert_eq!(
            crate::dest::retry_after_ms("Wed, 21 Oct 2015 07:28:30 GMT", now),
            Some(30_000)
        );
        assert_eq!(
            crate::dest::retry_after_ms("Wed, 21 Oct 2015 07:27:00 GMT", now),
            Some(0)
        );
        assert_eq!(crate::dest::retry_after_ms("soon", now), None);
        assert_eq!(
            crate::dest::retry_after_ms("Wed, 21 Oct 2015 07:28:30 PST", now),
            None
        );
        assert_eq!(rate_limit_reset_ms("1445412540", now), Some(60_000));
        assert_eq!(rate_limit_reset_ms("x", now), None);
    }

    #[test]
    fn a_single_event_too_large_is_permanent_not_split_forever() {
        let a = HttpAnswer {
            status: 413,
            retry_after_ms: None,
            body: String::new(),
        };
        assert!(matches!(
            &for_all(&a, "V", "", 2)[..],
            [Verdict::Retry { .. }, Verdict::Retry { .. }]
        ));
        assert!(matches!(
            &for_all(&a, "V", "", 1)[..],
            [Verdict::Permanent { .. }]
        ));
    }

    #[test]
    fn credentials_only_travel_over_https_or_to_loopback() {
        assert!(is_safe_base_url("https://rest.iad-01.braze.com"));
        assert!(is_safe_base_url("http://127.0.0.1:8787"));
        assert!(is_safe_base_url("http://localhost:9000/stub"));
        assert!(!is_safe_base_url("http://rest.iad-01.braze.com"));
        assert!(!is_safe_base_url("http://127.0.0.1.evil.example"));
        assert!(!is_safe_base_url("rest.iad-01.braze.com"));
        #[derive(Deserialize)]
        struct C {
            #[serde(deserialize_with = "base_url")]
            url: String,
        }
        let c: C = serde_json::from_value(json!({"url": "https://x.example/"})).unwrap();
        assert_eq!(c.url, "https://x.example");
        let err = serde_json::from_value::<C>(json!({"url": "http://x.example"}))
            .err()
            .unwrap();
        assert!(err.to_string().contains("not an https:// URL"), "{err}");
    }

    #[test]
    fn urls_split_into_parts() {
        let u = split_url("https://shop.example/p/1?x=1#top").unwrap();
        assert_eq!(
            (u.scheme, u.host, u.path, u.query),
            ("https", "shop.example", "/p/1", "?x=1")
        );
        let u = split_url("http://a.b?q").unwrap();
        assert_eq!((u.host, u.path, u.query), ("a.b", "/", "?q"));
        assert_eq!(split_url("/relative"), None);
        assert_eq!(split_url("https:///x"), None);
    }

    #[test]
    fn statuses_map_to_verdicts() {
        let a = |status| HttpAnswer {
            status,
            retry_after_ms: Some(5),
            body: String::new(),
        };
        assert_eq!(by_status(&a(204), "V", ""), Verdict::Delivered);
        assert!(matches!(
            by_status(&a(429), "V", ""),
            Verdict::Retry {
                after_ms: Some(5),
                ..
            }
        ));
        assert!(matches!(by_status(&a(503), "V", ""), Verdict::Retry { .. }));
        assert!(matches!(
            by_status(&a(413), "V", ""),
            Verdict::Retry { after_ms: None, .. }
        ));
        assert_eq!(
            by_status(&a(401), "V", "bad key"),
            Verdict::Permanent {
                reason: "V answered 401: bad key".into()
            }
        );
    }
}
