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

use super::{DeliveryBatch, HttpClient, SinkError};
use serde::Serialize;
use sluice_shared::Event;

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

/// Where and as whom to insert.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    pub url: &'a str,
    pub database: &'a str,
    pub table: &'a str,
    pub user: Option<&'a str>,
    pub password: Option<&'a str>,
    pub timeout_ms: u32,
}

/// Insert the batch.
pub async fn write(
    http: &impl HttpClient,
    target: Target<'_>,
    batch: &DeliveryBatch,
) -> Result<(), SinkError> {
    let mut headers = vec![("content-type".to_owned(), "application/x-ndjson".to_owned())];
    if let Some(user) = target.user {
        headers.push(("x-clickhouse-user".into(), user.into()));
    }
    if let Some(password) = target.password {
        headers.push(("x-clickhouse-key".into(), password.into()));
    }
    let url = insert_url(target.url, target.database, target.table);
    super::post(http, &url, &headers, encode(batch), target.timeout_ms).await
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
