//! Segment Spec events and the batch envelope, as real clients send them.
//!
//! Every field of the Segment Spec is typed; anything else (`channel`,
//! `_metadata`, vendor fields) is kept in `extra` and written back unchanged.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

/// A JSON object, as used for `properties`, `traits`, `context`, `integrations`.
pub type Object = Map<String, Value>;

/// The six Segment Spec calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventType {
    Track,
    Page,
    Screen,
    Identify,
    Group,
    Alias,
}

impl EventType {
    /// Every type, in Spec order.
    pub const ALL: [EventType; 6] = [
        EventType::Track,
        EventType::Page,
        EventType::Screen,
        EventType::Identify,
        EventType::Group,
        EventType::Alias,
    ];

    /// The wire name (`"track"`, `"page"`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Track => "track",
            EventType::Page => "page",
            EventType::Screen => "screen",
            EventType::Identify => "identify",
            EventType::Group => "group",
            EventType::Alias => "alias",
        }
    }

    /// From a wire name, also accepting analytics.js's one-letter short paths (`t`, `p`, …).
    pub fn from_name(name: &str) -> Option<EventType> {
        EventType::ALL
            .into_iter()
            .find(|t| t.as_str() == name || (name.len() == 1 && t.as_str().starts_with(name)))
    }
}

/// One Segment Spec event. Unknown fields are kept in `extra` and written back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    #[serde(rename = "type")]
    pub kind: EventType,
    /// Unique per event; the dedup key. Empty when the client sent none (the
    /// collector then derives one from the event's bytes).
    #[serde(default, deserialize_with = "id_string")]
    pub message_id: String,
    #[serde(
        default,
        deserialize_with = "opt_id",
        skip_serializing_if = "Option::is_none"
    )]
    pub anonymous_id: Option<String>,
    #[serde(
        default,
        deserialize_with = "opt_id",
        skip_serializing_if = "Option::is_none"
    )]
    pub user_id: Option<String>,
    /// The action, for `track`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    /// Page or screen name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Page or screen category.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub properties: Option<Object>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traits: Option<Object>,
    #[serde(
        default,
        deserialize_with = "opt_id",
        skip_serializing_if = "Option::is_none"
    )]
    pub group_id: Option<String>,
    #[serde(
        default,
        deserialize_with = "opt_id",
        skip_serializing_if = "Option::is_none"
    )]
    pub previous_id: Option<String>,
    /// When the event happened. After the collector's clock-skew correction,
    /// the corrected time; the client's own reading is in `original_timestamp`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_timestamp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_at: Option<String>,
    /// Set by the collector, never trusted from the client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub received_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<Object>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integrations: Option<Object>,
    /// Fields this version does not model, preserved as they came.
    #[serde(flatten)]
    pub extra: Object,
}

impl Event {
    /// A minimal event of `kind` with `message_id`; everything else empty.
    pub fn new(kind: EventType, message_id: impl Into<String>) -> Event {
        Event {
            kind,
            message_id: message_id.into(),
            anonymous_id: None,
            user_id: None,
            event: None,
            name: None,
            category: None,
            properties: None,
            traits: None,
            group_id: None,
            previous_id: None,
            timestamp: None,
            original_timestamp: None,
            sent_at: None,
            received_at: None,
            context: None,
            integrations: None,
            extra: Object::new(),
        }
    }

    /// `context.<key>`, if present.
    pub fn context_value(&self, key: &str) -> Option<&Value> {
        self.context.as_ref()?.get(key)
    }

    /// Treat empty-string ids (RudderStack sends `"userId": ""`) as absent.
    pub fn normalize_ids(&mut self) {
        for id in [
            &mut self.user_id,
            &mut self.anonymous_id,
            &mut self.group_id,
            &mut self.previous_id,
        ] {
            if id.as_deref().is_some_and(|s| s.trim().is_empty()) {
                *id = None;
            }
        }
    }

    /// The event's `context`, created empty if missing.
    pub fn context_mut(&mut self) -> &mut Object {
        self.context.get_or_insert_with(Object::new)
    }
}

/// The batch envelope: `{ batch: [...], sentAt, writeKey?, context?, integrations? }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Batch {
    pub batch: Vec<Event>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write_key: Option<String>,
    /// Context shared by every event of the batch (an event's own keys win).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<Object>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integrations: Option<Object>,
    /// `_metadata` and other envelope fields, preserved.
    #[serde(flatten)]
    pub extra: Object,
}

/// Ids may be sent as numbers by some server libraries; they are stored as text.
pub(crate) fn opt_id<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(other) => Err(serde::de::Error::custom(format_args!(
            "an id must be a string or a number, got {}",
            kind_of(&other)
        ))),
    }
}

fn id_string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    opt_id(d).map(Option::unwrap_or_default)
}

/// The JSON kind of a value, for error messages (`"string"`, `"number"`, …).
pub fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_fields_survive_a_round_trip() {
        let raw = r#"{"type":"track","messageId":"m1","anonymousId":"a","event":"E","channel":"web","_metadata":{"bundled":[]}}"#;
        let ev: Event = serde_json::from_str(raw).unwrap();
        assert_eq!(ev.kind, EventType::Track);
        assert_eq!(ev.extra.get("channel"), Some(&Value::from("web")));
        let back: Value = serde_json::to_value(&ev).unwrap();
        assert_eq!(back, serde_json::from_str::<Value>(raw).unwrap());
    }

    #[test]
    fn numeric_ids_are_kept_as_text() {
        let ev: Event =
            serde_json::from_str(r#"{"type":"identify","messageId":7,"userId":12345}"#).unwrap();
        assert_eq!(ev.user_id.as_deref(), Some("12345"));
        assert_eq!(ev.message_id, "7");
        let err = serde_json::from_str::<Event>(r#"{"type":"identify","userId":[1]}"#).unwrap_err();
        assert!(err.to_string().contains("got array"), "{err}");
    }

    #[test]
    fn short_path_names_map_to_types() {
        assert_eq!(EventType::from_name("t"), Some(EventType::Track));
        assert_eq!(EventType::from_name("a"), Some(EventType::Alias));
        assert_eq!(EventType::from_name("screen"), Some(EventType::Screen));
        assert_eq!(EventType::from_name("b"), None);
        assert_eq!(EventType::from_name("x"), None);
    }
}
