//! `load(writeKey, options)` options: typed, defaults filled in, unknown ones rejected.

use crate::js;
use crate::json::cat;
use crate::prelude::*;
use sluice_shared::consent::Purpose;
use wasm_bindgen::JsValue;

/// Where identity and the queue are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageMode {
    /// First-party cookie, mirrored to localStorage (the default).
    Cookie,
    /// localStorage only.
    Local,
    /// Memory only (lost on reload).
    Memory,
    /// Cookieless: nothing is written until storage consent is granted.
    None,
}

/// What to do with events made before the visitor's consent is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pending {
    /// Hold them in memory until consent is known (the default).
    Wait,
    /// Send them without identifiers (a per-page id, nothing stored).
    Anonymous,
    /// Discard them.
    Drop,
}

/// Typed options.
#[derive(Debug, Clone)]
pub struct Options {
    /// Origin of the collector (empty: this page's origin, first-party).
    pub api_host: String,
    pub api_path: String,
    pub flush_at: usize,
    pub flush_interval_ms: f64,
    pub max_retries: u32,
    pub retry_base_ms: f64,
    pub retry_max_ms: f64,
    pub max_queue_events: usize,
    pub storage: StorageMode,
    /// Cookie domain (`None`: the registrable domain, found by probing).
    pub cookie_domain: Option<String>,
    pub cookie_same_site: String,
    /// `None`: Secure when the page is on HTTPS.
    pub cookie_secure: Option<bool>,
    /// Send a page view on every SPA navigation.
    pub track_pages: bool,
    pub session_timeout_ms: f64,
    /// Purposes an event needs to be sent.
    pub consent_required: Vec<Purpose>,
    pub consent_pending: Pending,
    /// Consent counts as known from the start (e.g. regions without a consent requirement).
    pub consent_default_granted: bool,
    pub policy_version: Option<String>,
    /// Ask the collector to set the id as a server-set cookie (outlives Safari's 7-day cap).
    pub id_endpoint: Option<String>,
    pub debug: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            api_host: String::new(),
            api_path: "/v1/batch".into(),
            flush_at: 20,
            flush_interval_ms: 0.0,
            max_retries: 10,
            retry_base_ms: 1000.0,
            retry_max_ms: 60_000.0,
            max_queue_events: 10_000,
            storage: StorageMode::Cookie,
            cookie_domain: None,
            cookie_same_site: "Lax".into(),
            cookie_secure: None,
            track_pages: false,
            session_timeout_ms: 30.0 * 60_000.0,
            consent_required: vec![Purpose::Analytics],
            consent_pending: Pending::Wait,
            consent_default_granted: false,
            policy_version: None,
            id_endpoint: None,
            debug: false,
        }
    }
}

const KNOWN: [&str; 18] = [
    "apiHost",
    "apiPath",
    "flushAt",
    "flushIntervalMs",
    "maxRetries",
    "retryBaseMs",
    "retryMaxMs",
    "maxQueueEvents",
    "storage",
    "cookieDomain",
    "cookieSameSite",
    "cookieSecure",
    "trackPages",
    "sessionTimeoutMs",
    "consent",
    "policyVersion",
    "idEndpoint",
    "debug",
];
const CONSENT_KNOWN: [&str; 4] = ["required", "pending", "defaultGranted", "policyVersion"];

fn invalid(message: &str) -> JsValue {
    js::error("invalid_options", message)
}

fn unknown_keys(obj: &JsValue, known: &[&str], prefix: &str) -> Result<(), JsValue> {
    let keys = js::Object::keys(obj);
    for k in js::items(&keys) {
        let k = k.as_string().unwrap_or_default();
        if !known.contains(&k.as_str()) {
            return Err(invalid(&cat(&["unknown option `", prefix, &k, "`"])));
        }
    }
    Ok(())
}

fn number(obj: &JsValue, key: &'static str, min: f64) -> Result<Option<f64>, JsValue> {
    let v = js::get(obj, key);
    if v.is_undefined() {
        return Ok(None);
    }
    match v.as_f64() {
        Some(n) if n >= min && n.is_finite() => Ok(Some(n)),
        _ => Err(invalid(&cat(&[
            "`",
            key,
            if min > 0.0 {
                "` must be a positive number"
            } else {
                "` must be a number ≥ 0"
            },
        ]))),
    }
}

fn string(obj: &JsValue, key: &'static str) -> Result<Option<String>, JsValue> {
    let v = js::get(obj, key);
    if v.is_undefined() || v.is_null() {
        return Ok(None);
    }
    v.as_string()
        .map(Some)
        .ok_or_else(|| invalid(&cat(&["`", key, "` must be a string"])))
}

fn boolean(obj: &JsValue, key: &'static str) -> Result<Option<bool>, JsValue> {
    let v = js::get(obj, key);
    if v.is_undefined() {
        return Ok(None);
    }
    v.as_bool()
        .map(Some)
        .ok_or_else(|| invalid(&cat(&["`", key, "` must be true or false"])))
}

impl Options {
    /// Read options from a JS object (`undefined` means all defaults).
    pub fn parse(v: &JsValue) -> Result<Options, JsValue> {
        let mut o = Options::default();
        if v.is_undefined() || v.is_null() {
            return Ok(o);
        }
        if !js::is_plain_object(v) {
            return Err(invalid("options must be an object"));
        }
        unknown_keys(v, &KNOWN, "")?;
        if let Some(s) = string(v, "apiHost")? {
            o.api_host = s.trim_end_matches('/').to_owned();
        }
        if let Some(s) = string(v, "apiPath")? {
            if !s.starts_with('/') {
                return Err(invalid("`apiPath` must start with /"));
            }
            o.api_path = s;
        }
        if let Some(n) = number(v, "flushAt", 1.0)? {
            o.flush_at = n as usize;
        }
        if let Some(n) = number(v, "flushIntervalMs", 0.0)? {
            o.flush_interval_ms = n;
        }
        if let Some(n) = number(v, "maxRetries", 0.0)? {
            o.max_retries = n as u32;
        }
        if let Some(n) = number(v, "retryBaseMs", 1.0)? {
            o.retry_base_ms = n;
        }
        if let Some(n) = number(v, "retryMaxMs", 1.0)? {
            o.retry_max_ms = n;
        }
        if let Some(n) = number(v, "maxQueueEvents", 1.0)? {
            o.max_queue_events = n as usize;
        }
        if let Some(s) = string(v, "storage")? {
            o.storage = match s.as_str() {
                "cookie" => StorageMode::Cookie,
                "localStorage" => StorageMode::Local,
                "memory" => StorageMode::Memory,
                "none" => StorageMode::None,
                _ => {
                    return Err(invalid(
                        "`storage` must be cookie, localStorage, memory or none",
                    ))
                }
            };
        }
        o.cookie_domain = string(v, "cookieDomain")?;
        if let Some(s) = string(v, "cookieSameSite")? {
            if !matches!(s.as_str(), "Lax" | "Strict" | "None") {
                return Err(invalid("`cookieSameSite` must be Lax, Strict or None"));
            }
            o.cookie_same_site = s;
        }
        o.cookie_secure = boolean(v, "cookieSecure")?;
        if let Some(b) = boolean(v, "trackPages")? {
            o.track_pages = b;
        }
        if let Some(n) = number(v, "sessionTimeoutMs", 1.0)? {
            o.session_timeout_ms = n;
        }
        o.policy_version = string(v, "policyVersion")?;
        o.id_endpoint = string(v, "idEndpoint")?;
        if let Some(b) = boolean(v, "debug")? {
            o.debug = b;
        }
        let consent = js::get(v, "consent");
        if !consent.is_undefined() {
            if !js::is_plain_object(&consent) {
                return Err(invalid("`consent` must be an object"));
            }
            unknown_keys(&consent, &CONSENT_KNOWN, "consent.")?;
            let required = js::get(&consent, "required");
            if !required.is_undefined() {
                if !js::Array::is_array(&required) {
                    return Err(invalid("`consent.required` must be an array of purposes"));
                }
                // Loops and `push` rather than `collect`, here and across the
                // SDK: each `collect` brought its own copy of the growth code.
                o.consent_required = Vec::new();
                for p in js::items(&required).filter_map(|p| p.as_string()) {
                    o.consent_required.push(Purpose::parse(&p));
                }
            }
            if let Some(s) = string(&consent, "pending")? {
                o.consent_pending = match s.as_str() {
                    "wait" => Pending::Wait,
                    "anonymous" => Pending::Anonymous,
                    "drop" => Pending::Drop,
                    _ => return Err(invalid("`consent.pending` must be wait, anonymous or drop")),
                };
            }
            if let Some(b) = boolean(&consent, "defaultGranted")? {
                o.consent_default_granted = b;
            }
            if let Some(s) = string(&consent, "policyVersion")? {
                o.policy_version = Some(s);
            }
        }
        Ok(o)
    }
}
