//! Delivery: from the events Queue to storage, exactly once per destination.
//!
//! The events consumer, per batch:
//! 1. decode; counts of dropped events go to the `counters` table;
//! 2. drop in-batch duplicates (first copy wins);
//! 3. claim each id at its dedup shard: duplicates are acknowledged, ids
//!    another consumer is writing are retried later;
//! 4. write D1 (idempotent on `message_id`);
//! 5. fan out to the source's destinations — only the events whose consent
//!    allows each destination's purposes — as delivery batches on the
//!    deliveries Queue, so every destination keeps its own delivery state;
//! 6. commit the claims: only now is an id "seen".
//!
//! A failure before 6 releases the claims and retries the messages; the
//! writes are idempotent, so the retry stores nothing twice.
//!
//! The deliveries consumer writes one batch to one destination; a failure is
//! retried with that destination's backoff, and after its last attempt the
//! batch goes to R2 `dead-letter/` with the error. One failing destination
//! never delays or re-writes the others.
//!
//! Guarantee: at-least-once to every destination, made exactly-once in
//! storage by the dedup shards and idempotent writes.

pub mod config;
pub mod dedup;
pub mod faults;

use crate::config::Config;
use crate::sinks::d1::{self, Counter, Sql};
use crate::sinks::{self, DeliveryBatch, HttpClient, ObjectStore, SinkError};
use config::{Destination, Kind};
use dedup::{Claim, ClaimResponse, ShardRequest};
use serde::Serialize;
use sluice_shared::consent;
use sluice_shared::{QueueMessage, QueuedEvent, Timestamp};
use std::collections::{BTreeMap, HashSet};

/// Largest serialized delivery batch (the Queue's message limit is 128 KB).
pub const MAX_DELIVERY_BYTES: usize = 100 * 1024;
/// Most events in one delivery batch.
pub const MAX_DELIVERY_EVENTS: usize = 100;
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

/// Everything delivery needs from the platform.
#[allow(async_fn_in_trait)]
pub trait Deps: Sql + HttpClient + ObjectStore {
    /// Send a request to dedup shard `shard`.
    async fn shard(&self, shard: u32, request: &ShardRequest) -> Result<ClaimResponse, String>;
    /// Put delivery batches (JSON) on the deliveries Queue, after `delay_s`.
    async fn enqueue_deliveries(&self, batches: Vec<String>, delay_s: u32) -> Result<(), String>;
    /// A var or secret's value.
    fn secret(&self, name: &str) -> Option<String>;
    /// Show these event summaries in the live debugger (best-effort).
    async fn publish(&self, _summaries: Vec<serde_json::Value>) {}
    fn now(&self) -> Timestamp;
    /// Wait (only used by the local-only fault injection, [`faults`]).
    async fn sleep(&self, _ms: u32) {}
}

/// Settings of the events consumer.
pub struct Settings<'a> {
    pub config: &'a Config,
    pub destinations: &'a [Destination],
    pub shards: u32,
    /// Local-only fault injection (none in a deployment).
    pub faults: faults::Faults,
}

/// A counter of one event's source, today.
fn counter(deps: &impl Deps, source: &str, name: &str) -> Counter {
    Counter {
        day: day(deps.now()),
        source: source.to_owned(),
        name: name.to_owned(),
        count: 1,
    }
}

fn day(now: Timestamp) -> String {
    now.to_rfc3339()[..10].to_owned()
}

/// Consume a batch from the events Queue. One outcome per message, in order.
pub async fn consume_events(raw: &[String], s: &Settings<'_>, deps: &impl Deps) -> Vec<Outcome> {
    let mut outcomes = vec![Outcome::Reject; raw.len()];
    let mut counters = Vec::new();
    let mut counter_pos = Vec::new();
    let mut events: Vec<(usize, QueuedEvent)> = Vec::new();
    let mut seen = HashSet::new();
    let mut live: Vec<serde_json::Value> = Vec::new();
    for (i, text) in raw.iter().enumerate() {
        match serde_json::from_str::<QueueMessage>(text) {
            Ok(QueueMessage::Dropped(d)) => {
                counters.push(Counter {
                    day: d.day,
                    source: d.source,
                    name: ["dropped_", d.reason.as_str()].concat(),
                    count: d.count,
                });
                counter_pos.push(i);
            }
            Ok(QueueMessage::Event(q)) if s.faults.poisons(&q.event.message_id) => {
                outcomes[i] = Outcome::Retry(Some(0)); // local-only fault injection
            }
            Ok(QueueMessage::Event(q)) => {
                if seen.insert(q.event.message_id.clone()) {
                    events.push((i, *q));
                } else {
                    outcomes[i] = Outcome::Ack; // an in-batch duplicate: the first copy is delivered
                    counters.push(counter(deps, &q.source, "duplicates_in_batch"));
                }
            }
            Err(_) => {}
        }
    }

    // Suppressed people: drop their events (counted); opted-out people: mark
    // theirs, so no sale/sharing or marketing destination gets them.
    match suppressions(deps, &events).await {
        Err(e) => {
            worker_log(&format!(
                "sluice: suppression lookup failed, will retry: {e}"
            ));
            for (pos, _) in &events {
                outcomes[*pos] = Outcome::Retry(None);
            }
            return outcomes;
        }
        Ok(list) => {
            let day = day(deps.now());
            events.retain_mut(|(pos, q)| {
                let kind = [q.event.user_id.as_deref(), q.event.anonymous_id.as_deref()]
                    .into_iter()
                    .flatten()
                    .filter_map(|id| list.iter().find(|(s, _)| s == id).map(|(_, k)| k.as_str()))
                    .max();
                match kind {
                    Some("suppress") => {
                        outcomes[*pos] = Outcome::Ack;
                        live.push(crate::live::summary(
                            &q.source,
                            &q.event,
                            "dropped: suppressed by a privacy request",
                            "-",
                            serde_json::json!({}),
                        ));
                        counters.push(Counter {
                            day: day.clone(),
                            source: q.source.clone(),
                            name: "dropped_suppressed".into(),
                            count: 1,
                        });
                        false
                    }
                    Some(_) => {
                        sluice_shared::enrich::sluice_context(&mut q.event)
                            .insert("optOut".into(), serde_json::Value::Bool(true));
                        true
                    }
                    None => true,
                }
            });
        }
    }

    // Claim at the dedup shards.
    let mut by_shard: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
    for (n, (_, q)) in events.iter().enumerate() {
        by_shard
            .entry(dedup::shard_of(&q.event.message_id, s.shards))
            .or_default()
            .push(n);
    }
    let mut won: Vec<usize> = Vec::new();
    for (shard, members) in &by_shard {
        let ids = members
            .iter()
            .map(|n| events[*n].1.event.message_id.clone())
            .collect();
        match deps.shard(*shard, &ShardRequest::Claim { ids }).await {
            Ok(ClaimResponse { claims }) if claims.len() == members.len() => {
                for (n, claim) in members.iter().zip(claims) {
                    let pos = events[*n].0;
                    match claim {
                        Claim::Won => won.push(*n),
                        Claim::Duplicate => {
                            outcomes[pos] = Outcome::Ack;
                            let q = &events[*n].1;
                            counters.push(counter(deps, &q.source, "duplicates_dropped"));
                            live.push(crate::live::summary(
                                &q.source,
                                &q.event,
                                "duplicate",
                                "duplicate",
                                serde_json::json!({}),
                            ));
                        }
                        Claim::InFlight => {
                            outcomes[pos] = Outcome::Retry(Some(IN_FLIGHT_RETRY_S));
                            let q = &events[*n].1;
                            counters.push(counter(deps, &q.source, "claims_in_flight"));
                        }
                    }
                }
            }
            Ok(_) | Err(_) => {
                for n in members {
                    outcomes[events[*n].0] = Outcome::Retry(None);
                }
            }
        }
    }

    if !won.is_empty() {
        let winners: Vec<QueuedEvent> = won.iter().map(|n| events[*n].1.clone()).collect();
        let (batches, withheld) = fan_out(&winners, s);
        counters.extend(withheld.into_iter().map(|((source, name), count)| Counter {
            day: day(deps.now()),
            source,
            name,
            count,
        }));
        // Counted in the same atomic D1 batch as the rows: every write that
        // took effect, a repeated one included (the primary key would hide it).
        let mut d1_written: BTreeMap<&str, u32> = BTreeMap::new();
        for q in &winners {
            *d1_written.entry(q.source.as_str()).or_default() += 1;
        }
        let d1_written: Vec<Counter> = d1_written
            .into_iter()
            .map(|(source, count)| Counter {
                count,
                ..counter(deps, source, "d1_written")
            })
            .collect();
        let marked: Vec<&str> = winners
            .iter()
            .map(|q| q.event.message_id.as_str())
            .collect();
        let written = match d1::write(deps, &winners, &d1_written).await {
            Err(e) => Err(e.to_string()),
            Ok(()) if s.faults.dies(&marked) => {
                // Local-only fault: a consumer that died here. Nothing is
                // released, committed or acknowledged; the batch comes back.
                return vec![Outcome::Retry(None); raw.len()];
            }
            Ok(()) => {
                if s.faults.applies(&marked) && s.faults.hold_after_d1_write_ms > 0 {
                    deps.sleep(s.faults.hold_after_d1_write_ms).await;
                }
                if batches.is_empty() {
                    Ok(())
                } else {
                    deps.enqueue_deliveries(batches, 0).await
                }
            }
        };
        let committed = match written {
            Ok(()) => commit(deps, s.shards, &winners, true).await,
            Err(e) => {
                worker_log(&format!("sluice: delivery failed, will retry: {e}"));
                let _ = commit(deps, s.shards, &winners, false).await;
                Err(e)
            }
        };
        let outcome = if committed.is_ok() {
            Outcome::Ack
        } else {
            Outcome::Retry(None)
        };
        if committed.is_ok() {
            for q in &winners {
                let mut deliveries = serde_json::Map::new();
                deliveries.insert("d1".into(), "written".into());
                for (dest, route) in routes(q, s) {
                    let what = match route {
                        Route::Send => "queued",
                        Route::WithheldConsent => "withheld: no consent for its purposes",
                        Route::WithheldOptOut => "withheld: opted out of sale/sharing",
                    };
                    deliveries.insert(dest.name.clone(), what.into());
                }
                live.push(crate::live::summary(
                    &q.source,
                    &q.event,
                    "stored",
                    "new",
                    serde_json::Value::Object(deliveries),
                ));
            }
        }
        for n in won {
            outcomes[events[n].0] = outcome;
        }
    }

    deps.publish(live).await;

    if !counters.is_empty() {
        let counted = d1::count(deps, &counters).await.is_ok();
        for i in counter_pos {
            outcomes[i] = if counted {
                Outcome::Ack
            } else {
                Outcome::Retry(None)
            };
        }
    }
    outcomes
}

/// `(id, kind)` of the suppressed ids among these events' people.
async fn suppressions(
    deps: &impl Deps,
    events: &[(usize, QueuedEvent)],
) -> Result<Vec<(String, String)>, String> {
    let mut ids: Vec<&str> = events
        .iter()
        .flat_map(|(_, q)| [q.event.user_id.as_deref(), q.event.anonymous_id.as_deref()])
        .flatten()
        .collect();
    ids.sort_unstable();
    ids.dedup();
    let mut out = Vec::new();
    // D1 binds at most 100 parameters per statement.
    for chunk in ids.chunks(90) {
        let marks = vec!["?"; chunk.len()].join(",");
        let rows = deps
            .query(
                &format!("SELECT id, kind FROM suppressions WHERE id IN ({marks})"),
                chunk.iter().map(|i| d1::text_value(i)).collect(),
            )
            .await?;
        out.extend(
            rows.iter().filter_map(|r| {
                Some((r["id"].as_str()?.to_owned(), r["kind"].as_str()?.to_owned()))
            }),
        );
    }
    Ok(out)
}

/// Commit (written) or release (failed) the claims on these events.
async fn commit(
    deps: &impl Deps,
    shards: u32,
    events: &[QueuedEvent],
    written: bool,
) -> Result<(), String> {
    let mut by_shard: BTreeMap<u32, Vec<String>> = BTreeMap::new();
    for q in events {
        by_shard
            .entry(dedup::shard_of(&q.event.message_id, shards))
            .or_default()
            .push(q.event.message_id.clone());
    }
    for (shard, ids) in by_shard {
        let request = if written {
            ShardRequest::Commit { ids }
        } else {
            ShardRequest::Release { ids }
        };
        deps.shard(shard, &request).await?;
    }
    Ok(())
}

fn worker_log(message: &str) {
    #[cfg(target_arch = "wasm32")]
    worker::console_error!("{message}");
    #[cfg(not(target_arch = "wasm32"))]
    let _ = message;
}

/// Whether an event goes to a destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Send,
    /// Its consent does not cover the destination's purposes.
    WithheldConsent,
    /// The person opted out of sale/sharing, and the destination's purposes include it.
    WithheldOptOut,
}

/// Each destination of the event's source, and whether the event may go there.
pub fn routes<'a>(q: &QueuedEvent, s: &Settings<'a>) -> Vec<(&'a Destination, Route)> {
    let Some(source) = s.config.sources.iter().find(|src| src.name == q.source) else {
        return Vec::new();
    };
    let consent = sluice_shared::enrich::consent_of(&q.event);
    let opted_out = q
        .event
        .context_value("sluice")
        .and_then(|s| s.get("optOut"))
        .is_some_and(|v| v == &serde_json::Value::Bool(true));
    source
        .destinations
        .iter()
        .filter_map(|name| s.destinations.iter().find(|d| &d.name == name))
        .map(|dest| {
            let route = if opted_out && dest.purposes.iter().any(consent::gpc_denies) {
                Route::WithheldOptOut
            } else if consent::may_forward(consent.as_ref(), &dest.purposes, source.consent.regime)
            {
                Route::Send
            } else {
                Route::WithheldConsent
            };
            (dest, route)
        })
        .collect()
}

/// Group events into delivery batches per destination (consent permitting),
/// source and partition hour; count what consent withheld.
pub fn fan_out(
    events: &[QueuedEvent],
    s: &Settings<'_>,
) -> (Vec<String>, BTreeMap<(String, String), u32>) {
    let mut groups: BTreeMap<(String, String, String), Vec<&QueuedEvent>> = BTreeMap::new();
    let mut withheld: BTreeMap<(String, String), u32> = BTreeMap::new();
    for q in events {
        for (dest, route) in routes(q, s) {
            if route != Route::Send {
                *withheld
                    .entry((q.source.clone(), ["withheld_", dest.name.as_str()].concat()))
                    .or_default() += 1;
                continue;
            }
            let hour = q
                .event
                .received_at
                .as_deref()
                .map_or("", |t| t.get(..13).unwrap_or(""));
            groups
                .entry((dest.name.clone(), q.source.clone(), hour.to_owned()))
                .or_default()
                .push(q);
        }
    }
    let mut out = Vec::new();
    for ((destination, source, _), members) in groups {
        let mut chunk: Vec<&QueuedEvent> = Vec::new();
        let mut bytes = 0;
        for q in members {
            let size = serde_json::to_string(&q.event).map_or(0, |t| t.len());
            if !chunk.is_empty()
                && (chunk.len() == MAX_DELIVERY_EVENTS || bytes + size > MAX_DELIVERY_BYTES)
            {
                out.push(encode_batch(
                    &destination,
                    &source,
                    &std::mem::take(&mut chunk),
                ));
                bytes = 0;
            }
            bytes += size;
            chunk.push(q);
        }
        if !chunk.is_empty() {
            out.push(encode_batch(&destination, &source, &chunk));
        }
    }
    (out, withheld)
}

/// A deterministic id for a batch: the same events for the same destination give the same id.
pub fn batch_id(destination: &str, ids: &[&str]) -> String {
    let mut sorted = ids.to_vec();
    sorted.sort_unstable();
    let key = [destination, "|", &sorted.join(",")].concat();
    sluice_shared::parse::derive_message_id(key.as_bytes())
        .trim_start_matches("sluice-")
        .to_owned()
}

fn encode_batch(destination: &str, source: &str, events: &[&QueuedEvent]) -> String {
    let ids: Vec<&str> = events.iter().map(|q| q.event.message_id.as_str()).collect();
    let batch = DeliveryBatch {
        destination: destination.to_owned(),
        source: source.to_owned(),
        batch_id: batch_id(destination, &ids),
        attempt: 1,
        events: events.iter().map(|q| q.event.clone()).collect(),
    };
    serde_json::to_string(&batch).unwrap_or_default()
}

/// A dead-lettered batch, as stored in R2 under `dead-letter/`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeadLetter<'a> {
    pub destination: &'a str,
    pub source: &'a str,
    pub batch_id: &'a str,
    pub attempts: u16,
    pub error: ErrorBody,
    pub failed_at: String,
    pub events: &'a [sluice_shared::Event],
}

/// An error as stored with a dead letter.
#[derive(Debug, Serialize)]
pub struct ErrorBody {
    pub code: String,
    pub message: String,
}

/// Where a dead letter goes.
pub fn dead_letter_key(destination: &str, batch_id: &str, now: Timestamp) -> String {
    format!(
        "dead-letter/destination={destination}/dt={}/{batch_id}.json",
        day(now)
    )
}

/// Write one batch to its destination (the deliveries consumer). A
/// retryable failure re-enqueues the batch with its attempt count and the
/// destination's backoff; the last failure, or a permanent one, writes it to
/// the dead-letter store with the error.
pub async fn deliver(raw: &str, destinations: &[Destination], deps: &impl Deps) -> Outcome {
    let Ok(mut batch) = serde_json::from_str::<DeliveryBatch>(raw) else {
        return Outcome::Reject;
    };
    let now = deps.now();
    let (result, retry) = match destinations.iter().find(|d| d.name == batch.destination) {
        None => (
            Err(SinkError::Permanent(format!(
                "no destination named `{}` is configured",
                batch.destination
            ))),
            None,
        ),
        Some(dest) => (write(dest, &batch, deps, now).await, Some(dest.retry)),
    };
    let count = |name: &str| Counter {
        day: day(now),
        source: batch.source.clone(),
        name: [name, batch.destination.as_str()].concat(),
        count: u32::try_from(batch.events.len()).unwrap_or(u32::MAX),
    };
    match (result, retry) {
        (Ok(()), _) => {
            let _ = d1::count(deps, &[count("delivered_")]).await;
            Outcome::Ack
        }
        (Err(e), Some(r)) if e.is_retryable() && batch.attempt < r.max_attempts => {
            worker_log(&format!(
                "sluice: {} attempt {} failed, retrying: {e}",
                batch.destination, batch.attempt
            ));
            // Not before the destination's `Retry-After` (the Queue delays at most 12 h).
            let delay = r
                .delay_s(batch.attempt)
                .max(e.retry_after_s().unwrap_or(0).min(43_200));
            batch.attempt += 1;
            let again = serde_json::to_string(&batch).unwrap_or_default();
            match deps.enqueue_deliveries(vec![again], delay).await {
                Ok(()) => {
                    let _ = d1::count(deps, &[count("retried_")]).await;
                    Outcome::Ack
                }
                Err(_) => Outcome::Retry(Some(delay)),
            }
        }
        (Err(error), _) => {
            let letter = DeadLetter {
                destination: &batch.destination,
                source: &batch.source,
                batch_id: &batch.batch_id,
                attempts: batch.attempt,
                error: ErrorBody {
                    code: error.code().to_owned(),
                    message: error.to_string(),
                },
                failed_at: now.to_rfc3339(),
                events: &batch.events,
            };
            let body = serde_json::to_vec(&letter).unwrap_or_default();
            match deps
                .put(
                    &dead_letter_key(&batch.destination, &batch.batch_id, now),
                    body,
                    "application/json",
                )
                .await
            {
                Ok(()) => {
                    let _ = d1::count(deps, &[count("dead_lettered_")]).await;
                    Outcome::Ack
                }
                Err(_) => Outcome::Retry(None),
            }
        }
    }
}

async fn write(
    dest: &Destination,
    batch: &DeliveryBatch,
    deps: &impl Deps,
    now: Timestamp,
) -> Result<(), SinkError> {
    let secret = |var: &str| {
        deps.secret(var)
            .ok_or_else(|| SinkError::Permanent(format!("the secret `{var}` is not set")))
    };
    match &dest.kind {
        Kind::R2 { prefix } => sinks::r2::write(deps, deps, prefix, batch).await,
        Kind::Webhook {
            url,
            secret_var,
            timeout_ms,
        } => {
            let key = secret(secret_var)?;
            sinks::webhook::write(
                deps,
                url,
                key.as_bytes(),
                *timeout_ms,
                batch,
                now.0.div_euclid(1000),
                &now.to_rfc3339(),
            )
            .await
        }
        Kind::Clickhouse {
            url,
            database,
            table,
            user,
            password_var,
            timeout_ms,
        } => {
            let password = password_var.as_deref().map(secret).transpose()?;
            let target = sinks::clickhouse::Target {
                url,
                database,
                table,
                user: user.as_deref(),
                password: password.as_deref(),
                timeout_ms: *timeout_ms,
            };
            sinks::clickhouse::write(deps, target, batch).await
        }
    }
}

/// Dead-letter a message the platform gave up on (its DLQ consumer).
pub async fn dead_letter_raw(queue: &str, raw: &str, deps: &impl Deps) -> Outcome {
    let now = deps.now();
    let id = sluice_shared::parse::derive_message_id(raw.as_bytes());
    #[derive(Serialize)]
    struct Raw<'a> {
        queue: &'a str,
        error: ErrorBody,
        failed_at: String,
        message: serde_json::Value,
    }
    let letter = Raw {
        queue,
        error: ErrorBody {
            code: "queue_retries_exhausted".into(),
            message: format!("the {queue} queue gave up after its configured retries"),
        },
        failed_at: now.to_rfc3339(),
        message: serde_json::from_str(raw)
            .unwrap_or_else(|_| serde_json::Value::String(raw.to_owned())),
    };
    let key = format!("dead-letter/queue={queue}/dt={}/{id}.json", day(now));
    match deps
        .put(
            &key,
            serde_json::to_vec(&letter).unwrap_or_default(),
            "application/json",
        )
        .await
    {
        Ok(()) => Outcome::Ack,
        Err(_) => Outcome::Retry(None),
    }
}
