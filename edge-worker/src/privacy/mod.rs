//! Privacy rights over the stored data, one job per module:
//!
//! | module | job | guarantee |
//! | --- | --- | --- |
//! | [`graph`] | the identity graph | every id linked to a subject, however many |
//! | [`profile`] | the profile read model | traits, consent history and events of all linked ids |
//! | [`jobs`] | data-subject requests | a request runs to `done` or `failed` once; retryable failures leave it for the Queue |
//! | [`delete`] | deletion | D1 rows, lake lines and webhook copies of a person are gone, future events suppressed |
//! | [`retention`] | retention | a source's events older than its retention leave D1 and every R2 destination's prefix |
//! | [`audit`] | the audit log | every privacy action and admin call leaves one entry |
//!
//! Everything works over the ports ([`crate::ports`]), so it is tested
//! natively against the shared fakes. Every list of ids bound in SQL goes
//! through [`crate::db::query_in`] / [`crate::db::statements_in`], so a person
//! with hundreds of linked ids never produces a statement D1 refuses.

pub mod audit;
pub mod delete;
pub mod graph;
pub mod jobs;
pub mod profile;
pub mod retention;

pub use audit::audit;
pub use graph::{resolve, Identities};
pub use jobs::{run_job, JobError};
pub use profile::{events, profile};
pub use retention::lake_prefixes;

use serde::{Deserialize, Serialize};

/// Whose data a request is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Subject {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anonymous_id: Option<String>,
}

/// A data-subject request's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestType {
    /// Export everything stored about the person.
    Access,
    /// Delete it everywhere and suppress future events.
    Delete,
    /// Drop future events of the person.
    Suppress,
    /// Keep future events out of sale/sharing and marketing destinations.
    OptOut,
}

impl RequestType {
    pub fn as_str(self) -> &'static str {
        match self {
            RequestType::Access => "access",
            RequestType::Delete => "delete",
            RequestType::Suppress => "suppress",
            RequestType::OptOut => "opt_out",
        }
    }
}

/// Where a data-subject request is (`dsr_requests.status`), and how a
/// scheduled run ended in the audit log (`done` / `failed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    /// Accepted, waiting on the jobs Queue.
    Pending,
    /// Being run (or interrupted while running: it runs again).
    Running,
    /// Finished; a redelivered job does nothing.
    Done,
    /// Cannot succeed as asked; the error is stored with it.
    Failed,
}

impl JobStatus {
    /// As stored and answered.
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Pending => "pending",
            JobStatus::Running => "running",
            JobStatus::Done => "done",
            JobStatus::Failed => "failed",
        }
    }

    /// The stored text's status, if it is one.
    pub fn parse(s: &str) -> Option<JobStatus> {
        [
            JobStatus::Pending,
            JobStatus::Running,
            JobStatus::Done,
            JobStatus::Failed,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }

    /// Whether the job has ended (nothing is left to run).
    pub fn is_final(self) -> bool {
        matches!(self, JobStatus::Done | JobStatus::Failed)
    }
}

/// What the jobs Queue carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobMessage {
    pub request_id: String,
}

/// Where an access request's export is kept.
pub fn export_key(request_id: &str) -> String {
    format!("exports/{request_id}.json")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_snake_case_on_the_wire_and_in_the_table() {
        for status in [
            JobStatus::Pending,
            JobStatus::Running,
            JobStatus::Done,
            JobStatus::Failed,
        ] {
            assert_eq!(
                serde_json::to_value(status).ok(),
                Some(serde_json::Value::from(status.as_str()))
            );
            assert_eq!(JobStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(JobStatus::parse("retry"), None);
        assert!(JobStatus::Failed.is_final() && !JobStatus::Running.is_final());
    }
}
