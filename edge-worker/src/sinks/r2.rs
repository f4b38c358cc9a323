//! R2: gzip NDJSON objects under Hive-style partitions, one per delivery
//! batch, named by the batch id so a retried batch overwrites its object:
//!
//! `<prefix>/source=<source>/dt=YYYY-MM-DD/hour=HH/<batch_id>.ndjson.gz`
//!
//! DuckDB: `read_json_auto('…/events/**/*.ndjson.gz', hive_partitioning = true)`;
//! ClickHouse: `s3('…/events/*/*/*/*.ndjson.gz', 'JSONEachRow')`; Spark:
//! `spark.read.json("…/events/")` (discovers the partitions).

use super::d1::{Sql, SqlValue, Statement};
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

/// Write the batch's object, then index whose events it holds (for export,
/// deletion and retention). Both steps are idempotent.
pub async fn write(
    store: &impl ObjectStore,
    db: &impl Sql,
    prefix: &str,
    batch: &DeliveryBatch,
) -> Result<(), SinkError> {
    let body = encode(batch)?;
    let key = object_key(prefix, batch);
    store
        .put(&key, body, "application/x-ndjson")
        .await
        .map_err(SinkError::Retryable)?;
    let (dt, _) = partition(batch);
    let mut people: Vec<&str> = batch
        .events
        .iter()
        .flat_map(|e| [e.user_id.as_deref(), e.anonymous_id.as_deref()])
        .flatten()
        .collect();
    people.sort_unstable();
    people.dedup();
    let statements = people
        .into_iter()
        .map(|p| {
            Statement::new(
                INDEX,
                vec![
                    SqlValue::Text(key.clone()),
                    SqlValue::Text(p.to_owned()),
                    SqlValue::Text(dt.clone()),
                ],
            )
        })
        .collect();
    db.run(statements)
        .await
        .map_err(|e| SinkError::Retryable(format!("lake index: {e}")))
}

const INDEX: &str = "INSERT INTO lake_index (key, person, dt) VALUES (?1, ?2, ?3) ON CONFLICT (key, person) DO NOTHING";

/// Keep only the lines of an NDJSON.gz object whose event does not belong to
/// any of `people`; returns the new object (`None` if nothing is left) and how
/// many events were removed.
pub fn without(object: &[u8], people: &[String]) -> Result<(Option<Vec<u8>>, usize), SinkError> {
    use std::io::Read;
    let mut text = String::new();
    flate2::read::GzDecoder::new(object)
        .read_to_string(&mut text)
        .map_err(|e| SinkError::Permanent(format!("not gzip NDJSON: {e}")))?;
    let mut kept = Vec::new();
    let mut removed = 0;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let belongs = serde_json::from_str::<serde_json::Value>(line)
            .ok()
            .is_some_and(|v| {
                ["userId", "anonymousId"].iter().any(|k| {
                    v.get(*k)
                        .and_then(|x| x.as_str())
                        .is_some_and(|id| people.iter().any(|p| p == id))
                })
            });
        if belongs {
            removed += 1;
        } else {
            kept.push(line);
        }
    }
    if kept.is_empty() {
        return Ok((None, removed));
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    for line in kept {
        gz.write_all(line.as_bytes())
            .and_then(|()| gz.write_all(b"\n"))
            .map_err(|e| SinkError::Permanent(e.to_string()))?;
    }
    gz.finish()
        .map(|b| (Some(b), removed))
        .map_err(|e| SinkError::Permanent(e.to_string()))
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
    fn a_persons_events_can_be_cut_out_of_an_object() {
        let mut b = batch();
        b.events[0].user_id = Some("u1".into());
        b.events[1].anonymous_id = Some("a2".into());
        let object = encode(&b).unwrap();
        let (rest, removed) = without(&object, &["u1".into()]).unwrap();
        assert_eq!(removed, 1);
        let mut text = String::new();
        flate2::read::GzDecoder::new(rest.unwrap().as_slice())
            .read_to_string(&mut text)
            .unwrap();
        assert!(text.contains("m2") && !text.contains("u1"));
        let (rest, removed) = without(&object, &["u1".into(), "a2".into()]).unwrap();
        assert_eq!((rest, removed), (None, 2));
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
