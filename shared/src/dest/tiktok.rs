//! TikTok Events API (web): `POST https://business-api.tiktok.com/open_api/v1.3/event/track/`.
//!
//! - **Auth**: the `Access-Token` header.
//! - **Body**: `{"event_source":"web","event_source_id":<pixel code>,"data":[…]}`
//!   (+ `test_event_code`), at most 1,000 events and 2 MB (ours) a request.
//! - **Dedup**: `event_id` = the Segment `messageId` (the id the SDK exposes
//!   to the on-page pixel).
//! - **user**: `email`, `phone` (E.164 with `+`) and `external_id` (the
//!   userId, else the anonymousId) normalised and SHA-256 hashed; `ttclid` (landing URL),
//!   `ttp` (the `_ttp` cookie), `ip` and `user_agent` in clear.
//! - **Limited data use**: `limited_data_use: true` when configured `always`,
//!   or (`from_consent`) when the visitor opted out of sale/sharing or sent GPC.
//! - **properties**: only the mapped e-commerce fields (`contents`,
//!   `content_type`, `currency`, `value`, `query`, `order_id`).
//! - **Answers**: TikTok answers HTTP 200 with `{"code":0,"message":"OK"}`
//!   on success and a non-zero `code` otherwise, for the whole request:
//!   40100 (rate limit) and 5xxxx (TikTok's internal errors) retry; 40002
//!   (invalid parameters, whole request) is permanent for one event and
//!   `batch_rejected` for several (send them one a request); other codes
//!   (40001 permission, 40105 token, …) are permanent.
//!   HTTP 429/5xx retry after `Retry-After`.
//!
//! | Segment | TikTok |
//! | --- | --- |
//! | `page` | `Pageview` |
//! | Product Viewed | `ViewContent` |
//! | Product Added | `AddToCart` |
//! | Product Added to Wishlist | `AddToWishlist` |
//! | Checkout Started | `InitiateCheckout` |
//! | Payment Info Entered | `AddPaymentInfo` |
//! | Order Completed | `CompletePayment` |
//! | Order Placed | `PlaceAnOrder` |
//! | Products Searched | `Search` |
//! | Signed Up | `CompleteRegistration` |
//! | Form Submitted / Lead Generated | `SubmitForm` |
//! | Subscription Started | `Subscribe` |
//! | other `track` | a custom event of the same name |
//! | `identify`, `screen`, `group`, `alias` | not sent |
//!
//! Config fields (of the `SLUICE_DESTINATIONS` entry of this kind; the token comes from a secret):
//!
//! ```json
//! { "pixel_code": "CABCDEF1234567890", "access_token": "<secret>",
//!   "test_event_code": "TEST999", "limited_data_use": "from_consent", "default_calling_code": "44" }
//! ```

use super::batching;
use super::batching::{Framing, Target};
use super::common::{self, AdSignals, Overrides, Problem};
use super::identifiers::{hashed, Kind, Rules, Vendor};
use super::meta::LimitedDataUse;
use super::{Destination, Encoded, HttpAnswer, HttpRequest, Limits, Verdict};
use crate::consent::Purpose;
use crate::{Event, EventType};
use serde::Deserialize;
use serde_json::{Map, Value};

/// Events a request.
pub const MAX_EVENTS: usize = 1_000;

/// `SLUICE_DESTINATIONS` entry of kind `tiktok`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TikTokConfig {
    /// The pixel code (`event_source_id`).
    pub pixel_code: String,
    /// An Events API access token (a secret).
    pub access_token: String,
    #[serde(default)]
    pub test_event_code: Option<String>,
    #[serde(default)]
    pub limited_data_use: LimitedDataUse,
    /// Country calling code for phone numbers written without one (`"1"`).
    #[serde(default)]
    pub default_calling_code: Option<String>,
    /// Base URL instead of `https://business-api.tiktok.com` (a local stub in tests).
    #[serde(default, deserialize_with = "crate::dest::url::opt_base_url")]
    pub endpoint_url: Option<String>,
    /// Event allow / deny lists, renames, property renames ([`Overrides`]).
    #[serde(default)]
    pub overrides: Overrides,
}

/// Why TikTok refused a request.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TikTokError {
    /// `code` 40100.
    RateLimited(String),
    /// `code` 5xxxx or HTTP 5xx.
    Server { code: i64, message: String },
    /// Any other non-zero `code`.
    Rejected { code: i64, message: String },
    /// Not TikTok's JSON.
    Unreadable { status: u16, body: String },
}

impl TikTokError {
    pub fn code(&self) -> &'static str {
        match self {
            TikTokError::RateLimited(_) => "tiktok_rate_limited",
            TikTokError::Server { .. } => "tiktok_server_error",
            TikTokError::Rejected { .. } => "tiktok_rejected",
            TikTokError::Unreadable { .. } => "tiktok_unreadable_answer",
        }
    }
}

impl std::fmt::Display for TikTokError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TikTokError::RateLimited(m) => write!(f, "TikTok code 40100: {m}"),
            TikTokError::Server { code, message } | TikTokError::Rejected { code, message } => {
                write!(f, "TikTok code {code}: {message}")
            }
            TikTokError::Unreadable { status, body } => write!(f, "HTTP {status}: {body}"),
        }
    }
}

/// The TikTok Events API destination.
pub struct TikTok;

impl Destination for TikTok {
    const NAME: &'static str = "TikTok Conversions";
    const ALIASES: &'static [&'static str] = &["TikTok Events API", "TikTok"];
    const KIND: &'static str = "tiktok";
    const PURPOSES: &'static [Purpose] = &[Purpose::Marketing];
    type Config = TikTokConfig;

    fn limits(_: &TikTokConfig) -> Limits {
        Limits {
            max_events: MAX_EVENTS,
            max_bytes: 2_000_000,
        }
    }

    fn overrides(config: &TikTokConfig) -> &Overrides {
        &config.overrides
    }

    fn encode(config: &TikTokConfig, events: &[Event], _now_ms: i64) -> Encoded {
        let mut head = Map::new();
        head.insert("event_source".into(), "web".into());
        head.insert("event_source_id".into(), config.pixel_code.clone().into());
        if let Some(code) = &config.test_event_code {
            head.insert("test_event_code".into(), code.clone().into());
        }
        let head = batching::to_bytes(&Value::Object(head));
        let mut prefix = head[..head.len() - 1].to_vec();
        prefix.extend_from_slice(b",\"data\":[");
        let base = config
            .endpoint_url
            .as_deref()
            .unwrap_or("https://business-api.tiktok.com")
            .trim_end_matches('/');
        let url = format!("{base}/open_api/v1.3/event/track/");
        let target = Target {
            url,
            headers: batching::headers(&[
                ("content-type", "application/json"),
                ("access-token", &config.access_token),
            ]),
            framing: Framing {
                prefix: &prefix,
                separator: b",",
                suffix: b"]}",
            },
        };
        batching::encode_each::<Self>(config, events, &target, |event| encode_event(config, event))
    }

    fn classify(_: &TikTokConfig, request: &HttpRequest, answer: &HttpAnswer) -> Vec<Verdict> {
        #[derive(Deserialize)]
        struct Answer {
            code: i64,
            #[serde(default)]
            message: String,
        }
        let parsed = serde_json::from_str::<Answer>(&answer.body);
        let error = match parsed {
            Ok(a) if a.code == 0 && (200..300).contains(&answer.status) => {
                return batching::for_all(request, Verdict::Delivered)
            }
            Ok(a) if a.code == 40100 => TikTokError::RateLimited(a.message),
            Ok(a) if (50000..60000).contains(&a.code) => TikTokError::Server {
                code: a.code,
                message: a.message,
            },
            Ok(a) if a.code != 0 => TikTokError::Rejected {
                code: a.code,
                message: a.message,
            },
            _ => TikTokError::Unreadable {
                status: answer.status,
                body: batching::excerpt(&answer.body).to_owned(),
            },
        };
        let reason = common::reason(error.code(), &error);
        if let TikTokError::Rejected { code: 40002, .. } = error {
            return batching::rejected_batch(request, reason);
        }
        let retry = matches!(
            error,
            TikTokError::RateLimited(_) | TikTokError::Server { .. }
        ) || matches!(answer.status, 408 | 429 | 500..=599);
        batching::for_all(request, batching::retry_if(retry, answer, reason))
    }
}

const STANDARD_EVENTS: [(&str, &str); 13] = [
    ("Product Viewed", "ViewContent"),
    ("Product Added", "AddToCart"),
    ("Product Added to Wishlist", "AddToWishlist"),
    ("Checkout Started", "InitiateCheckout"),
    ("Payment Info Entered", "AddPaymentInfo"),
    ("Order Completed", "CompletePayment"),
    ("Order Placed", "PlaceAnOrder"),
    ("Products Searched", "Search"),
    ("Signed Up", "CompleteRegistration"),
    ("Form Submitted", "SubmitForm"),
    ("Lead Generated", "SubmitForm"),
    ("Subscription Started", "Subscribe"),
    ("Contact Submitted", "Contact"),
];

fn encode_event(config: &TikTokConfig, event: &Event) -> Result<Value, Verdict> {
    let name = match event.kind {
        EventType::Page => "Pageview".to_owned(),
        EventType::Track => {
            let n = event
                .event
                .as_deref()
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .ok_or(Problem::Missing("event").permanent())?;
            STANDARD_EVENTS
                .iter()
                .find(|(s, _)| s.eq_ignore_ascii_case(n))
                .map_or(n, |(_, t)| t)
                .to_owned()
        }
        other => {
            return Err(Problem::NotMapped(format!(
                "a {} call has no TikTok event",
                other.as_str()
            ))
            .skipped())
        }
    };
    let time_ms = common::event_time_ms(event).ok_or(Problem::NoTimestamp.permanent())?;
    let rules = Rules {
        vendor: Vendor::TikTok,
        default_calling_code: config.default_calling_code.as_deref(),
    };
    let mut user = Map::new();
    if let Some(h) =
        common::user_trait(event, &["email"]).and_then(|e| hashed(Kind::Email, &e, rules).ok())
    {
        user.insert("email".into(), h.into());
    }
    if let Some(h) =
        common::user_trait(event, &["phone"]).and_then(|p| hashed(Kind::Phone, &p, rules).ok())
    {
        user.insert("phone".into(), h.into());
    }
    // One string, as TikTok documents it: the userId, else the anonymousId.
    let external = [event.user_id.as_deref(), event.anonymous_id.as_deref()]
        .into_iter()
        .flatten()
        .find_map(|id| hashed(Kind::ExternalId, id, rules).ok());
    if let Some(id) = external {
        user.insert("external_id".into(), id.into());
    }
    if let Some(id) = common::click_id(event, "ttclid") {
        user.insert("ttclid".into(), id.into());
    }
    if let Some(ttp) = common::browser_id(event, "ttp", "_ttp") {
        user.insert("ttp".into(), ttp.into());
    }
    if let Some(ip) = common::context_text(event, &["ip"]) {
        user.insert("ip".into(), ip.into());
    }
    if let Some(ua) = common::context_text(event, &["userAgent"]) {
        user.insert("user_agent".into(), ua.into());
    }

    let mut out = Map::new();
    out.insert("event".into(), name.into());
    out.insert("event_time".into(), time_ms.div_euclid(1000).into());
    out.insert("event_id".into(), event.message_id.clone().into());
    out.insert("user".into(), Value::Object(user));
    let mut page = Map::new();
    if let Some(url) = common::page_url(event) {
        page.insert("url".into(), url.into());
    }
    if let Some(r) = common::context_text(event, &["page", "referrer"]) {
        page.insert("referrer".into(), r.into());
    }
    if !page.is_empty() {
        out.insert("page".into(), Value::Object(page));
    }
    let props = properties(event);
    if !props.is_empty() {
        out.insert("properties".into(), Value::Object(props));
    }
    let ldu = match config.limited_data_use {
        LimitedDataUse::Always => true,
        LimitedDataUse::Never => false,
        LimitedDataUse::FromConsent => AdSignals::of(event).limited_data_use,
    };
    out.insert("limited_data_use".into(), ldu.into());
    Ok(Value::Object(out))
}

fn properties(event: &Event) -> Map<String, Value> {
    let mut p = Map::new();
    if event.kind != EventType::Track {
        return p;
    }
    let products = common::products(event);
    if !products.is_empty() {
        let contents: Vec<Value> = products
            .iter()
            .map(|pr| {
                let mut o = Map::new();
                if let Some(id) = &pr.id {
                    o.insert("content_id".into(), id.clone().into());
                }
                o.insert("content_type".into(), "product".into());
                if let Some(n) = &pr.name {
                    o.insert("content_name".into(), n.clone().into());
                }
                if let Some(c) = &pr.category {
                    o.insert("content_category".into(), c.clone().into());
                }
                o.insert(
                    "quantity".into(),
                    batching::number(pr.quantity.unwrap_or(1.0)),
                );
                if let Some(price) = pr.price {
                    o.insert("price".into(), batching::number(price));
                }
                Value::Object(o)
            })
            .collect();
        p.insert("contents".into(), Value::Array(contents));
        p.insert("content_type".into(), "product".into());
    }
    if let Some(v) = common::order_value(event) {
        p.insert("value".into(), batching::number(v));
    }
    if let Some(c) = common::currency(event) {
        p.insert("currency".into(), c.into());
    }
    if let Some(q) = common::text_at(event.properties.as_ref(), &["query"]) {
        p.insert("query".into(), q.into());
    }
    if let Some(o) = common::order_id(event) {
        p.insert("order_id".into(), o.into());
    }
    p
}
