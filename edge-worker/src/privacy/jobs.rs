//! The data-subject request job: `pending` (admin API) → `running` → `done`
//! or `failed`, kept in `dsr_requests` so it survives restarts.
//!
//! Guarantees:
//! - a job whose status is final (`done`, `failed`) does nothing when it is
//!   delivered again;
//! - every step is idempotent, so a job interrupted or answered
//!   [`JobError::Retry`] (a port unavailable or timed out, a deletion notice
//!   answered 5xx) runs again from the start and ends the same way;
//! - a job that cannot succeed ([`JobError::Fail`]: a missing binding, a
//!   request the table cannot describe, an object that is not the lake's) is
//!   marked `failed` with its error, and both ends leave an audit entry.

use super::{delete, profile, JobStatus, RequestType, Subject};
use crate::db::{text_value, SqlValue, Statement};
use crate::delivery::config::Destination;
use crate::ports::{JobPorts, PortError, Sql};
use crate::sinks::SinkError;
use serde_json::Value;
use sluice_shared::Timestamp;
use std::fmt;

/// Why a job did not finish.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum JobError {
    /// Worth running again later: the job stays on the Queue.
    Retry(String),
    /// Retrying cannot help: the job is (or is to be) marked `failed`.
    Fail(String),
}

impl JobError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            JobError::Retry(_) => "job_retry",
            JobError::Fail(_) => "job_failed",
        }
    }

    pub fn is_retryable(&self) -> bool {
        matches!(self, JobError::Retry(_))
    }
}

impl fmt::Display for JobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JobError::Retry(why) | JobError::Fail(why) => f.write_str(why),
        }
    }
}

impl From<PortError> for JobError {
    fn from(e: PortError) -> JobError {
        let why = format!("{e} ({})", e.code());
        if e.is_retryable() {
            JobError::Retry(why)
        } else {
            JobError::Fail(why)
        }
    }
}

impl From<SinkError> for JobError {
    fn from(e: SinkError) -> JobError {
        if e.is_retryable() {
            JobError::Retry(e.to_string())
        } else {
            JobError::Fail(e.to_string())
        }
    }
}

/// A request as stored.
struct Job {
    status: Option<JobStatus>,
    kind: Result<RequestType, String>,
    subject: Result<Subject, String>,
    actor: String,
    /// The stored type, for the audit log even when it is not a known one.
    action: String,
}

async fn load(db: &impl Sql, id: &str) -> Result<Option<Job>, PortError> {
    let rows = db
        .query(
            "SELECT type, subject, status, actor FROM dsr_requests WHERE id = ?1",
            vec![text_value(id)],
        )
        .await?;
    Ok(rows.into_iter().next().map(|row| Job {
        status: row["status"].as_str().and_then(JobStatus::parse),
        kind: serde_json::from_value(row["type"].clone()).map_err(|e| format!("type: {e}")),
        subject: serde_json::from_str(row["subject"].as_str().unwrap_or("{}"))
            .map_err(|e| format!("subject: {e}")),
        actor: row["actor"].as_str().unwrap_or("unknown").to_owned(),
        action: row["type"].as_str().unwrap_or("unknown").to_owned(),
    }))
}

/// Write a request's status (and its result or error).
pub async fn set_status(
    db: &impl Sql,
    id: &str,
    status: JobStatus,
    now: Timestamp,
    result: Option<&Value>,
    error: Option<&str>,
) -> Result<(), PortError> {
    db.run(vec![Statement::new(
        "UPDATE dsr_requests SET status = ?2, updated_at = ?3, result = COALESCE(?4, result), error = ?5 WHERE id = ?1",
        vec![
            text_value(id),
            text_value(status.as_str()),
            text_value(&now.to_rfc3339()),
            result.map_or(SqlValue::Null, |r| SqlValue::Text(r.to_string())),
            error.map_or(SqlValue::Null, text_value),
        ],
    )])
    .await
}

/// Run a request to completion. `Ok` when it is done (now or before);
/// `Err(Retry)` to run it again later; `Err(Fail)` once it is marked
/// `failed` (nothing is left to do: acknowledge it).
pub async fn run_job(
    deps: &impl JobPorts,
    request_id: &str,
    destinations: &[Destination],
) -> Result<(), JobError> {
    let Some(job) = load(deps, request_id).await? else {
        return Ok(());
    };
    if job.status.is_some_and(JobStatus::is_final) {
        return Ok(());
    }
    let (kind, subject) = match (job.kind, job.subject) {
        (Ok(kind), Ok(subject)) => (kind, subject),
        (Err(why), _) | (_, Err(why)) => {
            return fail(deps, request_id, &job.actor, &job.action, why).await;
        }
    };
    set_status(deps, request_id, JobStatus::Running, deps.now(), None, None).await?;
    let outcome = match kind {
        RequestType::Access => profile::export(deps, request_id, &subject).await,
        RequestType::Delete => delete::delete(deps, request_id, &subject, destinations).await,
        RequestType::Suppress | RequestType::OptOut => {
            delete::suppress(deps, request_id, &subject, kind).await
        }
    };
    match outcome {
        Ok((result, records)) => {
            let now = deps.now();
            set_status(deps, request_id, JobStatus::Done, now, Some(&result), None).await?;
            let done = JobStatus::Done;
            super::audit::ended(
                deps,
                now,
                &job.actor,
                kind.as_str(),
                request_id,
                done,
                records,
            )
            .await?;
            Ok(())
        }
        Err(JobError::Fail(why)) => fail(deps, request_id, &job.actor, kind.as_str(), why).await,
        Err(retry) => Err(retry),
    }
}

/// Mark the request `failed` with `why`, audit it, and answer `Fail(why)`.
async fn fail(
    deps: &impl JobPorts,
    id: &str,
    actor: &str,
    action: &str,
    why: String,
) -> Result<(), JobError> {
    let now = deps.now();
    set_status(deps, id, JobStatus::Failed, now, None, Some(&why)).await?;
    super::audit::ended(deps, now, actor, action, id, JobStatus::Failed, 0).await?;
    Err(JobError::Fail(why))
}
