//! Sinks: every destination has the same shape, Vector-style —
//! config → [`Sink::encode`] a batch into writes → [`Sink::send`] each write
//! through a port → [`Sink::classify`] the answer, per event, as delivered,
//! retryable (with the destination's `Retry-After`) or permanent (with the
//! reason). [`write`] runs the three steps; a new sink is a copy of a sibling.
//!
//! | sink | write | guarantee |
//! | --- | --- | --- |
//! | [`d1`] | one atomic statement batch | at-least-once writes, idempotent on `message_id` (primary key): exactly once stored |
//! | [`r2`] | one object per delivery batch | at-least-once; a deterministic key, so a retry overwrites |
//! | [`webhook`] | one signed POST | at-least-once; an `Idempotency-Key` per batch lets receivers drop a repeat |
//! | [`clickhouse`] | one `INSERT … FORMAT JSONEachRow` | at-least-once; `ReplacingMergeTree` on `message_id` makes repeats collapse |
//!
//! A failed port is classified by [`PortError::is_retryable`]: a missing
//! binding or a refused write is permanent, an unavailable service retryable.

pub mod clickhouse;
pub mod d1;
pub mod r2;
pub mod vendor;
pub mod webhook;
pub mod window;

use crate::ports::PortError;
use serde::{Deserialize, Serialize};
use sluice_shared::dest::{HttpAnswer, Verdict};
use sluice_shared::{Event, Timestamp};
use std::fmt;

/// What the deliveries Queue carries: a batch of events for one destination.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeliveryBatch {
    pub destination: String,
    pub source: String,
    /// Deterministic: a hash of the batch's message ids.
    pub batch_id: String,
    /// This delivery's attempt number (1 for the first).
    #[serde(default = "first_attempt")]
    pub attempt: u16,
    pub events: Vec<Event>,
}

fn first_attempt() -> u16 {
    1
}

/// Why a sink could not write (before or instead of per-event verdicts).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SinkError {
    /// Worth retrying: network errors, timeouts, 408, 429, 5xx.
    Retryable {
        reason: String,
        /// The destination asked to wait this long (`Retry-After`).
        after_ms: Option<u64>,
    },
    /// Retrying cannot help (a 4xx, a missing binding or secret): dead-letter it now.
    Permanent(String),
}

impl SinkError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            SinkError::Retryable { .. } => "sink_retryable",
            SinkError::Permanent(_) => "sink_permanent",
        }
    }

    pub fn is_retryable(&self) -> bool {
        matches!(self, SinkError::Retryable { .. })
    }

    /// The verdict for every event the failed write carried.
    pub fn verdict(&self) -> Verdict {
        match self {
            SinkError::Retryable { reason, after_ms } => Verdict::Retry {
                after_ms: *after_ms,
                reason: reason.clone(),
            },
            SinkError::Permanent(reason) => Verdict::Permanent {
                reason: reason.clone(),
            },
        }
    }

    /// A port failure, with what was being done.
    pub fn port(doing: &str, e: &PortError) -> SinkError {
        let reason = [doing, ": ", &e.to_string(), " (", e.code(), ")"].concat();
        if e.is_retryable() {
            SinkError::Retryable {
                reason,
                after_ms: None,
            }
        } else {
            SinkError::Permanent(reason)
        }
    }
}

impl fmt::Display for SinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SinkError::Retryable { reason, .. } => write!(f, "retryable: {reason}"),
            SinkError::Permanent(m) => write!(f, "permanent: {m}"),
        }
    }
}

/// One write, and which events of the batch (by index) it carries.
#[derive(Debug, Clone, PartialEq)]
pub struct Part<R> {
    pub request: R,
    pub events: Vec<usize>,
}

/// What [`Sink::encode`] makes of a batch: the writes, and the events it
/// will not write (filtered, too old, unmappable) with their verdicts.
#[derive(Debug, Clone, PartialEq)]
pub struct Encoded<R> {
    pub parts: Vec<Part<R>>,
    pub skipped: Vec<(usize, Verdict)>,
}

impl<R> Encoded<R> {
    /// One write carrying every event of the batch.
    pub fn whole(request: R, batch: &DeliveryBatch) -> Encoded<R> {
        Encoded {
            parts: vec![Part {
                request,
                events: (0..batch.events.len()).collect(),
            }],
            skipped: Vec::new(),
        }
    }
}

/// The one shape of every sink.
#[allow(async_fn_in_trait)]
pub trait Sink {
    /// One write: an HTTP request, an object, a statement batch.
    type Request;
    /// The destination's answer to one write.
    type Answer;

    /// Encode the batch into writes within the destination's limits.
    fn encode(
        &self,
        batch: &DeliveryBatch,
        now: Timestamp,
    ) -> Result<Encoded<Self::Request>, SinkError>;

    /// Perform one write through the sink's port.
    async fn send(&self, request: &Self::Request) -> Result<Self::Answer, PortError>;

    /// One verdict per event the write carried, in the order of `part.events`.
    fn classify(
        &self,
        part: &Part<Self::Request>,
        answer: Result<Self::Answer, PortError>,
    ) -> Vec<Verdict>;
}

/// What became of each event of a batch (by index).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub verdicts: Vec<Verdict>,
}

impl Report {
    /// Every event delivered or deliberately skipped.
    pub fn is_done(&self) -> bool {
        self.verdicts
            .iter()
            .all(|v| matches!(v, Verdict::Delivered | Verdict::Skipped { .. }))
    }

    /// Indices of the events with this kind of verdict.
    pub fn indices(&self, pick: impl Fn(&Verdict) -> bool) -> Vec<usize> {
        (0..self.verdicts.len())
            .filter(|i| pick(&self.verdicts[*i]))
            .collect()
    }

    /// The longest wait any destination answer asked for.
    pub fn retry_after_ms(&self) -> Option<u64> {
        self.verdicts
            .iter()
            .filter_map(|v| match v {
                Verdict::Retry { after_ms, .. } => *after_ms,
                _ => None,
            })
            .max()
    }

    /// The first failure's reason, for logs and dead letters.
    pub fn first_error(&self) -> Option<&str> {
        self.verdicts.iter().find_map(|v| match v {
            Verdict::Retry { reason, .. } | Verdict::Permanent { reason } => Some(reason.as_str()),
            _ => None,
        })
    }
}

/// Write a batch through a sink: encode → send each write → classify.
pub async fn write<S: Sink>(sink: &S, batch: &DeliveryBatch, now: Timestamp) -> Report {
    let mut verdicts = vec![Verdict::Delivered; batch.events.len()];
    let encoded = match sink.encode(batch, now) {
        Ok(encoded) => encoded,
        Err(e) => {
            verdicts.fill(e.verdict());
            return Report { verdicts };
        }
    };
    for (i, verdict) in encoded.skipped {
        if let Some(slot) = verdicts.get_mut(i) {
            *slot = verdict;
        }
    }
    for part in encoded.parts {
        let answer = sink.send(&part.request).await;
        for (i, verdict) in part.events.iter().zip(sink.classify(&part, answer)) {
            if let Some(slot) = verdicts.get_mut(*i) {
                *slot = verdict;
            }
        }
    }
    Report { verdicts }
}

/// The same verdict for every event of a write that succeeded or failed as a whole.
pub fn all(events: &[usize], verdict: Verdict) -> Vec<Verdict> {
    vec![verdict; events.len()]
}

/// Classify a whole-write answer that carries no per-event detail.
pub fn unit_verdicts(doing: &str, events: &[usize], answer: Result<(), PortError>) -> Vec<Verdict> {
    match answer {
        Ok(()) => all(events, Verdict::Delivered),
        Err(e) => all(events, SinkError::port(doing, &e).verdict()),
    }
}

/// Classify an HTTP answer by status alone: 2xx delivered; 408, 429 and 5xx
/// retryable (honouring `Retry-After`); any other status permanent.
pub fn status_verdicts(events: &[usize], answer: Result<HttpAnswer, PortError>) -> Vec<Verdict> {
    let verdict = match answer {
        Ok(a) if (200..300).contains(&a.status) => Verdict::Delivered,
        Ok(a) => {
            let snippet: String = a.body.chars().take(300).collect();
            let reason = format!("HTTP {}: {snippet}", a.status);
            if a.status == 408 || a.status == 429 || a.status >= 500 {
                Verdict::Retry {
                    after_ms: a.retry_after_ms,
                    reason,
                }
            } else {
                Verdict::Permanent { reason }
            }
        }
        Err(e) => SinkError::port("request failed", &e).verdict(),
    };
    all(events, verdict)
}

/// Newline-delimited JSON of the rows.
pub fn ndjson<T: Serialize>(rows: impl IntoIterator<Item = T>) -> Vec<u8> {
    let mut out = Vec::new();
    for row in rows {
        if serde_json::to_writer(&mut out, &row).is_ok() {
            out.push(b'\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, retry_after_ms: Option<u64>) -> Result<HttpAnswer, PortError> {
        Ok(HttpAnswer {
            status,
            retry_after_ms,
            body: "x".into(),
        })
    }

    #[test]
    fn statuses_are_classified() {
        let one = [0];
        assert_eq!(
            status_verdicts(&one, answer(204, None)),
            [Verdict::Delivered]
        );
        for status in [408, 429, 500, 503] {
            assert!(matches!(
                status_verdicts(&one, answer(status, None))[0],
                Verdict::Retry { .. }
            ));
        }
        assert_eq!(
            status_verdicts(&one, answer(429, Some(7000))),
            [Verdict::Retry {
                after_ms: Some(7000),
                reason: "HTTP 429: x".into()
            }]
        );
        assert_eq!(
            status_verdicts(&one, answer(404, None)),
            [Verdict::Permanent {
                reason: "HTTP 404: x".into()
            }]
        );
        assert!(matches!(
            status_verdicts(&one, Err(PortError::Timeout("slow".into())))[0],
            Verdict::Retry { .. }
        ));
    }

    /// A vendor-like sink: two events a request, per-event answers.
    struct Pairs;

    impl Sink for Pairs {
        type Request = Vec<usize>;
        type Answer = Vec<bool>;

        fn encode(
            &self,
            batch: &DeliveryBatch,
            _now: Timestamp,
        ) -> Result<Encoded<Vec<usize>>, SinkError> {
            let all: Vec<usize> = (0..batch.events.len()).collect();
            Ok(Encoded {
                parts: all[1..]
                    .chunks(2)
                    .map(|c| Part {
                        request: c.to_vec(),
                        events: c.to_vec(),
                    })
                    .collect(),
                skipped: vec![(
                    0,
                    Verdict::Skipped {
                        reason: "too old".into(),
                    },
                )],
            })
        }

        async fn send(&self, request: &Vec<usize>) -> Result<Vec<bool>, PortError> {
            if request.contains(&3) {
                return Err(PortError::Unavailable("down".into()));
            }
            Ok(request.iter().map(|i| i % 2 == 1).collect())
        }

        fn classify(
            &self,
            part: &Part<Vec<usize>>,
            answer: Result<Vec<bool>, PortError>,
        ) -> Vec<Verdict> {
            match answer {
                Ok(oks) => oks
                    .into_iter()
                    .map(|ok| {
                        if ok {
                            Verdict::Delivered
                        } else {
                            Verdict::Permanent {
                                reason: "invalid".into(),
                            }
                        }
                    })
                    .collect(),
                Err(e) => all(&part.events, SinkError::port("send", &e).verdict()),
            }
        }
    }

    #[test]
    fn a_batch_gets_one_verdict_per_event_across_requests() {
        let batch = DeliveryBatch {
            destination: "d".into(),
            source: "s".into(),
            batch_id: "b".into(),
            attempt: 1,
            events: (0..5)
                .map(|i| Event::new(sluice_shared::EventType::Track, i.to_string()))
                .collect(),
        };
        let report = crate::delivery::tests::block_on(write(&Pairs, &batch, Timestamp(0)));
        let kinds: Vec<&str> = report
            .verdicts
            .iter()
            .map(|v| match v {
                Verdict::Delivered => "delivered",
                Verdict::Retry { .. } => "retry",
                Verdict::Permanent { .. } => "permanent",
                Verdict::Skipped { .. } => "skipped",
            })
            .collect();
        assert_eq!(
            kinds,
            ["skipped", "delivered", "permanent", "retry", "retry"]
        );
        assert!(!report.is_done());
        assert_eq!(
            report.indices(|v| matches!(v, Verdict::Retry { .. })),
            [3, 4]
        );
    }

    #[test]
    fn a_missing_binding_is_permanent_and_an_outage_retryable() {
        let missing = SinkError::port("put", &PortError::MissingBinding("LAKE"));
        assert_eq!(
            missing,
            SinkError::Permanent(
                "put: the binding LAKE is not configured (missing_binding)".into()
            )
        );
        assert!(SinkError::port("put", &PortError::Unavailable("down".into())).is_retryable());
        assert!(!SinkError::port("put", &PortError::Rejected("too big".into())).is_retryable());
    }
}
