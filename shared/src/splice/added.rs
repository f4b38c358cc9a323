//! What the fast lane's pipeline (enrichment, and the decisions noted under
//! `context.sluice`) adds to an event's `context`, kept apart from the
//! event as JSON text for the encoder ([`super::Passed::encode`]) to write.
//!
//! Enrichment's values are the same for most events of a request (one user
//! agent, one page, one address), so they are made once per request as JSON
//! text and shared (`Rc<str>`). Built into each event as `serde_json::Value`
//! trees, encoded and freed, they were most of the collector's CPU per event.
//! A member goes here only where the client sent none under its key (else
//! the pipeline completes the client's value in the event, as without the
//! lane), so a key is never both here and in the event's `context`.

use serde_json::Value;
use std::rc::Rc;

/// A member's value.
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    /// Already JSON text, as `serde_json::to_string` writes it.
    Text(Rc<str>),
    /// A string, to be written as a JSON string.
    Str(Rc<str>),
    /// A fixed string (a code), to be written as a JSON string.
    Code(&'static str),
    /// Any other value.
    Value(Value),
    /// An object of these members, in key order.
    Members(Vec<(&'static str, Json)>),
}

/// The members added to one event's `context`, in key order, if the lane
/// is on; with it off, everything goes into the event.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Added {
    on: bool,
    context: Vec<(&'static str, Json)>,
}

impl Added {
    /// For the fast lane: members the client did not send are kept here.
    pub fn lane() -> Added {
        Added {
            on: true,
            // Enough for what enrichment adds to a browser's event.
            context: Vec::with_capacity(8),
        }
    }

    /// Off: every member goes into the event (what a full decode encodes).
    pub fn off() -> Added {
        Added::default()
    }

    /// Whether members are kept here.
    pub fn is_on(&self) -> bool {
        self.on
    }

    /// The members, in key order.
    pub fn context(&self) -> &[(&'static str, Json)] {
        &self.context
    }

    /// Is there a member `key`?
    pub fn has(&self, key: &str) -> bool {
        self.context.iter().any(|(k, _)| *k == key)
    }

    /// Set `key` (replacing one there).
    #[cfg(feature = "enrich")]
    pub(crate) fn set(&mut self, key: &'static str, value: Json) {
        set_in(&mut self.context, key, value);
    }

    /// Remove `key`.
    #[cfg(feature = "enrich")]
    pub(crate) fn remove(&mut self, key: &str) {
        self.context.retain(|(k, _)| *k != key);
    }

    /// Set `key` in the object member `object` (made if need be).
    #[cfg(feature = "enrich")]
    pub(crate) fn set_within(&mut self, object: &'static str, key: &'static str, value: Json) {
        let at = match self.context.binary_search_by(|(k, _)| k.cmp(&object)) {
            Ok(i) => i,
            Err(i) => {
                self.context
                    .insert(i, (object, Json::Members(Vec::with_capacity(4))));
                i
            }
        };
        match &mut self.context[at].1 {
            Json::Members(members) => set_in(members, key, value),
            other => *other = Json::Members(vec![(key, value)]),
        }
    }
}

/// Insert in key order, replacing a member with the same key (as a map does).
#[cfg(feature = "enrich")]
fn set_in(members: &mut Vec<(&'static str, Json)>, key: &'static str, value: Json) {
    match members.binary_search_by(|(k, _)| k.cmp(&key)) {
        Ok(i) => members[i].1 = value,
        Err(i) => members.insert(i, (key, value)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_are_kept_in_key_order_and_replaced_by_key() {
        let mut a = Added::lane();
        a.set("os", Json::Code("b"));
        a.set("browser", Json::Code("a"));
        a.set_within("sluice", "skew", Json::Code("none"));
        a.set_within("sluice", "consent", Json::Code("full"));
        a.set("os", Json::Code("c"));
        a.remove("browser");
        assert_eq!(
            a.context(),
            [
                ("os", Json::Code("c")),
                (
                    "sluice",
                    Json::Members(vec![
                        ("consent", Json::Code("full")),
                        ("skew", Json::Code("none"))
                    ])
                ),
            ]
        );
        assert!(a.has("sluice") && !a.has("browser"));
    }
}
