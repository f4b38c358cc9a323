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
}

impl SinkError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            SinkError::Retryable(_) => "sink_retryable",
            SinkError::Permanent(_) => "sink_permanent",
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
        }
    }
}

/// An outbound HTTP client (`fetch` in production).
#[allow(async_fn_in_trait)]
pub trait HttpClient {
    /// POST and return the status and body; `Err` for network errors and timeouts.
    async fn post(
        &self,
        url: &str,
        headers: &[(String, String)],
        body: Vec<u8>,
        timeout_ms: u32,
    ) -> Result<(u16, String), String>;
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
        Ok((status, _)) if (200..300).contains(&status) => Ok(()),
        Ok((status, body)) => Err(SinkError::from_status(status, &body)),
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
    }
}
