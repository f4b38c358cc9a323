//! Delivery: from the events Queue to storage, exactly once per destination.
//!
//! The events consumer, per batch, as the named steps of [`consume`]:
//! 1. `decode`: counts of dropped events go to the `counters` table; in-batch
//!    duplicates are dropped (first copy wins);
//! 2. `drop_suppressed`: suppressed people's events are dropped, opted-out
//!    people's marked;
//! 3. `claim` each id at its dedup shard: duplicates are acknowledged, ids
//!    another consumer is writing are retried later;
//! 4. `store`: write D1 (idempotent on `message_id`), then fan out to the
//!    source's destinations — only the events whose consent allows each
//!    destination's purposes — as delivery batches on the deliveries Queue
//!    (gzipped by [`wire`] when over one 64 KB Queue operation), so every
//!    destination keeps its own delivery state;
//! 5. `commit` the claims: only now is an id "seen".
//!
//! Between 4 and 5, the stored events feed the people's audience states
//! ([`crate::audience::feed_stored`], best-effort).
//!
//! A failure before 5 releases the claims and retries the messages; the
//! writes are idempotent, so the retry stores nothing twice. Outcomes,
//! counters and live-debugger summaries are kept in one [`ledger::Ledger`];
//! the debugger's per-destination overview in [`overview`].
//!
//! The deliveries consumer ([`deliver_all`]) writes each batch to its
//! destination through its [`crate::sinks::Sink`] and adds the counters of
//! the whole consumer batch once; per event, a retryable failure is
//! retried with that destination's backoff (or its `Retry-After`), and after
//! its last attempt, or at once for a permanent failure, the events go to R2
//! `dead-letter/` with the error. One failing destination never delays or
//! re-writes the others.
//!
//! Guarantee: at-least-once to every destination, made exactly-once in
//! storage by the dedup shards and idempotent writes.

pub mod config;
pub mod consume;
pub mod dedup;
pub mod deliver;
pub mod fanout;
pub mod faults;
pub mod ledger;
pub mod overview;
pub mod wire;

pub use deliver::{dead_letter_key, dead_letter_raw, deliver, deliver_all, DeadLetter, ErrorBody};
pub use fanout::{
    batch_id, fan_out, limits, routes, Route, MAX_DELIVERY_BYTES, MAX_DELIVERY_EVENTS,
    MAX_DELIVERY_JSON_BYTES, MAX_LAKE_EVENTS, MAX_LAKE_JSON_BYTES,
};

use crate::config::Config;
use crate::ports::DeliveryPorts;
use config::Destination;
use ledger::Ledger;

/// Wait before retrying an id another consumer holds. The holder's lease
/// ([`dedup::LEASE_MS`], 60 s) must run out within the events Queue's
/// `max_retries` (10): 10 × 15 s = 150 s. At 5 s the retries of a batch whose
/// consumer died mid-write ran out after 50 s, while the lease still held it,
/// and the batch was dead-lettered instead of delivered.
pub const IN_FLIGHT_RETRY_S: u32 = 15;

/// Delay before retrying a message that failed for a transient reason (D1 or
/// a dedup shard unavailable), from how long ago it was first sent: about
/// doubling each time, 5 s to 5 min, so the Queue's 10 retries span about
/// 20 minutes of outage instead of a few seconds of immediate retries.
pub fn backoff_s(age_ms: i64) -> u32 {
    u32::try_from((age_ms / 1000).clamp(5, 300)).unwrap_or(300)
}

/// What to do with a Queue message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ack,
    /// Deliver again, after this many seconds (platform default if `None`).
    Retry(Option<u32>),
    /// Undecodable: acknowledge and log (it can never succeed).
    Reject,
}

/// Settings of the events consumer.
pub struct Settings<'a> {
    pub config: &'a Config,
    pub destinations: &'a [Destination],
    pub shards: u32,
    /// Local-only fault injection (none in a deployment).
    pub faults: faults::Faults,
}

/// Consume a batch from the events Queue. One outcome per message, in order.
pub async fn consume_events(
    raw: &[String],
    s: &Settings<'_>,
    ports: &impl DeliveryPorts,
) -> Vec<Outcome> {
    let mut ledger = Ledger::new(raw.len(), ports.now());
    let decoded = consume::decode(raw, &s.faults, &mut ledger);
    let admitted = consume::drop_suppressed(decoded, ports, &mut ledger).await;
    let claimed = consume::claim(admitted, s.shards, ports, &mut ledger).await;
    let stored = consume::store(claimed, s, ports, &mut ledger).await;
    if stored.result.is_ok() {
        let events = stored.events.iter().map(|t| &t.queued);
        crate::audience::feed_stored(ports, s.config, events).await;
    }
    consume::commit(stored, s, ports, &mut ledger).await;
    ledger.finish(ports).await
}

/// Log an error (the worker's console; nothing natively).
pub(crate) fn log(message: &str) {
    #[cfg(target_arch = "wasm32")]
    worker::console_error!("{message}");
    #[cfg(not(target_arch = "wasm32"))]
    let _ = message;
}

#[cfg(test)]
pub(crate) mod tests {
    /// Drive a future that never waits (the native stand-ins').
    pub(crate) fn block_on<F: std::future::Future>(f: F) -> F::Output {
        use std::task::{Context, Poll, Waker};
        let mut f = std::pin::pin!(f);
        let mut cx = Context::from_waker(Waker::noop());
        loop {
            if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
                return v;
            }
        }
    }
}
