//! The native fakes of the platform the router runs on, and the request
//! helpers, shared by `router.rs` (every route and error path) and
//! `router_fuzz.rs` (the whole router under generated hostile input).
#![allow(dead_code, clippy::unwrap_used)] // each test file uses a part; test code

pub mod fuzz;

use serde_json::{json, Value};
use sluice_edge_worker::config::Config;
use sluice_edge_worker::http::{Client, HttpRequest, HttpResponse};
use sluice_edge_worker::ratelimit::Limiter;
use sluice_edge_worker::router::{handle, Platform, Services};
use sluice_edge_worker::serve::Asset;
use sluice_edge_worker::sinks::d1::{Sql, SqlValue, Statement};
use sluice_edge_worker::sinks::ObjectStore;
use sluice_shared::{QueueMessage, Timestamp};
use std::cell::RefCell;
use std::collections::HashMap;

pub const NOW: Timestamp = Timestamp(1_714_557_900_000); // 2024-05-01T10:05:00Z
pub const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36";

#[derive(Default)]
pub struct Fake {
    pub queued: RefCell<Vec<QueueMessage>>,
    pub queue_down: bool,
    pub assets: HashMap<String, Asset>,
    /// What the shared (cross-isolate) rate limiter answers: `None` = not configured.
    pub shared_limit: Option<bool>,
}

impl Sql for Fake {
    async fn run(&self, _statements: Vec<Statement>) -> Result<(), String> {
        Ok(())
    }
    async fn query(&self, _sql: &str, _params: Vec<SqlValue>) -> Result<Vec<Value>, String> {
        Ok(vec![])
    }
}

impl ObjectStore for Fake {
    async fn put(&self, _key: &str, _body: Vec<u8>, _content_type: &str) -> Result<(), String> {
        Ok(())
    }
    async fn get(&self, _key: &str) -> Result<Option<Vec<u8>>, String> {
        Ok(None)
    }
    async fn delete(&self, _key: &str) -> Result<(), String> {
        Ok(())
    }
    async fn list(&self, _prefix: &str) -> Result<Vec<String>, String> {
        Ok(vec![])
    }
}

impl Platform for Fake {
    async fn enqueue_job(&self, _message: String) -> Result<(), String> {
        Ok(())
    }
    async fn enqueue(&self, messages: Vec<String>) -> Result<(), String> {
        if self.queue_down {
            return Err("queue unavailable".into());
        }
        for m in messages {
            self.queued
                .borrow_mut()
                .push(serde_json::from_str(&m).unwrap());
        }
        Ok(())
    }
    async fn asset(&self, path: &str) -> Result<Option<Asset>, String> {
        Ok(self.assets.get(path).cloned())
    }
    fn new_uuid(&self) -> String {
        "00000000-0000-4000-8000-000000000001".into()
    }
    async fn shared_rate_limit(&self, _key: &str) -> Result<Option<bool>, String> {
        Ok(self.shared_limit)
    }
}

pub fn fixture(path: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/../shared/tests/fixtures/{path}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

pub fn config() -> Config {
    Config::from_vars(
        &json!([
            {"name": "web", "write_key": "demo-write-key", "allowed_origins": ["https://shop.example.com"],
             "consent": {"regime": "opt_out"}},
            {"name": "strict", "write_key": "strict-key", "allowed_origins": ["*"], "bots": "drop", "ip": "drop",
             "consent": {"regime": "opt_in", "collect_requires": ["analytics"], "without_consent": "drop"},
             "tracking_plan": {"name": "p", "violations": "block", "unplanned_events": "flag", "unplanned_properties": "allow",
                               "events": {"Order Completed": {"properties": {"revenue": {"type": "number", "required": true}}}}}},
            {"name": "anon", "write_key": "anon-key", "allowed_origins": ["*"],
             "consent": {"regime": "opt_in", "without_consent": "anonymize"}},
            {"name": "tiny", "write_key": "tiny-key", "allowed_origins": ["*"], "consent": {"regime": "opt_out"},
             "rate_limit": {"requests_per_second": 1, "burst": 2}}
        ])
        .to_string(),
        Some("/cdn/sl"),
        Some("example.com"),
    )
    .unwrap()
}

pub struct Harness {
    pub config: Config,
    pub fake: Fake,
    pub limiter: RefCell<Limiter>,
}

impl Harness {
    pub fn new() -> Self {
        Harness::with(config())
    }

    pub fn with(config: Config) -> Self {
        Harness {
            config,
            fake: Fake::default(),
            limiter: RefCell::new(Limiter::default()),
        }
    }

    pub fn send(&self, req: HttpRequest) -> HttpResponse {
        let services = Services {
            config: &self.config,
            platform: &self.fake,
            limiter: &self.limiter,
            now: NOW,
        };
        pollster::block_on(handle(&req, &services))
    }

    pub fn events(&self) -> Vec<sluice_shared::QueuedEvent> {
        self.fake
            .queued
            .borrow()
            .iter()
            .filter_map(|m| match m {
                QueueMessage::Event(e) => Some((**e).clone()),
                QueueMessage::Dropped(_) => None,
            })
            .collect()
    }

    pub fn drops(&self) -> Vec<(String, String, u32)> {
        self.fake
            .queued
            .borrow()
            .iter()
            .filter_map(|m| match m {
                QueueMessage::Dropped(d) => Some((d.source.clone(), d.reason.clone(), d.count)),
                QueueMessage::Event(_) => None,
            })
            .collect()
    }
}

pub fn post(path: &str, body: impl Into<Vec<u8>>, headers: &[(&str, &str)]) -> HttpRequest {
    let mut all: Vec<(String, String)> = vec![("user-agent".into(), CHROME.into())];
    all.extend(
        headers
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    // Requests reach the collector on localhost unless a test says otherwise
    // (the demo write key only works there).
    if !headers.iter().any(|(k, _)| *k == "host") {
        all.push(("host".into(), "127.0.0.1:8787".into()));
    }
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    HttpRequest {
        method: "POST".into(),
        path: path.into(),
        query: query.into(),
        headers: all,
        body: body.into(),
        client: Client {
            ip: Some("203.0.113.77".parse().unwrap()),
            ..Client::default()
        },
    }
}

pub fn basic(key: &str) -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{key}:"))
    )
}

pub fn json_body(res: &HttpResponse) -> Value {
    serde_json::from_slice(&res.body)
        .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&res.body)))
}

pub fn batch(events: Value) -> Vec<u8> {
    json!({"batch": events, "sentAt": "2024-05-01T10:04:59.000Z"})
        .to_string()
        .into_bytes()
}

pub fn track(id: &str) -> Value {
    json!({"type":"track","messageId":id,"anonymousId":"a1","event":"Order Completed","properties":{"revenue":1},
           "timestamp":"2024-05-01T10:04:58.000Z","context":{"page":{"url":"https://shop.example.com/?utm_source=x","referrer":"https://www.google.com/"}}})
}
