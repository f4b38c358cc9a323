//! The queue consumer: decode the Queue messages and write them to storage.

use sluice_shared::pipeline::DropCount;
use sluice_shared::{QueueMessage, QueuedEvent};

/// A storage sink that takes a batch of events and writes them idempotently.
#[allow(async_fn_in_trait)]
pub trait EventStore {
    async fn write(&self, events: &[QueuedEvent]) -> Result<(), String>;
    /// Add dropped-event counts.
    async fn count(&self, drops: &[DropCount]) -> Result<(), String>;
}

/// What to do with each message of a queue batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Written: remove it from the queue.
    Ack,
    /// Not written this time: deliver it again later.
    Retry,
    /// Can never be written (undecodable): acknowledge and report it.
    Reject,
}

/// Decode every message and write the decodable ones. Returns one outcome per message, in order.
pub async fn consume(messages: &[String], store: &impl EventStore) -> Vec<Outcome> {
    let mut outcomes = vec![Outcome::Reject; messages.len()];
    let mut events = Vec::new();
    let mut event_pos = Vec::new();
    let mut drops = Vec::new();
    let mut drop_pos = Vec::new();
    for (i, raw) in messages.iter().enumerate() {
        match serde_json::from_str::<QueueMessage>(raw) {
            Ok(QueueMessage::Event(ev)) => {
                events.push(*ev);
                event_pos.push(i);
            }
            Ok(QueueMessage::Dropped(d)) => {
                drops.push(d);
                drop_pos.push(i);
            }
            Err(_) => {}
        }
    }
    if !events.is_empty() {
        let outcome = if store.write(&events).await.is_ok() {
            Outcome::Ack
        } else {
            Outcome::Retry
        };
        for i in event_pos {
            outcomes[i] = outcome;
        }
    }
    if !drops.is_empty() {
        let outcome = if store.count(&drops).await.is_ok() {
            Outcome::Ack
        } else {
            Outcome::Retry
        };
        for i in drop_pos {
            outcomes[i] = outcome;
        }
    }
    outcomes
}
