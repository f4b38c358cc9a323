//! Per-destination overrides, applied before a vendor maps an event: which
//! events go (allow / deny lists), event renames, and property renames
//! (`"properties": {"revenue": "value"}`).
//!
//! An event is named by its `event` for `track` and by its type otherwise
//! (`page`, `screen`, `identify`, `group`, `alias`), so `"deny": ["identify"]`
//! keeps profiles out of a destination. A denied event is skipped with a
//! reason, never retried.

use super::Verdict;
use crate::{Event, EventType};
use serde::Deserialize;
use std::collections::BTreeMap;

/// The overrides of one destination (all optional; unknown fields rejected).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Overrides {
    /// Only these events (empty: every event).
    #[serde(default)]
    pub allow: Vec<String>,
    /// Never these events.
    #[serde(default)]
    pub deny: Vec<String>,
    /// Event renames, before the vendor's own mapping (`"Signed Up": "Lead"`).
    #[serde(default)]
    pub rename: BTreeMap<String, String>,
    /// Property renames (`"revenue": "value"`), in `properties` and `traits`.
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
}

/// The name allow / deny / rename match on.
pub fn name_of(e: &Event) -> &str {
    match (e.kind, e.event.as_deref()) {
        (EventType::Track, Some(name)) => name,
        (kind, _) => kind.as_str(),
    }
}

/// The events that go, as they go, with their index in `events`; and the
/// skipped ones with why.
pub struct Applied {
    pub events: Vec<Event>,
    pub indices: Vec<usize>,
    pub skipped: Vec<(usize, Verdict)>,
}

impl Overrides {
    /// Whether nothing is overridden.
    pub fn is_empty(&self) -> bool {
        self == &Overrides::default()
    }

    pub fn apply(&self, events: &[Event]) -> Applied {
        let mut out = Applied {
            events: Vec::with_capacity(events.len()),
            indices: Vec::with_capacity(events.len()),
            skipped: Vec::new(),
        };
        for (i, e) in events.iter().enumerate() {
            let name = name_of(e);
            if self.deny.iter().any(|d| d == name)
                || (!self.allow.is_empty() && !self.allow.iter().any(|a| a == name))
            {
                out.skipped.push((
                    i,
                    Verdict::Skipped {
                        reason: ["`", name, "` is filtered out by the destination's config"]
                            .concat(),
                    },
                ));
                continue;
            }
            let mut e = e.clone();
            if let (EventType::Track, Some(to)) = (e.kind, self.rename.get(name)) {
                e.event = Some(to.clone());
            }
            for object in [e.properties.as_mut(), e.traits.as_mut()]
                .into_iter()
                .flatten()
            {
                for (from, to) in &self.properties {
                    if let Some(v) = object.remove(from) {
                        object.insert(to.clone(), v);
                    }
                }
            }
            out.events.push(e);
            out.indices.push(i);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn track(name: &str) -> Event {
        let mut e = Event::new(EventType::Track, name);
        e.event = Some(name.into());
        e.properties = serde_json::json!({"revenue": 9, "sku": "a"})
            .as_object()
            .cloned();
        e
    }

    #[test]
    fn lists_filter_renames_rename_and_indices_point_back() {
        let o: Overrides = serde_json::from_value(serde_json::json!({
            "deny": ["identify", "Debug"],
            "rename": {"Signed Up": "Lead"},
            "properties": {"revenue": "value"}
        }))
        .unwrap();
        let events = [
            track("Signed Up"),
            Event::new(EventType::Identify, "i"),
            track("Debug"),
            track("Order Completed"),
        ];
        let applied = o.apply(&events);
        assert_eq!(applied.indices, [0, 3]);
        assert_eq!(applied.events[0].event.as_deref(), Some("Lead"));
        let props = applied.events[1].properties.as_ref().unwrap();
        assert_eq!(props.get("value"), Some(&serde_json::json!(9)));
        assert!(!props.contains_key("revenue"));
        assert_eq!(
            applied.skipped.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
            [1, 2]
        );

        let allow: Overrides =
            serde_json::from_value(serde_json::json!({"allow": ["page"]})).unwrap();
        let only = allow.apply(&[track("X"), Event::new(EventType::Page, "p")]);
        assert_eq!(only.indices, [1]);
        assert!(serde_json::from_value::<Overrides>(serde_json::json!({"alow": []})).is_err());
        assert!(Overrides::default().is_empty());
    }
}
