//! Amplitude: the HTTP V2 API (`/2/httpapi`).
//!
//! | Segment call | Amplitude |
//! | --- | --- |
//! | track | `event_type` = the event name, `event_properties` = properties; `Order Completed` also carries `revenue` (from `revenue`, else `total`), `revenueType` `Purchase` |
//! | page | `[Amplitude] Page Viewed` with `[Amplitude] Page URL` / `Path` / `Domain` / `Title` / `Location` (the Browser SDK's own names) |
//! | screen | `[Amplitude] Screen Viewed` with `[Amplitude] Screen Name` |
//! | identify | `$identify` with `user_properties: {"$set": traits}` |
//! | `Audience Entered` / `Audience Exited` | `$identify` with `user_properties: {"$set": {<audience>: true / false}}` ([`super::audience`]) |
//! | group | `$identify` with `groups: {<group_type>: groupId}` and the same as a user property, as Amplitude's `setGroup` does (when `group_type` is configured) |
//! | alias | not sent: Amplitude links users through `device_id` |
//!
//! Every event carries `insert_id` (the messageId: Amplitude drops a repeat
//! within 7 days), `time` (ms), `user_id` (userId) and `device_id`
//! (anonymousId), plus `ip`, `os_name`, `language`, `session_id`, … from
//! `context`. Ids shorter than `min_id_length` (Amplitude's default 5) would
//! be rejected, so such events are skipped with a reason. Limits: 2,000 events
//! and 1 MB per request. A 400 lists the bad events by index: those are
//! permanent and the others are re-sent; a 429 lists the throttled events and
//! users: those back off 30 s (a day's quota: an hour), the others are
//! re-sent at once.

use super::batching::{self, basic_auth, headers, to_bytes, Framing, Target};
use super::common::{self, context_at, context_text, time_or_now, Overrides};
use super::url::split_url;
use super::{Destination, Encoded, HttpAnswer, HttpRequest, Limits, Verdict};
use crate::consent::Purpose;
use crate::{Event, EventType, Object};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::fmt;

/// The Amplitude destination.
pub struct Amplitude;

/// Data residency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Region {
    #[default]
    Us,
    Eu,
}

/// `kind = "amplitude"` in `SLUICE_DESTINATIONS`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AmplitudeConfig {
    /// The project's API key (sent in the body, as Amplitude asks).
    pub api_key: String,
    #[serde(default)]
    pub region: Region,
    /// Send every call (events, deletions) to this base URL instead of the
    /// region's Amplitude hosts: a proxy, or a local stub in tests.
    #[serde(default, deserialize_with = "crate::dest::url::opt_base_url")]
    pub api_host: Option<String>,
    /// Overrides Amplitude's minimum length (5) of `user_id` and `device_id`.
    #[serde(default)]
    pub min_id_length: Option<u32>,
    /// The group type a `group` call sets (`"company"`); unset: group calls are skipped.
    #[serde(default)]
    pub group_type: Option<String>,
    /// The project's secret key, for User Privacy API deletions.
    #[serde(default)]
    pub secret_key: Option<String>,
    /// Who requests deletions (Amplitude records it), e.g. the privacy officer's address.
    #[serde(default)]
    pub deletion_requester: Option<String>,
    /// Event allow / deny lists, renames, property renames ([`Overrides`]).
    #[serde(default)]
    pub overrides: Overrides,
}

/// Why an Amplitude call cannot be built.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AmplitudeError {
    /// Deletion needs `secret_key` in the config.
    DeletionNotConfigured,
    /// The user id to delete is empty.
    EmptyUserId,
}

impl AmplitudeError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            AmplitudeError::DeletionNotConfigured => "amplitude_deletion_not_configured",
            AmplitudeError::EmptyUserId => "amplitude_empty_user_id",
        }
    }
}

impl fmt::Display for AmplitudeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AmplitudeError::DeletionNotConfigured => {
                "Amplitude deletion needs secret_key in the destination config"
            }
            AmplitudeError::EmptyUserId => "the user id to delete is empty",
        })
    }
}

impl std::error::Error for AmplitudeError {}

/// Events and bytes per HTTP V2 request.
pub const LIMITS: Limits = Limits {
    max_events: 2_000,
    // "under 1 MB": read as decimal, the stricter of the two readings.
    max_bytes: 1_000_000,
};

/// Amplitude's minimum id length when `min_id_length` is not set.
pub const DEFAULT_MIN_ID_LENGTH: u32 = 5;

/// How long a throttled user or device waits (Amplitude: "pause … 30 seconds").
pub const THROTTLE_BACKOFF_MS: u64 = 30_000;

/// How long a user or device over its daily quota waits before the next try.
pub const DAILY_QUOTA_BACKOFF_MS: u64 = 3_600_000;

fn host(config: &AmplitudeConfig) -> &str {
    if let Some(host) = &config.api_host {
        return host;
    }
    match config.region {
        Region::Us => "https://api2.amplitude.com",
        Region::Eu => "https://api.eu.amplitude.com",
    }
}

fn page_properties(event: &Event) -> Object {
    let mut p = event.properties.clone().unwrap_or_default();
    let prop = |k: &str| {
        event
            .properties
            .as_ref()?
            .get(k)?
            .as_str()
            .map(str::to_owned)
    };
    let url = prop("url").or_else(|| context_text(event, &["page", "url"]));
    let title = prop("title").or_else(|| context_text(event, &["page", "title"]));
    if let Some(url) = url.as_deref() {
        p.insert(
            "[Amplitude] Page URL".into(),
            url.split('?').next().unwrap_or(url).into(),
        );
        p.insert("[Amplitude] Page Location".into(), url.into());
        if let Some(parts) = split_url(url) {
            p.insert("[Amplitude] Page Domain".into(), parts.host.into());
            p.insert("[Amplitude] Page Path".into(), parts.path.into());
        }
    }
    if let Some(title) = title {
        p.insert("[Amplitude] Page Title".into(), title.into());
    }
    p
}

/// The event body before identity and context: `(event_type, extra fields)`.
fn shape(config: &AmplitudeConfig, event: &Event) -> Result<Object, String> {
    let mut out = Object::new();
    if let Some(m) = super::audience::membership(event) {
        out.insert("event_type".into(), "$identify".into());
        out.insert("user_properties".into(), json!({ "$set": m.flag() }));
        return Ok(out);
    }
    match event.kind {
        EventType::Track => {
            let name = event
                .event
                .as_deref()
                .filter(|n| !n.is_empty())
                .ok_or("track without an event name")?;
            out.insert("event_type".into(), name.into());
            let props = event.properties.clone().unwrap_or_default();
            if name == "Order Completed" {
                if let Some(revenue) = props.get("revenue").or_else(|| props.get("total")) {
                    out.insert("revenue".into(), revenue.clone());
                    out.insert("revenueType".into(), "Purchase".into());
                }
            }
            out.insert("event_properties".into(), props.into());
        }
        EventType::Page => {
            out.insert("event_type".into(), "[Amplitude] Page Viewed".into());
            out.insert("event_properties".into(), page_properties(event).into());
        }
        EventType::Screen => {
            let mut p = event.properties.clone().unwrap_or_default();
            if let Some(n) = &event.name {
                p.insert("[Amplitude] Screen Name".into(), n.as_str().into());
            }
            out.insert("event_type".into(), "[Amplitude] Screen Viewed".into());
            out.insert("event_properties".into(), p.into());
        }
        EventType::Identify => {
            let traits = event
                .traits
                .clone()
                .or_else(|| context_at(event, &["traits"])?.as_object().cloned())
                .unwrap_or_default();
            out.insert("event_type".into(), "$identify".into());
            out.insert("user_properties".into(), json!({ "$set": traits }));
        }
        EventType::Group => {
            let group_type = config
                .group_type
                .as_deref()
                .ok_or("group: no group_type configured")?;
            let group = event.group_id.as_deref().ok_or("group without a groupId")?;
            out.insert("event_type".into(), "$identify".into());
            out.insert("groups".into(), json!({ group_type: group }));
            out.insert(
                "user_properties".into(),
                json!({"$set": { group_type: group }}),
            );
        }
        EventType::Alias => {
            return Err("alias: Amplitude links users through device_id, not aliases".into())
        }
    }
    Ok(out)
}

/// Fields Amplitude reads from `context`.
fn add_context(out: &mut Object, event: &Event) {
    let strings = [
        (&["ip"][..], "ip"),
        (&["os", "name"][..], "os_name"),
        (&["os", "version"][..], "os_version"),
        (&["device", "model"][..], "device_model"),
        (&["device", "manufacturer"][..], "device_manufacturer"),
        (&["device", "brand"][..], "device_brand"),
        (&["app", "version"][..], "app_version"),
        (&["locale"][..], "language"),
        (&["location", "country"][..], "country"),
        (&["location", "region"][..], "region"),
        (&["location", "city"][..], "city"),
        (&["network", "carrier"][..], "carrier"),
    ];
    for (from, to) in strings {
        if let Some(v) = context_text(event, from) {
            out.insert(to.into(), v.into());
        }
    }
    for (from, to) in [
        (&["location", "latitude"][..], "location_lat"),
        (&["location", "longitude"][..], "location_lng"),
    ] {
        if let Some(v) = context_at(event, from).filter(|v| v.is_number()) {
            out.insert(to.into(), v.clone());
        }
    }
    if let Some(session) = context_at(event, &["sessionId"]).and_then(Value::as_i64) {
        out.insert("session_id".into(), session.into());
    }
    // A page context means a browser; otherwise the OS says, and nothing is guessed.
    let platform = if context_at(event, &["page"]).is_some() {
        Some("Web".to_owned())
    } else {
        context_text(event, &["os", "name"])
    };
    if let Some(platform) = platform {
        out.insert("platform".into(), platform.into());
    }
}

fn map(config: &AmplitudeConfig, event: &Event, now_ms: i64) -> Result<Value, String> {
    let min = config.min_id_length.unwrap_or(DEFAULT_MIN_ID_LENGTH) as usize;
    for (field, id) in [
        ("userId", &event.user_id),
        ("anonymousId", &event.anonymous_id),
    ] {
        if let Some(id) = id.as_deref().filter(|id| id.chars().count() < min) {
            return Err(format!(
                "{field} {id:?} is shorter than Amplitude's min_id_length {min}"
            ));
        }
    }
    if event.user_id.is_none() && event.anonymous_id.is_none() {
        return Err("Amplitude needs a userId or an anonymousId".into());
    }
    let mut out = shape(config, event)?;
    if let Some(u) = &event.user_id {
        out.insert("user_id".into(), u.as_str().into());
    }
    if let Some(a) = &event.anonymous_id {
        out.insert("device_id".into(), a.as_str().into());
    }
    out.insert("time".into(), time_or_now(event, now_ms).into());
    let insert_id = if event.message_id.is_empty() {
        // Stable across re-sends, so Amplitude's 7-day dedup still holds.
        common::hex(&common::stable_hash(
            serde_json::to_string(event).unwrap_or_default().as_bytes(),
        ))
    } else {
        event.message_id.clone()
    };
    out.insert("insert_id".into(), insert_id.into());
    add_context(&mut out, event);
    Ok(out.into())
}

/// The body frame: `{"api_key":…,"events":[…]}` plus `options` when set.
fn frame(config: &AmplitudeConfig) -> (Vec<u8>, Vec<u8>) {
    let mut prefix = to_bytes(&json!({ "api_key": config.api_key }));
    prefix.pop(); // the closing brace
    prefix.extend_from_slice(b",\"events\":[");
    let suffix = match config.min_id_length {
        Some(n) => format!("],\"options\":{{\"min_id_length\":{n}}}}}").into_bytes(),
        None => b"]}".to_vec(),
    };
    (prefix, suffix)
}

impl Destination for Amplitude {
    const NAME: &'static str = "Amplitude";
    const KIND: &'static str = "amplitude";
    const PURPOSES: &'static [Purpose] = &[Purpose::Analytics];
    type Config = AmplitudeConfig;

    fn limits(_config: &AmplitudeConfig) -> Limits {
        LIMITS
    }

    fn overrides(config: &AmplitudeConfig) -> &Overrides {
        &config.overrides
    }

    fn encode(config: &AmplitudeConfig, events: &[Event], now_ms: i64) -> Encoded {
        let (prefix, suffix) = frame(config);
        let target = Target {
            url: format!("{}/2/httpapi", host(config)),
            headers: headers(&[("Content-Type", "application/json"), ("Accept", "*/*")]),
            framing: Framing {
                prefix: &prefix,
                separator: b",",
                suffix: &suffix,
            },
        };
        batching::encode_each::<Self>(config, events, &target, |event| {
            map(config, event, now_ms).map_err(|reason| Verdict::Skipped { reason })
        })
    }

    fn classify(
        _config: &AmplitudeConfig,
        request: &HttpRequest,
        answer: &HttpAnswer,
    ) -> Vec<Verdict> {
        let n = request.events.len();
        let body: Value = serde_json::from_str(&answer.body).unwrap_or(Value::Null);
        let error = batching::str_at(&body, "error").unwrap_or("");
        match answer.status {
            400 => classify_invalid(n, &body, error, answer),
            429 => classify_throttled(n, &body, request, answer),
            _ => batching::status_verdicts(
                answer,
                batching::status_reason("Amplitude", answer, error),
                n,
            ),
        }
    }
}

/// Indices of a `{field: [index, …]}` map, with the field each came from.
fn indexed_fields(body: &Value, key: &str, what: &str, into: &mut Vec<(usize, String)>) {
    for (field, indices) in body
        .get(key)
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        for i in indices
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_u64)
        {
            if let Ok(i) = usize::try_from(i) {
                into.push((i, format!("{what} `{field}`")));
            }
        }
    }
}

fn classify_invalid(n: usize, body: &Value, error: &str, answer: &HttpAnswer) -> Vec<Verdict> {
    let mut bad = Vec::new();
    indexed_fields(body, "events_with_invalid_fields", "invalid", &mut bad);
    indexed_fields(body, "events_with_missing_fields", "missing", &mut bad);
    indexed_fields(body, "events_missing_required_fields", "missing", &mut bad);
    bad.retain(|(i, _)| *i < n);
    if bad.is_empty() {
        let detail = if error.is_empty() {
            batching::excerpt(&answer.body)
        } else {
            error
        };
        return vec![
            Verdict::Permanent {
                reason: format!("Amplitude answered 400: {detail}"),
            };
            n
        ];
    }
    // Amplitude ingested nothing: the valid events are re-sent without the bad ones.
    let mut verdicts = vec![
        Verdict::Retry {
            after_ms: None,
            reason: "re-send: Amplitude rejected the batch for other events".into(),
        };
        n
    ];
    for (i, why) in bad {
        let reason = match &verdicts[i] {
            Verdict::Permanent { reason } => format!("{reason}, {why}"),
            _ => format!("Amplitude rejected the event ({error}): {why}"),
        };
        verdicts[i] = Verdict::Permanent { reason };
    }
    verdicts
}

fn classify_throttled(
    n: usize,
    body: &Value,
    request: &HttpRequest,
    answer: &HttpAnswer,
) -> Vec<Verdict> {
    let keys = |k: &str| -> BTreeSet<String> {
        body.get(k)
            .and_then(Value::as_object)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    };
    let (quota_users, quota_devices) = (
        keys("exceeded_daily_quota_users"),
        keys("exceeded_daily_quota_devices"),
    );
    let (throttled_users, throttled_devices) = (keys("throttled_users"), keys("throttled_devices"));
    let throttled_events: BTreeSet<u64> = body
        .get("throttled_events")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default();
    // A 429 that names no one throttles the whole request.
    let everyone = throttled_events.is_empty()
        && throttled_users.is_empty()
        && throttled_devices.is_empty()
        && quota_users.is_empty()
        && quota_devices.is_empty();
    let sent: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
    let sent = sent.get("events").and_then(Value::as_array);
    let wait = |base: u64| Some(answer.retry_after_ms.map_or(base, |r| r.max(base)));
    (0..n)
        .map(|i| {
            let event = sent.and_then(|s| s.get(i));
            let id = |k: &str| {
                event
                    .and_then(|e| batching::str_at(e, k))
                    .map(str::to_owned)
            };
            let (user, device) = (id("user_id"), id("device_id"));
            let over_quota = user.as_ref().is_some_and(|u| quota_users.contains(u))
                || device.as_ref().is_some_and(|d| quota_devices.contains(d));
            let throttled = everyone
                || throttled_events.contains(&(i as u64))
                || user.as_ref().is_some_and(|u| throttled_users.contains(u))
                || device
                    .as_ref()
                    .is_some_and(|d| throttled_devices.contains(d));
            if over_quota {
                Verdict::Retry {
                    after_ms: wait(DAILY_QUOTA_BACKOFF_MS),
                    reason: "Amplitude: user or device over its daily event quota".into(),
                }
            } else if throttled {
                Verdict::Retry {
                    after_ms: wait(THROTTLE_BACKOFF_MS),
                    reason: "Amplitude throttled this user or device (429)".into(),
                }
            } else {
                Verdict::Retry {
                    after_ms: None,
                    reason: "re-send: Amplitude throttled other users in the batch".into(),
                }
            }
        })
        .collect()
}

impl Amplitude {
    /// The User Privacy API (v1) deletion of `user_id`'s data in the project.
    pub fn delete_request(
        config: &AmplitudeConfig,
        user_id: &str,
    ) -> Result<HttpRequest, AmplitudeError> {
        let secret = config
            .secret_key
            .as_deref()
            .filter(|s| !s.is_empty())
            .ok_or(AmplitudeError::DeletionNotConfigured)?;
        if user_id.trim().is_empty() {
            return Err(AmplitudeError::EmptyUserId);
        }
        let host = match (&config.api_host, config.region) {
            (Some(host), _) => host.as_str(),
            (None, Region::Us) => "https://amplitude.com",
            (None, Region::Eu) => "https://analytics.eu.amplitude.com",
        };
        let mut body = json!({"user_ids": [user_id], "ignore_invalid_id": "True"});
        if let Some(requester) = &config.deletion_requester {
            body["requester"] = requester.as_str().into();
        }
        Ok(HttpRequest {
            method: "POST",
            url: format!("{host}/api/2/deletions/users"),
            headers: headers(&[
                ("Content-Type", "application/json"),
                ("Authorization", &basic_auth(&config.api_key, secret)),
            ]),
            body: to_bytes(&body),
            events: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_audience_change_is_an_identify_setting_its_flag() {
        let config: AmplitudeConfig = serde_json::from_value(json!({"api_key": "k"})).unwrap();
        let events: Vec<Event> = serde_json::from_value(json!([
            {"type": "track", "messageId": "aud-1", "anonymousId": "device-1", "event": "Audience Entered",
             "timestamp": "2026-01-01T00:00:00.000Z", "properties": {"audience": "vip", "traits": {"views": 3}}},
            {"type": "track", "messageId": "aud-2", "userId": "user-1", "event": "Audience Exited",
             "timestamp": "2026-01-01T00:00:01.000Z", "properties": {"audience": "vip"}},
        ]))
        .unwrap();
        let encoded = Amplitude::encode(&config, &events, 0);
        assert!(encoded.skipped.is_empty(), "{:?}", encoded.skipped);
        let body: Value = serde_json::from_slice(&encoded.requests[0].body).unwrap();
        assert_eq!(
            encoded.requests[0].url,
            "https://api2.amplitude.com/2/httpapi"
        );
        assert_eq!(
            body,
            json!({"api_key": "k", "events": [
                {"event_type": "$identify", "user_properties": {"$set": {"vip": true}},
                 "device_id": "device-1", "time": 1_767_225_600_000_i64, "insert_id": "aud-1"},
                {"event_type": "$identify", "user_properties": {"$set": {"vip": false}},
                 "user_id": "user-1", "time": 1_767_225_601_000_i64, "insert_id": "aud-2"}
            ]})
        );
    }

    #[test]
    fn a_429_naming_no_one_backs_off_the_whole_request() {
        let config: AmplitudeConfig = serde_json::from_value(json!({"api_key": "k"})).unwrap();
        let events: Vec<Event> = serde_json::from_value(json!([
            {"type": "track", "messageId": "m1", "userId": "user-1", "event": "A"},
            {"type": "track", "messageId": "m2", "userId": "user-2", "event": "B"},
        ]))
        .unwrap();
        let encoded = Amplitude::encode(&config, &events, 0);
        let answer = HttpAnswer {
            status: 429,
            retry_after_ms: None,
            body: r#"{"code":429,"error":"Too many requests"}"#.into(),
        };
        let verdicts = Amplitude::classify(&config, &encoded.requests[0], &answer);
        assert!(
            verdicts.iter().all(|v| matches!(
                v,
                Verdict::Retry {
                    after_ms: Some(THROTTLE_BACKOFF_MS),
                    ..
                }
            )),
            "{verdicts:?}"
        );
    }
}
