//! The accept path: decode → authenticate → check shape → Queue → per-event results.

use crate::config::{Config, Source};
use crate::error::ApiError;
use crate::http::{HttpRequest, HttpResponse};
use serde::Serialize;
use sluice_shared::{Batch, QueuedEvent};

/// Largest request body accepted (the Segment Spec batch limit).
pub const MAX_BATCH_BYTES: usize = 500 * 1024;

/// Where accepted events go before the 200 (the Queue in production).
#[allow(async_fn_in_trait)]
pub trait EventQueue {
    /// Durably accept these messages, or fail (the client will retry).
    async fn send(&self, messages: Vec<String>) -> Result<(), String>;
}

/// The response body for an accepted batch.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchResponse {
    pub accepted: usize,
    pub results: Vec<EventResult>,
}

/// What happened to one event of the batch.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventResult {
    pub message_id: String,
    pub status: &'static str,
}

/// `POST /v1/batch`.
pub async fn batch(
    req: &HttpRequest,
    config: &Config,
    queue: &impl EventQueue,
    now: &str,
) -> Result<HttpResponse, ApiError> {
    if req.body.len() > MAX_BATCH_BYTES {
        return Err(ApiError::PayloadTooLarge {
            limit_bytes: MAX_BATCH_BYTES,
        });
    }
    let batch: Batch =
        serde_json::from_slice(&req.body).map_err(|e| ApiError::InvalidBody(e.to_string()))?;
    let source = authenticate(req, batch.write_key.as_deref(), config)?;

    let mut messages = Vec::with_capacity(batch.batch.len());
    let mut results = Vec::with_capacity(batch.batch.len());
    for mut event in batch.batch {
        event.received_at = Some(now.to_owned());
        if event.sent_at.is_none() {
            event.sent_at.clone_from(&batch.sent_at);
        }
        results.push(EventResult {
            message_id: event.message_id.clone(),
            status: "accepted",
        });
        let queued = QueuedEvent {
            source: source.name.clone(),
            event,
        };
        let json = serde_json::to_string(&queued)
            .map_err(|e| ApiError::InvalidBody(format!("event cannot be re-encoded: {e}")))?;
        messages.push(json);
    }
    if !messages.is_empty() {
        queue.send(messages).await.map_err(ApiError::Unavailable)?;
    }
    Ok(HttpResponse::json(
        200,
        &BatchResponse {
            accepted: results.len(),
            results,
        },
    ))
}

/// The source whose write key came with the request: HTTP Basic
/// (`base64(writeKey:)`), the body's `writeKey`, or `?writeKey=`.
fn authenticate<'c>(
    req: &HttpRequest,
    body_key: Option<&str>,
    config: &'c Config,
) -> Result<&'c Source, ApiError> {
    let key = basic_auth_user(req)
        .or_else(|| body_key.map(str::to_owned))
        .or_else(|| query_param(&req.query, "writeKey"))
        .ok_or(ApiError::Unauthorized)?;
    config
        .source_by_write_key(&key)
        .ok_or(ApiError::Unauthorized)
}

fn basic_auth_user(req: &HttpRequest) -> Option<String> {
    use base64::Engine as _;
    let value = req.header("authorization")?;
    let encoded = value
        .strip_prefix("Basic ")
        .or_else(|| value.strip_prefix("basic "))?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let user = text.split(':').next()?;
    (!user.is_empty()).then(|| user.to_owned())
}

/// A query parameter's value (no percent-decoding needed for write keys).
fn query_param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == name && !v.is_empty()).then(|| v.to_owned())
    })
}
