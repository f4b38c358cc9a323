//! Requests from encoded events, and verdicts from answers: packing JSON
//! items into bodies by a vendor's count and byte limits ([`pack`],
//! [`chunk`] for items that weigh more than one object), the wire framing,
//! one request per body ([`requests_for`]), header and Basic-auth helpers,
//! Braze's `X-RateLimit-Reset`, and the verdict an HTTP status implies.
//! (`Retry-After` is parsed once, by [`super::retry_after_ms`].)
//!
//! Pure: callers pass `now_ms` in.

use super::common::{self, Problem};
use super::{Destination, Encoded, HttpAnswer, HttpRequest, Limits, Verdict};
use crate::Event;
use serde_json::Value;

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
    chunk_by(items, limits, frame, framing.separator.len(), |_, _| false)
}

/// [`chunk`] for a body that is not one framed list (Braze's three arrays):
/// `frame` bytes around the items, `sep_len` bytes between two, and
/// `apart(previous, next)` true where two neighbours must not share a batch.
pub fn chunk_by(
    items: &[(usize, usize)],
    limits: Limits,
    frame: usize,
    sep_len: usize,
    apart: impl Fn(usize, usize) -> bool,
) -> Chunks {
    let mut out = Chunks::default();
    let mut current: Vec<usize> = Vec::new();
    let (mut weight, mut bytes) = (0usize, frame);
    for (i, &(w, b)) in items.iter().enumerate() {
        if w > limits.max_events || frame + b > limits.max_bytes {
            out.oversize.push(i);
            continue;
        }
        let full = weight + w > limits.max_events || bytes + sep_len + b > limits.max_bytes;
        if current.last().is_some_and(|&prev| full || apart(prev, i)) {
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

/// Events packed into request bodies by [`pack`].
#[derive(Debug, Default)]
pub struct Packed {
    /// (body, indices of the events it carries).
    pub bodies: Vec<(Vec<u8>, Vec<usize>)>,
    /// Events too large for any request, with their permanent verdicts.
    pub too_large: Vec<(usize, Verdict)>,
}

/// Pack encoded items (`(event index, JSON bytes)`, one vendor object each)
/// into framed bodies of at most `limits.max_events` items and
/// `limits.max_bytes` bytes, in order ([`chunk`] cuts them).
pub fn pack(framing: Framing<'_>, items: &[(usize, Vec<u8>)], limits: Limits) -> Packed {
    let sizes: Vec<(usize, usize)> = items.iter().map(|(_, b)| (1, b.len())).collect();
    let chunks = chunk(&sizes, limits, framing);
    let bodies = chunks
        .groups
        .iter()
        .map(|group| {
            let body = framing.body(group.iter().map(|&k| items[k].1.as_slice()));
            (body, group.iter().map(|&k| items[k].0).collect())
        })
        .collect();
    let too_large = chunks
        .oversize
        .iter()
        .map(|&k| {
            let problem = Problem::TooLarge {
                bytes: items[k].1.len(),
                limit: limits.max_bytes,
            };
            (items[k].0, problem.permanent())
        })
        .collect();
    Packed { bodies, too_large }
}

/// Where a batch goes and how it is authorised; the body is the framed items.
#[derive(Debug, Clone)]
pub struct Target<'a> {
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub framing: Framing<'a>,
}

/// One request per body [`pack`] cuts from `items` for `target`; items too
/// large for any request come back as permanent verdicts.
pub fn requests_for(
    items: &[(usize, Vec<u8>)],
    limits: Limits,
    target: &Target<'_>,
) -> (Vec<HttpRequest>, Vec<(usize, Verdict)>) {
    let packed = pack(target.framing, items, limits);
    let requests = packed
        .bodies
        .into_iter()
        .map(|(body, events)| HttpRequest {
            method: "POST",
            url: target.url.clone(),
            headers: target.headers.clone(),
            body,
            events,
        })
        .collect();
    (requests, packed.too_large)
}

/// The encode of a vendor whose events each become one JSON item of one kind
/// of request: the pre-filter ([`common::admitted`]), `map` for each admitted
/// event, then one request per body packed for `target` within
/// `D::limits`. Skipped events come back in input order.
pub fn encode_each<D: Destination>(
    config: &D::Config,
    events: &[Event],
    target: &Target<'_>,
    mut map: impl FnMut(&Event) -> Result<Value, Verdict>,
) -> Encoded {
    let mut out = Encoded::default();
    let mut items = Vec::new();
    for (i, event) in common::admitted::<D>(config, events, &mut out.skipped) {
        match map(&event) {
            Ok(v) => items.push((i, to_bytes(&v))),
            Err(verdict) => out.skipped.push((i, verdict)),
        }
    }
    let (requests, too_large) = requests_for(&items, D::limits(config), target);
    out.requests = requests;
    out.skipped.extend(too_large);
    out.skipped.sort_by_key(|(i, _)| *i);
    out
}

/// `(name, value)` header pairs from string literals and values.
pub fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
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

/// The reason code of [`rejected_batch`]'s retries.
pub const BATCH_REJECTED: &str = "batch_rejected";

/// Verdicts for a request a vendor refused as a whole for an invalid
/// parameter without saying which event has it (Meta, TikTok). One event:
/// permanent. Several: each is retried with the code [`BATCH_REJECTED`],
/// which tells the sender to send those events again one a request, so that
/// the valid ones get through and the invalid one fails alone.
pub fn rejected_batch(request: &HttpRequest, reason: String) -> Vec<Verdict> {
    if request.events.len() <= 1 {
        return for_all(request, Verdict::Permanent { reason });
    }
    let reason = format!(
        "{BATCH_REJECTED}: the vendor refused the whole request ({reason}); send these events one a request"
    );
    for_all(
        request,
        Verdict::Retry {
            after_ms: None,
            reason,
        },
    )
}

/// The same verdict for every event of `request`.
pub fn for_all(request: &HttpRequest, verdict: Verdict) -> Vec<Verdict> {
    vec![verdict; request.events.len()]
}

/// A retry (after `Retry-After` when given) when `retryable`, else permanent:
/// for a vendor whose error body says which.
pub fn retry_if(retryable: bool, answer: &HttpAnswer, reason: String) -> Verdict {
    if retryable {
        Verdict::Retry {
            after_ms: answer.retry_after_ms,
            reason,
        }
    } else {
        Verdict::Permanent { reason }
    }
}

/// The verdict an HTTP status alone implies: 2xx delivered; 408, 429 and 5xx
/// retried (after `Retry-After` when given); 413 retried so the batch is
/// split; other statuses permanent.
pub fn status_verdict(answer: &HttpAnswer, reason: String) -> Verdict {
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

/// The reason `"<vendor> answered <status>: <detail>"`.
pub fn status_reason(vendor: &str, answer: &HttpAnswer, detail: &str) -> String {
    if detail.is_empty() {
        format!("{vendor} answered {}", answer.status)
    } else {
        format!("{vendor} answered {}: {detail}", answer.status)
    }
}

/// [`status_verdict`] with [`status_reason`], for a vendor that gave no
/// per-event detail.
pub fn by_status(answer: &HttpAnswer, vendor: &str, detail: &str) -> Verdict {
    status_verdict(answer, status_reason(vendor, answer, detail))
}

/// [`status_verdict`] for each of the `n` events of a request, except that a
/// 413 for a request of one event is permanent: splitting cannot help it.
pub fn status_verdicts(answer: &HttpAnswer, reason: String, n: usize) -> Vec<Verdict> {
    let verdict = match status_verdict(answer, reason) {
        Verdict::Retry { reason, .. } if answer.status == 413 && n <= 1 => Verdict::Permanent {
            reason: format!("{reason}: the event alone is too large"),
        },
        v => v,
    };
    vec![verdict; n]
}

/// A short excerpt of an answer body for a reason string: trimmed, at most
/// 300 characters.
pub fn excerpt(body: &str) -> &str {
    truncate_chars(body.trim(), 300)
}

/// At most `max` characters of `s` (never splitting a character).
pub fn truncate_chars(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// The string at `key` of a JSON object, if it is one.
pub fn str_at<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key)?.as_str()
}

/// A JSON value's bytes. Serialising a `Value` cannot fail.
pub fn to_bytes(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_default()
}

/// A JSON number from an `f64` (non-finite values become `null`).
pub fn number(n: f64) -> Value {
    serde_json::Number::from_f64(n).map_or(Value::Null, Value::Number)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn packing_respects_count_and_bytes_and_order() {
        let items: Vec<(usize, Vec<u8>)> = (0..5).map(|i| (i, b"\"abcd\"".to_vec())).collect();
        // Count: 2 a body.
        let p = pack(
            Framing::ARRAY,
            &items,
            Limits {
                max_events: 2,
                max_bytes: 1000,
            },
        );
        let events: Vec<Vec<usize>> = p.bodies.iter().map(|(_, e)| e.clone()).collect();
        assert_eq!(events, vec![vec![0, 1], vec![2, 3], vec![4]]);
        assert_eq!(p.bodies[0].0, b"[\"abcd\",\"abcd\"]");
        // Bytes: "[" + 6 + "," + 6 + "]" = 15 fits, a third item would not.
        let p = pack(
            Framing::ARRAY,
            &items,
            Limits {
                max_events: 100,
                max_bytes: 15,
            },
        );
        assert!(p.bodies.iter().all(|(b, _)| b.len() <= 15));
        assert_eq!(p.bodies.len(), 3);
        assert_eq!(
            serde_json::from_slice::<Value>(&p.bodies[0].0).unwrap(),
            json!(["abcd", "abcd"])
        );
        // An item that cannot fit alone is reported, the others still go.
        let mut big = items;
        big[2].1 = vec![b'x'; 20];
        let p = pack(
            Framing::ARRAY,
            &big,
            Limits {
                max_events: 100,
                max_bytes: 15,
            },
        );
        assert_eq!(p.too_large.len(), 1);
        assert_eq!(p.too_large[0].0, 2);
        let sent: Vec<usize> = p.bodies.iter().flat_map(|(_, e)| e.clone()).collect();
        assert_eq!(sent, vec![0, 1, 3, 4]);
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
    fn rate_limit_reset_is_read_as_unix_seconds() {
        let now = 1_445_412_480_000; // 2015-10-21T07:28:00Z
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
            &status_verdicts(&a, status_reason("V", &a, ""), 2)[..],
            [Verdict::Retry { .. }, Verdict::Retry { .. }]
        ));
        assert!(matches!(
            &status_verdicts(&a, status_reason("V", &a, ""), 1)[..],
            [Verdict::Permanent { .. }]
        ));
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

    #[test]
    fn truncation_keeps_whole_characters() {
        assert_eq!(truncate_chars("héllo", 2), "hé");
        assert_eq!(truncate_chars("hi", 5), "hi");
    }
}
