//! The router called as a function, as the native router tests and the
//! fuzz runs drive it: a configuration of four sources, the shared [`Fake`]
//! as the platform, and request builders.

use super::{Fake, NOW};
use serde_json::{json, Value};
use sluice_edge_worker::config::Config;
use sluice_edge_worker::http::{Client, HttpRequest, HttpResponse};
use sluice_edge_worker::ratelimit::Limiter;
use sluice_edge_worker::router::handle;
use sluice_edge_worker::services::Services;
use sluice_shared::QueueMessage;
use std::cell::RefCell;

pub const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36";

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

    /// What the router runs on: this harness's config, fakes and limiter, at [`NOW`].
    fn services(&self) -> Services<'_, Fake> {
        Services {
            destinations: &[],
            config: &self.config,
            platform: &self.fake,
            limiter: &self.limiter,
            now: NOW,
        }
    }

    pub fn send(&self, req: HttpRequest) -> HttpResponse {
        pollster::block_on(handle(&req, &self.services()))
    }

    /// The collector's answer ([`sluice_edge_worker::router::handle_collector`]).
    pub fn send_collector(&self, req: HttpRequest) -> HttpResponse {
        pollster::block_on(sluice_edge_worker::router::handle_collector(
            &req,
            &self.services(),
        ))
    }

    pub fn events(&self) -> Vec<sluice_shared::QueuedEvent> {
        self.fake
            .queued
            .borrow()
            .iter()
            .flat_map(|m| m.clone().into_events())
            .collect()
    }

    pub fn drops(&self) -> Vec<(String, String, u32)> {
        self.fake
            .queued
            .borrow()
            .iter()
            .filter_map(|m| match m {
                QueueMessage::Dropped(d) => Some((d.source.clone(), d.reason.clone(), d.count)),
                QueueMessage::Event(_) | QueueMessage::Events(_) => None,
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
