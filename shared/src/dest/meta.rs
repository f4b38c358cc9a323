//! Meta Conversions API: `POST https://graph.facebook.com/{version}/{pixel_id}/events`.
//!
//! - **Auth**: the access token goes in the query string
//!   (`/events?access_token={TOKEN}`), the place Meta's "Using the API" page
//!   documents; the JSON body carries `data` and `test_event_code`. Log or
//!   store URLs only through [`url::redact_url`].
//! - **Batching**: at most 1,000 events a request (Meta's limit), 2 MB a body (ours).
//! - **Dedup**: `event_id` = the Segment `messageId`, the same id the SDK exposes
//!   to an on-page pixel, so Meta keeps one of the browser and server events.
//! - **Age**: Meta rejects a *whole request* if any event is more than 7 days
//!   old, so such events are never sent: `Skipped` with `event_too_old`.
//! - **Website events** need `client_user_agent` and `event_source_url`
//!   (`context.userAgent`, `context.page.url`): without them an event is
//!   permanent (it would fail the request it is in).
//! - **user_data**: `em ph fn ln ge db ct st zp country external_id` normalised
//!   and SHA-256 hashed by [`identifiers`](super::identifiers) (Meta's rules);
//!   `client_ip_address`, `client_user_agent`, `fbp`, `fbc` in clear. `fbc`
//!   is built as `fb.1.{event ms}.{fbclid}` when only the click id is known.
//! - **custom_data**: only the mapped e-commerce fields; other properties are
//!   not forwarded (they may hold personal data in clear).
//! - **Limited data use**: `data_processing_options: ["LDU"]` with country and
//!   state `0` (Meta geolocates) when configured `always`, or (`from_consent`,
//!   the default) when the visitor opted out of sale/sharing or sent GPC.
//!
//! | Segment | Meta |
//! | --- | --- |
//! | `page` | `PageView` |
//! | Product Viewed | `ViewContent` |
//! | Product Added | `AddToCart` |
//! | Product Added to Wishlist | `AddToWishlist` |
//! | Checkout Started | `InitiateCheckout` |
//! | Payment Info Entered | `AddPaymentInfo` |
//! | Order Completed | `Purchase` (needs `value`/`revenue`/`total` and `currency`) |
//! | Products Searched | `Search` (`search_string` from `query`) |
//! | Signed Up | `CompleteRegistration` |
//! | Lead Generated, Form Submitted | `Lead` |
//! | Subscription Started / Trial Started | `Subscribe` / `StartTrial` |
//! | other `track` | a custom event of the same name |
//! | `identify`, `screen`, `group`, `alias` | not sent (`event_not_mapped`) |
//!
//! Errors ([Graph API error handling]): codes 1, 2 (temporary), 4, 17, 32,
//! 341, 613, 80004 (throttling), 368 (temporarily blocked) and any error with
//! `is_transient: true` are retried, after `Retry-After` when given; 190 and
//! 102 (token), 10 and 200–299 (permissions) are permanent. 100 (invalid
//! parameter) fails the whole request without naming the event: a single
//! event is permanent, several are retried as `batch_rejected` (send them one
//! a request; see [`batching::rejected_batch`]). Other errors follow the HTTP status.
//!
//! [Graph API error handling]: https://developers.facebook.com/docs/graph-api/guides/error-handling
//!
//! Config fields (of the `SLUICE_DESTINATIONS` entry of this kind; the token comes from a secret):
//!
//! ```json
//! { "pixel_id": "1234567890", "access_token": "<secret>",
//!   "api_version": "v24.0", "test_event_code": "TEST12345",
//!   "limited_data_use": "from_consent", "default_calling_code": "1" }
//! ```

use super::batching;
use super::batching::{Framing, Target};
use super::common::{self, AdSignals, Overrides, Problem};
use super::identifiers::{hashed, Kind, Rules, Vendor};
use super::url;
use super::{Destination, Encoded, HttpAnswer, HttpRequest, Limits, Verdict};
use crate::consent::Purpose;
use crate::{Event, EventType};
use serde::Deserialize;
use serde_json::{json, Map, Value};

/// Seven days: Meta refuses events older than that.
pub const MAX_AGE_MS: i64 = 7 * crate::time::DAY_MS;

/// Meta's limit of events a request.
pub const MAX_EVENTS: usize = 1_000;

/// `SLUICE_DESTINATIONS` entry of kind `meta_capi`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetaConfig {
    /// The dataset (pixel) id.
    pub pixel_id: String,
    /// A Conversions API access token (a secret supplied by the worker).
    pub access_token: String,
    /// Graph API version, like `v24.0`.
    #[serde(default = "default_version")]
    pub api_version: String,
    /// Sent as `test_event_code`: the events show in Events Manager's test tool only.
    #[serde(default)]
    pub test_event_code: Option<String>,
    #[serde(default)]
    pub limited_data_use: LimitedDataUse,
    /// Country calling code for phone numbers written without one (`"1"`).
    #[serde(default)]
    pub default_calling_code: Option<String>,
    /// Base URL instead of `https://graph.facebook.com` (a local stub in tests).
    #[serde(default, deserialize_with = "crate::dest::url::opt_base_url")]
    pub endpoint_url: Option<String>,
    /// Event allow / deny lists, renames, property renames ([`Overrides`]).
    #[serde(default)]
    pub overrides: Overrides,
}

fn default_version() -> String {
    "v24.0".to_owned()
}

/// When to ask for limited data use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LimitedDataUse {
    /// When the event's consent denies sale/sharing or carries GPC.
    #[default]
    FromConsent,
    Always,
    Never,
}

/// Why Meta refused a request.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MetaError {
    /// Throttled (codes 4, 17, 32, 341, 613, 80004).
    RateLimited { code: i64, message: String },
    /// Temporary trouble at Meta (1, 2, 368, `is_transient`).
    Temporary { code: i64, message: String },
    /// The access token is invalid or expired (190, 102).
    InvalidToken { message: String },
    /// The token lacks a permission (10, 200–299).
    Permission { code: i64, message: String },
    /// A parameter of the request is invalid (100).
    InvalidParameter { message: String },
    /// Another error, by HTTP status.
    Other {
        status: u16,
        code: Option<i64>,
        message: String,
    },
}

impl MetaError {
    pub fn code(&self) -> &'static str {
        match self {
            MetaError::RateLimited { .. } => "meta_rate_limited",
            MetaError::Temporary { .. } => "meta_temporary",
            MetaError::InvalidToken { .. } => "meta_invalid_token",
            MetaError::Permission { .. } => "meta_permission",
            MetaError::InvalidParameter { .. } => "meta_invalid_parameter",
            MetaError::Other { .. } => "meta_error",
        }
    }

    pub fn is_retryable(&self) -> bool {
        match self {
            MetaError::RateLimited { .. } | MetaError::Temporary { .. } => true,
            MetaError::Other { status, .. } => matches!(status, 408 | 429 | 500..=599),
            _ => false,
        }
    }

    /// From an error answer's status and body.
    pub fn from_answer(status: u16, body: &str) -> MetaError {
        #[derive(Deserialize)]
        struct Envelope {
            error: Body,
        }
        #[derive(Deserialize)]
        struct Body {
            #[serde(default)]
            message: String,
            #[serde(default)]
            code: Option<i64>,
            #[serde(default)]
            error_subcode: Option<i64>,
            #[serde(default)]
            error_user_msg: Option<String>,
            #[serde(default)]
            is_transient: bool,
        }
        let Ok(Envelope { error }) = serde_json::from_str::<Envelope>(body) else {
            return MetaError::Other {
                status,
                code: None,
                message: batching::excerpt(body).to_owned(),
            };
        };
        let mut message = error.message;
        if let Some(sub) = error.error_subcode {
            message.push_str(&format!(" (subcode {sub})"));
        }
        if let Some(user) = error.error_user_msg.filter(|m| !m.is_empty()) {
            message.push_str(": ");
            message.push_str(&user);
        }
        match error.code {
            Some(code @ (4 | 17 | 32 | 341 | 613 | 80004)) => {
                MetaError::RateLimited { code, message }
            }
            Some(code @ (1 | 2 | 368)) => MetaError::Temporary { code, message },
            Some(code) if error.is_transient => MetaError::Temporary { code, message },
            Some(190 | 102) => MetaError::InvalidToken { message },
            Some(code @ (10 | 200..=299)) => MetaError::Permission { code, message },
            Some(100) => MetaError::InvalidParameter { message },
            code => MetaError::Other {
                status,
                code,
                message,
            },
        }
    }
}

impl std::fmt::Display for MetaError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MetaError::RateLimited { code, message }
            | MetaError::Temporary { code, message }
            | MetaError::Permission { code, message } => write!(f, "Meta error {code}: {message}"),
            MetaError::InvalidToken { message } => write!(f, "Meta error 190: {message}"),
            MetaError::InvalidParameter { message } => write!(f, "Meta error 100: {message}"),
            MetaError::Other {
                status,
                code,
                message,
            } => match code {
                Some(code) => write!(f, "Meta error {code} (HTTP {status}): {message}"),
                None => write!(f, "HTTP {status}: {message}"),
            },
        }
    }
}

/// The Meta Conversions API destination.
pub struct Meta;

impl Destination for Meta {
    const NAME: &'static str = "Meta Conversions API";
    const ALIASES: &'static [&'static str] = &["Facebook Conversions API"];
    const KIND: &'static str = "meta_capi";
    const PURPOSES: &'static [Purpose] = &[Purpose::Marketing];
    type Config = MetaConfig;

    fn limits(_: &MetaConfig) -> Limits {
        Limits {
            max_events: MAX_EVENTS,
            max_bytes: 2_000_000,
        }
    }

    fn overrides(config: &MetaConfig) -> &Overrides {
        &config.overrides
    }

    fn encode(config: &MetaConfig, events: &[Event], now_ms: i64) -> Encoded {
        let tail = match &config.test_event_code {
            Some(code) => {
                let code = batching::to_bytes(&Value::from(code.as_str()));
                [&b"],\"test_event_code\":"[..], &code, b"}"].concat()
            }
            None => b"]}".to_vec(),
        };
        let base = config
            .endpoint_url
            .as_deref()
            .unwrap_or("https://graph.facebook.com")
            .trim_end_matches('/');
        let url = format!(
            "{base}/{}/{}/events?access_token={}",
            config.api_version,
            url::percent_encode(&config.pixel_id),
            url::percent_encode(&config.access_token)
        );
        let target = Target {
            url,
            headers: batching::headers(&[("content-type", "application/json")]),
            framing: Framing {
                prefix: b"{\"data\":[",
                separator: b",",
                suffix: &tail,
            },
        };
        batching::encode_each::<Self>(config, events, &target, |event| {
            encode_event(config, event, now_ms)
        })
    }

    fn classify(_: &MetaConfig, request: &HttpRequest, answer: &HttpAnswer) -> Vec<Verdict> {
        if (200..300).contains(&answer.status) {
            return batching::for_all(request, Verdict::Delivered);
        }
        let error = MetaError::from_answer(answer.status, &answer.body);
        let reason = common::reason(error.code(), &error);
        if let MetaError::InvalidParameter { .. } = error {
            return batching::rejected_batch(request, reason);
        }
        let verdict = batching::retry_if(error.is_retryable(), answer, reason);
        batching::for_all(request, verdict)
    }
}

/// Segment track names → Meta standard events.
const STANDARD_EVENTS: [(&str, &str); 13] = [
    ("Product Viewed", "ViewContent"),
    ("Product Added", "AddToCart"),
    ("Product Added to Wishlist", "AddToWishlist"),
    ("Checkout Started", "InitiateCheckout"),
    ("Payment Info Entered", "AddPaymentInfo"),
    ("Order Completed", "Purchase"),
    ("Products Searched", "Search"),
    ("Signed Up", "CompleteRegistration"),
    ("Lead Generated", "Lead"),
    ("Form Submitted", "Lead"),
    ("Subscription Started", "Subscribe"),
    ("Trial Started", "StartTrial"),
    ("Contact Submitted", "Contact"),
];

fn event_name(event: &Event) -> Result<String, Problem> {
    match event.kind {
        EventType::Page => Ok("PageView".to_owned()),
        EventType::Track => {
            let name = event
                .event
                .as_deref()
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .ok_or(Problem::Missing("event"))?;
            Ok(STANDARD_EVENTS
                .iter()
                .find(|(segment, _)| segment.eq_ignore_ascii_case(name))
                .map_or(name, |(_, meta)| meta)
                .to_owned())
        }
        other => Err(Problem::NotMapped(format!(
            "a {} call has no Meta event",
            other.as_str()
        ))),
    }
}

fn encode_event(config: &MetaConfig, event: &Event, now_ms: i64) -> Result<Value, Verdict> {
    let name = event_name(event).map_err(|p| match p {
        Problem::NotMapped(_) => p.skipped(),
        _ => p.permanent(),
    })?;
    let time_ms = common::fresh_time_ms(event, now_ms, MAX_AGE_MS).map_err(|p| match p {
        Problem::TooOld { .. } => p.skipped(),
        _ => p.permanent(),
    })?;
    let user_agent = common::context_text(event, &["userAgent"])
        .ok_or(Problem::Missing("context.userAgent").permanent())?;
    let url = common::page_url(event).ok_or(Problem::Missing("context.page.url").permanent())?;
    let custom = custom_data(event, &name).map_err(|p| p.permanent())?;

    let mut out = Map::new();
    out.insert("event_name".into(), name.into());
    out.insert("event_time".into(), (time_ms.div_euclid(1000)).into());
    out.insert("event_id".into(), event.message_id.clone().into());
    out.insert("action_source".into(), "website".into());
    out.insert("event_source_url".into(), url.into());
    out.insert(
        "user_data".into(),
        Value::Object(user_data(config, event, user_agent, time_ms)),
    );
    if !custom.is_empty() {
        out.insert("custom_data".into(), Value::Object(custom));
    }
    let ldu = match config.limited_data_use {
        LimitedDataUse::Always => true,
        LimitedDataUse::Never => false,
        LimitedDataUse::FromConsent => AdSignals::of(event).limited_data_use,
    };
    if ldu {
        out.insert("data_processing_options".into(), json!(["LDU"]));
        out.insert("data_processing_options_country".into(), 0.into());
        out.insert("data_processing_options_state".into(), 0.into());
    }
    Ok(Value::Object(out))
}

fn user_data(
    config: &MetaConfig,
    event: &Event,
    user_agent: String,
    time_ms: i64,
) -> Map<String, Value> {
    let rules = Rules {
        vendor: Vendor::Meta,
        default_calling_code: config.default_calling_code.as_deref(),
    };
    let mut u = Map::new();
    let mut put = |key: &str, kind: Kind, raw: Option<String>| {
        if let Some(h) = raw.and_then(|r| hashed(kind, &r, rules).ok()) {
            u.insert(key.into(), h.into());
        }
    };
    let (first, last) = common::names(event);
    put("em", Kind::Email, common::user_trait(event, &["email"]));
    put("ph", Kind::Phone, common::user_trait(event, &["phone"]));
    put("fn", Kind::FirstName, first);
    put("ln", Kind::LastName, last);
    put("ge", Kind::Gender, common::user_trait(event, &["gender"]));
    put(
        "db",
        Kind::DateOfBirth,
        common::user_trait(event, &["birthday", "dateOfBirth", "date_of_birth"]),
    );
    put("ct", Kind::City, common::address_part(event, &["city"]));
    put("st", Kind::State, common::address_part(event, &["state"]));
    put(
        "zp",
        Kind::Zip,
        common::address_part(event, &["postalCode", "postal_code", "zip"]),
    );
    put(
        "country",
        Kind::Country,
        common::address_part(event, &["country"]),
    );
    let ids: Vec<Value> = [event.user_id.as_deref(), event.anonymous_id.as_deref()]
        .into_iter()
        .flatten()
        .filter_map(|id| hashed(Kind::ExternalId, id, rules).ok())
        .map(Value::from)
        .collect();
    if !ids.is_empty() {
        u.insert("external_id".into(), Value::Array(ids));
    }
    if let Some(ip) = common::context_text(event, &["ip"]) {
        u.insert("client_ip_address".into(), ip.into());
    }
    u.insert("client_user_agent".into(), user_agent.into());
    if let Some(fbp) = common::browser_id(event, "fbp", "_fbp") {
        u.insert("fbp".into(), fbp.into());
    }
    let fbc = common::browser_id(event, "fbc", "_fbc")
        .or_else(|| common::click_id(event, "fbclid").map(|id| format!("fb.1.{time_ms}.{id}")));
    if let Some(fbc) = fbc {
        u.insert("fbc".into(), fbc.into());
    }
    u
}

fn custom_data(event: &Event, name: &str) -> Result<Map<String, Value>, Problem> {
    let mut c = Map::new();
    if event.kind != EventType::Track {
        return Ok(c);
    }
    let products = common::products(event);
    let value = common::order_value(event);
    let currency = common::currency(event);
    if name == "Purchase" {
        if value.is_none() {
            return Err(Problem::Missing(
                "properties.value, revenue or total for Purchase",
            ));
        }
        if currency.is_none() {
            return Err(Problem::Missing("properties.currency for Purchase"));
        }
    }
    if let Some(v) = value {
        c.insert("value".into(), batching::number(v));
    }
    if let Some(cur) = currency {
        c.insert("currency".into(), cur.into());
    }
    if !products.is_empty() {
        let ids: Vec<Value> = products
            .iter()
            .filter_map(|p| p.id.clone().map(Value::from))
            .collect();
        let contents: Vec<Value> = products
            .iter()
            .filter_map(|p| {
                let mut o = Map::new();
                o.insert("id".into(), p.id.clone()?.into());
                o.insert(
                    "quantity".into(),
                    batching::number(p.quantity.unwrap_or(1.0)),
                );
                if let Some(price) = p.price {
                    o.insert("item_price".into(), batching::number(price));
                }
                Some(Value::Object(o))
            })
            .collect();
        c.insert("content_ids".into(), Value::Array(ids));
        c.insert("contents".into(), Value::Array(contents));
        c.insert("content_type".into(), "product".into());
        let items: f64 = products.iter().map(|p| p.quantity.unwrap_or(1.0)).sum();
        if matches!(name, "Purchase" | "InitiateCheckout") {
            c.insert("num_items".into(), batching::number(items));
        }
        if products.len() == 1 {
            if let Some(n) = &products[0].name {
                c.insert("content_name".into(), n.clone().into());
            }
            if let Some(cat) = &products[0].category {
                c.insert("content_category".into(), cat.clone().into());
            }
        }
    }
    if let Some(order) = common::order_id(event) {
        c.insert("order_id".into(), order.into());
    }
    if let Some(q) = common::text_at(event.properties.as_ref(), &["query"]) {
        c.insert("search_string".into(), q.into());
    }
    Ok(c)
}
