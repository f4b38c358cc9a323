//! The events consumer as named steps, each taking and returning a typed
//! batch: [`decode`] → [`drop_suppressed`] → [`claim`] → [`store`] →
//! [`commit`]. Every message a step is done with is settled in the
//! [`Ledger`]; the events it passes on are the only ones the next step sees.

use super::faults::Faults;
use super::ledger::Ledger;
use super::{Outcome, Settings, IN_FLIGHT_RETRY_S};
use crate::db;
use crate::delivery::dedup::{self, Claim, ClaimResponse, ShardRequest};
use crate::delivery::fanout;
use crate::ports::{DedupShards, DeliveryPorts, PortError, Sql};
use crate::sinks::{self, d1::Counter, DeliveryBatch};
use sluice_shared::{QueueMessage, QueuedEvent};
use std::collections::{BTreeMap, HashSet};

/// An event and the Queue message it came in.
#[derive(Debug, Clone)]
pub struct Tracked {
    pub message: usize,
    pub queued: QueuedEvent,
}

/// Decoded events, in-batch duplicates removed.
pub struct Decoded(pub Vec<Tracked>);
/// Events of people who are not suppressed (opted-out ones marked).
pub struct Admitted(pub Vec<Tracked>);
/// Events this consumer won the claim on: it alone writes them now.
pub struct Claimed(pub Vec<Tracked>);
/// Claimed events after the write: whether D1 and the fan-out succeeded.
pub struct Stored {
    pub events: Vec<Tracked>,
    pub result: Result<(), String>,
}

/// A privacy request's hold on a person's future events. The order is the
/// precedence when several ids of one event are held: `Suppress` wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SuppressionKind {
    /// Keep the events out of sale/sharing and marketing destinations.
    OptOut,
    /// Drop the events.
    Suppress,
}

impl SuppressionKind {
    /// As stored in `suppressions.kind`.
    pub fn as_str(self) -> &'static str {
        match self {
            SuppressionKind::OptOut => "opt_out",
            SuppressionKind::Suppress => "suppress",
        }
    }

    pub fn parse(s: &str) -> Option<SuppressionKind> {
        [SuppressionKind::OptOut, SuppressionKind::Suppress]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// Step 1: decode the messages; count messages go to the ledger; the second
/// copy of an id in the same batch is acknowledged (the first is delivered).
pub fn decode(raw: &[String], faults: &Faults, ledger: &mut Ledger) -> Decoded {
    let mut seen = HashSet::new();
    let mut events = Vec::new();
    for (message, text) in raw.iter().enumerate() {
        match serde_json::from_str::<QueueMessage>(text) {
            Ok(QueueMessage::Dropped(d)) => ledger.count_message(
                message,
                Counter {
                    day: d.day,
                    source: d.source,
                    name: ["dropped_", d.reason.as_str()].concat(),
                    count: d.count,
                },
            ),
            Ok(m @ (QueueMessage::Event(_) | QueueMessage::Events(_))) => {
                let queued_events = m.into_events();
                if queued_events.is_empty() {
                    ledger.settle(message, Outcome::Ack); // nothing to deliver
                }
                for queued in queued_events {
                    if faults.poisons(&queued.event.message_id) {
                        ledger.settle(message, Outcome::Retry(Some(0))); // local-only fault
                        continue;
                    }
                    if seen.insert(queued.event.message_id.clone()) {
                        events.push(Tracked { message, queued });
                    } else {
                        ledger.settle(message, Outcome::Ack);
                        ledger.count(&queued.source, "duplicates_in_batch", 1);
                    }
                }
            }
            Err(_) => {} // stays `Reject`
        }
    }
    Decoded(events)
}

/// The held ids among these events' people, with the kind of hold.
async fn suppressions(
    db: &impl Sql,
    events: &[Tracked],
) -> Result<BTreeMap<String, SuppressionKind>, PortError> {
    let mut ids: Vec<String> = events
        .iter()
        .flat_map(|t| [&t.queued.event.user_id, &t.queued.event.anonymous_id])
        .flatten()
        .cloned()
        .collect();
    ids.sort_unstable();
    ids.dedup();
    let rows = db::query_in(db, &ids, 1, |m| {
        format!("SELECT id, kind FROM suppressions WHERE id IN ({m})")
    })
    .await?;
    Ok(rows
        .iter()
        .filter_map(|r| {
            Some((
                r["id"].as_str()?.to_owned(),
                SuppressionKind::parse(r["kind"].as_str()?)?,
            ))
        })
        .collect())
}

/// Step 2: drop suppressed people's events (counted and shown); mark opted-out
/// people's, so no sale/sharing or marketing destination gets them. If the
/// suppression list cannot be read, every event is retried.
pub async fn drop_suppressed(batch: Decoded, db: &impl Sql, ledger: &mut Ledger) -> Admitted {
    let Decoded(mut events) = batch;
    let held = match suppressions(db, &events).await {
        Ok(held) => held,
        Err(e) => {
            super::log(
                &[
                    "sluice: suppression lookup failed, will retry: ",
                    &e.to_string(),
                ]
                .concat(),
            );
            for t in &events {
                ledger.settle(t.message, Outcome::Retry(None));
            }
            return Admitted(Vec::new());
        }
    };
    events.retain_mut(|t| {
        let e = &t.queued.event;
        let kind = [e.user_id.as_deref(), e.anonymous_id.as_deref()]
            .into_iter()
            .flatten()
            .filter_map(|id| held.get(id).copied())
            .max();
        match kind {
            Some(SuppressionKind::Suppress) => {
                ledger.settle(t.message, Outcome::Ack);
                ledger.show(
                    &t.queued.source,
                    e,
                    "dropped: suppressed by a privacy request",
                    "-",
                    serde_json::json!({}),
                );
                ledger.count(&t.queued.source, "dropped_suppressed", 1);
                false
            }
            Some(SuppressionKind::OptOut) => {
                sluice_shared::enrich::sluice_context(&mut t.queued.event)
                    .insert("optOut".into(), serde_json::Value::Bool(true));
                true
            }
            None => true,
        }
    });
    Admitted(events)
}

/// Step 3: claim each id at its dedup shard. Duplicates are acknowledged,
/// ids another consumer holds are retried later, and a shard that fails
/// retries its ids.
pub async fn claim(
    batch: Admitted,
    shards: u32,
    dedup_shards: &impl DedupShards,
    ledger: &mut Ledger,
) -> Claimed {
    let mut by_shard: BTreeMap<u32, Vec<Tracked>> = BTreeMap::new();
    for t in batch.0 {
        by_shard
            .entry(dedup::shard_of(&t.queued.event.message_id, shards))
            .or_default()
            .push(t);
    }
    let mut won = Vec::new();
    for (shard, members) in by_shard {
        let ids = members
            .iter()
            .map(|t| t.queued.event.message_id.clone())
            .collect();
        match dedup_shards
            .shard(shard, &ShardRequest::Claim { ids })
            .await
        {
            Ok(ClaimResponse { claims, .. }) if claims.len() == members.len() => {
                for (t, claim) in members.into_iter().zip(claims) {
                    match claim {
                        Claim::Won => won.push(t),
                        Claim::Duplicate => {
                            ledger.settle(t.message, Outcome::Ack);
                            ledger.count(&t.queued.source, "duplicates_dropped", 1);
                            let q = &t.queued;
                            ledger.show(
                                &q.source,
                                &q.event,
                                "duplicate",
                                "duplicate",
                                serde_json::json!({}),
                            );
                        }
                        Claim::InFlight => {
                            ledger.settle(t.message, Outcome::Retry(Some(IN_FLIGHT_RETRY_S)));
                            ledger.count(&t.queued.source, "claims_in_flight", 1);
                        }
                    }
                }
            }
            Ok(_) | Err(_) => {
                for t in members {
                    ledger.settle(t.message, Outcome::Retry(None));
                }
            }
        }
    }
    Claimed(won)
}

/// Step 4: write D1 (one atomic, idempotent batch per source), then fan out
/// to the destinations on the deliveries Queue. Consent's withholdings are counted.
pub async fn store(
    batch: Claimed,
    s: &Settings<'_>,
    ports: &impl DeliveryPorts,
    ledger: &mut Ledger,
) -> Stored {
    let Claimed(events) = batch;
    if events.is_empty() {
        return Stored {
            events,
            result: Ok(()),
        };
    }
    let (batches, withheld) = fanout::fan_out(events.iter().map(|t| &t.queued), s);
    for ((source, name), count) in withheld {
        ledger.count(&source, &name, count);
    }
    let result = write_d1(&events, s, ports, ledger).await;
    if result.is_ok() {
        let marked: Vec<&str> = events
            .iter()
            .map(|t| t.queued.event.message_id.as_str())
            .collect();
        if s.faults.dies(&marked) {
            // Local-only fault: a consumer that died right after its D1 write.
            // Nothing is fanned out, committed, released or acknowledged.
            ledger.die();
            return Stored {
                events: Vec::new(),
                result: Ok(()),
            };
        }
        if s.faults.applies(&marked) && s.faults.hold_after_d1_write_ms > 0 {
            ports.sleep(s.faults.hold_after_d1_write_ms).await;
        }
    }
    let result = match result {
        Ok(()) if !batches.is_empty() => ports
            .enqueue_deliveries(batches, 0)
            .await
            .map_err(|e| format!("fan-out failed: {e}")),
        other => other,
    };
    Stored { events, result }
}

/// The D1 step: event rows (unless lake-only, or D1 is full: then the
/// guard's error is logged and counted as `d1_full`, and the batch goes on to
/// the lake and the destinations) and the identity graph.
async fn write_d1(
    events: &[Tracked],
    s: &Settings<'_>,
    ports: &impl DeliveryPorts,
    ledger: &mut Ledger,
) -> Result<(), String> {
    let window = s.config.d1;
    let size = ports.size_bytes().await.unwrap_or(None);
    let full = window.admit(size).err().filter(|_| window.events);
    if sinks::window::changed(window.fill(size)) {
        if let Some(warning) = window.status(size)["warning"].as_str() {
            super::log(&["sluice: ", warning].concat());
        }
    }
    let mut by_source: BTreeMap<&str, Vec<sluice_shared::Event>> = BTreeMap::new();
    for t in events {
        by_source
            .entry(t.queued.source.as_str())
            .or_default()
            .push(t.queued.event.clone());
    }
    for (source, events) in by_source {
        let batch = DeliveryBatch {
            destination: "d1".into(),
            source: source.to_owned(),
            batch_id: String::new(),
            attempt: 1,
            events,
        };
        // Every write that took effect is counted in the same atomic batch
        // (`d1_written`), a repeated one included: the primary key would hide it.
        let sink = sinks::d1::D1 {
            db: ports,
            count_written: true,
            events: window.events && full.is_none(),
        };
        let report = sinks::write(&sink, &batch, ports.now()).await;
        if let Some(e) = &full {
            let n = u32::try_from(batch.events.len()).unwrap_or(u32::MAX);
            ledger.count(source, e.code(), n);
            if let Some(failed) = report.first_error() {
                // Full: the identity graph is best-effort, so nothing stalls.
                super::log(&["sluice: identity write on a full D1 failed: ", failed].concat());
            }
            continue;
        }
        if let Some(e) = report.first_error() {
            return Err(e.to_owned());
        }
    }
    Ok(())
}

/// Step 5: commit the claims of stored events (only now is an id "seen"), or
/// release them after a failed write so the retry can claim them again.
pub async fn commit(
    stored: Stored,
    s: &Settings<'_>,
    dedup_shards: &impl DedupShards,
    ledger: &mut Ledger,
) {
    let Stored { events, result } = stored;
    if events.is_empty() {
        return;
    }
    let committed = match result {
        Ok(()) => settle_claims(dedup_shards, s.shards, &events, true).await,
        Err(e) => {
            super::log(&["sluice: delivery failed, will retry: ", &e].concat());
            let _ = settle_claims(dedup_shards, s.shards, &events, false).await;
            Err(e)
        }
    };
    let outcome = if committed.is_ok() {
        Outcome::Ack
    } else {
        Outcome::Retry(None)
    };
    for t in &events {
        ledger.settle(t.message, outcome);
        if committed.is_ok() {
            let mut deliveries = serde_json::Map::new();
            let d1 = if s.config.d1.events {
                "written"
            } else {
                "lake only"
            };
            deliveries.insert("d1".into(), d1.into());
            for (dest, route) in fanout::routes(&t.queued, s) {
                deliveries.insert(dest.name.clone(), route.label().into());
            }
            let q = &t.queued;
            ledger.show(
                &q.source,
                &q.event,
                "stored",
                "new",
                serde_json::Value::Object(deliveries),
            );
        }
    }
}

/// Commit (written) or release (failed) the claims on these events.
async fn settle_claims(
    dedup_shards: &impl DedupShards,
    shards: u32,
    events: &[Tracked],
    written: bool,
) -> Result<(), String> {
    let mut by_shard: BTreeMap<u32, Vec<String>> = BTreeMap::new();
    for t in events {
        by_shard
            .entry(dedup::shard_of(&t.queued.event.message_id, shards))
            .or_default()
            .push(t.queued.event.message_id.clone());
    }
    for (shard, ids) in by_shard {
        let request = if written {
            ShardRequest::Commit { ids }
        } else {
            ShardRequest::Release { ids }
        };
        dedup_shards
            .shard(shard, &request)
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suppression_outranks_opt_out() {
        assert!(SuppressionKind::Suppress > SuppressionKind::OptOut);
        assert_eq!(
            [SuppressionKind::Suppress, SuppressionKind::OptOut]
                .into_iter()
                .max(),
            Some(SuppressionKind::Suppress)
        );
        assert_eq!(
            SuppressionKind::parse("opt_out"),
            Some(SuppressionKind::OptOut)
        );
        assert_eq!(SuppressionKind::parse("other"), None);
    }
}
