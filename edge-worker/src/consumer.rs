//! The queue consumer: decode the queued events and write them to storage.

use sluice_shared::QueuedEvent;

/// A storage sink that takes a batch of events and writes them idempotently.
#[allow(async_fn_in_trait)]
pub trait EventStore {
    async fn write(&self, events: &[QueuedEvent]) -> Result<(), String>;
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
    let mut events = Vec::with_capacity(messages.len());
    let mut positions = Vec::with_capacity(messages.len());
    for (i, raw) in messages.iter().enumerate() {
        if let Ok(ev) = serde_json::from_str::<QueuedEvent>(raw) {
            events.push(ev);
            positions.push(i);
        }
    }
    if events.is_empty() {
        return outcomes;
    }
    let outcome = match store.write(&events).await {
        Ok(()) => Outcome::Ack,
        Err(_) => Outcome::Retry,
    };
    for i in positions {
        outcomes[i] = outcome;
    }
    outcomes
}
