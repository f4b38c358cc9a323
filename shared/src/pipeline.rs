//! What travels through the Queue from the collector to the consumer.

use crate::event::Event;
use serde::{Deserialize, Serialize};

/// One Queue message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum QueueMessage {
    /// An accepted, enriched event to deliver.
    Event(Box<QueuedEvent>),
    /// Events the collector did not keep (no consent, bot policy), counted
    /// per source, reason and day. They carry no event data.
    Dropped(DropCount),
}

/// An accepted event and the source it came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueuedEvent {
    pub source: String,
    pub event: Event,
}

/// A count of dropped events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DropCount {
    pub source: String,
    /// Why (`consent_required`, `bot`, `suppressed`, …).
    pub reason: String,
    /// UTC day, `YYYY-MM-DD`.
    pub day: String,
    pub count: u32,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::EventType;

    #[test]
    fn messages_are_tagged_and_round_trip() {
        let m = QueueMessage::Event(Box::new(QueuedEvent {
            source: "web".into(),
            event: Event::new(EventType::Page, "m1"),
        }));
        let text = serde_json::to_string(&m).unwrap();
        assert!(
            text.starts_with(r#"{"kind":"event","source":"web","event":{"type":"page""#),
            "{text}"
        );
        assert_eq!(serde_json::from_str::<QueueMessage>(&text).unwrap(), m);
        let d = QueueMessage::Dropped(DropCount {
            source: "web".into(),
            reason: "bot".into(),
            day: "2024-05-01".into(),
            count: 3,
        });
        assert_eq!(
            serde_json::from_str::<QueueMessage>(&serde_json::to_string(&d).unwrap()).unwrap(),
            d
        );
    }
}
