//! What travels through the Queue from the collector to the consumer.

use crate::event::Event;
use serde::{Deserialize, Serialize};

/// Largest Queue message the collector writes (the platform's limit is 128 KB).
pub const MAX_MESSAGE_BYTES: usize = 120 * 1024;
/// Most events in one Queue message.
pub const MAX_MESSAGE_EVENTS: usize = 100;

/// One Queue message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum QueueMessage {
    /// An accepted, enriched event to deliver (one per message; still read,
    /// no longer written).
    Event(Box<QueuedEvent>),
    /// Accepted, enriched events of one source, up to [`MAX_MESSAGE_EVENTS`]
    /// and [`MAX_MESSAGE_BYTES`] a message: Queues bill per message, so one
    /// message per request, not per event.
    Events(QueuedBatch),
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

/// Accepted events of one source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueuedBatch {
    pub source: String,
    pub events: Vec<Event>,
}

impl QueueMessage {
    /// The events a message carries, with their source.
    pub fn into_events(self) -> Vec<QueuedEvent> {
        match self {
            QueueMessage::Event(q) => vec![*q],
            QueueMessage::Events(b) => {
                let source = b.source;
                b.events
                    .into_iter()
                    .map(|event| QueuedEvent {
                        source: source.clone(),
                        event,
                    })
                    .collect()
            }
            QueueMessage::Dropped(_) => Vec::new(),
        }
    }
}

/// Pack events, each already serialized as JSON, into `Events` messages
/// within the size and count limits (JSON text, ready to send). An event
/// larger than a message on its own still gets a message of its own.
pub fn pack_events(source: &str, events: &[String]) -> Vec<String> {
    let head = [
        "{\"kind\":\"events\",\"source\":",
        &json_string(source),
        ",\"events\":[",
    ]
    .concat();
    let mut out = Vec::new();
    // Sized for all of it (up to a message), so it is not copied as it grows.
    let all: usize = events.iter().map(|e| e.len() + 1).sum::<usize>() + head.len() + 2;
    let mut current = String::with_capacity(all.min(MAX_MESSAGE_BYTES + head.len() + 2));
    let mut count = 0;
    for e in events {
        if count > 0
            && (count == MAX_MESSAGE_EVENTS || current.len() + e.len() + 3 > MAX_MESSAGE_BYTES)
        {
            current.push_str("]}");
            out.push(std::mem::take(&mut current));
            count = 0;
        }
        if count == 0 {
            current.push_str(&head);
        } else {
            current.push(',');
        }
        current.push_str(e);
        count += 1;
    }
    if count > 0 {
        current.push_str("]}");
        out.push(current);
    }
    out
}

fn json_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
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

    #[test]
    fn events_are_packed_within_the_message_limits_in_order() {
        let event = |i: usize, pad: usize| {
            let mut e = Event::new(EventType::Track, format!("m{i}"));
            e.event = Some("x".repeat(pad));
            serde_json::to_string(&e).unwrap()
        };
        let small: Vec<String> = (0..250).map(|i| event(i, 10)).collect();
        let packed = pack_events("we\"b", &small);
        assert_eq!(packed.len(), 3, "100 + 100 + 50");
        let mut ids = Vec::new();
        for m in &packed {
            let QueueMessage::Events(b) = serde_json::from_str::<QueueMessage>(m).unwrap() else {
                panic!("{m}")
            };
            assert_eq!(b.source, "we\"b");
            ids.extend(b.events.into_iter().map(|e| e.message_id));
        }
        assert_eq!(ids, (0..250).map(|i| format!("m{i}")).collect::<Vec<_>>());
        let big: Vec<String> = (0..10).map(|i| event(i, 30_000)).collect();
        let packed = pack_events("web", &big);
        assert!(
            packed.iter().all(|m| m.len() <= MAX_MESSAGE_BYTES),
            "{:?}",
            packed.iter().map(String::len).collect::<Vec<_>>()
        );
        assert_eq!(
            packed.len(),
            3,
            "four 30 KB events fit in 120 KiB: 4 + 4 + 2"
        );
    }
}
