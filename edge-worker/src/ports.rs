//! Every port the pure code needs from the platform, in one place.
//!
//! The `worker` bindings implement them in [`crate::platform`]; the native
//! tests implement them with in-memory fakes (`tests/common`). Handlers and
//! the delivery path name the ports they use, or one of the bundles at the
//! end ([`Platform`], [`DeliveryPorts`], [`JobPorts`]), never a binding.
//!
//! Every port answers with [`PortError`], so the decision to retry or to
//! give up is typed where it is made: a missing binding is permanent, an
//! unavailable service is worth retrying.

use crate::audience::person::{PersonAnswer, PersonRequest};
use crate::delivery::dedup::{ClaimResponse, ShardRequest};
use serde_json::Value;
use sluice_shared::dest::{HttpAnswer, HttpRequest as Outbound};
use sluice_shared::Timestamp;
use std::fmt;

/// Why a port call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PortError {
    /// The binding is not configured in the worker's configuration (`collector.toml`, `backend.toml`): no retry can help.
    MissingBinding(&'static str),
    /// The service did not answer or failed (network, 5xx, D1 overloaded): retry.
    Unavailable(String),
    /// The service refused the call itself (bad request, object too large): do not retry.
    Rejected(String),
    /// No answer within the deadline: retry.
    Timeout(String),
}

impl PortError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            PortError::MissingBinding(_) => "missing_binding",
            PortError::Unavailable(_) => "unavailable",
            PortError::Rejected(_) => "rejected",
            PortError::Timeout(_) => "timeout",
        }
    }

    /// Whether trying the same call again later can succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, PortError::Unavailable(_) | PortError::Timeout(_))
    }
}

impl fmt::Display for PortError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PortError::MissingBinding(name) => {
                write!(f, "the binding {name} is not configured")
            }
            PortError::Unavailable(m) | PortError::Rejected(m) | PortError::Timeout(m) => {
                f.write_str(m)
            }
        }
    }
}

/// Clock, secrets and entropy: what every part of the worker may read.
pub trait Runtime {
    /// The current time.
    fn now(&self) -> Timestamp;
    /// A var or secret's value.
    fn secret(&self, name: &str) -> Option<String>;
    /// A fresh UUID v4 from a cryptographic source.
    fn new_uuid(&self) -> String;
}

/// A value bound to a statement.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlValue {
    Null,
    Text(String),
    Int(i64),
}

/// One SQL statement with its parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    pub sql: String,
    pub params: Vec<SqlValue>,
}

impl Statement {
    pub fn new(sql: &str, params: Vec<SqlValue>) -> Statement {
        Statement {
            sql: sql.to_owned(),
            params,
        }
    }
}

/// A SQL database (D1).
#[allow(async_fn_in_trait)]
pub trait Sql {
    /// Run the statements in order, atomically.
    async fn run(&self, statements: Vec<Statement>) -> Result<(), PortError>;
    /// The rows of a query, as JSON objects.
    async fn query(&self, sql: &str, params: Vec<SqlValue>) -> Result<Vec<Value>, PortError>;
    /// The database's size in bytes as it last reported it (D1's
    /// `meta.size_after`), if known.
    async fn size_bytes(&self) -> Result<Option<u64>, PortError> {
        Ok(None)
    }
}

/// An object store (R2): the lake, exports and the dead letters.
#[allow(async_fn_in_trait)]
pub trait ObjectStore {
    async fn put(&self, key: &str, body: Vec<u8>, content_type: &str) -> Result<(), PortError>;
    /// The object's bytes, or `None` if there is none.
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, PortError>;
    async fn delete(&self, key: &str) -> Result<(), PortError>;
    /// Keys under `prefix`.
    async fn list(&self, prefix: &str) -> Result<Vec<String>, PortError>;
}

/// Outbound HTTP (`fetch`).
#[allow(async_fn_in_trait)]
pub trait HttpClient {
    /// Send and return the answer, whatever its status; `Err` only when
    /// there is no answer (network error, timeout).
    async fn send(&self, request: &Outbound, timeout_ms: u32) -> Result<HttpAnswer, PortError>;
}

/// The events Queue (accepted events, on their way to delivery).
#[allow(async_fn_in_trait)]
pub trait EventQueue {
    /// Durably accept these messages, or fail (the client will retry).
    async fn enqueue(&self, messages: Vec<String>) -> Result<(), PortError>;
}

/// The deliveries Queue (one batch for one destination per message).
#[allow(async_fn_in_trait)]
pub trait DeliveryQueue {
    /// Put delivery batches (JSON) on the Queue, delivered after `delay_s`.
    async fn enqueue_deliveries(&self, batches: Vec<String>, delay_s: u32)
        -> Result<(), PortError>;
}

/// The jobs Queue (data-subject requests).
#[allow(async_fn_in_trait)]
pub trait JobQueue {
    async fn enqueue_job(&self, message: String) -> Result<(), PortError>;
}

/// The dedup shards (Durable Objects).
#[allow(async_fn_in_trait)]
pub trait DedupShards {
    async fn shard(&self, shard: u32, request: &ShardRequest) -> Result<ClaimResponse, PortError>;
}

/// The per-person audience states (a Durable Object per person, keyed
/// `u:<userId>` or `a:<anonymousId>`).
#[allow(async_fn_in_trait)]
pub trait PersonStates {
    async fn person(&self, key: &str, request: &PersonRequest) -> Result<PersonAnswer, PortError>;
}

/// The live debugger's feed. Best-effort: what is observed is published
/// once the request or Queue batch is handled.
pub trait LiveFeed {
    fn observe(&self, summaries: Vec<Value>);
}

/// Waiting (only the local-only fault injection waits on purpose).
#[allow(async_fn_in_trait)]
pub trait Timer {
    async fn sleep(&self, ms: u32);
}

/// A static file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Asset {
    pub content_type: String,
    pub body: Vec<u8>,
}

/// The static assets (the site and the SDK files).
#[allow(async_fn_in_trait)]
pub trait Assets {
    /// The asset at `path`, if it exists.
    async fn asset(&self, path: &str) -> Result<Option<Asset>, PortError>;
}

/// The rate limit shared by every isolate (Cloudflare's Rate Limiting binding).
#[allow(async_fn_in_trait)]
pub trait SharedRateLimit {
    /// Take one request for `key`: `Ok(Some(allowed))`, or `Ok(None)` when no
    /// binding is configured (the per-isolate limit is then the only one).
    async fn shared_rate_limit(&self, key: &str) -> Result<Option<bool>, PortError>;
}

/// What the HTTP handlers need.
pub trait Platform:
    Runtime
    + Sql
    + ObjectStore
    + EventQueue
    + JobQueue
    + Assets
    + LiveFeed
    + SharedRateLimit
    + PersonStates
{
}
impl<T> Platform for T where
    T: Runtime
        + Sql
        + ObjectStore
        + EventQueue
        + JobQueue
        + Assets
        + LiveFeed
        + SharedRateLimit
        + PersonStates
{
}

/// What the Queue consumers need.
pub trait DeliveryPorts:
    Runtime
    + Sql
    + ObjectStore
    + HttpClient
    + DedupShards
    + DeliveryQueue
    + LiveFeed
    + Timer
    + PersonStates
{
}
impl<T> DeliveryPorts for T where
    T: Runtime
        + Sql
        + ObjectStore
        + HttpClient
        + DedupShards
        + DeliveryQueue
        + LiveFeed
        + Timer
        + PersonStates
{
}

/// What the privacy jobs and retention need.
pub trait JobPorts: Runtime + Sql + ObjectStore + HttpClient + PersonStates {}
impl<T: Runtime + Sql + ObjectStore + HttpClient + PersonStates> JobPorts for T {}
