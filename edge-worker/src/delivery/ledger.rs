//! The events consumer's side effects in one place: each message's outcome,
//! the counters to add, and the live-debugger summaries. The pipeline steps
//! settle messages here; [`Ledger::finish`] publishes and counts once.

use super::Outcome;
use crate::ports::{LiveFeed, Sql};
use crate::sinks::d1::{self, Counter};
use serde_json::Value;
use sluice_shared::{Event, Timestamp};

/// What happened to the messages of one Queue batch. A message carries up
/// to a hundred events: it is acknowledged only when every one of them is
/// done, and retried (after the longest delay asked) if any is not — the
/// retry's done events are then duplicates, acknowledged at the claim.
pub struct Ledger {
    outcomes: Vec<Option<Outcome>>,
    counters: Vec<Counter>,
    /// Messages that are counts: acknowledged only once the counters are written.
    count_messages: Vec<usize>,
    live: Vec<Value>,
    day: String,
    now: Timestamp,
    /// The consumer "died" (local-only fault injection): nothing is settled.
    died: bool,
}

impl Ledger {
    /// A ledger for `messages` messages, every one undecodable until settled.
    pub fn new(messages: usize, now: Timestamp) -> Ledger {
        Ledger {
            outcomes: vec![None; messages],
            counters: Vec::new(),
            count_messages: Vec::new(),
            live: Vec::new(),
            day: day(now),
            now,
            died: false,
        }
    }

    /// Settle one event (or the whole message) of `message`.
    pub fn settle(&mut self, message: usize, outcome: Outcome) {
        if let Some(slot) = self.outcomes.get_mut(message) {
            *slot = Some(match *slot {
                None => outcome,
                Some(before) => merge(before, outcome),
            });
        }
    }

    /// Add `count` to today's counter `name` of `source`.
    pub fn count(&mut self, source: &str, name: &str, count: u32) {
        self.counters.push(Counter {
            day: self.day.clone(),
            source: source.to_owned(),
            name: name.to_owned(),
            count,
        });
    }

    /// A message that carries counts of its own (drops at the collector).
    pub fn count_message(&mut self, message: usize, counter: Counter) {
        self.counters.push(counter);
        self.count_messages.push(message);
    }

    /// Show an event in the live debugger.
    pub fn show(
        &mut self,
        source: &str,
        event: &Event,
        status: &str,
        dedup: &str,
        deliveries: Value,
    ) {
        self.live.push(crate::live::summary(
            source, event, status, dedup, deliveries,
        ));
    }

    /// The consumer stops here as a crashed one would (local-only fault
    /// injection): every message comes back, nothing is counted or shown.
    pub fn die(&mut self) {
        self.died = true;
    }

    /// Publish the summaries, write the counters, and return the outcomes.
    pub async fn finish(mut self, ports: &(impl Sql + LiveFeed)) -> Vec<Outcome> {
        if self.died {
            return vec![Outcome::Retry(None); self.outcomes.len()];
        }
        ports.observe(std::mem::take(&mut self.live));
        if !self.counters.is_empty() {
            // The counters, and the consent withholdings in the debugger's overview.
            // Each counter once (an upsert is a row written).
            let mut statements: Vec<_> = d1::merged(&self.counters)
                .iter()
                .map(d1::count_statement)
                .collect();
            statements.extend(super::overview::withheld(&self.counters, self.now));
            let outcome = match ports.run(statements).await {
                Ok(()) => Outcome::Ack,
                Err(_) => Outcome::Retry(None),
            };
            for i in std::mem::take(&mut self.count_messages) {
                self.settle(i, outcome);
            }
        }
        self.outcomes
            .into_iter()
            .map(|o| o.unwrap_or(Outcome::Reject)) // never settled: undecodable
            .collect()
    }
}

/// The outcome of a message two of whose events ended as `a` and `b`: any
/// retry wins, with the longer delay.
fn merge(a: Outcome, b: Outcome) -> Outcome {
    match (a, b) {
        (Outcome::Retry(x), Outcome::Retry(y)) => Outcome::Retry(x.max(y)),
        (Outcome::Retry(x), _) | (_, Outcome::Retry(x)) => Outcome::Retry(x),
        (Outcome::Reject, other) | (other, Outcome::Reject) => other,
        (Outcome::Ack, Outcome::Ack) => Outcome::Ack,
    }
}

/// `YYYY-MM-DD` of a time: the counters' day.
pub fn day(now: Timestamp) -> String {
    now.day()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_is_acknowledged_only_when_every_event_is_done() {
        let mut l = Ledger::new(3, Timestamp(0));
        l.settle(0, Outcome::Ack);
        l.settle(0, Outcome::Ack);
        l.settle(1, Outcome::Ack);
        l.settle(1, Outcome::Retry(Some(5)));
        l.settle(1, Outcome::Retry(None));
        l.settle(1, Outcome::Ack);
        let outcomes = crate::delivery::tests::block_on(l.finish(&NoPorts));
        assert_eq!(
            outcomes,
            [Outcome::Ack, Outcome::Retry(Some(5)), Outcome::Reject]
        );
    }

    struct NoPorts;
    impl Sql for NoPorts {
        async fn run(
            &self,
            _: Vec<crate::ports::Statement>,
        ) -> Result<(), crate::ports::PortError> {
            Ok(())
        }
        async fn query(
            &self,
            _: &str,
            _: Vec<crate::ports::SqlValue>,
        ) -> Result<Vec<Value>, crate::ports::PortError> {
            Ok(vec![])
        }
    }
    impl LiveFeed for NoPorts {
        fn observe(&self, _: Vec<Value>) {}
    }
}
