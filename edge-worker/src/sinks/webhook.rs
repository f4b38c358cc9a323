//! Generic webhook: the batch as JSON, signed with HMAC-SHA256.
//!
//! Headers: `X-Sluice-Timestamp: <unix seconds>`, `X-Sluice-Signature:
//! v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`, `Idempotency-Key:
//! <batch id>`. A receiver recomputes the signature, compares in constant
//! time, and rejects timestamps more than 5 minutes away (replays).

use super::{DeliveryBatch, Encoded, Part, Sink, SinkError};
use crate::ports::{HttpClient, PortError};
use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;
use sluice_shared::dest::{HttpAnswer, HttpRequest, Verdict};
use sluice_shared::Timestamp;

/// How far a timestamp may be from the receiver's clock.
pub const TOLERANCE_S: i64 = 300;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Body<'a> {
    batch_id: &'a str,
    source: &'a str,
    sent_at: String,
    batch: &'a [sluice_shared::Event],
}

/// The JSON body.
pub fn encode(batch: &DeliveryBatch, sent_at: &str) -> Vec<u8> {
    serde_json::to_vec(&Body {
        batch_id: &batch.batch_id,
        source: &batch.source,
        sent_at: sent_at.to_owned(),
        batch: &batch.events,
    })
    .unwrap_or_default()
}

/// `v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`.
pub fn sign(secret: &[u8], timestamp_s: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap_or_else(|_| {
        // HMAC accepts keys of any length; this branch cannot be taken.
        Hmac::<Sha256>::new_from_slice(b"").unwrap_or_else(|_| unreachable!())
    });
    mac.update(timestamp_s.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let mut out = String::from("v1=");
    for b in digest {
        out.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
        out.push(char::from(b"0123456789abcdef"[usize::from(b & 0xf)]));
    }
    out
}

/// Check a signature as a receiver would (constant-time compare, replay window).
pub fn verify(secret: &[u8], timestamp_s: i64, body: &[u8], signature: &str, now_s: i64) -> bool {
    let expected = sign(secret, timestamp_s, body);
    (now_s - timestamp_s).abs() <= TOLERANCE_S
        && expected.len() == signature.len()
        && expected
            .bytes()
            .zip(signature.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// A signed POST of `body` to `url`, tagged with what it is (`x-sluice-event`).
fn signed(
    url: &str,
    secret: &[u8],
    event: Option<&str>,
    idempotency_key: String,
    body: Vec<u8>,
    now: Timestamp,
) -> HttpRequest {
    let ts = now.0.div_euclid(1000);
    let mut headers = vec![("content-type".to_owned(), "application/json".to_owned())];
    if let Some(event) = event {
        headers.push(("x-sluice-event".to_owned(), event.to_owned()));
    }
    headers.extend([
        ("x-sluice-timestamp".to_owned(), ts.to_string()),
        ("x-sluice-signature".to_owned(), sign(secret, ts, &body)),
        ("idempotency-key".to_owned(), idempotency_key),
    ]);
    HttpRequest {
        method: "POST",
        url: url.to_owned(),
        headers,
        body,
        events: Vec::new(),
    }
}

/// The deletion notice sent to a webhook when a person is deleted: the ids
/// it must forget, signed like a batch.
pub fn deletion_request(
    url: &str,
    secret: &[u8],
    request_id: &str,
    user_ids: &[String],
    anonymous_ids: &[String],
    now: Timestamp,
) -> HttpRequest {
    let body = serde_json::json!({"type": "delete", "requestId": request_id, "userIds": user_ids, "anonymousIds": anonymous_ids})
        .to_string()
        .into_bytes();
    signed(
        url,
        secret,
        Some("deletion"),
        ["delete-", request_id].concat(),
        body,
        now,
    )
}

/// The webhook sink: the whole batch in one signed POST.
pub struct Webhook<'a, H> {
    pub http: &'a H,
    pub url: &'a str,
    pub secret: Vec<u8>,
    pub timeout_ms: u32,
}

impl<H: HttpClient> Sink for Webhook<'_, H> {
    type Request = HttpRequest;
    type Answer = HttpAnswer;

    fn encode(
        &self,
        batch: &DeliveryBatch,
        now: Timestamp,
    ) -> Result<Encoded<HttpRequest>, SinkError> {
        let body = encode(batch, &now.to_rfc3339());
        let request = signed(
            self.url,
            &self.secret,
            None,
            batch.batch_id.clone(),
            body,
            now,
        );
        Ok(Encoded::whole(request, batch))
    }

    async fn send(&self, request: &HttpRequest) -> Result<HttpAnswer, PortError> {
        self.http.send(request, self.timeout_ms).await
    }

    fn classify(
        &self,
        part: &Part<HttpRequest>,
        answer: Result<HttpAnswer, PortError>,
    ) -> Vec<Verdict> {
        super::status_verdicts(&part.events, answer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_match_the_rfc_4231_vector_shape_and_verify() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        let mut mac = Hmac::<Sha256>::new_from_slice(b"Jefe").unwrap();
        mac.update(b"what do ya want for nothing?");
        let hex: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let sig = sign(b"s3cret", 1_700_000_000, b"{}");
        assert!(sig.starts_with("v1=") && sig.len() == 67);
        assert!(verify(b"s3cret", 1_700_000_000, b"{}", &sig, 1_700_000_100));
        assert!(
            !verify(b"other", 1_700_000_000, b"{}", &sig, 1_700_000_100),
            "wrong secret"
        );
        assert!(
            !verify(b"s3cret", 1_700_000_000, b"{ }", &sig, 1_700_000_100),
            "tampered body"
        );
        assert!(
            !verify(b"s3cret", 1_700_000_000, b"{}", &sig, 1_700_001_000),
            "replayed too late"
        );
    }
}
