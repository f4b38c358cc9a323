//! R2: gzip NDJSON objects under Hive-style partitions, one per delivery
//! batch, named by the batch id so a retried batch overwrites its object:
//!
//! `<prefix>/source=<source>/dt=YYYY-MM-DD/hour=HH/<batch_id>.ndjson.gz`
//!
//! DuckDB: `read_json_auto('…/events/**/*.ndjson.gz', hive_partitioning = true)`;
//! ClickHouse: `s3('…/events/*/*/*/*.ndjson.gz', 'JSONEachRow')`; Spark:
//! `spark.read.json("…/events/")` (discovers the partitions).

use super::{DeliveryBatch, ObjectStore, SinkError};
use sluice_shared::Timestamp;
use std::io::Write;

/// The partition (`dt`, `hour`) of a batch: its first event's `receivedAt`.
pub fn partition(batch: &DeliveryBatch) -> (String, String) {
    let received = batch
        .events
        .first()
        .and_then(|e| e.received_at.as_deref())
        .and_then(|t| Timestamp::parse(t).ok())
        .unwrap_or(Timestamp(0));
    let (y, m, d, h) = received.ymdh();
    (format!("{y:04}-{m:02}-{d:02}"), format!("{h:02}"))
}

/// The object key of a batch.
pub fn object_key(prefix: &str, batch: &DeliveryBatch) -> String {
    let (dt, hour) = partition(batch);
    format!(
        "{}/source={}/dt={dt}/hour={hour}/{}.ndjson.gz",
        prefix.trim_end_matches('/'),
        batch.source,
        batch.batch_id
    )
}

/// Gzip NDJSON of the batch's events.
pub fn encode(batch: &DeliveryBatch) -> Result<Vec<u8>, SinkError> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&super::ndjson(&batch.events))
        .and_then(|()| gz.finish())
        .map_err(|e| SinkError::Permanent(format!("gzip failed: {e}")))
}

/// Write the batch's object.
pub async fn write(
    store: &impl ObjectStore,
    prefix: &str,
    batch: &DeliveryBatch,
) -> Result<(), SinkError> {
    let body = encode(batch)?;
    store
        .put(&object_key(prefix, batch), body, "application/x-ndjson")
        .await
        .map_err(SinkError::Retryable)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_shared::{Event, EventType};
    use std::io::Read;

    fn batch() -> DeliveryBatch {
        let mut e = Event::new(EventType::Track, "m1");
        e.received_at = Some("2024-05-01T07:59:59.000Z".into());
        DeliveryBatch {
            destination: "lake".into(),
            source: "web".into(),
            batch_id: "b0123".into(),
            attempt: 1,
            events: vec![
                e.clone(),
                Event {
                    message_id: "m2".into(),
                    ..e
                },
            ],
        }
    }

    #[test]
    fn keys_are_hive_partitioned_and_deterministic() {
        assert_eq!(
            object_key("events/", &batch()),
            "events/source=web/dt=2024-05-01/hour=07/b0123.ndjson.gz"
        );
    }

    #[test]
    fn objects_are_gzip_ndjson_one_event_per_line() {
        let mut text = String::new();
        flate2::read::GzDecoder::new(encode(&batch()).unwrap().as_slice())
            .read_to_string(&mut text)
            .unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1]["messageId"], "m2");
    }
}
