//! The clients that reach the Durable Objects from either worker: the dedup
//! shards, the people's audience states and the live debugger's feed. The
//! classes themselves ([`super::durable`], [`super::person`],
//! [`super::live`]) are compiled only with the `objects` feature, into the
//! backend worker that owns them; the collector reaches `PEOPLE` and `LIVE`
//! across scripts (`script_name` in collector.toml).

use crate::audience::person::{PersonAnswer, PersonRequest};
use crate::delivery::dedup::{ClaimResponse, ShardRequest};
use crate::ports::PortError;
use serde::{Deserialize, Serialize};
use worker::{Request, Response, Result};

/// Binding name of the dedup namespace.
pub const DEDUP: &str = "DEDUP";
/// Binding name of the people namespace.
pub const PEOPLE: &str = "PEOPLE";

/// What a person's object is sent: its key and the request.
#[derive(Serialize, Deserialize)]
pub struct Envelope {
    pub key: String,
    pub request: PersonRequest,
}

/// Send a request to shard `shard` of the namespace.
pub async fn dedup(
    namespace: &worker::ObjectNamespace,
    shard: u32,
    request: &ShardRequest,
) -> std::result::Result<ClaimResponse, PortError> {
    let failed = |e: worker::Error| PortError::Unavailable(format!("dedup shard {shard}: {e}"));
    let stub = namespace
        .get_by_name(&format!("dedup-{shard}"))
        .map_err(failed)?;
    let body = serde_json::to_string(request)
        .map_err(|e| PortError::Rejected(format!("dedup request: {e}")))?;
    let mut init = worker::RequestInit::new();
    init.with_method(worker::Method::Post)
        .with_body(Some(body.into()));
    let req = Request::new_with_init("https://dedup/", &init).map_err(failed)?;
    let mut res = stub.fetch_with_request(req).await.map_err(failed)?;
    if res.status_code() != 200 {
        return Err(PortError::Unavailable(format!(
            "dedup shard {shard} answered {}",
            res.status_code()
        )));
    }
    res.json().await.map_err(failed)
}

/// Send a request to the person `key`'s object.
pub async fn person(
    namespace: &worker::ObjectNamespace,
    key: &str,
    request: &PersonRequest,
) -> std::result::Result<PersonAnswer, PortError> {
    let failed = |e: worker::Error| PortError::Unavailable(format!("person state: {e}"));
    let stub = namespace.get_by_name(key).map_err(failed)?;
    let body = serde_json::to_string(&Envelope {
        key: key.to_owned(),
        request: request.clone(),
    })
    .map_err(|e| PortError::Rejected(format!("person request: {e}")))?;
    let mut init = worker::RequestInit::new();
    init.with_method(worker::Method::Post)
        .with_body(Some(body.into()));
    let req = Request::new_with_init("https://person/", &init).map_err(failed)?;
    let mut res = stub.fetch_with_request(req).await.map_err(failed)?;
    if res.status_code() != 200 {
        return Err(PortError::Unavailable(format!(
            "person state answered {}",
            res.status_code()
        )));
    }
    res.json().await.map_err(failed)
}

fn stub(namespace: &worker::ObjectNamespace) -> Result<worker::Stub> {
    namespace.get_by_name("live")
}

/// Send summaries to every open debugger (best-effort: the feed is a view, not a store).
pub async fn publish_live(namespace: &worker::ObjectNamespace, summaries: &[serde_json::Value]) {
    if summaries.is_empty() {
        return;
    }
    let Ok(stub) = stub(namespace) else { return };
    let Ok(body) = serde_json::to_string(summaries) else {
        return;
    };
    let mut init = worker::RequestInit::new();
    init.with_method(worker::Method::Post)
        .with_body(Some(body.into()));
    if let Ok(req) = Request::new_with_init("https://live/publish", &init) {
        let started = js_sys::Date::now();
        super::meter::add(sluice_shared::cost::Meter::DoRequests, 1);
        let _ = stub.fetch_with_request(req).await;
        super::meter::add(
            sluice_shared::cost::Meter::DoWallMs,
            (js_sys::Date::now() - started).max(0.0) as u64,
        );
    }
}

/// Hand a debugger's WebSocket upgrade to the feed.
pub async fn connect_live(namespace: &worker::ObjectNamespace, req: Request) -> Result<Response> {
    stub(namespace)?.fetch_with_request(req).await
}
