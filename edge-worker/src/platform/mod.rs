//! The thin layer over the `worker` crate: converts requests and responses,
//! and implements the traits of [`crate::ingest`] and [`crate::consumer`] with
//! real bindings (one file per binding).

mod d1;
mod queue;

use crate::config::{Config, SOURCES_VAR};
use crate::consumer::{self, Outcome};
use crate::error::ApiError;
use crate::http::{HttpRequest, HttpResponse};
use crate::router::{self, Services};
use worker::{Env, MessageBatch, MessageExt, Request, Response, Result};

/// Binding name of the events Queue producer.
pub const EVENTS_QUEUE: &str = "EVENTS";
/// Binding name of the D1 database.
pub const DB: &str = "DB";

/// The fetch entry point.
pub async fn fetch(mut req: Request, env: Env) -> Result<Response> {
    let http = read_request(&mut req).await?;
    let config = match load_config(&env) {
        Ok(c) => c,
        Err(e) => {
            worker::console_error!("sluice: configuration error: {e}");
            return into_response(
                ApiError::Unavailable(format!("{}: {e}", e.code())).into_response(),
            );
        }
    };
    let queue = queue::EventsQueue(env.queue(EVENTS_QUEUE)?);
    let services = Services {
        config: &config,
        queue: &queue,
        now: now_rfc3339(),
    };
    into_response(router::handle(&http, &services).await)
}

/// The queue entry point.
pub async fn queue(batch: MessageBatch<String>, env: Env) -> Result<()> {
    let store = d1::D1Store(env.d1(DB)?);
    let messages = batch.messages()?;
    let bodies: Vec<String> = messages.iter().map(|m| m.body().clone()).collect();
    let outcomes = consumer::consume(&bodies, &store).await;
    for (message, outcome) in messages.iter().zip(outcomes) {
        match outcome {
            Outcome::Ack => message.ack(),
            Outcome::Retry => message.retry(),
            Outcome::Reject => {
                worker::console_error!("sluice: undecodable queue message {}", message.id());
                message.ack();
            }
        }
    }
    Ok(())
}

fn load_config(env: &Env) -> std::result::Result<Config, crate::config::ConfigError> {
    let json = env
        .var(SOURCES_VAR)
        .map_err(|_| crate::config::ConfigError::Missing(SOURCES_VAR))?
        .to_string();
    Config::from_sources_json(&json)
}

fn now_rfc3339() -> String {
    String::from(js_sys::Date::new_0().to_iso_string())
}

async fn read_request(req: &mut Request) -> Result<HttpRequest> {
    let url = req.url()?;
    let headers = req
        .headers()
        .entries()
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .collect();
    let body = match req.method() {
        worker::Method::Get | worker::Method::Head | worker::Method::Options => Vec::new(),
        _ => req.bytes().await?,
    };
    Ok(HttpRequest {
        method: req.method().to_string(),
        path: url.path().to_owned(),
        query: url.query().unwrap_or_default().to_owned(),
        headers,
        body,
    })
}

fn into_response(res: HttpResponse) -> Result<Response> {
    let headers = worker::Headers::new();
    for (k, v) in &res.headers {
        headers.append(k, v)?;
    }
    Ok(Response::from_bytes(res.body)?
        .with_status(res.status)
        .with_headers(headers))
}
