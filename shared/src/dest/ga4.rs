//! Google Analytics 4 Measurement Protocol:
//! `POST https://www.google-analytics.com/mp/collect?measurement_id=…&api_secret=…`.
//!
//! - **Auth**: `measurement_id` and `api_secret` in the query string, the only
//!   place GA4 reads them.
//! - **One client a request**: the request carries `client_id` (from the `_ga`
//!   cookie, `GA1.1.X.Y` → `X.Y`, else the `anonymousId`), `user_id` and
//!   `consent`; events are grouped by those, in order of first appearance, at
//!   most 25 events and 130,000 bytes a request (GA4's limits).
//! - **Age**: GA4 takes events up to 72 hours old (`timestamp_micros` per
//!   event); older ones are `Skipped` with `event_too_old`.
//! - **Limits** ([event collection limits]): event names and parameter names
//!   at most 40 characters (letters, digits, `_`, starting with a letter;
//!   reserved prefixes `google_`, `ga_`, `firebase_` dropped), at most 25
//!   parameters an event, values at most 100 characters (`page_location` 1,000,
//!   `page_referrer` 420, `page_title` 300), at most 200 `items`.
//! - **Consent**: `consent.ad_user_data` = marketing granted,
//!   `consent.ad_personalization` = marketing and personalization granted
//!   (the inverse of [`consent::gcm`](crate::consent::gcm)); unknown is `DENIED`.
//! - **Answers**: `/mp/collect` answers 2xx whatever the payload (GA4 does not
//!   validate in production), so 2xx is `Delivered`; 429/5xx retry. With
//!   `validate: true` requests go to `/debug/mp/collect`, whose answer
//!   `{"validationMessages":[{"fieldPath","description","validationCode"}]}`
//!   is mapped to the events it names (events are not recorded there).
//! - Every event carries `engagement_time_msec: 1` and, when known,
//!   `session_id` (`context.ga.sessionId`, else Sluice's `context.sessionId`):
//!   GA4 shows events in Realtime and sessions only with both.
//! - Every event carries `event_id` = the Segment `messageId` (a custom
//!   parameter, first after those two so the 25-parameter cap never drops
//!   it; at most 100 characters like any value): the id the SDK returns
//!   from `track()`, so an on-page `gtag('event', …, {event_id})` and the
//!   server event can be joined (register `event_id` as a custom dimension).
//!   GA4 itself does not deduplicate on it: Sluice's dedup does, before GA4.
//! - Custom `track` properties become parameters except personal fields
//!   (`email`, `phone`, names, `address`…): GA4's policy forbids PII.
//!
//! | Segment | GA4 |
//! | --- | --- |
//! | `page` | `page_view` (`page_location`, `page_title`, `page_referrer`) |
//! | `screen` | `screen_view` |
//! | Products Searched | `search` |
//! | Product List Viewed / Product Clicked | `view_item_list` / `select_item` |
//! | Product Viewed | `view_item` |
//! | Product Added / Product Removed | `add_to_cart` / `remove_from_cart` |
//! | Product Added to Wishlist | `add_to_wishlist` |
//! | Cart Viewed | `view_cart` |
//! | Checkout Started | `begin_checkout` |
//! | Payment Info Entered | `add_payment_info` |
//! | Order Completed / Order Refunded | `purchase` / `refund` (need `order_id`) |
//! | Promotion Viewed / Promotion Clicked | `view_promotion` / `select_promotion` |
//! | Signed Up / Signed In | `sign_up` / `login` |
//! | Product Shared | `share` |
//! | other `track` | its name in snake_case (`Video Played` → `video_played`) |
//! | `identify`, `group`, `alias` | not sent (`user_id` rides on each event) |
//!
//! [event collection limits]: https://support.google.com/analytics/answer/9267744
//!
//! Config fields (of the `SLUICE_DESTINATIONS` entry of this kind; the API secret comes from a secret):
//!
//! ```json
//! { "measurement_id": "G-XXXXXXX", "api_secret": "<secret>",
//!   "validate": false, "eu_endpoint": false }
//! ```

use super::batching;
use super::batching::{Framing, Target};
use super::common::{self, AdSignals, Overrides, Problem};
use super::url;
use super::{Destination, Encoded, HttpAnswer, HttpRequest, Limits, Verdict};
use crate::consent::Purpose;
use crate::{Event, EventType};
use serde::Deserialize;
use serde_json::{Map, Value};

/// GA4 accepts events up to 72 hours old.
pub const MAX_AGE_MS: i64 = 72 * 3_600_000;
/// Events a request.
pub const MAX_EVENTS: usize = 25;
/// Bytes a request body.
pub const MAX_BYTES: usize = 130_000;
const MAX_PARAMS: usize = 25;
const MAX_NAME: usize = 40;
const MAX_VALUE: usize = 100;
const MAX_ITEMS: usize = 200;

/// `SLUICE_DESTINATIONS` entry of kind `ga4`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ga4Config {
    /// The web stream's measurement id (`G-…`).
    pub measurement_id: String,
    /// A Measurement Protocol API secret (a secret supplied by the worker).
    pub api_secret: String,
    /// Send to the validation server (`/debug/mp/collect`): nothing is recorded.
    #[serde(default)]
    pub validate: bool,
    /// Collect through `region1.google-analytics.com` (EU).
    #[serde(default)]
    pub eu_endpoint: bool,
    /// Base URL instead of Google's (a local stub in tests).
    #[serde(default, deserialize_with = "crate::dest::url::opt_base_url")]
    pub endpoint_url: Option<String>,
    /// Event allow / deny lists, renames, property renames ([`Overrides`]).
    #[serde(default)]
    pub overrides: Overrides,
}

/// The GA4 Measurement Protocol destination.
pub struct Ga4;

impl Destination for Ga4 {
    const NAME: &'static str = "Google Analytics 4";
    const ALIASES: &'static [&'static str] = &["Google Analytics 4 Cloud", "GA4"];
    const KIND: &'static str = "ga4";
    const PURPOSES: &'static [Purpose] = &[Purpose::Analytics];
    type Config = Ga4Config;

    fn limits(_: &Ga4Config) -> Limits {
        Limits {
            max_events: MAX_EVENTS,
            max_bytes: MAX_BYTES,
        }
    }

    fn overrides(config: &Ga4Config) -> &Overrides {
        &config.overrides
    }

    fn encode(config: &Ga4Config, events: &[Event], now_ms: i64) -> Encoded {
        let mut encoded = Encoded::default();
        // (request envelope without events) → encoded events, in first-seen order.
        let mut groups: Vec<(Map<String, Value>, Items)> = Vec::new();
        for (i, event) in common::admitted::<Self>(config, events, &mut encoded.skipped) {
            match encode_event(&event, now_ms) {
                Ok((envelope, item)) => match groups.iter_mut().find(|(e, _)| *e == envelope) {
                    Some((_, items)) => items.push((i, batching::to_bytes(&item))),
                    None => groups.push((envelope, vec![(i, batching::to_bytes(&item))])),
                },
                Err(verdict) => encoded.skipped.push((i, verdict)),
            }
        }
        let url = url(config);
        for (envelope, items) in groups {
            let head = batching::to_bytes(&Value::Object(envelope));
            let mut prefix = head[..head.len() - 1].to_vec();
            prefix.extend_from_slice(b",\"events\":[");
            let target = Target {
                url: url.clone(),
                headers: batching::headers(&[("content-type", "application/json")]),
                framing: Framing {
                    prefix: &prefix,
                    separator: b",",
                    suffix: b"]}",
                },
            };
            let (requests, too_large) =
                batching::requests_for(&items, Self::limits(config), &target);
            encoded.requests.extend(requests);
            encoded.skipped.extend(too_large);
        }
        encoded.skipped.sort_by_key(|(i, _)| *i);
        encoded
    }

    fn classify(config: &Ga4Config, request: &HttpRequest, answer: &HttpAnswer) -> Vec<Verdict> {
        if !(200..300).contains(&answer.status) {
            let reason = common::reason(
                "ga4_http_error",
                format_args!(
                    "HTTP {}: {}",
                    answer.status,
                    batching::excerpt(&answer.body)
                ),
            );
            return batching::status_verdicts(answer, reason, request.events.len());
        }
        if !config.validate {
            return batching::for_all(request, Verdict::Delivered);
        }
        validation_verdicts(request, &answer.body)
    }
}

fn url(config: &Ga4Config) -> String {
    let base = match (&config.endpoint_url, config.eu_endpoint) {
        (Some(u), _) => u.trim_end_matches('/').to_owned(),
        (None, true) => "https://region1.google-analytics.com".to_owned(),
        (None, false) => "https://www.google-analytics.com".to_owned(),
    };
    let path = if config.validate {
        "/debug/mp/collect"
    } else {
        "/mp/collect"
    };
    format!(
        "{base}{path}?measurement_id={}&api_secret={}",
        url::percent_encode(&config.measurement_id),
        url::percent_encode(&config.api_secret)
    )
}

/// The validation server's answer, mapped to the events it names.
fn validation_verdicts(request: &HttpRequest, body: &str) -> Vec<Verdict> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Answer {
        #[serde(default)]
        validation_messages: Vec<Message>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Message {
        #[serde(default)]
        field_path: String,
        #[serde(default)]
        description: String,
        #[serde(default)]
        validation_code: String,
    }
    let Ok(answer) = serde_json::from_str::<Answer>(body) else {
        let reason = common::reason("ga4_unreadable_validation", batching::excerpt(body));
        return batching::for_all(
            request,
            Verdict::Retry {
                after_ms: None,
                reason,
            },
        );
    };
    let mut verdicts = batching::for_all(request, Verdict::Delivered);
    for m in answer.validation_messages {
        let reason = common::reason(
            "ga4_invalid",
            format_args!(
                "{} ({}): {}",
                m.validation_code, m.field_path, m.description
            ),
        );
        match event_index(&m.field_path).or_else(|| event_index(&m.description)) {
            Some(i) if i < verdicts.len() => {
                verdicts[i] = Verdict::Permanent { reason };
            }
            _ => verdicts.fill(Verdict::Permanent { reason }),
        }
    }
    verdicts
}

/// `events[3]…` or `… index: [3] …` → 3.
fn event_index(s: &str) -> Option<usize> {
    let start = s
        .find("events[")
        .map(|i| i + 7)
        .or_else(|| s.find("index: [").map(|i| i + 8))?;
    let digits: String = s[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// The request envelope (client, user, consent) and the event for one Segment event.
fn encode_event(event: &Event, now_ms: i64) -> Result<(Map<String, Value>, Value), Verdict> {
    let (name, mapped) = map_event(event)?;
    let time_ms = common::fresh_time_ms(event, now_ms, MAX_AGE_MS).map_err(|p| match p {
        Problem::TooOld { .. } => p.skipped(),
        _ => p.permanent(),
    })?;
    let client_id = client_id(event).ok_or(
        Problem::Missing("a client id (context.cookies._ga, context.ga.clientId or anonymousId)")
            .permanent(),
    )?;
    let session = common::context_text(event, &["ga", "sessionId"])
        .or_else(|| common::context_text(event, &["sessionId"]));
    // GA4 shows an event in Realtime and sessions only with these two; they
    // go first so that the 25-parameter cap never drops them.
    let mut params: Params = vec![("engagement_time_msec".into(), 1.into())];
    if let Some(s) = session {
        params.push(("session_id".into(), Value::String(s)));
    }
    // The messageId, the event id an on-page gtag call can share (`event_id`).
    params.push(("event_id".into(), event.message_id.clone().into()));
    params.extend(mapped);

    let mut envelope = Map::new();
    envelope.insert("client_id".into(), client_id.into());
    if let Some(user) = &event.user_id {
        envelope.insert("user_id".into(), user.clone().into());
    }
    let signals = AdSignals::of(event);
    let state = |granted: bool| if granted { "GRANTED" } else { "DENIED" };
    let mut consent = Map::new();
    consent.insert("ad_user_data".into(), state(signals.ad_user_data).into());
    consent.insert(
        "ad_personalization".into(),
        state(signals.ad_personalization).into(),
    );
    envelope.insert("consent".into(), Value::Object(consent));

    let mut out = Map::new();
    out.insert("name".into(), name.into());
    out.insert("params".into(), Value::Object(limit_params(params)));
    out.insert("timestamp_micros".into(), (time_ms * 1000).into());
    Ok((envelope, Value::Object(out)))
}

/// `_ga` = `GA1.1.1234567890.1700000000` → `1234567890.1700000000`.
fn client_id(event: &Event) -> Option<String> {
    if let Some(id) = common::context_text(event, &["ga", "clientId"]) {
        return Some(id);
    }
    if let Some(cookie) = common::context_text(event, &["cookies", "_ga"]) {
        let parts: Vec<&str> = cookie.split('.').collect();
        if parts.len() >= 4 && parts[0].starts_with("GA") {
            return Some(format!(
                "{}.{}",
                parts[parts.len() - 2],
                parts[parts.len() - 1]
            ));
        }
        return Some(cookie);
    }
    event.anonymous_id.clone()
}

type Params = Vec<(String, Value)>;
/// Encoded events by index, ready for [`batching::pack`].
type Items = Vec<(usize, Vec<u8>)>;

const RECOMMENDED: [(&str, &str); 19] = [
    ("Products Searched", "search"),
    ("Product List Viewed", "view_item_list"),
    ("Product Clicked", "select_item"),
    ("Product Viewed", "view_item"),
    ("Product Added", "add_to_cart"),
    ("Product Removed", "remove_from_cart"),
    ("Product Added to Wishlist", "add_to_wishlist"),
    ("Cart Viewed", "view_cart"),
    ("Checkout Started", "begin_checkout"),
    ("Payment Info Entered", "add_payment_info"),
    ("Order Completed", "purchase"),
    ("Order Refunded", "refund"),
    ("Promotion Viewed", "view_promotion"),
    ("Promotion Clicked", "select_promotion"),
    ("Signed Up", "sign_up"),
    ("Signed In", "login"),
    ("Product Shared", "share"),
    ("Coupon Entered", "coupon_entered"),
    ("Lead Generated", "generate_lead"),
];

/// Properties never sent as custom parameters (personal data).
const PERSONAL: [&str; 14] = [
    "email",
    "phone",
    "name",
    "first_name",
    "firstName",
    "last_name",
    "lastName",
    "address",
    "birthday",
    "ip",
    "username",
    "user_name",
    "password",
    "ssn",
];

const RESERVED_EVENTS: [&str; 12] = [
    "ad_activeview",
    "ad_click",
    "ad_exposure",
    "ad_query",
    "adunit_exposure",
    "app_clear_data",
    "app_remove",
    "error",
    "first_open",
    "first_visit",
    "session_start",
    "user_engagement",
];

fn map_event(event: &Event) -> Result<(String, Params), Verdict> {
    let props = event.properties.as_ref();
    let text = |keys: &[&str]| keys.iter().find_map(|k| common::text_at(props, &[k]));
    let mut p: Params = Vec::new();
    let put = |p: &mut Params, key: &str, v: Option<Value>| {
        if let Some(v) = v {
            p.push((key.to_owned(), v));
        }
    };
    match event.kind {
        EventType::Page => {
            put(
                &mut p,
                "page_location",
                common::page_url(event).map(Value::from),
            );
            let title = common::context_text(event, &["page", "title"])
                .or_else(|| text(&["title"]))
                .or_else(|| event.name.clone());
            put(&mut p, "page_title", title.map(Value::from));
            let referrer =
                common::context_text(event, &["page", "referrer"]).or_else(|| text(&["referrer"]));
            put(&mut p, "page_referrer", referrer.map(Value::from));
            Ok(("page_view".into(), p))
        }
        EventType::Screen => {
            put(&mut p, "screen_name", event.name.clone().map(Value::from));
            Ok(("screen_view".into(), p))
        }
        EventType::Track => {
            let segment = event
                .event
                .as_deref()
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .ok_or(Problem::Missing("event").permanent())?;
            let recommended = RECOMMENDED
                .iter()
                .find(|(s, _)| s.eq_ignore_ascii_case(segment))
                .map(|(_, g)| *g);
            let Some(name) = recommended else {
                let name = param_name(segment).ok_or(
                    Problem::NotMapped(format!("`{segment}` is no valid GA4 event name"))
                        .permanent(),
                )?;
                if RESERVED_EVENTS.contains(&name.as_str()) {
                    return Err(
                        Problem::NotMapped(format!("`{name}` is a name GA4 reserves")).permanent(),
                    );
                }
                if let Some(props) = props {
                    for (k, v) in props {
                        if PERSONAL.contains(&k.as_str()) {
                            continue;
                        }
                        let value = match v {
                            Value::String(_) | Value::Number(_) => v.clone(),
                            Value::Bool(b) => Value::from(b.to_string()),
                            _ => continue,
                        };
                        if let Some(k) = param_name(k) {
                            p.push((k, value));
                        }
                    }
                }
                return Ok((name, p));
            };
            let is_order = matches!(name, "purchase" | "refund");
            let order = common::order_id(event);
            if is_order && order.is_none() {
                return Err(Problem::Missing("properties.order_id for purchase/refund").permanent());
            }
            put(&mut p, "transaction_id", order.map(Value::from));
            put(&mut p, "currency", common::currency(event).map(Value::from));
            put(
                &mut p,
                "value",
                common::order_value(event).map(batching::number),
            );
            for (key, segment_keys) in [
                ("coupon", &["coupon"][..]),
                ("affiliation", &["affiliation"]),
                ("search_term", &["query"]),
                ("item_list_id", &["list_id"]),
                ("item_list_name", &["category"]),
                ("payment_type", &["payment_method"]),
                ("promotion_id", &["promotion_id"]),
                ("promotion_name", &["name"]),
                ("creative_name", &["creative"]),
                ("creative_slot", &["position"]),
                ("method", &["method", "type"]),
            ] {
                let wanted = match key {
                    "search_term" => name == "search",
                    "item_list_id" | "item_list_name" => name == "view_item_list",
                    "payment_type" => name == "add_payment_info",
                    "promotion_id" | "promotion_name" | "creative_name" | "creative_slot" => {
                        name.ends_with("_promotion")
                    }
                    "method" => matches!(name, "sign_up" | "login" | "share"),
                    _ => true,
                };
                if wanted {
                    put(&mut p, key, text(segment_keys).map(Value::from));
                }
            }
            if is_order {
                for key in ["tax", "shipping"] {
                    put(
                        &mut p,
                        key,
                        props
                            .and_then(|o| o.get(key))
                            .and_then(common::as_number)
                            .map(batching::number),
                    );
                }
            }
            let items = items(event);
            if !items.is_empty() {
                p.push(("items".into(), Value::Array(items)));
            }
            Ok((name.to_owned(), p))
        }
        other => Err(Problem::NotMapped(format!(
            "a {} call has no GA4 event (user_id rides on each event)",
            other.as_str()
        ))
        .skipped()),
    }
}

fn items(event: &Event) -> Vec<Value> {
    common::products(event)
        .into_iter()
        .take(MAX_ITEMS)
        .map(|p| {
            let mut o = Map::new();
            let mut text = |k: &str, v: Option<String>| {
                if let Some(v) = v {
                    o.insert(k.into(), batching::truncate_chars(&v, MAX_VALUE).into());
                }
            };
            text("item_id", p.id);
            text("item_name", p.name);
            text("item_brand", p.brand);
            text("item_category", p.category);
            text("item_variant", p.variant);
            text("coupon", p.coupon);
            for (k, v) in [
                ("price", p.price),
                ("quantity", p.quantity),
                ("index", p.position),
            ] {
                if let Some(v) = v {
                    o.insert(k.into(), batching::number(v));
                }
            }
            Value::Object(o)
        })
        .collect()
}

/// A GA4 name: snake_case letters, digits and `_`, starting with a letter, at
/// most 40 characters, not under a reserved prefix.
fn param_name(raw: &str) -> Option<String> {
    let mut out = String::new();
    let mut prev_lower = false;
    for c in raw.trim().chars() {
        if c.is_ascii_alphanumeric() {
            if c.is_ascii_uppercase() && prev_lower {
                out.push('_');
            }
            prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
            out.push(c.to_ascii_lowercase());
        } else {
            prev_lower = false;
            if !out.ends_with('_') {
                out.push('_');
            }
        }
    }
    let out = out.trim_matches('_');
    let starts_with_letter = out.chars().next().is_some_and(|c| c.is_ascii_alphabetic());
    if !starts_with_letter
        || ["google_", "ga_", "firebase_"]
            .iter()
            .any(|r| out.starts_with(r))
    {
        return None;
    }
    Some(
        batching::truncate_chars(out, MAX_NAME)
            .trim_end_matches('_')
            .to_owned(),
    )
}

/// At most 25 parameters, the first given first; string values truncated to GA4's lengths.
fn limit_params(params: Params) -> Map<String, Value> {
    let mut out = Map::new();
    for (k, v) in params {
        if out.len() >= MAX_PARAMS || out.contains_key(&k) {
            continue;
        }
        let max = match k.as_str() {
            "page_location" => 1000,
            "page_referrer" => 420,
            "page_title" => 300,
            _ => MAX_VALUE,
        };
        let v = match v {
            Value::String(s) => Value::from(batching::truncate_chars(&s, max)),
            other => other,
        };
        out.insert(k, v);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_ga4_rules() {
        assert_eq!(param_name("Video Played").as_deref(), Some("video_played"));
        assert_eq!(param_name("videoPlayed").as_deref(), Some("video_played"));
        assert_eq!(param_name("plan-type!").as_deref(), Some("plan_type"));
        assert_eq!(param_name("1st visit"), None);
        assert_eq!(param_name("ga_session"), None);
        assert_eq!(param_name(&"x".repeat(50)).map(|s| s.len()), Some(40));
    }

    #[test]
    fn event_indices_are_read_from_validation_messages() {
        assert_eq!(event_index("events[3].params"), Some(3));
        assert_eq!(
            event_index("Event at index: [12] has invalid name [_x]."),
            Some(12)
        );
        assert_eq!(event_index("client_id"), None);
    }
}
