//! Mixpanel: events to the Import API, identify to profile `$set`.
//!
//! | Segment call | Mixpanel |
//! | --- | --- |
//! | track | the event, same name and properties, to `/import?strict=1` |
//! | page | `$mp_web_page_view` with `$current_url`, `current_page_title`, `current_domain`, `current_url_path`, `current_url_search` |
//! | screen | `Loaded a Screen` with `name` |
//! | identify | profile `$set` to `/engage` (a separate request); traits `email`, `name`, `firstName`, `lastName`, `phone`, `avatar`, `createdAt`, `username` become `$email`, `$name`, … |
//! | `Audience Entered` / `Audience Exited` with a userId | profile `$set` of `{<audience>: true / false}` to `/engage` ([`super::audience`]); without a userId, imported as a track event |
//! | alias | `$merge` of `previousId` and `userId` (original ID merge only; with simplified ID merge Mixpanel links ids through `$device_id` / `$user_id` on every event) |
//! | group | group profile `$set` of the traits to `/groups` under the configured `group_key` (skipped without one) |
//!
//! Every event carries `time` (ms), `$insert_id` (the messageId when it fits
//! Mixpanel's 36 alphanumeric-or-dash characters, else a stable hash of it)
//! and `distinct_id` (userId, else the anonymousId; under simplified ID merge
//! `$device:<anonymousId>`, with `$device_id` / `$user_id`). Limits: 2,000
//! events and 10 MB uncompressed per `/import` request; 2,000 updates per
//! `/engage` request. Strict mode names each failed record: those are
//! permanent with Mixpanel's message, the rest of the batch was ingested.

use super::batching::{self, basic_auth, headers, to_bytes, Framing, Target};
use super::common::{self, context_text, time_or_now, Overrides};
use super::url::split_url;
use super::{Destination, Encoded, HttpAnswer, HttpRequest, Limits, Verdict};
use crate::consent::Purpose;
use crate::{Event, EventType, Object};
use serde::Deserialize;
use serde_json::{json, Value};
use std::fmt;

/// The Mixpanel destination.
pub struct Mixpanel;

/// Data residency: which Mixpanel cluster the project lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Region {
    #[default]
    Us,
    Eu,
    In,
}

impl Region {
    fn ingest_host(self) -> &'static str {
        match self {
            Region::Us => "https://api.mixpanel.com",
            Region::Eu => "https://api-eu.mixpanel.com",
            Region::In => "https://api-in.mixpanel.com",
        }
    }

    fn app_host(self) -> &'static str {
        match self {
            Region::Us => "https://mixpanel.com",
            Region::Eu => "https://eu.mixpanel.com",
            Region::In => "https://in.mixpanel.com",
        }
    }
}

/// A service account (`/import` with `project_id`), instead of the project token.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceAccount {
    pub username: String,
    pub secret: String,
    pub project_id: String,
}

/// `kind = "mixpanel"` in `SLUICE_DESTINATIONS`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MixpanelConfig {
    /// The project token (profiles always need it; `/import` uses it as
    /// Basic-auth user unless a service account is given).
    pub project_token: String,
    #[serde(default)]
    pub region: Region,
    /// Send every call (events, profiles, deletions) to this base URL instead
    /// of the region's Mixpanel hosts: a proxy, or a local stub in tests.
    #[serde(default, deserialize_with = "crate::dest::url::opt_base_url")]
    pub api_host: Option<String>,
    #[serde(default)]
    pub service_account: Option<ServiceAccount>,
    /// The project uses Simplified ID Merge (Mixpanel's default for new projects).
    #[serde(default = "yes")]
    pub simplified_id_merge: bool,
    /// GDPR OAuth token, for data-subject deletion requests.
    #[serde(default)]
    pub gdpr_oauth_token: Option<String>,
    /// The group key (`"company_id"`) `group` calls update group profiles of;
    /// unset: group calls are skipped.
    #[serde(default)]
    pub group_key: Option<String>,
    /// Event allow / deny lists, renames, property renames ([`Overrides`]).
    #[serde(default)]
    pub overrides: Overrides,
}

fn yes() -> bool {
    true
}

/// Why a Mixpanel call cannot be built.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MixpanelError {
    /// Deletion needs `gdpr_oauth_token` in the config.
    DeletionNotConfigured,
    /// The user id to delete is empty.
    EmptyUserId,
}

impl MixpanelError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            MixpanelError::DeletionNotConfigured => "mixpanel_deletion_not_configured",
            MixpanelError::EmptyUserId => "mixpanel_empty_user_id",
        }
    }
}

impl fmt::Display for MixpanelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MixpanelError::DeletionNotConfigured => {
                "Mixpanel deletion needs gdpr_oauth_token in the destination config"
            }
            MixpanelError::EmptyUserId => "the user id to delete is empty",
        })
    }
}

impl std::error::Error for MixpanelError {}

/// Events per `/import` request and its uncompressed size.
pub const IMPORT_LIMITS: Limits = Limits {
    max_events: 2_000,
    max_bytes: 10 * 1024 * 1024,
};

/// Updates per `/engage` or `/groups` request (each at most 1 MB).
pub const ENGAGE_LIMITS: Limits = Limits {
    max_events: 2_000,
    max_bytes: 10 * 1024 * 1024,
};

/// Segment trait → Mixpanel reserved profile property.
const RESERVED_TRAITS: &[(&str, &str)] = &[
    ("email", "$email"),
    ("name", "$name"),
    ("firstName", "$first_name"),
    ("first_name", "$first_name"),
    ("lastName", "$last_name"),
    ("last_name", "$last_name"),
    ("phone", "$phone"),
    ("avatar", "$avatar"),
    ("createdAt", "$created"),
    ("created_at", "$created"),
    ("username", "$username"),
];

/// `context.campaign` key → Mixpanel's UTM property.
const CAMPAIGN: &[(&str, &str)] = &[
    ("source", "utm_source"),
    ("medium", "utm_medium"),
    ("name", "utm_campaign"),
    ("term", "utm_term"),
    ("content", "utm_content"),
];

/// Mixpanel's `$insert_id`: the messageId when it is 1–36 ASCII letters,
/// digits or dashes, else 32 hex characters of a stable hash of it.
pub fn insert_id(event: &Event) -> String {
    let id = event.message_id.as_str();
    if !id.is_empty()
        && id.len() <= 36
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return id.to_owned();
    }
    let seed = if id.is_empty() {
        serde_json::to_string(event).unwrap_or_default()
    } else {
        id.to_owned()
    };
    common::hex(&common::stable_hash(seed.as_bytes()))
}

enum Mapped {
    Import(Value),
    Engage(Value),
    Groups(Value),
    Skip(String),
}

fn distinct_id(config: &MixpanelConfig, event: &Event) -> String {
    match (&event.user_id, &event.anonymous_id) {
        (Some(u), _) => u.clone(),
        (None, Some(a)) if config.simplified_id_merge => format!("$device:{a}"),
        (None, Some(a)) => a.clone(),
        (None, None) => String::new(),
    }
}

/// What every event carries, over the event's own properties.
fn event_properties(config: &MixpanelConfig, event: &Event, now_ms: i64) -> Object {
    let mut p = event.properties.clone().unwrap_or_default();
    let mut fill = |k: &str, v: Value| {
        p.entry(k.to_owned()).or_insert(v);
    };
    if let Some(ip) = context_text(event, &["ip"]) {
        fill("ip", ip.into());
    }
    if let Some(url) = context_text(event, &["page", "url"]) {
        fill("$current_url", url.into());
    }
    if let Some(r) = context_text(event, &["page", "referrer"]) {
        fill("$referrer", r.into());
    }
    for (from, to) in CAMPAIGN {
        if let Some(v) = context_text(event, &["campaign", from]) {
            fill(to, v.into());
        }
    }
    if let Some(os) = context_text(event, &["os", "name"]) {
        fill("$os", os.into());
    }
    for (from, to) in [("width", "$screen_width"), ("height", "$screen_height")] {
        if let Some(v) = common::context_at(event, &["screen", from]) {
            fill(to, v.clone());
        }
    }
    fill("mp_lib", "sluice".into());
    p.insert("time".into(), time_or_now(event, now_ms).into());
    p.insert("distinct_id".into(), distinct_id(config, event).into());
    p.insert("$insert_id".into(), insert_id(event).into());
    if config.simplified_id_merge {
        if let Some(a) = &event.anonymous_id {
            p.insert("$device_id".into(), a.as_str().into());
        }
        if let Some(u) = &event.user_id {
            p.insert("$user_id".into(), u.as_str().into());
        }
    }
    p
}

fn page_properties(config: &MixpanelConfig, event: &Event, now_ms: i64) -> Object {
    let mut p = event_properties(config, event, now_ms);
    let url = p
        .get("url")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .or_else(|| context_text(event, &["page", "url"]));
    let title = p
        .get("title")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .or_else(|| context_text(event, &["page", "title"]));
    if let Some(url) = url {
        if let Some(parts) = split_url(&url) {
            p.insert("current_domain".into(), parts.host.into());
            p.insert("current_url_path".into(), parts.path.into());
            p.insert(
                "current_url_protocol".into(),
                format!("{}:", parts.scheme).into(),
            );
            p.insert("current_url_search".into(), parts.query.into());
        }
        p.insert("$current_url".into(), url.into());
    }
    if let Some(title) = title {
        p.insert("current_page_title".into(), title.into());
    }
    for (k, v) in [("name", &event.name), ("category", &event.category)] {
        if let Some(v) = v {
            p.entry(k.to_owned()).or_insert(v.as_str().into());
        }
    }
    p
}

fn profile_set(event: &Event) -> Object {
    let mut set = Object::new();
    let traits = event
        .traits
        .as_ref()
        .or_else(|| common::context_at(event, &["traits"]).and_then(Value::as_object));
    for (k, v) in traits.into_iter().flatten() {
        let key = RESERVED_TRAITS
            .iter()
            .find(|(from, _)| from == k)
            .map_or(k.as_str(), |(_, to)| to);
        set.insert(key.to_owned(), v.clone());
    }
    set
}

fn map(config: &MixpanelConfig, event: &Event, now_ms: i64) -> Mapped {
    if let (Some(m), Some(user)) = (super::audience::membership(event), &event.user_id) {
        return Mapped::Engage(json!({
            "$token": config.project_token,
            "$distinct_id": user,
            "$ip": "0",
            "$set": m.flag(),
        }));
    }
    match event.kind {
        EventType::Track => match event.event.as_deref().filter(|n| !n.is_empty()) {
            Some(name) => Mapped::Import(
                json!({"event": name, "properties": event_properties(config, event, now_ms)}),
            ),
            None => Mapped::Skip("track without an event name".into()),
        },
        EventType::Page => Mapped::Import(
            json!({"event": "$mp_web_page_view", "properties": page_properties(config, event, now_ms)}),
        ),
        EventType::Screen => {
            let mut p = event_properties(config, event, now_ms);
            if let Some(n) = &event.name {
                p.entry("name").or_insert(n.as_str().into());
            }
            Mapped::Import(json!({"event": "Loaded a Screen", "properties": p}))
        }
        EventType::Identify => match &event.user_id {
            Some(user) => {
                let mut update = json!({
                    "$token": config.project_token,
                    "$distinct_id": user,
                    "$set": profile_set(event),
                });
                match context_text(event, &["ip"]) {
                    Some(ip) => update["$ip"] = ip.into(),
                    None => update["$ip"] = "0".into(),
                }
                Mapped::Engage(update)
            }
            None => {
                Mapped::Skip("identify without a userId: Mixpanel profiles are per user".into())
            }
        },
        EventType::Alias if config.simplified_id_merge => Mapped::Skip(
            "alias: under Simplified ID Merge Mixpanel links ids by $device_id/$user_id on events"
                .into(),
        ),
        EventType::Alias => match (&event.previous_id, &event.user_id) {
            (Some(prev), Some(user)) => Mapped::Import(json!({
                "event": "$merge",
                "properties": {"$distinct_ids": [prev, user]},
            })),
            _ => Mapped::Skip("alias needs previousId and userId".into()),
        },
        EventType::Group => match (&config.group_key, &event.group_id) {
            (Some(key), Some(group)) => Mapped::Groups(json!({
                "$token": config.project_token,
                "$group_key": key,
                "$group_id": group,
                "$set": event.traits.clone().unwrap_or_default(),
            })),
            (None, _) => {
                Mapped::Skip("group: no group_key configured for Mixpanel group profiles".into())
            }
            (_, None) => Mapped::Skip("group without a groupId".into()),
        },
    }
}

fn import_target(config: &MixpanelConfig) -> Target<'static> {
    let host = config
        .api_host
        .as_deref()
        .unwrap_or(config.region.ingest_host());
    let (url, auth) = match &config.service_account {
        Some(sa) => (
            format!("{host}/import?strict=1&project_id={}", sa.project_id),
            basic_auth(&sa.username, &sa.secret),
        ),
        None => (
            format!("{host}/import?strict=1"),
            basic_auth(&config.project_token, ""),
        ),
    };
    Target {
        url,
        headers: headers(&[
            ("Content-Type", "application/json"),
            ("Authorization", &auth),
        ]),
        framing: Framing::ARRAY,
    }
}

/// `/engage` (user profiles) or `/groups` (group profiles).
fn profile_target(config: &MixpanelConfig, path: &str) -> Target<'static> {
    Target {
        url: format!(
            "{}/{path}?verbose=1",
            config
                .api_host
                .as_deref()
                .unwrap_or(config.region.ingest_host())
        ),
        headers: headers(&[("Content-Type", "application/json")]),
        framing: Framing::ARRAY,
    }
}

impl Destination for Mixpanel {
    const NAME: &'static str = "Mixpanel";
    const KIND: &'static str = "mixpanel";
    const PURPOSES: &'static [Purpose] = &[Purpose::Analytics];
    type Config = MixpanelConfig;

    fn limits(_config: &MixpanelConfig) -> Limits {
        IMPORT_LIMITS
    }

    fn overrides(config: &MixpanelConfig) -> &Overrides {
        &config.overrides
    }

    fn encode(config: &MixpanelConfig, events: &[Event], now_ms: i64) -> Encoded {
        let mut out = Encoded::default();
        let (mut import, mut engage, mut groups) = (Vec::new(), Vec::new(), Vec::new());
        for (i, event) in common::admitted::<Self>(config, events, &mut out.skipped) {
            match map(config, &event, now_ms) {
                Mapped::Import(v) => import.push((i, to_bytes(&v))),
                Mapped::Engage(v) => engage.push((i, to_bytes(&v))),
                Mapped::Groups(v) => groups.push((i, to_bytes(&v))),
                Mapped::Skip(reason) => out.skipped.push((i, Verdict::Skipped { reason })),
            }
        }
        for (items, limits, target) in [
            (&import, IMPORT_LIMITS, import_target(config)),
            (&engage, ENGAGE_LIMITS, profile_target(config, "engage")),
            (&groups, ENGAGE_LIMITS, profile_target(config, "groups")),
        ] {
            let (requests, rejected) = batching::requests_for(items, limits, &target);
            out.requests.extend(requests);
            out.skipped.extend(rejected);
        }
        out.skipped.sort_by_key(|(i, _)| *i);
        out
    }

    fn classify(
        _config: &MixpanelConfig,
        request: &HttpRequest,
        answer: &HttpAnswer,
    ) -> Vec<Verdict> {
        let n = request.events.len();
        let body: Value = serde_json::from_str(&answer.body).unwrap_or(Value::Null);
        let error = batching::str_at(&body, "error").unwrap_or("");
        if request.url.contains("/engage?") || request.url.contains("/groups?") {
            // Profile APIs answer 200 even when they rejected the update: the body says.
            if answer.status != 200 {
                return batching::status_verdicts(
                    answer,
                    batching::status_reason("Mixpanel", answer, error),
                    n,
                );
            }
            let verdict = match body.get("status").and_then(Value::as_i64) {
                Some(1) => Verdict::Delivered,
                _ => Verdict::Permanent {
                    reason: format!(
                        "Mixpanel rejected the profile updates: {}",
                        if error.is_empty() {
                            batching::excerpt(&answer.body)
                        } else {
                            error
                        }
                    ),
                },
            };
            return vec![verdict; n];
        }
        let failed = body.get("failed_records").and_then(Value::as_array);
        match (answer.status, failed) {
            (400, Some(failed)) if !failed.is_empty() => {
                // The other events of the batch were ingested.
                let mut verdicts = vec![Verdict::Delivered; n];
                for record in failed {
                    let index = record.get("index").and_then(Value::as_u64);
                    let Some(slot) = index
                        .and_then(|i| usize::try_from(i).ok())
                        .and_then(|i| verdicts.get_mut(i))
                    else {
                        continue;
                    };
                    let field = batching::str_at(record, "field").unwrap_or("");
                    let message = batching::str_at(record, "message").unwrap_or(error);
                    *slot = Verdict::Permanent {
                        reason: format!("Mixpanel rejected {field}: {message}"),
                    };
                }
                verdicts
            }
            (400, _) => vec![
                Verdict::Permanent {
                    reason: format!("Mixpanel answered 400: {}", batching::excerpt(&answer.body)),
                };
                n
            ],
            _ => batching::status_verdicts(
                answer,
                batching::status_reason("Mixpanel", answer, error),
                n,
            ),
        }
    }
}

impl Mixpanel {
    /// The GDPR deletion call (Mixpanel's data-deletions v3 API) for `user_id`:
    /// deletes the user's events and profile in the project.
    pub fn delete_request(
        config: &MixpanelConfig,
        user_id: &str,
    ) -> Result<HttpRequest, MixpanelError> {
        let token = config
            .gdpr_oauth_token
            .as_deref()
            .filter(|t| !t.is_empty())
            .ok_or(MixpanelError::DeletionNotConfigured)?;
        if user_id.trim().is_empty() {
            return Err(MixpanelError::EmptyUserId);
        }
        Ok(HttpRequest {
            method: "POST",
            url: format!(
                "{}/api/app/data-deletions/v3.0/?token={}",
                config
                    .api_host
                    .as_deref()
                    .unwrap_or(config.region.app_host()),
                config.project_token
            ),
            headers: headers(&[
                ("Content-Type", "application/json"),
                ("Authorization", &format!("Bearer {token}")),
            ]),
            body: to_bytes(&json!({"distinct_ids": [user_id], "compliance_type": "GDPR"})),
            events: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_ids_fit_mixpanels_charset() {
        let mut e = Event::new(EventType::Track, "0a1b-C2");
        assert_eq!(insert_id(&e), "0a1b-C2");
        e.message_id = "ajs-next-1714557890123-5f0adeff-6668-4427".into();
        let derived = insert_id(&e);
        assert_eq!(derived.len(), 32);
        assert!(derived.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(derived, insert_id(&e), "stable across retries");
        e.message_id = "has_underscore".into();
        assert_ne!(insert_id(&e), "has_underscore");
    }

    #[test]
    fn an_audience_change_of_a_user_is_a_profile_set_of_its_flag() {
        let config: MixpanelConfig =
            serde_json::from_value(json!({"project_token": "tok"})).unwrap();
        let mut entered = Event::new(EventType::Track, "aud-1");
        entered.event = Some("Audience Entered".into());
        entered.user_id = Some("u1".into());
        entered.anonymous_id = Some("d1".into());
        entered.properties = json!({"audience": "vip", "traits": {"views": 3}})
            .as_object()
            .cloned();
        let mut exited = entered.clone();
        exited.message_id = "aud-2".into();
        exited.event = Some("Audience Exited".into());
        let mut anonymous = entered.clone();
        anonymous.message_id = "aud-3".into();
        anonymous.user_id = None;
        let out = Mixpanel::encode(&config, &[entered, exited, anonymous], 0);
        assert!(out.skipped.is_empty(), "{:?}", out.skipped);
        let engage = out
            .requests
            .iter()
            .find(|r| r.url.contains("/engage?"))
            .unwrap();
        assert_eq!(engage.url, "https://api.mixpanel.com/engage?verbose=1");
        assert_eq!(engage.events, [0, 1]);
        let body: Value = serde_json::from_slice(&engage.body).unwrap();
        assert_eq!(
            body,
            json!([
                {"$token": "tok", "$distinct_id": "u1", "$ip": "0", "$set": {"vip": true}},
                {"$token": "tok", "$distinct_id": "u1", "$ip": "0", "$set": {"vip": false}}
            ])
        );
        let import = out
            .requests
            .iter()
            .find(|r| r.url.contains("/import?"))
            .unwrap();
        assert_eq!(import.events, [2], "no profile without a user: the event");
        let body: Value = serde_json::from_slice(&import.body).unwrap();
        assert_eq!(body[0]["event"], "Audience Entered");
        assert_eq!(body[0]["properties"]["distinct_id"], "$device:d1");
    }

    #[test]
    fn deletion_needs_its_token() {
        let config: MixpanelConfig = serde_json::from_value(json!({"project_token": "t"})).unwrap();
        assert_eq!(
            Mixpanel::delete_request(&config, "u1").unwrap_err().code(),
            "mixpanel_deletion_not_configured"
        );
        let config = MixpanelConfig {
            gdpr_oauth_token: Some("o".into()),
            ..config
        };
        assert_eq!(
            Mixpanel::delete_request(&config, " ").unwrap_err(),
            MixpanelError::EmptyUserId
        );
    }

    #[test]
    fn unknown_config_fields_are_rejected() {
        let err =
            serde_json::from_value::<MixpanelConfig>(json!({"project_token": "t", "tokn": 1}))
                .unwrap_err();
        assert!(err.to_string().contains("unknown field"), "{err}");
        assert!(
            serde_json::from_value::<MixpanelConfig>(json!({})).is_err(),
            "token required"
        );
    }
}
