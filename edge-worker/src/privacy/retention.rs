//! Retention: a source's events older than its `retention_days` leave D1
//! and the lake, daily (from the scheduled entry point).
//!
//! Lake objects are expired under the prefix of every R2 destination the
//! source feeds ([`lake_prefixes`]), whatever that prefix is; the object
//! layout (where a source's objects are, which day an object holds) is the
//! R2 sink's ([`crate::sinks::r2`]). An object is expired whole once its
//! partition day is before the cutoff day; a key without a partition day is
//! never expired. Every step is idempotent, so a failed run is simply run
//! again the next day.

use super::audit;
use super::JobStatus;
use crate::db::{text_value, Statement};
use crate::delivery::config::{Destination, Kind};
use crate::ports::{ObjectStore, PortError, Sql};
use crate::sinks::r2;
use sluice_shared::Timestamp;

/// The prefixes of the R2 destinations among `names` (a source's
/// `destinations`), each once.
pub fn lake_prefixes<'a>(names: &[String], destinations: &'a [Destination]) -> Vec<&'a str> {
    let mut prefixes: Vec<&str> = destinations
        .iter()
        .filter(|d| names.contains(&d.name))
        .filter_map(|d| match &d.kind {
            Kind::R2 { prefix, .. } => Some(prefix.as_str()),
            _ => None,
        })
        .collect();
    prefixes.sort_unstable();
    prefixes.dedup();
    prefixes
}

/// Delete a source's events older than `days` from D1 and from the lake
/// objects under each of `prefixes`; returns the D1 events plus the lake
/// objects removed.
pub async fn retention(
    deps: &(impl Sql + ObjectStore),
    source: &str,
    days: u32,
    prefixes: &[&str],
    now: Timestamp,
) -> Result<u64, PortError> {
    let cutoff = now
        .plus_millis(-i64::from(days) * sluice_shared::time::DAY_MS)
        .to_rfc3339();
    let cutoff_day = cutoff.get(..10).unwrap_or_default();
    let old = || vec![text_value(source), text_value(&cutoff)];
    let before = deps
        .query(
            "SELECT COUNT(*) AS n FROM events WHERE source = ?1 AND received_at < ?2",
            old(),
        )
        .await?;
    let mut removed = before.first().and_then(|r| r["n"].as_u64()).unwrap_or(0);
    deps.run(vec![Statement::new(
        "DELETE FROM events WHERE source = ?1 AND received_at < ?2",
        old(),
    )])
    .await?;
    for prefix in prefixes {
        for key in deps.list(&r2::source_prefix(prefix, source)).await? {
            if r2::partition_day(&key).is_some_and(|day| day < cutoff_day) {
                deps.delete(&key).await?;
                deps.run(vec![Statement::new(
                    "DELETE FROM lake_objects WHERE key = ?1",
                    vec![text_value(&key)],
                )])
                .await?;
                removed += 1;
            }
        }
    }
    Ok(removed)
}

/// The hot window's retention: every source's D1 event rows older than
/// `days` (the lake keeps them). Returns how many left.
pub async fn hot_window(deps: &impl Sql, days: u32, now: Timestamp) -> Result<u64, PortError> {
    let cutoff = now
        .plus_millis(-i64::from(days) * sluice_shared::time::DAY_MS)
        .to_rfc3339();
    let old = || vec![text_value(&cutoff)];
    let before = deps
        .query(
            "SELECT COUNT(*) AS n FROM events WHERE received_at < ?1",
            old(),
        )
        .await?;
    deps.run(vec![Statement::new(
        "DELETE FROM events WHERE received_at < ?1",
        old(),
    )])
    .await?;
    Ok(before.first().and_then(|r| r["n"].as_u64()).unwrap_or(0))
}

/// One source's retention run, recorded in the audit log as `done` (with the
/// records removed) or `failed`.
pub async fn run_audited(
    deps: &(impl Sql + ObjectStore),
    source: &str,
    days: u32,
    prefixes: &[&str],
    now: Timestamp,
) -> Result<u64, PortError> {
    let result = retention(deps, source, days, prefixes, now).await;
    let (status, records) = match &result {
        Ok(n) => (JobStatus::Done, *n),
        Err(_) => (JobStatus::Failed, 0),
    };
    // The run is retried tomorrow whatever the log says; a lost entry is not worth failing it.
    let _ = audit::ended(deps, now, "retention", "retention", source, status, records).await;
    result
}
