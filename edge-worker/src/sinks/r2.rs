//! R2: objects under Hive-style partitions, one per delivery batch, named by
//! the batch id so a retried batch overwrites its object — Parquet with gzip
//! pages ([`sluice_shared::lake`], the default) or, with `"format":
//! "ndjson"`, gzip NDJSON; Parquet hours are merged by [`crate::compact`]:
//!
//! `<prefix>/source=<source>/dt=YYYY-MM-DD/hour=HH/<batch_id>.parquet` (or `.ndjson.gz`)
//!
//! DuckDB: `read_parquet('…/events/**/*.parquet', hive_partitioning = true)`
//! or `read_json_auto('…/events/**/*.ndjson.gz', hive_partitioning = true)`;
//! ClickHouse: `s3('…/events/*/*/*/*.parquet', 'Parquet')`; Spark:
//! `spark.read.parquet("…/events/")` (discovers the partitions).

use super::{DeliveryBatch, Encoded, Part, Sink, SinkError};
use crate::db::{SqlValue, Statement};
use crate::delivery::config::LakeFormat;
use crate::ports::{ObjectStore, PortError, Sql};
use serde_json::Value;
use sluice_shared::dest::Verdict;
use sluice_shared::Timestamp;
use std::io::{Read, Write};

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

/// Where a source's objects are, under a destination's prefix.
pub fn source_prefix(prefix: &str, source: &str) -> String {
    format!("{}/source={source}/", prefix.trim_end_matches('/'))
}

/// The object key of a batch (NDJSON).
pub fn object_key(prefix: &str, batch: &DeliveryBatch) -> String {
    key(prefix, batch, LakeFormat::Ndjson)
}

/// The object key of a batch in a format.
pub fn key(prefix: &str, batch: &DeliveryBatch, format: LakeFormat) -> String {
    let (dt, hour) = partition(batch);
    let ext = match format {
        LakeFormat::Ndjson => "ndjson.gz",
        LakeFormat::Parquet => "parquet",
    };
    format!(
        "{}dt={dt}/hour={hour}/{}.{ext}",
        source_prefix(prefix, &batch.source),
        batch.batch_id
    )
}

/// Parquet files start with `PAR1`; anything else here is gzip NDJSON.
fn is_parquet(object: &[u8]) -> bool {
    object.starts_with(b"PAR1")
}

/// The content type of a lake object, from its bytes.
pub fn content_type(object: &[u8]) -> &'static str {
    if is_parquet(object) {
        "application/vnd.apache.parquet"
    } else {
        "application/x-ndjson"
    }
}

fn lake_error(e: sluice_shared::lake::LakeError) -> SinkError {
    SinkError::Permanent(format!("{} ({})", e, e.code()))
}

/// The day (`YYYY-MM-DD`) an object's partition holds, from its key.
pub fn partition_day(key: &str) -> Option<&str> {
    key.split("/dt=").nth(1).and_then(|rest| rest.get(..10))
}

/// Gzip NDJSON of the batch's events.
pub fn encode(batch: &DeliveryBatch) -> Result<Vec<u8>, SinkError> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&super::ndjson(&batch.events))
        .and_then(|()| gz.finish())
        .map_err(|e| SinkError::Permanent(format!("gzip failed: {e}")))
}

/// One lake write: the object, and the index of whose events it holds (for
/// export, deletion and retention).
#[derive(Debug, Clone, PartialEq)]
pub struct LakeObject {
    pub key: String,
    pub body: Vec<u8>,
    pub content_type: &'static str,
    pub index: Vec<Statement>,
}

/// The R2 lake sink: one object per delivery batch, then its index rows.
/// Both steps are idempotent, so a retried batch overwrites its object.
pub struct Lake<'a, O, S> {
    pub store: &'a O,
    pub db: &'a S,
    pub prefix: &'a str,
    pub format: LakeFormat,
}

impl<O: ObjectStore, S: Sql> Sink for Lake<'_, O, S> {
    type Request = LakeObject;
    type Answer = ();

    fn encode(
        &self,
        batch: &DeliveryBatch,
        _now: Timestamp,
    ) -> Result<Encoded<LakeObject>, SinkError> {
        let body = match self.format {
            LakeFormat::Ndjson => encode(batch)?,
            LakeFormat::Parquet => sluice_shared::lake::events_to_parquet(
                &batch.events,
                &batch.source,
                sluice_shared::lake::Codec::Gzip,
            )
            .map_err(lake_error)?,
        };
        let content_type = content_type(&body);
        let key = key(self.prefix, batch, self.format);
        let (dt, _) = partition(batch);
        let mut people: Vec<&str> = batch
            .events
            .iter()
            .flat_map(|e| [e.user_id.as_deref(), e.anonymous_id.as_deref()])
            .flatten()
            .collect();
        people.sort_unstable();
        people.dedup();
        // One index row per object (D1 bills rows written): whose events it holds.
        let index = vec![Statement::new(
            INDEX,
            vec![
                SqlValue::Text(key.clone()),
                SqlValue::Text(dt),
                SqlValue::Text(serde_json::json!(people).to_string()),
            ],
        )];
        Ok(Encoded::whole(
            LakeObject {
                key,
                body,
                content_type,
                index,
            },
            batch,
        ))
    }

    async fn send(&self, object: &LakeObject) -> Result<(), PortError> {
        self.store
            .put(&object.key, object.body.clone(), object.content_type)
            .await?;
        self.db.run(object.index.clone()).await
    }

    fn classify(&self, part: &Part<LakeObject>, answer: Result<(), PortError>) -> Vec<Verdict> {
        super::unit_verdicts("lake write", &part.events, answer)
    }
}

const INDEX: &str =
    "INSERT INTO lake_objects (key, dt, people) VALUES (?1, ?2, ?3) ON CONFLICT (key) DO NOTHING";

fn lines(object: &[u8]) -> Result<String, SinkError> {
    let mut text = String::new();
    flate2::read::GzDecoder::new(object)
        .read_to_string(&mut text)
        .map_err(|e| SinkError::Permanent(format!("not gzip NDJSON: {e}")))?;
    Ok(text)
}

fn belongs(event: &Value, people: &[String]) -> bool {
    ["userId", "anonymousId"].iter().any(|k| {
        event
            .get(*k)
            .and_then(Value::as_str)
            .is_some_and(|id| people.iter().any(|p| p == id))
    })
}

/// Every event of a lake object with its source (an audience backfill),
/// and how many NDJSON lines could not be read as events (kept out, the
/// others read). An object that is not Parquet or gzip NDJSON is an error.
pub fn all_events(
    object: &[u8],
    key: &str,
) -> Result<(Vec<(String, sluice_shared::Event)>, u64), SinkError> {
    if is_parquet(object) {
        let events = sluice_shared::lake::parquet_to_events(object).map_err(lake_error)?;
        return Ok((events.into_iter().map(|r| (r.source, r.event)).collect(), 0));
    }
    let source = key
        .split("/source=")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_default();
    let mut bad = 0;
    let events = lines(object)?
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter_map(|l| match serde_json::from_str(l) {
            Ok(e) => Some((source.to_owned(), e)),
            Err(_) => {
                bad += 1;
                None
            }
        })
        .collect();
    Ok((events, bad))
}

/// The events of an object that belong to any of `people` (for an export).
pub fn events_of(object: &[u8], people: &[String]) -> Result<Vec<Value>, SinkError> {
    if is_parquet(object) {
        return sluice_shared::lake::events_of(object, people)
            .map_err(lake_error)?
            .iter()
            .map(|e| serde_json::to_value(e).map_err(|e| SinkError::Permanent(e.to_string())))
            .collect();
    }
    Ok(lines(object)?
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| belongs(v, people))
        .collect())
}

/// Keep only the lines of an NDJSON.gz object whose event does not belong to
/// any of `people`; returns the new object (`None` if nothing is left) and how
/// many events were removed.
pub fn without(object: &[u8], people: &[String]) -> Result<(Option<Vec<u8>>, usize), SinkError> {
    if is_parquet(object) {
        return sluice_shared::lake::filter_out(object, people).map_err(lake_error);
    }
    let text = lines(object)?;
    let mut kept = Vec::new();
    let mut removed = 0;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let theirs = serde_json::from_str::<Value>(line)
            .ok()
            .is_some_and(|v| belongs(&v, people));
        if theirs {
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
        assert_eq!(
            partition_day("lake/source=web/dt=2024-05-01/hour=07/b.ndjson.gz"),
            Some("2024-05-01")
        );
    }

    #[test]
    fn a_persons_events_can_be_cut_out_of_a_parquet_object_too() {
        let mut b = batch();
        b.events[0].user_id = Some("u1".into());
        b.events[1].anonymous_id = Some("a2".into());
        let object = sluice_shared::lake::events_to_parquet(
            &b.events,
            "web",
            sluice_shared::lake::Codec::Gzip,
        )
        .unwrap();
        assert_eq!(content_type(&object), "application/vnd.apache.parquet");
        let theirs = events_of(&object, &["u1".into()]).unwrap();
        assert_eq!(theirs.len(), 1);
        assert_eq!(theirs[0]["messageId"], "m1");
        let (rest, removed) = without(&object, &["u1".into()]).unwrap();
        assert_eq!(removed, 1);
        let rest = rest.unwrap();
        assert!(rest.starts_with(b"PAR1"), "still Parquet");
        let left = sluice_shared::lake::parquet_to_events(&rest).unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(
            without(&object, &["u1".into(), "a2".into()]).unwrap(),
            (None, 2)
        );
        assert_eq!(
            key("cold", &b, LakeFormat::Parquet),
            "cold/source=web/dt=2024-05-01/hour=07/b0123.parquet"
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
        let theirs = events_of(&object, &["u1".into()]).unwrap();
        assert_eq!(theirs.len(), 1);
        assert_eq!(theirs[0]["messageId"], "m1");
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
