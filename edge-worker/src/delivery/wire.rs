//! The deliveries Queue's message body: a delivery batch as JSON, or, when
//! that JSON is longer than one Queue operation (64 KB), **sealed**:
//! `{"gz":"<base64 of the JSON, gzipped>"}`.
//!
//! Queues bill one operation per 64 KB of a message at each of its write,
//! read and delete, so a batch of 100 events with their context (about
//! 200 KB of JSON) costs 3 operations sealed (about 25 KB) where it cost 12,
//! and one message now carries the hundred events that took two before.
//! Small batches stay plain JSON. [`open`] reads either, so the messages on
//! the Queue when this is deployed are still delivered.

use base64::Engine as _;
use std::borrow::Cow;
use std::io::{Read, Write};

/// A batch's JSON longer than this is sealed (one Queue operation's bytes).
pub const SEAL_ABOVE: usize = sluice_shared::cost::QUEUE_OP_BYTES;

/// The key of a sealed body: `{"gz":"…"}`.
const SEALED_PREFIX: &str = "{\"gz\":\"";

/// Why a message body could not be opened.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WireError {
    /// `{"gz": …}` whose value is not base64 of gzip of UTF-8 text.
    Corrupt(String),
}

impl WireError {
    pub fn code(&self) -> &'static str {
        match self {
            WireError::Corrupt(_) => "delivery_message_corrupt",
        }
    }
}

impl std::fmt::Display for WireError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WireError::Corrupt(why) => write!(f, "{}: {why}", self.code()),
        }
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Sealed<'a> {
    #[serde(borrow)]
    gz: Cow<'a, str>,
}

/// The body to send for a batch's JSON: itself up to [`SEAL_ABOVE`] bytes,
/// else sealed (or itself, should sealing not make it shorter).
pub fn seal(json: String) -> String {
    if json.len() <= SEAL_ABOVE {
        return json;
    }
    let mut gz = flate2::write::GzEncoder::new(
        Vec::with_capacity(json.len() / 8),
        flate2::Compression::fast(),
    );
    let Ok(zipped) = gz.write_all(json.as_bytes()).and_then(|()| gz.finish()) else {
        return json;
    };
    let body = base64::engine::general_purpose::STANDARD.encode(zipped);
    let sealed = serde_json::to_string(&Sealed {
        gz: Cow::Owned(body),
    })
    .unwrap_or_default();
    if sealed.is_empty() || sealed.len() >= json.len() {
        json
    } else {
        sealed
    }
}

/// The batch JSON in a message body, sealed or not.
pub fn open(raw: &str) -> Result<Cow<'_, str>, WireError> {
    if !raw.starts_with(SEALED_PREFIX) {
        return Ok(Cow::Borrowed(raw));
    }
    let sealed: Sealed<'_> =
        serde_json::from_str(raw).map_err(|e| WireError::Corrupt(e.to_string()))?;
    let zipped = base64::engine::general_purpose::STANDARD
        .decode(sealed.gz.as_bytes())
        .map_err(|e| WireError::Corrupt(e.to_string()))?;
    let mut json = String::new();
    flate2::read::GzDecoder::new(zipped.as_slice())
        .read_to_string(&mut json)
        .map_err(|e| WireError::Corrupt(e.to_string()))?;
    Ok(Cow::Owned(json))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(events: usize) -> String {
        let events: Vec<serde_json::Value> = (0..events)
            .map(|i| serde_json::json!({"type": "track", "messageId": format!("m{i}"), "event": "Product Viewed",
                "properties": {"sku": "MUG-001", "price": 12.5, "url": "https://shop.example.com/product.html?id=mug-blue"},
                "context": {"userAgent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
                            "page": {"path": "/product.html", "referrer": "https://www.google.com/search?q=mug"}}}))
            .collect();
        serde_json::json!({"destination": "lake", "source": "web", "batch_id": "b", "attempt": 1, "events": events}).to_string()
    }

    #[test]
    fn a_batch_within_one_queue_operation_stays_plain_json() {
        let json = batch(3);
        assert_eq!(seal(json.clone()), json);
        assert_eq!(open(&json).unwrap(), json);
    }

    #[test]
    fn a_large_batch_is_sealed_into_one_queue_operation_and_opens_unchanged() {
        let json = batch(500);
        assert!(json.len() > 2 * SEAL_ABOVE, "{}", json.len());
        let sealed = seal(json.clone());
        assert!(sealed.starts_with(SEALED_PREFIX));
        assert!(sealed.len() <= SEAL_ABOVE, "{}", sealed.len());
        assert_eq!(open(&sealed).unwrap(), json);
    }

    #[test]
    fn a_corrupt_sealed_body_is_a_typed_error() {
        let err = open("{\"gz\":\"not base64!\"}").unwrap_err();
        assert_eq!(err.code(), "delivery_message_corrupt");
        let err = open("{\"gz\":\"aGVsbG8=\"}").unwrap_err();
        assert_eq!(
            err.code(),
            "delivery_message_corrupt",
            "base64, but not gzip"
        );
    }
}
