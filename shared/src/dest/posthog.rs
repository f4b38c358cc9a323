//! PostHog: the batch capture endpoint (`{host}/batch/`).
//!
//! | Segment call | PostHog |
//! | --- | --- |
//! | track | the event, same name, properties as they are |
//! | page | `$pageview` with `$current_url`, `$host`, `$pathname`, `$referrer`, `title` |
//! | screen | `$screen` with `$screen_name` |
//! | identify | `$identify` with `$set` (traits) and `$anon_distinct_id` (the anonymousId, so PostHog merges the two) |
//! | alias | `$create_alias` with `alias` = previousId |
//! | group | `$groupidentify` with `$group_type` (config, default `company`), `$group_key`, `$group_set` |
//!
//! `$ip` is the visitor's (`context.ip`); without it `$geoip_disable` is set,
//! so PostHog does not locate the person at the worker's data centre.
//! `distinct_id` is the userId, else the anonymousId; `uuid` is the
//! messageId when it is a UUID, else a stable UUID derived from it, so a
//! re-sent event keeps its id; `timestamp` is the event's time. PostHog
//! accepts up to 20 MB a request (the count cap, 2,000, is ours). 400 and 401
//! are permanent, 413 splits, 429 and 5xx retry.

use super::batching::{self, headers, to_bytes, Framing, Target};
use super::common::{self, context_text, event_time_rfc3339, Overrides};
use super::url::split_url;
use super::{Destination, Encoded, HttpAnswer, HttpRequest, Limits, Verdict};
use crate::consent::Purpose;
use crate::{Event, EventType, Object};
use serde::Deserialize;
use serde_json::{json, Value};
use std::fmt;

/// The PostHog destination.
pub struct PostHog;

/// `kind = "posthog"` in `SLUICE_DESTINATIONS`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostHogConfig {
    /// The project API key (`phc_…`), sent in the body.
    pub api_key: String,
    /// The ingestion host: `https://us.i.posthog.com`, `https://eu.i.posthog.com` or self-hosted.
    #[serde(deserialize_with = "crate::dest::url::base_url")]
    pub host: String,
    /// The group type `group` calls identify.
    #[serde(default = "company")]
    pub group_type: String,
    /// A personal API key with person write access, for deletions.
    #[serde(default)]
    pub personal_api_key: Option<String>,
    /// The project id, for deletions.
    #[serde(default)]
    pub project_id: Option<String>,
    /// The private API host when it is not the ingestion host without `.i.`
    /// (`https://us.posthog.com` for `https://us.i.posthog.com`).
    #[serde(default, deserialize_with = "crate::dest::url::opt_base_url")]
    pub api_host: Option<String>,
    /// Event allow / deny lists, renames, property renames ([`Overrides`]).
    #[serde(default)]
    pub overrides: Overrides,
}

fn company() -> String {
    "company".into()
}

/// Why a PostHog call cannot be built.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PostHogError {
    /// Deletion needs `personal_api_key` and `project_id` in the config.
    DeletionNotConfigured,
    /// The user id to delete is empty.
    EmptyUserId,
}

impl PostHogError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            PostHogError::DeletionNotConfigured => "posthog_deletion_not_configured",
            PostHogError::EmptyUserId => "posthog_empty_user_id",
        }
    }
}

impl fmt::Display for PostHogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PostHogError::DeletionNotConfigured => {
                "PostHog deletion needs personal_api_key and project_id in the destination config"
            }
            PostHogError::EmptyUserId => "the user id to delete is empty",
        })
    }
}

impl std::error::Error for PostHogError {}

/// 20 MB per request (PostHog's); 2,000 events (ours, to keep requests short).
pub const LIMITS: Limits = Limits {
    max_events: 2_000,
    max_bytes: 20 * 1024 * 1024,
};

fn base(host: &str) -> &str {
    host.trim_end_matches('/')
}

/// The event's `uuid`.
pub fn uuid(event: &Event) -> String {
    if crate::id::is_uuid(&event.message_id) {
        return event.message_id.to_ascii_lowercase();
    }
    let seed = if event.message_id.is_empty() {
        serde_json::to_string(event).unwrap_or_default()
    } else {
        event.message_id.clone()
    };
    common::uuid_from_seed(&seed)
}

fn properties(event: &Event) -> Object {
    let mut p = event.properties.clone().unwrap_or_default();
    let mut fill = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            p.entry(k.to_owned()).or_insert(v.into());
        }
    };
    fill("$ip", context_text(event, &["ip"]));
    fill("$current_url", context_text(event, &["page", "url"]));
    fill("$referrer", context_text(event, &["page", "referrer"]));
    fill("$user_agent", context_text(event, &["userAgent"]));
    fill("$os", context_text(event, &["os", "name"]));
    for k in ["source", "medium", "name", "term", "content"] {
        let to = if k == "name" {
            "utm_campaign".to_owned()
        } else {
            format!("utm_{k}")
        };
        fill(&to, context_text(event, &["campaign", k]));
    }
    if !p.contains_key("$ip") {
        // Sent from a server without the visitor's IP, PostHog would place
        // every person at the worker's data centre.
        p.insert("$geoip_disable".into(), true.into());
    }
    p.insert("$lib".into(), "sluice".into());
    p
}

fn map(config: &PostHogConfig, event: &Event, now_ms: i64) -> Result<Value, String> {
    let distinct = event
        .user_id
        .as_deref()
        .or(event.anonymous_id.as_deref())
        .ok_or("PostHog needs a userId or an anonymousId")?;
    let mut props = properties(event);
    let name = match event.kind {
        EventType::Track => event
            .event
            .clone()
            .filter(|n| !n.is_empty())
            .ok_or("track without an event name")?,
        EventType::Page => {
            let url = event
                .properties
                .as_ref()
                .and_then(|p| p.get("url")?.as_str())
                .map(str::to_owned)
                .or_else(|| context_text(event, &["page", "url"]));
            if let Some(url) = url {
                if let Some(parts) = split_url(&url) {
                    props.insert("$host".into(), parts.host.into());
                    props.insert("$pathname".into(), parts.path.into());
                }
                props.insert("$current_url".into(), url.into());
            }
            if let Some(title) = context_text(event, &["page", "title"]) {
                props.entry("title").or_insert(title.into());
            }
            if let Some(n) = &event.name {
                props.entry("name").or_insert(n.as_str().into());
            }
            "$pageview".into()
        }
        EventType::Screen => {
            if let Some(n) = &event.name {
                props.insert("$screen_name".into(), n.as_str().into());
            }
            "$screen".into()
        }
        EventType::Identify => {
            let traits = event
                .traits
                .clone()
                .or_else(|| common::context_at(event, &["traits"])?.as_object().cloned())
                .unwrap_or_default();
            props.insert("$set".into(), traits.into());
            if let (Some(_), Some(anon)) = (&event.user_id, &event.anonymous_id) {
                props.insert("$anon_distinct_id".into(), anon.as_str().into());
            }
            "$identify".into()
        }
        EventType::Alias => {
            let prev = event
                .previous_id
                .as_deref()
                .ok_or("alias without a previousId")?;
            props.insert("alias".into(), prev.into());
            "$create_alias".into()
        }
        EventType::Group => {
            let group = event.group_id.as_deref().ok_or("group without a groupId")?;
            props.insert("$group_type".into(), config.group_type.as_str().into());
            props.insert("$group_key".into(), group.into());
            props.insert(
                "$group_set".into(),
                event.traits.clone().unwrap_or_default().into(),
            );
            "$groupidentify".into()
        }
    };
    Ok(json!({
        "event": name,
        "distinct_id": distinct,
        "properties": props,
        "timestamp": event_time_rfc3339(event, now_ms),
        "uuid": uuid(event),
    }))
}

impl Destination for PostHog {
    const NAME: &'static str = "PostHog";
    const KIND: &'static str = "posthog";
    const PURPOSES: &'static [Purpose] = &[Purpose::Analytics];
    type Config = PostHogConfig;

    fn limits(_config: &PostHogConfig) -> Limits {
        LIMITS
    }

    fn overrides(config: &PostHogConfig) -> &Overrides {
        &config.overrides
    }

    fn encode(config: &PostHogConfig, events: &[Event], now_ms: i64) -> Encoded {
        let mut prefix = to_bytes(&json!({ "api_key": config.api_key }));
        prefix.pop();
        prefix.extend_from_slice(b",\"batch\":[");
        let target = Target {
            url: format!("{}/batch/", base(&config.host)),
            headers: headers(&[("Content-Type", "application/json")]),
            framing: Framing {
                prefix: &prefix,
                separator: b",",
                suffix: b"]}",
            },
        };
        batching::encode_each::<Self>(config, events, &target, |event| {
            map(config, event, now_ms).map_err(|reason| Verdict::Skipped { reason })
        })
    }

    fn classify(
        _config: &PostHogConfig,
        request: &HttpRequest,
        answer: &HttpAnswer,
    ) -> Vec<Verdict> {
        let body: Value = serde_json::from_str(&answer.body).unwrap_or(Value::Null);
        let detail = batching::str_at(&body, "detail")
            .or_else(|| batching::str_at(&body, "error"))
            .map_or_else(|| batching::excerpt(&answer.body).to_owned(), str::to_owned);
        batching::status_verdicts(
            answer,
            batching::status_reason("PostHog", answer, &detail),
            request.events.len(),
        )
    }
}

impl PostHog {
    /// Delete the person `user_id` is a distinct id of, with their events
    /// (the persons `bulk_delete` API, personal API key).
    pub fn delete_request(
        config: &PostHogConfig,
        user_id: &str,
    ) -> Result<HttpRequest, PostHogError> {
        let (Some(key), Some(project)) = (
            config.personal_api_key.as_deref().filter(|k| !k.is_empty()),
            config.project_id.as_deref().filter(|p| !p.is_empty()),
        ) else {
            return Err(PostHogError::DeletionNotConfigured);
        };
        if user_id.trim().is_empty() {
            return Err(PostHogError::EmptyUserId);
        }
        let api = config
            .api_host
            .clone()
            .unwrap_or_else(|| base(&config.host).replacen(".i.posthog.com", ".posthog.com", 1));
        Ok(HttpRequest {
            method: "POST",
            url: format!(
                "{}/api/projects/{project}/persons/bulk_delete/?delete_events=true",
                base(&api)
            ),
            headers: headers(&[
                ("Content-Type", "application/json"),
                ("Authorization", &format!("Bearer {key}")),
            ]),
            body: to_bytes(&json!({"distinct_ids": [user_id], "delete_events": true})),
            events: Vec::new(),
        })
    }
}
