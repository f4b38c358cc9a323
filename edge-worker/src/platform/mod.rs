//! The thin layer over the `worker` crate: converts requests and responses,
//! reads configuration once per isolate, and implements the traits of
//! [`crate::router`] and [`crate::consumer`] with real bindings (one file per binding).

mod assets;
mod d1;
mod queue;

use crate::config::{Config, ConfigError, COOKIE_DOMAIN_VAR, SDK_PATH_VAR, SOURCES_VAR};
use crate::consumer::{self, Outcome};
use crate::error::ApiError;
use crate::http::{Client, HttpRequest, HttpResponse};
use crate::ratelimit::Limiter;
use crate::router::{self, Platform, Services};
use crate::serve::Asset;
use serde::Deserialize;
use sluice_shared::enrich::bot::CfBot;
use sluice_shared::enrich::Geo;
use sluice_shared::Timestamp;
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::JsCast;
use worker::{Env, MessageBatch, MessageExt, Request, Response, Result};

/// Binding name of the events Queue producer.
pub const EVENTS_QUEUE: &str = "EVENTS";
/// Binding name of the D1 database.
pub const DB: &str = "DB";
/// Binding name of the static assets.
pub const ASSETS: &str = "ASSETS";

thread_local! {
    static CONFIG: RefCell<Option<Rc<std::result::Result<Config, ConfigError>>>> = const { RefCell::new(None) };
    static LIMITER: Rc<RefCell<Limiter>> = Rc::new(RefCell::new(Limiter::default()));
}

/// The configuration, read from the vars once per isolate.
fn config(env: &Env) -> Rc<std::result::Result<Config, ConfigError>> {
    CONFIG.with(|c| {
        c.borrow_mut()
            .get_or_insert_with(|| {
                let var = |name: &str| env.var(name).ok().map(|v| v.to_string());
                let loaded = match var(SOURCES_VAR) {
                    None => Err(ConfigError::Missing(SOURCES_VAR)),
                    Some(json) => Config::from_vars(
                        &json,
                        var(SDK_PATH_VAR).as_deref(),
                        var(COOKIE_DOMAIN_VAR).as_deref(),
                    ),
                };
                if let Err(e) = &loaded {
                    worker::console_error!("sluice: configuration error ({}): {e}", e.code());
                }
                Rc::new(loaded)
            })
            .clone()
    })
}

/// Production bindings.
struct WorkerPlatform {
    queue: queue::EventsQueue,
    assets: assets::Assets,
}

impl Platform for WorkerPlatform {
    async fn enqueue(&self, messages: Vec<String>) -> std::result::Result<(), String> {
        self.queue.send(messages).await
    }

    async fn asset(&self, path: &str) -> std::result::Result<Option<Asset>, String> {
        self.assets.get(path).await
    }

    fn new_uuid(&self) -> String {
        sluice_shared::id::uuid_v4(random_bytes())
    }
}

/// 16 bytes from `crypto.getRandomValues`.
fn random_bytes() -> [u8; 16] {
    let mut out = [0u8; 16];
    let array = js_sys::Uint8Array::new_with_length(16);
    let filled = js_sys::Reflect::get(&js_sys::global(), &"crypto".into())
        .and_then(|crypto| {
            let f: js_sys::Function =
                js_sys::Reflect::get(&crypto, &"getRandomValues".into())?.dyn_into()?;
            f.call1(&crypto, &array)
        })
        .is_ok();
    if filled {
        array.copy_to(&mut out);
    }
    out
}

fn now() -> Timestamp {
    Timestamp(js_sys::Date::now() as i64)
}

/// The fetch entry point.
pub async fn fetch(mut req: Request, env: Env) -> Result<Response> {
    let http = read_request(&mut req).await?;
    let config = config(&env);
    let config = match config.as_ref() {
        Ok(c) => c,
        Err(e) => return into_response(ApiError::Config(e.to_string()).into_response()),
    };
    let platform = WorkerPlatform {
        queue: queue::EventsQueue(env.queue(EVENTS_QUEUE)?),
        assets: assets::Assets(env.assets(ASSETS)?),
    };
    let limiter = LIMITER.with(Rc::clone);
    let services = Services {
        config,
        platform: &platform,
        limiter: &limiter,
        now: now(),
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

/// `request.cf`, the fields Sluice uses.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct CfRaw {
    country: Option<String>,
    region: Option<String>,
    city: Option<String>,
    timezone: Option<String>,
    asn: Option<u32>,
    as_organization: Option<String>,
    bot_management: Option<CfBotRaw>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct CfBotRaw {
    score: Option<u8>,
    verified_bot: bool,
}

fn client(req: &Request, url: &worker::Url) -> Client {
    let cf: CfRaw = js_sys::Reflect::get(req.inner(), &"cf".into())
        .ok()
        .filter(|v| v.is_object())
        .and_then(|v| serde_wasm_bindgen::from_value(v).ok())
        .unwrap_or_default();
    let ip = req
        .headers()
        .get("cf-connecting-ip")
        .ok()
        .flatten()
        .and_then(|s| s.trim().parse().ok());
    Client {
        ip,
        geo: Geo {
            country: cf.country,
            region: cf.region,
            city: cf.city,
            timezone: cf.timezone,
            asn: cf.asn,
            as_organization: cf.as_organization,
        },
        bot: cf.bot_management.map(|b| CfBot {
            score: b.score,
            verified_bot: b.verified_bot,
        }),
        https: url.scheme() == "https",
    }
}

async fn read_request(req: &mut Request) -> Result<HttpRequest> {
    let url = req.url()?;
    let headers = req
        .headers()
        .entries()
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .collect();
    let client = client(req, &url);
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
        client,
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
