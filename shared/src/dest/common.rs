//! What every vendor destination reads from an event, and the one per-event
//! pre-filter: the event's `integrations` object and the destination's
//! [`Overrides`], applied by [`admitted`] before any vendor mapping; event
//! time and age; context, traits, click and browser ids; the Segment
//! e-commerce fields; the vendor consent signals; ids derived from the
//! messageId. [`Problem`] names why an event is not sent.
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

use super::{Destination, Verdict};
use crate::consent::{allows, Consent, Purpose, Regime, State};
use crate::{Event, EventType, Object, Timestamp};
use serde::Deserialize;
use serde_json::Value;
use std::borrow::Cow;
use std::collections::BTreeMap;
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
    /// The destination's `overrides.deny` lists the event (by name or call type).
    Denied(String),
    /// The destination's `overrides.allow` is set and does not list the event.
    NotAllowed(String),
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
            Problem::Denied(_) => "event_denied",
            Problem::NotAllowed(_) => "event_not_allowed",
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
                write!(f, "{name} is disabled for this event")
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
            Problem::Denied(name) => write!(f, "{name:?} is on this destination's deny list"),
            Problem::NotAllowed(name) => {
                write!(f, "{name:?} is not on this destination's allow list")
            }
        }
    }
}

/// A verdict reason: `"<code>: <message>"`, so the code survives into dead letters.
pub fn reason(code: &str, message: impl fmt::Display) -> String {
    format!("{code}: {message}")
}

/// Does the event's `integrations` object let it go to the destination called
/// any of `names` (its `NAME`, then its aliases)? Segment's rule: a key for
/// the destination decides (`false` off; `true` or a settings object on);
/// otherwise `All: false` turns it off; otherwise on. A `null` counts as no
/// key. Keys are matched exactly, then ignoring ASCII case.
pub fn integration_enabled(event: &Event, names: &[&str]) -> bool {
    let Some(integrations) = event.integrations.as_ref() else {
        return true;
    };
    let own = names.iter().find_map(|n| integrations.get(*n)).or_else(|| {
        integrations
            .iter()
            .find(|(k, _)| names.iter().any(|n| k.eq_ignore_ascii_case(n)))
            .map(|(_, v)| v)
    });
    match own {
        Some(Value::Bool(on)) => *on,
        Some(Value::Null) | None => !matches!(integrations.get("All"), Some(Value::Bool(false))),
        Some(_) => true,
    }
}

/// Per-destination overrides of the default mapping, applied before it:
/// `{"allow": [...], "deny": [...], "rename": {"Order Completed": "purchase"},
/// "properties": {"revenue": "amount"}}` (the `overrides` field of every
/// destination's config).
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

/// No overrides: [`Destination::overrides`] of a destination without the field.
pub static NO_OVERRIDES: Overrides = Overrides {
    allow: Vec::new(),
    deny: Vec::new(),
    rename: BTreeMap::new(),
    properties: BTreeMap::new(),
};

impl Overrides {
    /// Whether nothing is overridden.
    pub fn is_empty(&self) -> bool {
        self.allow.is_empty()
            && self.deny.is_empty()
            && self.rename.is_empty()
            && self.properties.is_empty()
    }

    /// The event as this destination should see it, or why it is not sent.
    pub fn apply<'e>(&self, event: &'e Event) -> Result<Cow<'e, Event>, Problem> {
        if self.is_empty() {
            return Ok(Cow::Borrowed(event));
        }
        let name = match event.kind {
            EventType::Track => event.event.as_deref().unwrap_or(""),
            kind => kind.as_str(),
        };
        let listed = |list: &[String]| list.iter().any(|n| n == name);
        if listed(&self.deny) {
            return Err(Problem::Denied(name.to_owned()));
        }
        if !self.allow.is_empty() && !listed(&self.allow) {
            return Err(Problem::NotAllowed(name.to_owned()));
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

/// The one per-event pre-filter every destination's `encode` starts with, in
/// this order: the event's `integrations` object (by `D::NAME`, then
/// `D::ALIASES`), then the destination's [`Overrides`]. Returns the events
/// to map (by index, as overridden); the others are pushed to `skipped`.
pub fn admitted<'e, D: Destination>(
    config: &D::Config,
    events: &'e [Event],
    skipped: &mut Vec<(usize, Verdict)>,
) -> Vec<(usize, Cow<'e, Event>)> {
    let names: Vec<&str> = core::iter::once(D::NAME)
        .chain(D::ALIASES.iter().copied())
        .collect();
    let mut out = Vec::with_capacity(events.len());
    for (i, event) in events.iter().enumerate() {
        let admitted = if integration_enabled(event, &names) {
            D::overrides(config).apply(event)
        } else {
            Err(Problem::IntegrationDisabled { name: D::NAME })
        };
        match admitted {
            Ok(event) => out.push((i, event)),
            Err(problem) => skipped.push((i, problem.skipped())),
        }
    }
    out
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

/// [`event_time_ms`], or `now_ms` when the event carries no valid time.
pub fn time_or_now(event: &Event, now_ms: i64) -> i64 {
    event_time_ms(event).unwrap_or(now_ms)
}

/// The event's time as `YYYY-MM-DDTHH:MM:SS.mmmZ` ([`time_or_now`]).
pub fn event_time_rfc3339(event: &Event, now_ms: i64) -> String {
    Timestamp(time_or_now(event, now_ms)).to_rfc3339()
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

/// The value at `path` inside `context` (`&["page", "url"]`).
pub fn context_at<'a>(event: &'a Event, path: &[&str]) -> Option<&'a Value> {
    at(event.context.as_ref(), path)
}

/// `context.<path>` as text (trimmed; a number written as text).
pub fn context_text(event: &Event, path: &[&str]) -> Option<String> {
    as_text(context_at(event, path)?)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EventType;
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

    fn with_integrations(v: Value) -> Event {
        let mut e = Event::new(EventType::Track, "m1");
        e.integrations = v.as_object().cloned();
        e
    }

    #[test]
    fn integrations_follow_segments_rule() {
        let on = |v: Value| integration_enabled(&with_integrations(v), &["Mixpanel"]);
        assert!(integration_enabled(
            &Event::new(EventType::Track, "m"),
            &["Mixpanel"]
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
        assert!(
            matches!(o.apply(&t), Err(p) if p.code() == "event_denied" && p.to_string().contains("deny"))
        );
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
            matches!(allow.apply(&t), Err(p) if p.code() == "event_not_allowed" && p.to_string().contains("allow"))
        );
        let none = Overrides::default();
        assert!(matches!(none.apply(&t), Ok(Cow::Borrowed(_))));
        assert!(serde_json::from_value::<Overrides>(json!({"alow": []})).is_err());
    }

    #[test]
    fn time_falls_back_in_order() {
        let mut e = Event::new(EventType::Track, "m");
        assert_eq!(time_or_now(&e, 7), 7);
        e.received_at = Some("2024-05-01T10:05:00.000Z".into());
        assert_eq!(time_or_now(&e, 7), 1_714_557_900_000);
        e.original_timestamp = Some("2024-05-01T10:04:00.000Z".into());
        assert_eq!(time_or_now(&e, 7), 1_714_557_840_000);
        e.timestamp = Some("not a time".into());
        assert_eq!(time_or_now(&e, 7), 1_714_557_840_000, "bad time skipped");
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
}
