//! The audit log (`audit_log`): who did what, to what, with which outcome
//! and how many records. Every admin call (refused ones included), every
//! data-subject request's end and every retention run leave one entry.
//!
//! Writing an entry is one insert; callers on a request path ignore its
//! failure (the answer is not withheld because the log is down), the jobs
//! retry with it.

use super::JobStatus;
use crate::db::{text_value, SqlValue, Statement};
use crate::ports::{PortError, Sql};
use sluice_shared::Timestamp;

/// Record an action in the audit log. `outcome` is a job's end status
/// ([`JobStatus::as_str`]) or what an admin call answered (status or code).
pub async fn audit(
    db: &impl Sql,
    now: Timestamp,
    actor: &str,
    action: &str,
    target: &str,
    outcome: &str,
    records: u64,
) -> Result<(), PortError> {
    db.run(vec![Statement::new(
        "INSERT INTO audit_log (at, actor, action, target, outcome, records) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        vec![
            text_value(&now.to_rfc3339()),
            text_value(actor),
            text_value(action),
            text_value(target),
            text_value(outcome),
            SqlValue::Int(i64::try_from(records).unwrap_or(i64::MAX)),
        ],
    )])
    .await
}

/// Record how a job or scheduled run ended.
pub async fn ended(
    db: &impl Sql,
    now: Timestamp,
    actor: &str,
    action: &str,
    target: &str,
    status: JobStatus,
    records: u64,
) -> Result<(), PortError> {
    audit(db, now, actor, action, target, status.as_str(), records).await
}
