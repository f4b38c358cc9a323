//! Google Ads click conversions:
//! `POST https://googleads.googleapis.com/{version}/customers/{customer_id}:uploadClickConversions`.
//!
//! - **Auth**: `Authorization: Bearer {OAuth access token}`, `developer-token`,
//!   and `login-customer-id` when a manager account uploads. The access token
//!   is short-lived: the worker exchanges its refresh token with
//!   [`token_request`] / [`token_from_answer`] and puts the current token in
//!   the config before encoding.
//! - **What is sent**: a `track` whose name is a key of `conversion_actions`
//!   (mapped to its conversion action id); everything else is skipped.
//! - **Click ids**: `gclid`, else `gbraid`, else `wbraid` (one only, as Google
//!   requires). **Enhanced conversions**: `userIdentifiers` (at most 5) with the
//!   email and phone hashed by Google's rules (Gmail dots removed, E.164) and
//!   `addressInfo` (hashed names, country and postal code in clear, as Google
//!   asks) — with a `gclid` or no click id at all (enhanced conversions for
//!   leads), never beside `gbraid`/`wbraid`.
//! - `conversionDateTime` as `yyyy-mm-dd hh:mm:ss+00:00`; `orderId` from
//!   `order_id` (Google's dedup); `conversionValue` / `currencyCode`;
//!   per-conversion `consent.adUserData` from the visitor's marketing consent.
//! - `partialFailure: true` (required), `validateOnly` from the config;
//!   at most 2,000 conversions a request (Google refuses 2,001).
//! - **Answers**: a 200 with `partialFailureError` names failed conversions by
//!   `location.fieldPathElements[{fieldName:"conversions",index}]`: those get
//!   their own verdicts (`TOO_RECENT_EVENT` and `TOO_RECENT_CONVERSION_ACTION`
//!   retry after 6 hours, internal and quota errors retry, others permanent),
//!   the rest are delivered. A 400 that names conversions fails those; the
//!   others were not processed and are retried. 401 retries (after a token
//!   refresh), 403 is permanent, 429 and 5xx retry after `Retry-After` or
//!   the `retryDelay` Google gives.
//! - Conversions older than 90 days (the longest click-through window) are skipped.
//!
//! Config fields (of the `SLUICE_DESTINATIONS` entry of this kind; tokens come from secrets):
//!
//! ```json
//! { "customer_id": "123-456-7890", "login_customer_id": "999-888-7777",
//!   "developer_token": "<secret>", "access_token": "<refreshed by the worker>",
//!   "conversion_actions": { "Order Completed": "987654", "Signed Up": "111222" },
//!   "api_version": "v22", "validate_only": false, "default_calling_code": "1" }
//! ```

use super::batching;
use super::batching::{Framing, Target};
use super::common::{self, AdSignals, Overrides, Problem};
use super::identifiers::{hashed, normalize, Kind, Rules, Vendor};
use super::url;
use super::{Destination, Encoded, HttpAnswer, HttpRequest, Limits, Verdict};
use crate::consent::Purpose;
use crate::{Event, EventType, Timestamp};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// Conversions a request.
pub const MAX_EVENTS: usize = 2_000;
/// 90 days.
pub const MAX_AGE_MS: i64 = 90 * crate::time::DAY_MS;
const SIX_HOURS_MS: u64 = 6 * 3_600_000;

/// `SLUICE_DESTINATIONS` entry of kind `google_ads`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GoogleAdsConfig {
    /// The account the conversions belong to (`123-456-7890` or digits).
    pub customer_id: String,
    /// The manager account that uploads, when not the customer itself.
    #[serde(default)]
    pub login_customer_id: Option<String>,
    /// The API developer token (a secret).
    pub developer_token: String,
    /// The current OAuth access token (the worker refreshes it; a secret).
    pub access_token: String,
    /// Segment event name → conversion action id (`987654`, or its resource
    /// name `customers/…/conversionActions/987654`).
    pub conversion_actions: BTreeMap<String, String>,
    /// API version, like `v22`.
    #[serde(default = "default_version")]
    pub api_version: String,
    /// Google validates the upload and records nothing.
    #[serde(default)]
    pub validate_only: bool,
    /// Country calling code for phone numbers written without one (`"1"`).
    #[serde(default)]
    pub default_calling_code: Option<String>,
    /// Base URL instead of `https://googleads.googleapis.com` (a local stub in tests).
    #[serde(default, deserialize_with = "crate::dest::url::opt_base_url")]
    pub endpoint_url: Option<String>,
    /// Event allow / deny lists, renames, property renames ([`Overrides`]).
    #[serde(default)]
    pub overrides: Overrides,
}

fn default_version() -> String {
    "v22".to_owned()
}

/// Why Google Ads refused a request or a conversion.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum GoogleAdsError {
    /// 401: the access token expired or is invalid.
    Unauthenticated(String),
    /// 403: developer token not approved, no access to the customer, …
    PermissionDenied(String),
    /// 429: quota.
    RateLimited(String),
    /// A conversion Google will take later (`TOO_RECENT_EVENT`, internal, quota).
    Later { code: String, message: String },
    /// A conversion or request Google will never take.
    Rejected { code: String, message: String },
    /// 5xx or an unreadable answer.
    Server { status: u16, message: String },
}

impl GoogleAdsError {
    pub fn code(&self) -> &'static str {
        match self {
            GoogleAdsError::Unauthenticated(_) => "google_ads_unauthenticated",
            GoogleAdsError::PermissionDenied(_) => "google_ads_permission_denied",
            GoogleAdsError::RateLimited(_) => "google_ads_rate_limited",
            GoogleAdsError::Later { .. } => "google_ads_retry_later",
            GoogleAdsError::Rejected { .. } => "google_ads_rejected",
            GoogleAdsError::Server { .. } => "google_ads_server_error",
        }
    }
}

impl std::fmt::Display for GoogleAdsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GoogleAdsError::Unauthenticated(m)
            | GoogleAdsError::PermissionDenied(m)
            | GoogleAdsError::RateLimited(m) => f.write_str(m),
            GoogleAdsError::Later { code, message }
            | GoogleAdsError::Rejected { code, message } => {
                write!(f, "{code}: {message}")
            }
            GoogleAdsError::Server { status, message } => write!(f, "HTTP {status}: {message}"),
        }
    }
}

/// The Google Ads click conversions destination.
pub struct GoogleAds;

impl Destination for GoogleAds {
    const NAME: &'static str = "Google Ads Conversions";
    const ALIASES: &'static [&'static str] = &["Google Ads", "Google AdWords New"];
    const KIND: &'static str = "google_ads";
    const PURPOSES: &'static [Purpose] = &[Purpose::Marketing];
    type Config = GoogleAdsConfig;

    fn limits(_: &GoogleAdsConfig) -> Limits {
        Limits {
            max_events: MAX_EVENTS,
            max_bytes: 4_000_000,
        }
    }

    fn overrides(config: &GoogleAdsConfig) -> &Overrides {
        &config.overrides
    }

    fn encode(config: &GoogleAdsConfig, events: &[Event], now_ms: i64) -> Encoded {
        let customer = digits(&config.customer_id);
        let tail = format!(
            "],\"partialFailure\":true,\"validateOnly\":{}}}",
            config.validate_only
        );
        let base = config
            .endpoint_url
            .as_deref()
            .unwrap_or("https://googleads.googleapis.com")
            .trim_end_matches('/');
        let url = format!(
            "{base}/{}/customers/{customer}:uploadClickConversions",
            config.api_version
        );
        let mut headers = vec![
            ("content-type".to_owned(), "application/json".to_owned()),
            (
                "authorization".to_owned(),
                format!("Bearer {}", config.access_token),
            ),
            ("developer-token".to_owned(), config.developer_token.clone()),
        ];
        if let Some(login) = &config.login_customer_id {
            headers.push(("login-customer-id".to_owned(), digits(login)));
        }
        let target = Target {
            url,
            headers,
            framing: Framing {
                prefix: b"{\"conversions\":[",
                separator: b",",
                suffix: tail.as_bytes(),
            },
        };
        batching::encode_each::<Self>(config, events, &target, |event| {
            conversion(config, &customer, event, now_ms)
        })
    }

    fn classify(_: &GoogleAdsConfig, request: &HttpRequest, answer: &HttpAnswer) -> Vec<Verdict> {
        let body: Value = serde_json::from_str(&answer.body).unwrap_or(Value::Null);
        if (200..300).contains(&answer.status) {
            let mut verdicts = batching::for_all(request, Verdict::Delivered);
            if let Some(failure) = body.get("partialFailureError") {
                apply_failures(&mut verdicts, failure, None);
            }
            return verdicts;
        }
        let error = body.get("error").unwrap_or(&Value::Null);
        let message = error
            .get("message")
            .and_then(Value::as_str)
            .map_or_else(|| batching::excerpt(&answer.body).to_owned(), str::to_owned);
        let err = match answer.status {
            401 => GoogleAdsError::Unauthenticated(message),
            403 => GoogleAdsError::PermissionDenied(message),
            429 => GoogleAdsError::RateLimited(message),
            400 | 404 | 409 | 413 => GoogleAdsError::Rejected {
                code: error
                    .get("status")
                    .and_then(Value::as_str)
                    .unwrap_or("INVALID_ARGUMENT")
                    .to_owned(),
                message,
            },
            status => GoogleAdsError::Server { status, message },
        };
        let reason = common::reason(err.code(), &err);
        match err {
            GoogleAdsError::Rejected { .. } => {
                // Conversions the errors name failed; the others were not processed.
                let others = Verdict::Retry {
                    after_ms: None,
                    reason: common::reason(
                        "google_ads_batch_rejected",
                        "the request was refused for other conversions in it",
                    ),
                };
                let mut verdicts = batching::for_all(request, others);
                if !apply_failures(&mut verdicts, error, Some(&reason)) {
                    verdicts.fill(Verdict::Permanent { reason });
                }
                verdicts
            }
            GoogleAdsError::PermissionDenied(_) => {
                batching::for_all(request, Verdict::Permanent { reason })
            }
            _ => {
                let after_ms = answer.retry_after_ms.or_else(|| retry_delay_ms(error));
                batching::for_all(request, Verdict::Retry { after_ms, reason })
            }
        }
    }
}

/// Mark the conversions `failure` (a `GoogleAdsFailure` holder) names; true if it named any.
fn apply_failures(verdicts: &mut [Verdict], failure: &Value, request_reason: Option<&str>) -> bool {
    let mut any = false;
    let errors = failure
        .get("details")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|d| d.get("errors").and_then(Value::as_array))
        .flatten();
    for e in errors {
        let index = e
            .pointer("/location/fieldPathElements")
            .and_then(Value::as_array)
            .and_then(|path| {
                path.iter()
                    .find(|p| p.get("fieldName").and_then(Value::as_str) == Some("conversions"))
            })
            .and_then(|p| p.get("index"))
            .and_then(Value::as_u64)
            .and_then(|i| usize::try_from(i).ok());
        let Some(i) = index.filter(|i| *i < verdicts.len()) else {
            continue;
        };
        any = true;
        let (kind, code) = e
            .get("errorCode")
            .and_then(Value::as_object)
            .and_then(|o| o.iter().next())
            .map(|(k, v)| (k.as_str(), v.as_str().unwrap_or_default()))
            .unwrap_or(("unknown", "UNKNOWN"));
        let message = e
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let code_text = format!("{kind}.{code}");
        let later = matches!(code, "TOO_RECENT_EVENT" | "TOO_RECENT_CONVERSION_ACTION")
            || matches!(kind, "internalError" | "quotaError");
        verdicts[i] = if later {
            let err = GoogleAdsError::Later {
                code: code_text,
                message,
            };
            Verdict::Retry {
                after_ms: code.starts_with("TOO_RECENT").then_some(SIX_HOURS_MS),
                reason: common::reason(err.code(), &err),
            }
        } else {
            let err = GoogleAdsError::Rejected {
                code: code_text,
                message,
            };
            let mut reason = common::reason(err.code(), &err);
            if let Some(r) = request_reason {
                reason = format!("{reason} ({r})");
            }
            Verdict::Permanent { reason }
        };
    }
    any
}

/// `quotaErrorDetails.retryDelay` (`"30s"`) anywhere in the error, in ms.
fn retry_delay_ms(error: &Value) -> Option<u64> {
    let errors = error
        .get("details")?
        .as_array()?
        .iter()
        .filter_map(|d| d.get("errors").and_then(Value::as_array))
        .flatten();
    for e in errors {
        if let Some(delay) = e
            .pointer("/details/quotaErrorDetails/retryDelay")
            .and_then(Value::as_str)
        {
            let secs: f64 = delay.trim_end_matches('s').parse().ok()?;
            return Some((secs * 1000.0) as u64);
        }
    }
    None
}

fn digits(s: &str) -> String {
    s.chars().filter(char::is_ascii_digit).collect()
}

/// `2026-12-01 10:00:00+00:00`.
pub fn conversion_date_time(ms: i64) -> String {
    let iso = Timestamp(ms).to_rfc3339(); // YYYY-MM-DDTHH:MM:SS.mmmZ
    format!("{} {}+00:00", &iso[..10], &iso[11..19])
}

fn conversion(
    config: &GoogleAdsConfig,
    customer: &str,
    event: &Event,
    now_ms: i64,
) -> Result<Value, Verdict> {
    let name = event.event.as_deref().map(str::trim).unwrap_or_default();
    let action = (event.kind == EventType::Track)
        .then(|| {
            config
                .conversion_actions
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v)
        })
        .flatten()
        .ok_or_else(|| {
            Problem::NotMapped(format!(
                "a {} `{name}` is not a configured conversion",
                event.kind.as_str()
            ))
            .skipped()
        })?;
    let time_ms = common::fresh_time_ms(event, now_ms, MAX_AGE_MS).map_err(|p| match p {
        Problem::TooOld { .. } => p.skipped(),
        _ => p.permanent(),
    })?;

    let mut c = Map::new();
    let click = ["gclid", "gbraid", "wbraid"]
        .into_iter()
        .find_map(|k| common::click_id(event, k).map(|v| (k, v)));
    let identifiers = match click {
        Some(("gclid", _)) | None => user_identifiers(config, event),
        Some(_) => Vec::new(),
    };
    if click.is_none() && identifiers.is_empty() {
        return Err(Problem::NotMapped(
            "no gclid, gbraid or wbraid and no user identifiers to attribute the conversion".into(),
        )
        .skipped());
    }
    if let Some((key, id)) = click {
        c.insert(key.into(), id.into());
    }
    c.insert(
        "conversionAction".into(),
        format!(
            "customers/{customer}/conversionActions/{}",
            digits(action.rsplit('/').next().unwrap_or(action))
        )
        .into(),
    );
    c.insert(
        "conversionDateTime".into(),
        conversion_date_time(time_ms).into(),
    );
    if let Some(v) = common::order_value(event) {
        c.insert("conversionValue".into(), batching::number(v));
    }
    if let Some(cur) = common::currency(event) {
        c.insert("currencyCode".into(), cur.into());
    }
    if let Some(order) = common::order_id(event) {
        c.insert("orderId".into(), order.into());
    }
    if !identifiers.is_empty() {
        c.insert("userIdentifiers".into(), Value::Array(identifiers));
    }
    let granted = AdSignals::of(event).ad_user_data;
    c.insert(
        "consent".into(),
        json!({"adUserData": if granted { "GRANTED" } else { "DENIED" }}),
    );
    Ok(Value::Object(c))
}

fn user_identifiers(config: &GoogleAdsConfig, event: &Event) -> Vec<Value> {
    let rules = Rules {
        vendor: Vendor::Google,
        default_calling_code: config.default_calling_code.as_deref(),
    };
    let mut ids = Vec::new();
    let mut push = |key: &str, value: Value| {
        let mut o = Map::new();
        o.insert("userIdentifierSource".into(), "FIRST_PARTY".into());
        o.insert(key.into(), value);
        ids.push(Value::Object(o));
    };
    if let Some(h) =
        common::user_trait(event, &["email"]).and_then(|e| hashed(Kind::Email, &e, rules).ok())
    {
        push("hashedEmail", h.into());
    }
    if let Some(h) =
        common::user_trait(event, &["phone"]).and_then(|p| hashed(Kind::Phone, &p, rules).ok())
    {
        push("hashedPhoneNumber", h.into());
    }
    let (first, last) = common::names(event);
    let first = first.and_then(|f| hashed(Kind::FirstName, &f, rules).ok());
    let last = last.and_then(|l| hashed(Kind::LastName, &l, rules).ok());
    let country = common::address_part(event, &["country"])
        .and_then(|c| normalize(Kind::Country, &c, rules).ok())
        .map(|c| c.to_ascii_uppercase());
    let postal = common::address_part(event, &["postalCode", "postal_code", "zip"])
        .and_then(|z| normalize(Kind::Zip, &z, rules).ok());
    if let (Some(f), Some(l), Some(c), Some(p)) = (first, last, country, postal) {
        push(
            "addressInfo",
            json!({"hashedFirstName": f, "hashedLastName": l, "countryCode": c, "postalCode": p}),
        );
    }
    ids.truncate(5);
    ids
}

/// The refresh-token exchange that gives the access token
/// (`POST https://oauth2.googleapis.com/token`, form-encoded).
pub fn token_request(client_id: &str, client_secret: &str, refresh_token: &str) -> HttpRequest {
    let e = url::percent_encode;
    let body = format!(
        "grant_type=refresh_token&client_id={}&client_secret={}&refresh_token={}",
        e(client_id),
        e(client_secret),
        e(refresh_token)
    );
    HttpRequest {
        method: "POST",
        url: "https://oauth2.googleapis.com/token".into(),
        headers: vec![(
            "content-type".into(),
            "application/x-www-form-urlencoded".into(),
        )],
        body: body.into_bytes(),
        events: Vec::new(),
    }
}

/// An access token and how long it lasts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessToken {
    pub token: String,
    pub expires_in_secs: u64,
}

/// The token endpoint's answer: `{"access_token": "…", "expires_in": 3599, …}`.
pub fn token_from_answer(answer: &HttpAnswer) -> Result<AccessToken, GoogleAdsError> {
    #[derive(Deserialize)]
    struct Token {
        access_token: String,
        #[serde(default)]
        expires_in: u64,
    }
    match (answer.status, serde_json::from_str::<Token>(&answer.body)) {
        (200..=299, Ok(t)) => Ok(AccessToken {
            token: t.access_token,
            expires_in_secs: t.expires_in,
        }),
        (400 | 401, _) => Err(GoogleAdsError::Unauthenticated(
            batching::excerpt(&answer.body).to_owned(),
        )),
        (status, _) => Err(GoogleAdsError::Server {
            status,
            message: batching::excerpt(&answer.body).to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversion_date_time_is_googles_format() {
        let ms = Timestamp::parse("2019-01-01T20:32:45.123Z").unwrap().0;
        assert_eq!(conversion_date_time(ms), "2019-01-01 20:32:45+00:00");
    }

    #[test]
    fn the_token_exchange_is_form_encoded() {
        let r = token_request("id.apps", "s/cr+t", "1//r");
        assert_eq!(
            String::from_utf8(r.body).unwrap(),
            "grant_type=refresh_token&client_id=id.apps&client_secret=s%2Fcr%2Bt&refresh_token=1%2F%2Fr"
        );
        let ok = HttpAnswer {
            status: 200,
            retry_after_ms: None,
            body: r#"{"access_token":"ya29.x","expires_in":3599,"token_type":"Bearer"}"#.into(),
        };
        assert_eq!(
            token_from_answer(&ok).unwrap(),
            AccessToken {
                token: "ya29.x".into(),
                expires_in_secs: 3599
            }
        );
        let bad = HttpAnswer {
            status: 400,
            retry_after_ms: None,
            body: r#"{"error":"invalid_grant"}"#.into(),
        };
        assert_eq!(
            token_from_answer(&bad).unwrap_err().code(),
            "google_ads_unauthenticated"
        );
    }
}
