//! Lake compaction: the hourly job that merges an hour's small Parquet
//! objects (one per delivery batch, ~100 events each) into one file, so a
//! busy hour is a handful of objects instead of thousands.
//!
//! The hourly Cron Trigger ([`CRON`]) reads the lake index (D1, no R2
//! listing) and puts one job per due hour on the jobs Queue ([`enqueue_due`]):
//! an hour is due once it started [`AFTER_VAR`] seconds ago (default two
//! hours: closed, plus an hour for late batches) and holds at least two
//! objects that are not compaction outputs. A job ([`run`]) merges up to
//! [`MAX_INPUTS`] of them (or [`TARGET_BYTES`] read) with
//! [`sluice_shared::lake::compact`] into `hour=HH/compacted-NNNN.parquet`,
//! and puts itself back on the Queue while more are left.
//!
//! Every step is safe to interrupt and rerun, and no row is ever in zero
//! indexed objects:
//! 1. the output is written first, named by how many outputs the hour
//!    already has in the index, so a rerun after a crash overwrites it;
//! 2. one atomic D1 batch indexes the output, drops the inputs' index rows
//!    and records the inputs still to delete (`lake_compactions`);
//! 3. the inputs are deleted from R2, then that record (a rerun finishes a
//!    recorded deletion first). Between 2 and 3 a reader listing R2 (not the
//!    index) may see a row twice for a moment — never zero times.
//!
//! Jobs run one at a time (`max_concurrency = 1` on the jobs Queue), so a
//! compaction never overlaps a deletion or export rewriting the same
//! objects; an hour is left for the next run while an audience backfill is
//! queued or running (it walks the index by key).

use crate::db::{self, text_value, SqlValue, Statement};
use crate::ports::{JobQueue, ObjectStore, PortError, Sql};
use crate::sinks::r2;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sluice_shared::lake::{compact, Codec, LakeError};
use sluice_shared::time::DAY_MS;
use sluice_shared::Timestamp;
use std::fmt;

/// The hourly Cron Trigger (`backend.toml`).
pub const CRON: &str = "7 * * * *";
/// Seconds after an hour's start before it is compacted.
pub const AFTER_VAR: &str = "SLUICE_COMPACT_AFTER_S";
pub const DEFAULT_AFTER_S: u64 = 7_200;
/// Hours further back than this are not looked at (the index is read by day).
pub const LOOK_BACK_MS: i64 = 2 * DAY_MS;
/// Inputs merged by one job: each is a subrequest (R2 get and delete).
pub const MAX_INPUTS: usize = 400;
/// Stop reading inputs once this many bytes are in memory (the output and
/// the decoded runs sit beside them in the isolate's 128 MB).
pub const TARGET_BYTES: usize = 24 << 20;
const OUTPUT: &str = "compacted-";
const PARQUET: &str = ".parquet";

/// The jobs-Queue message of one hour: its directory in the lake.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompactMessage {
    pub compact: String,
}

/// Why a compaction job did not finish.
#[derive(Debug)]
#[non_exhaustive]
pub enum CompactError {
    /// D1, R2 or the Queue failed: the job runs again.
    Port(PortError),
    /// An input is not a Parquet file of the lake's schema: the hour is left as it is.
    Lake(LakeError),
}

impl CompactError {
    pub fn code(&self) -> &'static str {
        match self {
            CompactError::Port(_) => "compact_port",
            CompactError::Lake(_) => "compact_lake",
        }
    }

    pub fn is_retryable(&self) -> bool {
        matches!(self, CompactError::Port(e) if e.is_retryable())
    }
}

impl fmt::Display for CompactError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CompactError::Port(e) => write!(f, "{e} ({})", e.code()),
            CompactError::Lake(e) => write!(f, "{e} ({})", e.code()),
        }
    }
}

impl From<PortError> for CompactError {
    fn from(e: PortError) -> Self {
        CompactError::Port(e)
    }
}

/// What one job did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    /// The output written, if any.
    pub output: Option<String>,
    pub inputs: usize,
    pub bytes_in: usize,
    pub bytes_out: usize,
    /// Another job was queued for the objects left in the hour.
    pub more: bool,
    /// Left for later: an audience backfill is walking the index.
    pub deferred: bool,
}

/// The hour directory of a lake key (`…/dt=YYYY-MM-DD/hour=HH/`), with the
/// hour's start, for a key directly in it.
pub fn hour_of(key: &str) -> Option<(&str, Timestamp)> {
    let at = key.rfind("/dt=")?;
    let rest = key.get(at + 4..)?;
    let (day, hour) = (rest.get(..10)?, rest.get(10..19)?);
    let hh = hour.strip_prefix("/hour=")?.strip_suffix('/')?;
    let start = Timestamp::parse(&format!("{day}T{hh}:00:00Z")).ok()?;
    let dir = key.get(..at + 4 + 19)?;
    let file = key.get(dir.len()..)?;
    (!file.contains('/')).then_some((dir, start))
}

/// A compaction output (never an input again).
pub fn is_output(key: &str) -> bool {
    key.rsplit('/')
        .next()
        .is_some_and(|f| f.starts_with(OUTPUT))
}

/// The hours due for compaction: started at least `after_ms` before `now`,
/// holding at least two Parquet objects that are not outputs. Sorted.
pub fn due_hours(keys: &[String], now: Timestamp, after_ms: i64) -> Vec<String> {
    let mut small: std::collections::BTreeMap<&str, usize> = Default::default();
    for key in keys {
        if !key.ends_with(PARQUET) || is_output(key) {
            continue;
        }
        if let Some((dir, start)) = hour_of(key) {
            if start.0 + after_ms <= now.0 {
                *small.entry(dir).or_default() += 1;
            }
        }
    }
    small
        .into_iter()
        .filter(|(_, n)| *n >= 2)
        .map(|(dir, _)| dir.to_owned())
        .collect()
}

/// The key of an hour's next output, given how many it has.
pub fn output_key(dir: &str, outputs: usize) -> String {
    format!("{dir}{OUTPUT}{:04}{PARQUET}", outputs + 1)
}

/// The job message of an hour.
pub fn message(dir: &str) -> String {
    // A struct of one string field always serialises.
    serde_json::to_string(&CompactMessage {
        compact: dir.to_owned(),
    })
    .unwrap_or_default()
}

/// The hourly run: one job per due hour. Returns how many were queued.
pub async fn enqueue_due(
    deps: &(impl Sql + JobQueue),
    now: Timestamp,
    after_ms: i64,
) -> Result<usize, PortError> {
    let rows = deps
        .query(
            "SELECT key FROM lake_objects WHERE dt >= ?1 AND key LIKE '%.parquet'",
            vec![text_value(&now.plus_millis(-LOOK_BACK_MS).day())],
        )
        .await?;
    let keys: Vec<String> = rows
        .iter()
        .filter_map(|r| r["key"].as_str().map(str::to_owned))
        .collect();
    let due = due_hours(&keys, now, after_ms);
    for dir in &due {
        deps.enqueue_job(message(dir)).await?;
    }
    Ok(due.len())
}

/// Delete the inputs an earlier run indexed away but did not delete yet.
async fn finish(deps: &(impl Sql + ObjectStore), dir: &str) -> Result<(), PortError> {
    let rows = deps
        .query(
            "SELECT inputs FROM lake_compactions WHERE dir = ?1",
            vec![text_value(dir)],
        )
        .await?;
    let Some(row) = rows.first() else {
        return Ok(());
    };
    let inputs: Vec<String> =
        serde_json::from_str(row["inputs"].as_str().unwrap_or("[]")).unwrap_or_default();
    for key in &inputs {
        deps.delete(key).await?;
    }
    deps.run(vec![Statement::new(
        "DELETE FROM lake_compactions WHERE dir = ?1",
        vec![text_value(dir)],
    )])
    .await
}

/// The hour's index rows (key, people), in key order.
async fn indexed(deps: &impl Sql, dir: &str) -> Result<Vec<(String, Vec<String>)>, PortError> {
    let rows = deps
        .query(
            "SELECT key, people FROM lake_objects WHERE substr(key, 1, length(?1)) = ?1 ORDER BY key",
            vec![text_value(dir)],
        )
        .await?;
    Ok(rows
        .iter()
        .filter_map(|r| {
            let key = r["key"].as_str()?;
            let people = serde_json::from_str(r["people"].as_str()?).unwrap_or_default();
            hour_of(key)
                .is_some_and(|(d, _)| d == dir)
                .then(|| (key.to_owned(), people))
        })
        .collect())
}

/// The statements that swap the inputs' index rows for the output's.
fn swap(dir: &str, output: &str, inputs: &[(String, Vec<String>)]) -> Vec<Statement> {
    let mut people: Vec<&str> = inputs
        .iter()
        .flat_map(|(_, p)| p.iter().map(String::as_str))
        .collect();
    people.sort_unstable();
    people.dedup();
    let dt = r2::partition_day(dir).unwrap_or_default();
    let keys: Vec<String> = inputs.iter().map(|(k, _)| k.clone()).collect();
    let mut out = vec![Statement::new(
        "INSERT INTO lake_objects (key, dt, people) VALUES (?1, ?2, ?3) \
         ON CONFLICT (key) DO UPDATE SET people = excluded.people",
        vec![
            text_value(output),
            text_value(dt),
            SqlValue::Text(serde_json::json!(people).to_string()),
        ],
    )];
    out.extend(db::statements_in(&keys, 1, |m| {
        format!("DELETE FROM lake_objects WHERE key IN ({m})")
    }));
    out.push(Statement::new(
        "INSERT INTO lake_compactions (dir, output, inputs) VALUES (?1, ?2, ?3) \
         ON CONFLICT (dir) DO UPDATE SET output = excluded.output, inputs = excluded.inputs",
        vec![
            text_value(dir),
            text_value(output),
            SqlValue::Text(Value::from(keys).to_string()),
        ],
    ));
    out
}

/// One job: merge the hour's small objects (up to [`MAX_INPUTS`] /
/// [`TARGET_BYTES`]) into its next output.
pub async fn run(
    deps: &(impl Sql + ObjectStore + JobQueue),
    dir: &str,
) -> Result<Report, CompactError> {
    let backfill = deps
        .query(
            "SELECT 1 FROM audience_backfills WHERE status IN ('queued', 'running') LIMIT 1",
            vec![],
        )
        .await?;
    if !backfill.is_empty() {
        return Ok(Report {
            deferred: true,
            ..Report::default()
        });
    }
    finish(deps, dir).await?;
    let rows = indexed(deps, dir).await?;
    let outputs = rows.iter().filter(|(k, _)| is_output(k)).count();
    let small: Vec<&(String, Vec<String>)> = rows
        .iter()
        .filter(|(k, _)| k.ends_with(PARQUET) && !is_output(k))
        .collect();
    let mut report = Report::default();
    let mut inputs = Vec::new();
    let mut bodies = Vec::new();
    for (key, people) in small.iter().take(MAX_INPUTS) {
        if report.bytes_in >= TARGET_BYTES {
            break;
        }
        // An indexed object that is gone is left to the index's owner.
        let Some(body) = deps.get(key).await? else {
            continue;
        };
        report.bytes_in += body.len();
        inputs.push((key.clone(), people.clone()));
        bodies.push(body);
    }
    if inputs.len() < 2 {
        return Ok(Report::default());
    }
    let merged = compact(&bodies, Codec::Gzip).map_err(CompactError::Lake)?;
    drop(bodies);
    let output = output_key(dir, outputs);
    report.bytes_out = merged.len();
    deps.put(&output, merged, "application/vnd.apache.parquet")
        .await?;
    deps.run(swap(dir, &output, &inputs)).await?;
    finish(deps, dir).await?;
    report.inputs = inputs.len();
    report.output = Some(output);
    if small.len() - inputs.len() >= 2 {
        deps.enqueue_job(message(dir)).await?;
        report.more = true;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIR: &str = "events/source=web/dt=2024-05-01/hour=10/";

    #[test]
    fn an_hour_is_read_from_a_key_directly_in_it() {
        let key = format!("{DIR}b1.parquet");
        let (dir, start) = hour_of(&key).unwrap();
        assert_eq!(dir, DIR);
        assert_eq!(start.to_rfc3339(), "2024-05-01T10:00:00.000Z");
        assert_eq!(
            hour_of(&format!("{DIR}x/b1.parquet")),
            None,
            "not directly in it"
        );
        assert_eq!(hour_of("events/source=web/b1.parquet"), None);
        assert_eq!(
            hour_of("events/source=web/dt=2024-05-01/hour=1x/b.parquet"),
            None
        );
    }

    #[test]
    fn an_hour_is_due_once_old_enough_with_two_small_objects() {
        let keys: Vec<String> = [
            "events/source=web/dt=2024-05-01/hour=10/b1.parquet",
            "events/source=web/dt=2024-05-01/hour=10/b2.parquet",
            "events/source=web/dt=2024-05-01/hour=11/b3.parquet",
            "events/source=web/dt=2024-05-01/hour=11/compacted-0001.parquet",
            "events/source=web/dt=2024-05-01/hour=12/b4.parquet",
            "events/source=web/dt=2024-05-01/hour=12/b5.parquet",
            "events/source=web/dt=2024-05-01/hour=09/b6.ndjson.gz",
            "events/source=web/dt=2024-05-01/hour=09/b7.ndjson.gz",
        ]
        .map(String::from)
        .to_vec();
        let now = Timestamp::parse("2024-05-01T13:30:00Z").unwrap();
        // Hour 12 started 90 minutes ago: not due at two hours, due at one.
        assert_eq!(due_hours(&keys, now, 7_200_000), [DIR]);
        assert_eq!(
            due_hours(&keys, now, 3_600_000),
            [DIR, "events/source=web/dt=2024-05-01/hour=12/"]
        );
    }

    #[test]
    fn outputs_are_numbered_after_the_hours_outputs() {
        assert_eq!(output_key(DIR, 0), format!("{DIR}compacted-0001.parquet"));
        assert!(is_output(&output_key(DIR, 41)));
        assert!(!is_output(&format!("{DIR}b1.parquet")));
    }

    #[test]
    fn the_swap_indexes_the_output_for_everyone_and_records_the_inputs() {
        let inputs = vec![
            (
                format!("{DIR}b1.parquet"),
                vec!["a".to_owned(), "u".to_owned()],
            ),
            (
                format!("{DIR}b2.parquet"),
                vec!["b".to_owned(), "u".to_owned()],
            ),
        ];
        let s = swap(DIR, &output_key(DIR, 0), &inputs);
        assert_eq!(s.len(), 3);
        assert_eq!(s[0].params[1], text_value("2024-05-01"));
        assert_eq!(s[0].params[2], SqlValue::Text(r#"["a","b","u"]"#.into()));
        assert_eq!(s[1].params.len(), 2, "both inputs' rows dropped");
        assert_eq!(
            s[2].params[2],
            SqlValue::Text(format!(r#"["{DIR}b1.parquet","{DIR}b2.parquet"]"#))
        );
    }

    #[test]
    fn errors_have_stable_codes() {
        assert_eq!(
            CompactError::Port(PortError::Unavailable("x".into())).code(),
            "compact_port"
        );
        assert_eq!(
            CompactError::Lake(LakeError::NoObjects).code(),
            "compact_lake"
        );
    }
}
