//! Sinks: every destination has the same shape — encode → batch → write →
//! result — so a new one is written by copying a sibling.
//!
//! | sink | guarantee |
//! | --- | --- |
//! | [`d1`] | at-least-once writes, idempotent on `message_id` (primary key): exactly once stored |
//! | [`r2`] | at-least-once; one object per delivery batch with a deterministic key, so a retry overwrites |
//! | [`webhook`] | at-least-once; an `Idempotency-Key` per batch lets receivers drop a repeat |
//! | [`clickhouse`] | at-least-once; `ReplacingMergeTree` on `message_id` makes repeats collapse |

pub mod clickhouse;
pub mod d1;
pub mod r2;
pub mod webhook;

use serde::{Deserialize, Serialize};
use sluice_shared::Event;
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

/// Why a write failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SinkError {
    /// Worth retrying: network errors, timeouts, 408, 429, 5xx.
    Retryable(String),
    /// Retrying cannot help (a 4xx, a missing binding): dead-letter it now.
    Permanent(String),
    /// The destination asked to wait (`429`/`503` with `Retry-After`): retry, not sooner than this.
    Throttled { message: String, retry_after_s: u32 },
}

impl SinkError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            SinkError::Retryable(_) => "sink_retryable",
            SinkError::Permanent(_) => "sink_permanent",
            SinkError::Throttled { .. } => "sink_throttled",
        }
    }

    /// Whether another attempt may succeed.
    pub fn is_retryable(&self) -> bool {
        !matches!(self, SinkError::Permanent(_))
    }

    /// The least wait the destination asked for before the next attempt.
    pub fn retry_after_s(&self) -> Option<u32> {
        match self {
            SinkError::Throttled { retry_after_s, .. } => Some(*retry_after_s),
            _ => None,
        }
    }

    /// Classify a destination's answer, honouring its `Retry-After`.
    pub fn from_reply(reply: &Reply) -> SinkError {
        match (
            SinkError::from_status(reply.status, &reply.body),
            reply.retry_after_s,
        ) {
            (SinkError::Retryable(message), Some(retry_after_s)) => SinkError::Throttled {
                message,
                retry_after_s,
            },
            (e, _) => e,
        }
    }

    /// Classify an HTTP status from a destination.
    pub fn from_status(status: u16, body: &str) -> SinkError {
        let snippet: String = body.chars().take(300).collect();
        let message = format!("HTTP {status}: {snippet}");
        if status == 408 || status == 429 || status >= 500 {
            SinkError::Retryable(message)
        } else {
            SinkError::Permanent(message)
        }
    }
}

impl fmt::Display for SinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SinkError::Retryable(m) => write!(f, "retryable: {m}"),
            SinkError::Permanent(m) => write!(f, "permanent: {m}"),
            SinkError::Throttled {
                message,
                retry_after_s,
            } => write!(f, "retryable after {retry_after_s} s: {message}"),
        }
    }
}

/// A destination's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub body: String,
    /// Its `Retry-After`, in seconds from now, if it sent one.
    pub retry_after_s: Option<u32>,
}

impl Reply {
    /// An answer without `Retry-After`.
    pub fn new(status: u16, body: impl Into<String>) -> Reply {
        Reply {
            status,
            body: body.into(),
            retry_after_s: None,
        }
    }
}

/// An outbound HTTP client (`fetch` in production).
#[allow(async_fn_in_trait)]
pub trait HttpClient {
    /// POST and return the answer; `Err` for network errors and timeouts.
    async fn post(
        &self,
        url: &str,
        headers: &[(String, String)],
        body: Vec<u8>,
        timeout_ms: u32,
    ) -> Result<Reply, String>;
}

/// An object store (R2 in production).
#[allow(async_fn_in_trait)]
pub trait ObjectStore {
    async fn put(&self, key: &str, body: Vec<u8>, content_type: &str) -> Result<(), String>;
    /// The object's bytes, or `None` if there is none.
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, String>;
    async fn delete(&self, key: &str) -> Result<(), String>;
    /// Keys under `prefix`.
    async fn list(&self, prefix: &str) -> Result<Vec<String>, String>;
}

/// POST and map the outcome to the sink result.
pub async fn post(
    http: &impl HttpClient,
    url: &str,
    headers: &[(String, String)],
    body: Vec<u8>,
    timeout_ms: u32,
) -> Result<(), SinkError> {
    match http.post(url, headers, body, timeout_ms).await {
        Ok(reply) if (200..300).contains(&reply.status) => Ok(()),
        Ok(reply) => Err(SinkError::from_reply(&reply)),
        Err(e) => Err(SinkError::Retryable(e)),
    }
}

/// Newline-delimited JSON of the events.
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

    #[test]
    fn statuses_are_classified() {
        assert!(matches!(
            SinkError::from_status(500, ""),
            SinkError::Retryable(_)
        ));
        assert!(matches!(
            SinkError::from_status(429, ""),
            SinkError::Retryable(_)
        ));
        assert!(matches!(
            SinkError::from_status(408, ""),
            SinkError::Retryable(_)
        ));
        assert!(matches!(
            SinkError::from_status(400, "bad"),
            SinkError::Permanent(_)
        ));
        assert_eq!(
            SinkError::from_status(404, "x").to_string(),
            "permanent: HTTP 404: x"
        );
        let throttled = Reply {
            retry_after_s: Some(7),
            ..Reply::new(429, "slow down")
        };
        assert_eq!(SinkError::from_reply(&throttled).retry_after_s(), Some(7));
        assert!(SinkError::from_reply(&throttled).is_retryable());
        assert_eq!(
            SinkError::from_reply(&Reply {
                retry_after_s: Some(7),
                ..Reply::new(400, "bad")
            }),
            SinkError::Permanent("HTTP 400: bad".into()),
            "Retry-After on a permanent failure changes nothing"
        );
    }
}
