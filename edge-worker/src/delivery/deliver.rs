//! The deliveries consumer: one batch to one destination through its sink.
//! Per event: delivered ones are counted; retryable ones go back on the
//! deliveries Queue with the destination's backoff (or the destination's
//! `Retry-After`, if longer) until its last attempt; the rest, and the
//! exhausted, go to the dead letters with the destination's error. One
//! failing destination never delays or re-writes the others.

use super::config::with_vendor;
use super::config::{Destination, Kind};
use super::fanout::batch_id;
use super::ledger::day;
use super::overview;
use super::Outcome;
use crate::ports::DeliveryPorts;
use crate::sinks::d1::{self, Counter};
use crate::sinks::vendor::{self, Vendor};
use crate::sinks::{self, clickhouse, r2, webhook, DeliveryBatch, Report, SinkError};
use serde::Serialize;
use sluice_shared::dest::batching::BATCH_REJECTED;
use sluice_shared::dest::google_ads::GoogleAds;
use sluice_shared::dest::Verdict;
use sluice_shared::{Event, Timestamp};

/// The longest delay the Queue takes for a message (12 hours).
pub const MAX_QUEUE_DELAY_S: u32 = 43_200;

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
    pub events: &'a [Event],
}

/// An error as stored with a dead letter.
#[derive(Debug, Serialize)]
pub struct ErrorBody {
    pub code: String,
    pub message: String,
}

impl ErrorBody {
    fn of(verdict: &Verdict) -> ErrorBody {
        let (code, message) = match verdict {
            Verdict::Retry { reason, .. } => ("sink_retryable", ["retryable: ", reason].concat()),
            Verdict::Permanent { reason } => ("sink_permanent", ["permanent: ", reason].concat()),
            Verdict::Delivered | Verdict::Skipped { .. } => ("sink_permanent", String::new()),
        };
        ErrorBody {
            code: code.to_owned(),
            message,
        }
    }
}

/// Where a dead letter goes.
pub fn dead_letter_key(destination: &str, batch_id: &str, now: Timestamp) -> String {
    format!(
        "dead-letter/destination={destination}/dt={}/{batch_id}.json",
        day(now)
    )
}

/// Write one batch (JSON, from the deliveries Queue) to its destination.
pub async fn deliver(
    raw: &str,
    destinations: &[Destination],
    ports: &impl DeliveryPorts,
) -> Outcome {
    deliver_all(&[raw], destinations, ports)
        .await
        .pop()
        .unwrap_or(Outcome::Reject)
}

/// Write each batch of one consumer batch of the deliveries Queue to its
/// destination, one after another; one outcome per message, in order. The
/// counters and the debugger's overview of all of them are added in one D1
/// batch at the end, each counter and destination once (D1 bills every row
/// an upsert writes, so ten messages to two destinations write four rows,
/// not twenty).
pub async fn deliver_all<S: AsRef<str>>(
    raws: &[S],
    destinations: &[Destination],
    ports: &impl DeliveryPorts,
) -> Vec<Outcome> {
    let mut tallies = Tallies::default();
    let mut outcomes = Vec::with_capacity(raws.len());
    for raw in raws {
        outcomes.push(deliver_one(raw.as_ref(), destinations, ports, &mut tallies).await);
    }
    let statements = tallies.statements(ports.now());
    if !statements.is_empty() {
        let _ = ports.run(statements).await;
    }
    outcomes
}

/// What a consumer batch adds to the counters and the overview, merged.
#[derive(Debug, Default)]
struct Tallies {
    counters: Vec<Counter>,
    overview: Vec<(String, overview::Tally)>,
}

impl Tallies {
    fn tally(&mut self, destination: &str, tally: overview::Tally) {
        match self.overview.iter_mut().find(|(d, _)| d == destination) {
            Some((_, t)) => t.add(tally),
            None => self.overview.push((destination.to_owned(), tally)),
        }
    }

    /// The counters, then the overview: one statement each.
    fn statements(self, now: Timestamp) -> Vec<crate::db::Statement> {
        let mut statements: Vec<_> = d1::merged(&self.counters)
            .iter()
            .map(d1::count_statement)
            .collect();
        statements.extend(
            self.overview
                .iter()
                .filter_map(|(d, t)| overview::statement(d, t, now)),
        );
        statements
    }
}

/// One batch to its destination; its counts go to `tallies`.
async fn deliver_one(
    raw: &str,
    destinations: &[Destination],
    ports: &impl DeliveryPorts,
    tallies: &mut Tallies,
) -> Outcome {
    let Ok(json) = super::wire::open(raw) else {
        return Outcome::Reject;
    };
    let Ok(batch) = serde_json::from_str::<DeliveryBatch>(&json) else {
        return Outcome::Reject;
    };
    let now = ports.now();
    let dest = destinations.iter().find(|d| d.name == batch.destination);
    let report = match dest {
        None => Report {
            verdicts: vec![
                SinkError::Permanent(format!(
                    "no destination named `{}` is configured",
                    batch.destination
                ))
                .verdict();
                batch.events.len()
            ],
        },
        Some(dest) => write(dest, &batch, ports, now).await,
    };
    settle(batch, &report, dest, ports, now, tallies).await
}

/// The destination's sink, and the batch written through it.
async fn write(
    dest: &Destination,
    batch: &DeliveryBatch,
    ports: &impl DeliveryPorts,
    now: Timestamp,
) -> Report {
    let secret = |var: &str| {
        ports
            .secret(var)
            .ok_or_else(|| SinkError::Permanent(format!("the secret `{var}` is not set")))
    };
    let failed = |e: SinkError| failed(batch, e);
    match &dest.kind {
        Kind::R2 { prefix, format } => {
            let sink = r2::Lake {
                store: ports,
                db: ports,
                prefix,
                format: *format,
            };
            sinks::write(&sink, batch, now).await
        }
        Kind::Webhook {
            url,
            secret_var,
            timeout_ms,
        } => match secret(secret_var) {
            Err(e) => failed(e),
            Ok(key) => {
                let sink = webhook::Webhook {
                    http: ports,
                    url,
                    secret: key.into_bytes(),
                    timeout_ms: *timeout_ms,
                };
                sinks::write(&sink, batch, now).await
            }
        },
        Kind::Clickhouse {
            url,
            database,
            table,
            user,
            password_var,
            timeout_ms,
        } => match password_var.as_deref().map(secret).transpose() {
            Err(e) => failed(e),
            Ok(password) => {
                let sink = clickhouse::Clickhouse {
                    http: ports,
                    url,
                    database,
                    table,
                    user: user.as_deref(),
                    password,
                    timeout_ms: *timeout_ms,
                };
                sinks::write(&sink, batch, now).await
            }
        },
        _ => write_vendor(dest, batch, ports, now).await,
    }
}

/// Every event of the batch failed the same way.
fn failed(batch: &DeliveryBatch, e: SinkError) -> Report {
    Report {
        verdicts: vec![e.verdict(); batch.events.len()],
    }
}

/// A catalogue vendor's batch, through the one vendor sink (Google Ads first
/// exchanges its refresh token for an access token).
async fn write_vendor(
    dest: &Destination,
    batch: &DeliveryBatch,
    ports: &impl DeliveryPorts,
    now: Timestamp,
) -> Report {
    if let Kind::GoogleAds(v) = &dest.kind {
        return match vendor::google_ads_settings(ports, &v.settings, ports, v.timeout_ms).await {
            // Already resolved: no `<field>_var` is left to look up.
            Ok(settings) => {
                match Vendor::<GoogleAds, _>::new(ports, &settings, ports, v.timeout_ms) {
                    Ok(sink) => sinks::write(&sink, batch, now).await,
                    Err(e) => failed(batch, e),
                }
            }
            Err(e) => failed(batch, e),
        };
    }
    with_vendor!(
        &dest.kind,
        |D, v| match Vendor::<D, _>::new(ports, &v.settings, ports, v.timeout_ms) {
            Ok(sink) => sinks::write(&sink, batch, now).await,
            Err(e) => failed(batch, e),
        },
        failed(
            batch,
            SinkError::Permanent("not a vendor destination".into())
        )
    )
}

/// The events of `batch` at `indices`, as a batch of their own (same id if all).
fn subset(batch: &DeliveryBatch, indices: &[usize], attempt: u16) -> DeliveryBatch {
    let events: Vec<Event> = indices
        .iter()
        .filter_map(|i| batch.events.get(*i).cloned())
        .collect();
    let id = if events.len() == batch.events.len() {
        batch.batch_id.clone()
    } else {
        let ids: Vec<&str> = events.iter().map(|e| e.message_id.as_str()).collect();
        batch_id(&batch.destination, &ids)
    };
    DeliveryBatch {
        destination: batch.destination.clone(),
        source: batch.source.clone(),
        batch_id: id,
        attempt,
        events,
    }
}

/// Act on the report: count (into `tallies`), re-enqueue, dead-letter.
async fn settle(
    batch: DeliveryBatch,
    report: &Report,
    dest: Option<&Destination>,
    ports: &impl DeliveryPorts,
    now: Timestamp,
    tallies: &mut Tallies,
) -> Outcome {
    let mut book = Book::open(&batch, report, now);
    let retry = report.indices(|v| matches!(v, Verdict::Retry { .. }));
    let mut failed = report.indices(|v| matches!(v, Verdict::Permanent { .. }));
    let mut outcome = Outcome::Ack;
    match dest.map(|d| d.retry) {
        Some(r) if !retry.is_empty() && batch.attempt < r.max_attempts => {
            let after_s = report
                .retry_after_ms()
                .map_or(0, |ms| u32::try_from(ms.div_ceil(1000)).unwrap_or(u32::MAX));
            let delay = r.delay_s(batch.attempt).max(after_s).min(MAX_QUEUE_DELAY_S);
            super::log(&format!(
                "sluice: {} attempt {} failed, retrying in {delay} s: {}",
                batch.destination,
                batch.attempt,
                report.first_error().unwrap_or_default()
            ));
            match ports
                .enqueue_deliveries(retries(&batch, report, &retry), delay)
                .await
            {
                Ok(()) => book.add("retried_", retry.len(), |t, n| t.retrying = n),
                Err(_) => outcome = Outcome::Retry(Some(delay)),
            }
        }
        _ => failed.extend(retry),
    }
    if !failed.is_empty() && outcome == Outcome::Ack {
        failed.sort_unstable();
        let letter = subset(&batch, &failed, batch.attempt);
        let error = ErrorBody::of(&report.verdicts[failed[0]]);
        match dead_letter(&letter, error, ports, now).await {
            Ok(()) => book.add("dead_lettered_", failed.len(), |t, n| t.dead_lettered = n),
            // Not even the dead letters can take it (e.g. no LAKE binding):
            // the platform's own dead-letter queue keeps the message.
            Err(_) => outcome = Outcome::Retry(None),
        }
    }
    book.close(tallies);
    outcome
}

/// The retried events as delivery batches (JSON) for their next attempt. A
/// vendor that refused a whole request for one event it did not name gets
/// the events back one per request, so the good ones land.
fn retries(batch: &DeliveryBatch, report: &Report, retry: &[usize]) -> Vec<String> {
    let (alone, together): (Vec<usize>, Vec<usize>) = retry.iter().partition(|i| {
        matches!(&report.verdicts[**i], Verdict::Retry { reason, .. } if reason.starts_with(BATCH_REJECTED))
    });
    let mut batches: Vec<DeliveryBatch> = alone
        .iter()
        .map(|i| subset(batch, &[*i], batch.attempt + 1))
        .collect();
    if !together.is_empty() {
        batches.push(subset(batch, &together, batch.attempt + 1));
    }
    batches
        .iter()
        .map(|b| super::wire::seal(serde_json::to_string(b).unwrap_or_default()))
        .collect()
}

/// What one delivery batch's settling adds to the counters and to the
/// debugger's overview (merged into the consumer batch's [`Tallies`]).
struct Book {
    day: String,
    source: String,
    destination: String,
    counters: Vec<Counter>,
    tally: overview::Tally,
}

impl Book {
    /// Open with what the report says was delivered and skipped.
    fn open(batch: &DeliveryBatch, report: &Report, now: Timestamp) -> Book {
        let mut book = Book {
            day: day(now),
            source: batch.source.clone(),
            destination: batch.destination.clone(),
            counters: Vec::new(),
            tally: overview::Tally {
                last_error: report.first_error().map(str::to_owned),
                ..overview::Tally::default()
            },
        };
        let delivered = report.indices(|v| *v == Verdict::Delivered);
        for i in &delivered {
            let received_at = batch.events.get(*i).and_then(|e| e.received_at.as_deref());
            book.tally.delivered_at(received_at, now);
        }
        book.add("delivered_", delivered.len(), |_, _| {});
        let skipped = report
            .indices(|v| matches!(v, Verdict::Skipped { .. }))
            .len();
        book.add("skipped_", skipped, |t, n| t.skipped = n);
        book
    }

    /// Count `n` events under `<name><destination>` (none: no counter) and
    /// set the overview's figure for them.
    fn add(&mut self, name: &str, n: usize, tally: impl FnOnce(&mut overview::Tally, u32)) {
        let n = u32::try_from(n).unwrap_or(u32::MAX);
        tally(&mut self.tally, n);
        if n > 0 {
            self.counters.push(Counter {
                day: self.day.clone(),
                source: self.source.clone(),
                name: [name, self.destination.as_str()].concat(),
                count: n,
            });
        }
    }

    /// Add to the consumer batch's tallies (written once, at its end).
    fn close(self, tallies: &mut Tallies) {
        tallies.counters.extend(self.counters);
        tallies.tally(&self.destination, self.tally);
    }
}

async fn dead_letter(
    batch: &DeliveryBatch,
    error: ErrorBody,
    ports: &impl DeliveryPorts,
    now: Timestamp,
) -> Result<(), crate::ports::PortError> {
    let letter = DeadLetter {
        destination: &batch.destination,
        source: &batch.source,
        batch_id: &batch.batch_id,
        attempts: batch.attempt,
        error,
        failed_at: now.to_rfc3339(),
        events: &batch.events,
    };
    let body = serde_json::to_vec(&letter).unwrap_or_default();
    ports
        .put(
            &dead_letter_key(&batch.destination, &batch.batch_id, now),
            body,
            "application/json",
        )
        .await
}

/// Dead-letter a message the platform gave up on (its DLQ consumer).
pub async fn dead_letter_raw(queue: &str, raw: &str, ports: &impl DeliveryPorts) -> Outcome {
    let now = ports.now();
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
        // A sealed delivery batch is kept opened: readable in the letter.
        message: super::wire::open(raw)
            .ok()
            .and_then(|json| serde_json::from_str(&json).ok())
            .unwrap_or_else(|| serde_json::Value::String(raw.to_owned())),
    };
    let key = format!("dead-letter/queue={queue}/dt={}/{id}.json", day(now));
    match ports
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
