//! ClickHouse over its HTTP interface: `INSERT INTO <db>.<table> FORMAT
//! JSONEachRow`, one row per event. Create the table as a
//! `ReplacingMergeTree` ordered by `message_id`, so a retried insert
//! collapses (query with `FINAL`, or let merges do it):
//!
//! ```sql
//! CREATE TABLE events (
//!   message_id String, source String, type String, event String, name String,
//!   anonymous_id String, user_id String, timestamp String, received_at String,
//!   properties String, traits String, context String
//! ) ENGINE = ReplacingMergeTree ORDER BY message_id
//! ```

use super::{DeliveryBatch, Encoded, Part, Sink, SinkError};
use crate::ports::{HttpClient, PortError};
use serde::Serialize;
use sluice_shared::dest::{HttpAnswer, HttpRequest, Verdict};
use sluice_shared::{Event, Timestamp};

/// One `JSONEachRow` row. Nested objects travel as JSON strings (portable to old servers).
#[derive(Debug, Serialize, PartialEq)]
pub struct Row<'a> {
    pub message_id: &'a str,
    pub source: &'a str,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub event: &'a str,
    pub name: &'a str,
    pub anonymous_id: &'a str,
    pub user_id: &'a str,
    pub timestamp: &'a str,
    pub received_at: &'a str,
    pub properties: String,
    pub traits: String,
    pub context: String,
}

fn json<T: Serialize>(v: &Option<T>) -> String {
    v.as_ref()
        .and_then(|v| serde_json::to_string(v).ok())
        .unwrap_or_else(|| "{}".into())
}

/// The row for an event.
pub fn row<'a>(source: &'a str, e: &'a Event) -> Row<'a> {
    let s = |v: &'a Option<String>| v.as_deref().unwrap_or_default();
    Row {
        message_id: &e.message_id,
        source,
        kind: e.kind.as_str(),
        event: s(&e.event),
        name: s(&e.name),
        anonymous_id: s(&e.anonymous_id),
        user_id: s(&e.user_id),
        timestamp: s(&e.timestamp),
        received_at: s(&e.received_at),
        properties: json(&e.properties),
        traits: json(&e.traits),
        context: json(&e.context),
    }
}

/// The request body: one JSON row per line.
pub fn encode(batch: &DeliveryBatch) -> Vec<u8> {
    super::ndjson(batch.events.iter().map(|e| row(&batch.source, e)))
}

/// `<url>/?query=INSERT…` with the query percent-encoded.
pub fn insert_url(base: &str, database: &str, table: &str) -> String {
    let query = format!("INSERT INTO {database}.{table} FORMAT JSONEachRow");
    let encoded: String = query
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'_' || b == b'.' {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    format!("{}/?query={encoded}", base.trim_end_matches('/'))
}

/// The ClickHouse sink: where and as whom to insert; one insert per batch.
pub struct Clickhouse<'a, H> {
    pub http: &'a H,
    pub url: &'a str,
    pub database: &'a str,
    pub table: &'a str,
    pub user: Option<&'a str>,
    pub password: Option<String>,
    pub timeout_ms: u32,
}

impl<H: HttpClient> Sink for Clickhouse<'_, H> {
    type Request = HttpRequest;
    type Answer = HttpAnswer;

    fn encode(
        &self,
        batch: &DeliveryBatch,
        _now: Timestamp,
    ) -> Result<Encoded<HttpRequest>, SinkError> {
        let mut headers = vec![("content-type".to_owned(), "application/x-ndjson".to_owned())];
        if let Some(user) = self.user {
            headers.push(("x-clickhouse-user".into(), user.into()));
        }
        if let Some(password) = &self.password {
            headers.push(("x-clickhouse-key".into(), password.clone()));
        }
        let request = HttpRequest {
            method: "POST",
            url: insert_url(self.url, self.database, self.table),
            headers,
            body: encode(batch),
            events: Vec::new(),
        };
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
    use sluice_shared::EventType;

    #[test]
    fn rows_flatten_events_and_the_query_is_encoded() {
        let mut e = Event::new(EventType::Track, "m1");
        e.event = Some("Order Completed".into());
        e.properties = Some(
            serde_json::json!({"revenue": 9})
                .as_object()
                .cloned()
                .unwrap(),
        );
        let batch = DeliveryBatch {
            destination: "ch".into(),
            source: "web".into(),
            batch_id: "b".into(),
            attempt: 1,
            events: vec![e],
        };
        let text = String::from_utf8(encode(&batch)).unwrap();
        let row: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(row["message_id"], "m1");
        assert_eq!(row["type"], "track");
        assert_eq!(row["properties"], "{\"revenue\":9}");
        assert_eq!(row["user_id"], "");
        assert_eq!(
            insert_url("http://127.0.0.1:8123/", "default", "events"),
            "http://127.0.0.1:8123/?query=INSERT%20INTO%20default.events%20FORMAT%20JSONEachRow"
        );
    }
}
