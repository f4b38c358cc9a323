//! What every vendor destination needs: the event's `integrations` object,
//! event time and age, reading context / traits / click ids, Segment
//! e-commerce properties, the vendor consent signals, packing encoded events
//! into requests by count and bytes, and verdicts from HTTP statuses.
//!
//! Where a destination reads browser identifiers (documented for the SDK):
//!
//! | id | read from, first found |
//! | --- | --- |
//! | Meta `fbp` | `context.fbp`, `context.cookies._fbp` |
//! | Meta `fbc` | `context.fbc`, `context.cookies._fbc`, else built from `context.campaign.clickIds.fbclid` |
//! | GA4 client id | `context.ga.clientId`, `context.cookies._ga` (`GA1.1.X.Y` → `X.Y`) |
//! | TikTok `ttp` | `context.ttp`, `context.cookies._ttp` |
//! | click ids (`gclid`, `gbraid`, `wbraid`, `ttclid`, …) | `context.campaign.clickIds.<id>`, `context.<id>` |

use super::{HttpAnswer, HttpRequest, Limits, Verdict};
use crate::consent::{allows, Consent, Purpose, Regime, State};
use crate::{Event, Object, Timestamp};
use serde_json::Value;
use std::fmt;

/// Why an event is not sent, or not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Problem {
    /// The event's `integrations` object turns this destination off.
    IntegrationDisabled { name: &'static str },
    /// Older than the vendor accepts.
    TooOld { age_ms: i64, limit_ms: i64 },
    /// No usable `timestamp`, `originalTimestamp` or `receivedAt`.
    NoTimestamp,
    /// This call or event has no counterpart at the vendor.
    NotMapped(String),
    /// A field the vendor requires is missing.
    Missing(&'static str),
    /// The event alone is larger than a whole request may be.
    TooLarge { bytes: usize, limit: usize },
}

impl Problem {
    /// Stable machine-readable code (the start of every verdict's reason).
    pub fn code(&self) -> &'static str {
        match self {
            Problem::IntegrationDisabled { .. } => "integration_disabled",
            Problem::TooOld { .. } => "event_too_old",
            Problem::NoTimestamp => "event_without_timestamp",
            Problem::NotMapped(_) => "event_not_mapped",
            Problem::Missing(_) => "field_missing",
            Problem::TooLarge { .. } => "event_too_large",
        }
    }

    /// Not sent on purpose: recorded, never retried.
    pub fn skipped(&self) -> Verdict {
        Verdict::Skipped {
            reason: reason(self.code(), self),
        }
    }

    /// Cannot be sent as it is: dead-lettered with this reason.
    pub fn permanent(&self) -> Verdict {
        Verdict::Permanent {
            reason: reason(self.code(), self),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::IntegrationDisabled { name } => {
                write!(f, "the event's integrations object turns {name} off")
            }
            Problem::TooOld { age_ms, limit_ms } => write!(
                f,
                "the event is {} h old and the vendor takes events up to {} h old",
                age_ms / 3_600_000,
                limit_ms / 3_600_000
            ),
            Problem::NoTimestamp => f.write_str("the event has no valid timestamp"),
            Problem::NotMapped(what) => f.write_str(what),
            Problem::Missing(field) => write!(f, "the vendor requires {field}"),
            Problem::TooLarge { bytes, limit } => write!(
                f,
                "the encoded event has {bytes} bytes, more than a request may carry ({limit})"
            ),
        }
    }
}

/// A verdict reason: `"<code>: <message>"`, so the code survives into dead letters.
pub fn reason(code: &str, message: impl fmt::Display) -> String {
    format!("{code}: {message}")
}

/// Does the event's `integrations` object let it go to the destination called
/// any of `names`? Segment's rules: a key for the destination decides (`false`
/// off; `true` or a settings object on); otherwise `All` decides; otherwise on.
/// Keys are compared case-insensitively.
pub fn integration_enabled(event: &Event, names: &[&str]) -> bool {
    let Some(integrations) = &event.integrations else {
        return true;
    };
    let on = |v: &Value| !matches!(v, Value::Bool(false) | Value::Null);
    for (key, value) in integrations {
        if names.iter().any(|n| n.eq_ignore_ascii_case(key)) {
            return on(value);
        }
    }
    integrations
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("All"))
        .is_none_or(|(_, v)| on(v))
}

/// When the event happened (Unix ms): `timestamp`, else `originalTimestamp`, else `receivedAt`.
pub fn event_time_ms(event: &Event) -> Option<i64> {
    [
        &event.timestamp,
        &event.original_timestamp,
        &event.received_at,
    ]
    .into_iter()
    .flatten()
    .find_map(|t| Timestamp::parse(t).ok())
    .map(|t| t.0)
}

/// The event time, if the event is at most `max_age_ms` old at `now_ms`.
/// A time in the future (client clock ahead) counts as now.
pub fn fresh_time_ms(event: &Event, now_ms: i64, max_age_ms: i64) -> Result<i64, Problem> {
    let t = event_time_ms(event)
        .ok_or(Problem::NoTimestamp)?
        .min(now_ms);
    let age_ms = now_ms - t;
    if age_ms > max_age_ms {
        return Err(Problem::TooOld {
            age_ms,
            limit_ms: max_age_ms,
        });
    }
    Ok(t)
}

/// The value at `path` inside `object`.
pub fn at<'a>(object: Option<&'a Object>, path: &[&str]) -> Option<&'a Value> {
    let (first, rest) = path.split_first()?;
    let mut v = object?.get(*first)?;
    for key in rest {
        v = v.as_object()?.get(*key)?;
    }
    Some(v)
}

/// A non-empty string (or a number, as text) at `path`.
pub fn text_at(object: Option<&Object>, path: &[&str]) -> Option<String> {
    as_text(at(object, path)?)
}

/// A non-empty string, or a number written as text.
pub fn as_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A number, or a string holding one (`"19.99"`).
pub fn as_number(v: &Value) -> Option<f64> {
    let n = match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    };
    n.filter(|n| n.is_finite())
}

/// `context.<path>` as text.
pub fn context_text(event: &Event, path: &[&str]) -> Option<String> {
    text_at(event.context.as_ref(), path)
}

/// A user trait: from `traits` (identify), `context.traits`, then
/// `properties`, under any of `keys` (`["email"]`, `["firstName", "first_name"]`).
pub fn user_trait(event: &Event, keys: &[&str]) -> Option<String> {
    let context_traits = at(event.context.as_ref(), &["traits"]).and_then(Value::as_object);
    [
        event.traits.as_ref(),
        context_traits,
        event.properties.as_ref(),
    ]
    .into_iter()
    .flatten()
    .find_map(|o| keys.iter().find_map(|k| o.get(*k).and_then(as_text)))
}

/// A field of the user's `address` trait (`city`, `state`, `postalCode`, `country`).
pub fn address_part(event: &Event, keys: &[&str]) -> Option<String> {
    let context_traits = at(event.context.as_ref(), &["traits"]).and_then(Value::as_object);
    [event.traits.as_ref(), context_traits]
        .into_iter()
        .flatten()
        .filter_map(|o| o.get("address").and_then(Value::as_object))
        .find_map(|a| keys.iter().find_map(|k| a.get(*k).and_then(as_text)))
}

/// A browser id set by a vendor script: `context.<key>`, else `context.cookies.<cookie>`.
pub fn browser_id(event: &Event, key: &str, cookie: &str) -> Option<String> {
    context_text(event, &[key]).or_else(|| context_text(event, &["cookies", cookie]))
}

/// A click id from the landing URL: `context.campaign.clickIds.<name>`, else `context.<name>`.
pub fn click_id(event: &Event, name: &str) -> Option<String> {
    context_text(event, &["campaign", "clickIds", name]).or_else(|| context_text(event, &[name]))
}

/// `context.page.url`.
pub fn page_url(event: &Event) -> Option<String> {
    context_text(event, &["page", "url"])
        .or_else(|| text_at(event.properties.as_ref(), &["url"]).filter(|_| is_page(event)))
}

fn is_page(event: &Event) -> bool {
    event.kind == crate::EventType::Page
}

/// First and last name: `firstName` / `lastName`, else split from the `name`
/// trait (of `traits` or `context.traits`, never a product's `properties.name`).
pub fn names(event: &Event) -> (Option<String>, Option<String>) {
    let first = user_trait(event, &["firstName", "first_name"]);
    let last = user_trait(event, &["lastName", "last_name"]);
    if first.is_some() || last.is_some() {
        return (first, last);
    }
    let full = text_at(event.traits.as_ref(), &["name"])
        .or_else(|| context_text(event, &["traits", "name"]));
    match full.as_deref().and_then(|n| n.rsplit_once(' ')) {
        Some((f, l)) => (Some(f.trim().to_owned()), Some(l.trim().to_owned())),
        None => (full, None),
    }
}

/// Percent-encode all but RFC 3986's unreserved characters (query values, form bodies).
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(b"0123456789ABCDEF"[usize::from(b >> 4)]));
            out.push(char::from(b"0123456789ABCDEF"[usize::from(b & 0xf)]));
        }
    }
    out
}

/// Query parameters that carry credentials (Meta's `access_token`, GA4's `api_secret`).
pub const SECRET_PARAMS: [&str; 2] = ["access_token", "api_secret"];

/// `url` with the values of [`SECRET_PARAMS`] replaced by `REDACTED`: the form
/// to log, show in the debugger or keep in a dead letter.
pub fn redact_url(url: &str) -> String {
    let Some((base, query)) = url.split_once('?') else {
        return url.to_owned();
    };
    let params: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((k, _)) if SECRET_PARAMS.contains(&k) => format!("{k}=REDACTED"),
            _ => pair.to_owned(),
        })
        .collect();
    format!("{base}?{}", params.join("&"))
}

/// One product of a Segment e-commerce event.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Product {
    pub id: Option<String>,
    pub name: Option<String>,
    pub brand: Option<String>,
    pub category: Option<String>,
    pub variant: Option<String>,
    pub coupon: Option<String>,
    pub price: Option<f64>,
    pub quantity: Option<f64>,
    pub position: Option<f64>,
}

impl Product {
    fn from_object(o: &Object) -> Product {
        let text = |keys: &[&str]| keys.iter().find_map(|k| o.get(*k).and_then(as_text));
        let num = |key: &str| o.get(key).and_then(as_number);
        Product {
            id: text(&["product_id", "productId", "sku", "id"]),
            name: text(&["name"]),
            brand: text(&["brand"]),
            category: text(&["category"]),
            variant: text(&["variant"]),
            coupon: text(&["coupon"]),
            price: num("price"),
            quantity: num("quantity"),
            position: num("position"),
        }
    }
}

/// The products of an e-commerce event: `properties.products`, or the
/// properties themselves when they describe one product (`Product Viewed`, `Product Added`).
pub fn products(event: &Event) -> Vec<Product> {
    let Some(props) = event.properties.as_ref() else {
        return Vec::new();
    };
    match props.get("products").and_then(Value::as_array) {
        Some(list) => list
            .iter()
            .filter_map(Value::as_object)
            .map(Product::from_object)
            .collect(),
        None if ["product_id", "productId", "sku"]
            .iter()
            .any(|k| props.contains_key(*k)) =>
        {
            vec![Product::from_object(props)]
        }
        None => Vec::new(),
    }
}

/// The monetary value of an event: `value`, else `revenue`, else `total`,
/// else the sum of price × quantity of its products.
pub fn order_value(event: &Event) -> Option<f64> {
    let props = event.properties.as_ref()?;
    ["value", "revenue", "total"]
        .iter()
        .find_map(|k| props.get(*k).and_then(as_number))
        .or_else(|| {
            let items = products(event);
            let priced: Vec<f64> = items
                .iter()
                .filter_map(|p| Some(p.price? * p.quantity.unwrap_or(1.0)))
                .collect();
            (!priced.is_empty()).then(|| priced.iter().sum())
        })
}

/// `properties.currency`, upper-cased, if it is three letters (ISO 4217).
pub fn currency(event: &Event) -> Option<String> {
    let c = text_at(event.properties.as_ref(), &["currency"])?.to_ascii_uppercase();
    (c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase())).then_some(c)
}

/// `properties.order_id` (or `orderId`, `checkout_id`).
pub fn order_id(event: &Event) -> Option<String> {
    ["order_id", "orderId", "checkout_id"]
        .iter()
        .find_map(|k| text_at(event.properties.as_ref(), &[k]))
}

/// The visitor's consent, as the event carries it (unreadable counts as none).
pub fn consent(event: &Event) -> Option<Consent> {
    Consent::from_context(event.context.as_ref()).ok().flatten()
}

/// The consent signals advertising vendors take, from the event's consent.
/// Unknown counts as denied (the opt-in reading): a vendor is told "granted"
/// only for what the visitor granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdSignals {
    /// The visitor's data may be sent to the vendor for advertising (`marketing`).
    pub ad_user_data: bool,
    /// … and used for personalised advertising (`marketing` and `personalization`).
    pub ad_personalization: bool,
    /// The visitor opted out of sale/sharing or sent GPC: the vendor's limited-data-use mode.
    pub limited_data_use: bool,
}

impl AdSignals {
    pub fn of(event: &Event) -> AdSignals {
        let c = consent(event);
        let granted = |p: &Purpose| allows(c.as_ref(), p, Regime::OptIn);
        let marketing = granted(&Purpose::Marketing);
        AdSignals {
            ad_user_data: marketing,
            ad_personalization: marketing && granted(&Purpose::Personalization),
            limited_data_use: c
                .as_ref()
                .is_some_and(|c| c.gpc || c.state(&Purpose::SaleSharing) == State::Denied),
        }
    }
}

/// Events packed into request bodies: `prefix` + items joined by `,` + `suffix`,
/// at most `limits.max_events` items and `limits.max_bytes` bytes a body, in order.
#[derive(Debug, Default)]
pub struct Packed {
    /// (body, indices of the events it carries).
    pub bodies: Vec<(Vec<u8>, Vec<usize>)>,
    /// Events too large for any request.
    pub too_large: Vec<(usize, Verdict)>,
}

/// Pack encoded items (event index, JSON bytes) into bodies.
pub fn pack(prefix: &[u8], items: Vec<(usize, Vec<u8>)>, suffix: &[u8], limits: Limits) -> Packed {
    let mut packed = Packed::default();
    let envelope = prefix.len() + suffix.len();
    let mut body = Vec::new();
    let mut events = Vec::new();
    let close = |body: &mut Vec<u8>, events: &mut Vec<usize>, packed: &mut Packed| {
        if !events.is_empty() {
            body.extend_from_slice(suffix);
            packed
                .bodies
                .push((std::mem::take(body), std::mem::take(events)));
        }
    };
    for (index, item) in items {
        if envelope + item.len() > limits.max_bytes {
            let problem = Problem::TooLarge {
                bytes: item.len(),
                limit: limits.max_bytes,
            };
            packed.too_large.push((index, problem.permanent()));
            continue;
        }
        let full = events.len() >= limits.max_events
            || body.len() + 1 + item.len() + suffix.len() > limits.max_bytes;
        if !events.is_empty() && full {
            close(&mut body, &mut events, &mut packed);
        }
        if events.is_empty() {
            body.extend_from_slice(prefix);
        } else {
            body.push(b',');
        }
        body.extend_from_slice(&item);
        events.push(index);
    }
    close(&mut body, &mut events, &mut packed);
    packed
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

/// The verdict an HTTP status alone implies: 2xx delivered; 408, 429 and 5xx
/// retried (after `Retry-After` when given); other statuses permanent.
pub fn status_verdict(answer: &HttpAnswer, reason: String) -> Verdict {
    match answer.status {
        200..=299 => Verdict::Delivered,
        408 | 429 | 500..=599 => Verdict::Retry {
            after_ms: answer.retry_after_ms,
            reason,
        },
        _ => Verdict::Permanent { reason },
    }
}

/// At most `max` characters of `s` (never splitting a character).
pub fn truncate_chars(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
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

    fn event(v: Value) -> Event {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn integrations_object_follows_segment_rules() {
        let names = ["Meta Conversions API", "Facebook Conversions API"];
        let on = |i: Value| {
            integration_enabled(
                &event(json!({"type":"track","event":"E","integrations":i})),
                &names,
            )
        };
        assert!(on(json!({})));
        assert!(on(json!({"All": true})));
        assert!(!on(json!({"All": false})));
        assert!(on(json!({"All": false, "Meta Conversions API": true})));
        assert!(on(
            json!({"All": false, "facebook conversions api": {"x": 1}})
        ));
        assert!(!on(json!({"Meta Conversions API": false})));
        assert!(on(json!({"Mixpanel": false})));
        assert!(integration_enabled(
            &event(json!({"type":"track","event":"E"})),
            &names
        ));
    }

    #[test]
    fn packing_respects_count_and_bytes_and_order() {
        let items: Vec<(usize, Vec<u8>)> = (0..5).map(|i| (i, b"\"abcd\"".to_vec())).collect();
        // Count: 2 a body.
        let p = pack(
            b"[",
            items.clone(),
            b"]",
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
            b"[",
            items.clone(),
            b"]",
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
            b"[",
            big,
            b"]",
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
    fn ad_signals_come_from_the_events_consent() {
        let with = |c: Value| {
            AdSignals::of(&event(
                json!({"type":"track","event":"E","context":{"consent":c}}),
            ))
        };
        let s = with(json!({"categories":{"marketing":"granted","personalization":"granted"}}));
        assert_eq!(
            (s.ad_user_data, s.ad_personalization, s.limited_data_use),
            (true, true, false)
        );
        let s = with(json!({"categories":{"marketing":"granted"}}));
        assert_eq!((s.ad_user_data, s.ad_personalization), (true, false));
        let s = with(json!({"categories":{"marketing":"granted","sale_sharing":"denied"}}));
        assert!(s.limited_data_use);
        let s = with(json!({"categories":{"marketing":"granted"},"gpc":true}));
        assert!(!s.ad_user_data && s.limited_data_use);
        let none = AdSignals::of(&event(json!({"type":"track","event":"E"})));
        assert!(!none.ad_user_data && !none.ad_personalization && !none.limited_data_use);
    }

    #[test]
    fn events_too_old_are_refused_and_future_times_count_as_now() {
        let now = Timestamp::parse("2026-12-01T10:00:00Z").unwrap().0;
        let e = |t: &str| event(json!({"type":"track","event":"E","timestamp":t}));
        let week = 7 * crate::time::DAY_MS;
        assert!(fresh_time_ms(&e("2026-11-24T10:00:00Z"), now, week).is_ok());
        let err = fresh_time_ms(&e("2026-11-24T09:59:59Z"), now, week).unwrap_err();
        assert_eq!(err.code(), "event_too_old");
        assert_eq!(
            fresh_time_ms(&e("2026-12-02T10:00:00Z"), now, week),
            Ok(now)
        );
        let none = event(json!({"type":"track","event":"E"}));
        assert_eq!(fresh_time_ms(&none, now, week), Err(Problem::NoTimestamp));
    }

    #[test]
    fn products_and_value_from_the_ecommerce_spec() {
        let e = event(
            json!({"type":"track","event":"Order Completed","properties":{
            "order_id":"o1","currency":"eur","products":[
                {"product_id":"p1","price":10,"quantity":2},{"sku":"s2","price":"5.5"}]}}),
        );
        let p = products(&e);
        assert_eq!(p.len(), 2);
        assert_eq!(p[1].id.as_deref(), Some("s2"));
        assert_eq!(order_value(&e), Some(25.5));
        assert_eq!(currency(&e).as_deref(), Some("EUR"));
        assert_eq!(order_id(&e).as_deref(), Some("o1"));
        let single = event(
            json!({"type":"track","event":"Product Viewed","properties":{"product_id":"p9","price":3}}),
        );
        assert_eq!(products(&single)[0].id.as_deref(), Some("p9"));
    }

    #[test]
    fn credentials_are_redacted_from_urls() {
        assert_eq!(
            redact_url("https://x.test/mp/collect?measurement_id=G-1&api_secret=s3cr3t"),
            "https://x.test/mp/collect?measurement_id=G-1&api_secret=REDACTED"
        );
        assert_eq!(
            redact_url("https://x.test/v24.0/1/events?access_token=EAAB"),
            "https://x.test/v24.0/1/events?access_token=REDACTED"
        );
        assert_eq!(redact_url("https://x.test/a"), "https://x.test/a");
    }

    #[test]
    fn retry_after_in_seconds_or_as_an_http_date() {
        let now = Timestamp::parse("1994-11-06T08:49:00Z").unwrap().0;
        assert_eq!(crate::dest::retry_after_ms("120", now), Some(120_000));
        assert_eq!(
            crate::dest::retry_after_ms("Sun, 06 Nov 1994 08:49:37 GMT", now),
            Some(37_000)
        );
        assert_eq!(
            crate::dest::retry_after_ms("Sun, 06 Nov 1994 08:48:00 GMT", now),
            Some(0)
        );
        assert_eq!(crate::dest::retry_after_ms("soon", now), None);
        assert_eq!(
            crate::dest::retry_after_ms("Sun, 06 Foo 1994 08:49:37 GMT", now),
            None
        );
    }

    #[test]
    fn truncation_keeps_whole_characters() {
        assert_eq!(truncate_chars("héllo", 2), "hé");
        assert_eq!(truncate_chars("hi", 5), "hi");
    }
}
