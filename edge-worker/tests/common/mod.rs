//! One set of in-memory stand-ins for every port (`sluice_edge_worker::ports`),
//! shared by the native test files: D1 (a real SQLite built by the worker's
//! migrations, plus the statements and rows the tests inspect), the Queues,
//! the dedup shards, R2, outbound HTTP, assets and the live feed.
#![allow(dead_code, clippy::unwrap_used)] // each test file uses a part; a panic is a failed test

#[cfg(not(target_arch = "wasm32"))]
mod sqlite;
#[cfg(target_arch = "wasm32")]
#[path = "sqlite_wasm.rs"]
mod sqlite;

pub mod fuzz;
mod harness;
pub use harness::*;

use serde_json::Value;
use sluice_edge_worker::audience::person::{self, PersonAnswer, PersonRequest, Record};
use sluice_edge_worker::db::{text_value, SqlValue, Statement};
use sluice_edge_worker::delivery::dedup::{self, Claim, ClaimResponse, Seen, ShardRequest};
use sluice_edge_worker::ports::{
    Asset, Assets, DedupShards, DeliveryQueue, EventQueue, HttpClient, JobQueue, LiveFeed,
    ObjectStore, PersonStates, PortError, Runtime, SharedRateLimit, Sql, Timer,
};
use sluice_shared::audience::Catalog;
use sluice_shared::dest::{HttpAnswer, HttpRequest as Outbound};
use sluice_shared::{QueueMessage, Timestamp};
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};

pub const NOW: Timestamp = Timestamp(1_714_557_900_000); // 2024-05-01T10:05:00Z

/// URL, headers and body of an outbound request.
pub type Call = (String, Vec<(String, String)>, Vec<u8>);

#[derive(Default)]
pub struct Fake {
    // D1
    /// The database every statement runs in and every query reads.
    pub db: sqlite::Db,
    /// Each event row inserted, by message id (the first insert wins).
    pub rows: RefCell<BTreeMap<String, Vec<SqlValue>>>,
    pub counters: RefCell<BTreeMap<String, i64>>,
    pub d1_down: Cell<bool>,
    /// The size D1 reports (`meta.size_after`), if any.
    pub d1_size: Cell<Option<u64>>,
    /// Suppressions a test seeds (id, kind): written to the database before
    /// every query. What privacy jobs record is in the database.
    pub suppressed: RefCell<Vec<(String, String)>>,
    pub indexed: RefCell<Vec<String>>,
    /// Every statement run, in order.
    pub statements: RefCell<Vec<Statement>>,
    // Queues
    pub queued: RefCell<Vec<QueueMessage>>,
    pub queue_down: bool,
    pub jobs: RefCell<Vec<String>>,
    pub deliveries: RefCell<Vec<(String, u32)>>,
    // Dedup shards
    pub shards: RefCell<HashMap<String, Seen>>,
    // R2
    pub objects: RefCell<BTreeMap<String, Vec<u8>>>,
    /// The `LAKE` binding is not configured (permanent).
    pub lake_missing: Cell<bool>,
    /// R2 does not answer (retryable).
    pub lake_down: Cell<bool>,
    // Outbound HTTP
    pub http_calls: RefCell<Vec<Call>>,
    pub http_status: Cell<u16>,
    pub http_retry_after_ms: Cell<Option<u64>>,
    /// The body every outbound request is answered with (`"body"` if unset).
    pub http_body: RefCell<Option<String>>,
    // Assets, live feed
    pub assets: HashMap<String, Asset>,
    /// What the shared (cross-isolate) rate limiter answers: `None` = not configured.
    pub shared_limit: Option<bool>,
    pub observed: RefCell<Vec<Value>>,
    // Person states (the audience Durable Objects), run by the same step function
    /// The definitions the person objects read (`SLUICE_AUDIENCES`).
    pub audiences: Catalog,
    pub people: RefCell<BTreeMap<String, Record>>,
    /// What the person objects put on the events Queue: (source, event).
    pub emitted: RefCell<Vec<(String, sluice_shared::Event)>>,
}

impl Runtime for Fake {
    fn now(&self) -> Timestamp {
        NOW
    }
    fn secret(&self, name: &str) -> Option<String> {
        match name {
            "HOOK_SECRET" => Some("s3cret".to_owned()),
            "META_TOKEN" => Some("meta-t0ken".to_owned()),
            _ => None,
        }
    }
    fn new_uuid(&self) -> String {
        "00000000-0000-4000-8000-000000000001".into()
    }
}

impl Sql for Fake {
    async fn run(&self, statements: Vec<Statement>) -> Result<(), PortError> {
        if self.d1_down.get() {
            return Err(PortError::Unavailable("D1 unavailable".into()));
        }
        self.db.run(&statements).map_err(PortError::Rejected)?;
        for statement in statements {
            let Statement { sql, params: row } = &statement;
            if sql.starts_with("INSERT INTO events") {
                let SqlValue::Text(id) = &row[0] else {
                    panic!("id")
                };
                self.rows
                    .borrow_mut()
                    .entry(id.clone())
                    .or_insert(row.clone());
            } else if sql.starts_with("INSERT INTO counters") {
                let (SqlValue::Text(src), SqlValue::Text(name), SqlValue::Int(n)) =
                    (&row[1], &row[2], &row[3])
                else {
                    panic!("counter")
                };
                *self
                    .counters
                    .borrow_mut()
                    .entry(format!("{src}/{name}"))
                    .or_default() += n;
            } else if sql.starts_with("INSERT INTO lake_objects") {
                let SqlValue::Text(people) = &row[2] else {
                    panic!("people")
                };
                let people: Vec<String> = serde_json::from_str(people).unwrap();
                self.indexed.borrow_mut().extend(people);
            }
            self.statements.borrow_mut().push(statement);
        }
        Ok(())
    }

    async fn query(&self, sql: &str, params: Vec<SqlValue>) -> Result<Vec<Value>, PortError> {
        if self.d1_down.get() {
            return Err(PortError::Unavailable("D1 unavailable".into()));
        }
        let seeded: Vec<Statement> = self
            .suppressed
            .borrow()
            .iter()
            .map(|(id, kind)| {
                Statement::new(
                    "INSERT OR REPLACE INTO suppressions (id, kind, created_at) VALUES (?1, ?2, ?3)",
                    vec![text_value(id), text_value(kind), text_value(&NOW.to_rfc3339())],
                )
            })
            .collect();
        self.db.run(&seeded).unwrap();
        self.db.query(sql, &params).map_err(PortError::Rejected)
    }

    async fn size_bytes(&self) -> Result<Option<u64>, PortError> {
        Ok(self.d1_size.get())
    }
}

impl Fake {
    /// Rows of a query straight from the database (for assertions).
    pub fn select(&self, sql: &str) -> Vec<Value> {
        self.db.query(sql, &[]).unwrap()
    }

    /// Run SQL straight in the database (to seed a test).
    pub fn exec(&self, sql: &str, params: Vec<SqlValue>) {
        self.db.run(&[Statement::new(sql, params)]).unwrap();
    }

    fn r2(&self) -> Result<(), PortError> {
        if self.lake_missing.get() {
            return Err(PortError::MissingBinding("LAKE"));
        }
        if self.lake_down.get() {
            return Err(PortError::Unavailable("R2 unavailable".into()));
        }
        Ok(())
    }
}

impl ObjectStore for Fake {
    async fn put(&self, key: &str, body: Vec<u8>, _content_type: &str) -> Result<(), PortError> {
        self.r2()?;
        self.objects.borrow_mut().insert(key.to_owned(), body);
        Ok(())
    }
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, PortError> {
        self.r2()?;
        Ok(self.objects.borrow().get(key).cloned())
    }
    async fn delete(&self, key: &str) -> Result<(), PortError> {
        self.r2()?;
        self.objects.borrow_mut().remove(key);
        Ok(())
    }
    async fn list(&self, prefix: &str) -> Result<Vec<String>, PortError> {
        self.r2()?;
        Ok(self
            .objects
            .borrow()
            .keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect())
    }
}

impl HttpClient for Fake {
    async fn send(&self, request: &Outbound, _timeout_ms: u32) -> Result<HttpAnswer, PortError> {
        self.http_calls.borrow_mut().push((
            request.url.clone(),
            request.headers.clone(),
            request.body.clone(),
        ));
        Ok(HttpAnswer {
            status: self.http_status.get(),
            retry_after_ms: self.http_retry_after_ms.get(),
            body: self
                .http_body
                .borrow()
                .clone()
                .unwrap_or_else(|| "body".into()),
        })
    }
}

impl EventQueue for Fake {
    async fn enqueue(&self, messages: Vec<String>) -> Result<(), PortError> {
        if self.queue_down {
            return Err(PortError::Unavailable("queue unavailable".into()));
        }
        for m in messages {
            self.queued
                .borrow_mut()
                .push(serde_json::from_str(&m).unwrap());
        }
        Ok(())
    }
}

impl PersonStates for Fake {
    async fn person(&self, key: &str, request: &PersonRequest) -> Result<PersonAnswer, PortError> {
        let stored = self.people.borrow_mut().remove(key);
        let step = person::step(key, stored, request.clone(), &self.audiences, NOW.0);
        if let Some(r) = step.record {
            self.people.borrow_mut().insert(key.to_owned(), r);
        }
        self.emitted.borrow_mut().extend(step.emit);
        Ok(step.answer)
    }
}

impl JobQueue for Fake {
    async fn enqueue_job(&self, message: String) -> Result<(), PortError> {
        self.jobs.borrow_mut().push(message);
        Ok(())
    }
}

impl DeliveryQueue for Fake {
    async fn enqueue_deliveries(
        &self,
        batches: Vec<String>,
        delay_s: u32,
    ) -> Result<(), PortError> {
        self.deliveries
            .borrow_mut()
            .extend(batches.into_iter().map(|b| (b, delay_s)));
        Ok(())
    }
}

impl DedupShards for Fake {
    async fn shard(&self, _shard: u32, request: &ShardRequest) -> Result<ClaimResponse, PortError> {
        let mut seen = self.shards.borrow_mut();
        let now = NOW.0;
        Ok(match request {
            ShardRequest::Claim { ids } => ClaimResponse {
                claims: ids
                    .iter()
                    .map(|id| {
                        let c = dedup::decide(seen.get(id).copied(), now);
                        if c == Claim::Won {
                            seen.insert(id.clone(), Seen::Claimed { at_ms: now });
                        }
                        c
                    })
                    .collect(),
                ..ClaimResponse::default()
            },
            ShardRequest::Commit { ids } => {
                for id in ids {
                    seen.insert(id.clone(), Seen::Done { at_ms: now });
                }
                ClaimResponse::default()
            }
            ShardRequest::Release { ids } => {
                for id in ids {
                    if matches!(seen.get(id), Some(Seen::Claimed { .. })) {
                        seen.remove(id);
                    }
                }
                ClaimResponse::default()
            }
        })
    }
}

impl Assets for Fake {
    async fn asset(&self, path: &str) -> Result<Option<Asset>, PortError> {
        Ok(self.assets.get(path).cloned())
    }
}

impl Timer for Fake {
    async fn sleep(&self, _ms: u32) {}
}

impl SharedRateLimit for Fake {
    async fn shared_rate_limit(&self, _key: &str) -> Result<Option<bool>, PortError> {
        Ok(self.shared_limit)
    }
}

impl LiveFeed for Fake {
    fn observe(&self, summaries: Vec<Value>) {
        self.observed.borrow_mut().extend(summaries);
    }
}
