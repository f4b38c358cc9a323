//! The thin layer over the `worker` crate: converts requests and responses,
//! reads configuration once per isolate, and implements the traits of
//! [`crate::router`] and [`crate::delivery`] with real bindings (one file per binding).

mod assets;
mod d1;
pub mod durable;
mod fetch;
mod queue;
mod r2;

use crate::config::{Config, ConfigError, COOKIE_DOMAIN_VAR, SDK_PATH_VAR, SOURCES_VAR};
use crate::delivery::config::{self as destinations, Destination, DESTINATIONS_VAR};
use crate::delivery::dedup::{self, ClaimResponse, ShardRequest};
use crate::delivery::{self, Deps, Outcome, Settings};
use crate::error::ApiError;
use crate::http::{Client, HttpRequest, HttpResponse};
use crate::ratelimit::Limiter;
use crate::router::{self, Platform, Services};
use crate::serve::Asset;
use crate::sinks::d1::{Sql, SqlValue};
use crate::sinks::{HttpClient, ObjectStore};
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
/// Binding name of the deliveries Queue producer.
pub const DELIVERIES_QUEUE: &str = "DELIVERIES";
/// Binding name of the R2 bucket (lake and dead letters).
pub const LAKE: &str = "LAKE";
/// Queue names (as in wrangler.toml), to dispatch the queue handler.
pub const EVENTS_QUEUE_NAME: &str = "sluice-events";
pub const DELIVERIES_QUEUE_NAME: &str = "sluice-deliveries";

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

/// Everything delivery needs, from the real bindings.
struct DeliveryPlatform {
    env: Env,
    db: d1::D1,
    lake: r2::R2,
    deliveries: queue::EventsQueue,
    dedup: worker::ObjectNamespace,
}

impl Sql for DeliveryPlatform {
    async fn batch(&self, sql: &str, rows: Vec<Vec<SqlValue>>) -> std::result::Result<(), String> {
        self.db.batch(sql, rows).await
    }
}

impl HttpClient for DeliveryPlatform {
    async fn post(
        &self,
        url: &str,
        headers: &[(String, String)],
        body: Vec<u8>,
        timeout_ms: u32,
    ) -> std::result::Result<(u16, String), String> {
        fetch::Fetch.post(url, headers, body, timeout_ms).await
    }
}

impl ObjectStore for DeliveryPlatform {
    async fn put(
        &self,
        key: &str,
        body: Vec<u8>,
        content_type: &str,
    ) -> std::result::Result<(), String> {
        self.lake.put(key, body, content_type).await
    }
}

impl Deps for DeliveryPlatform {
    async fn shard(
        &self,
        shard: u32,
        request: &ShardRequest,
    ) -> std::result::Result<ClaimResponse, String> {
        durable::call(&self.dedup, shard, request).await
    }

    async fn enqueue_deliveries(
        &self,
        batches: Vec<String>,
        delay_s: u32,
    ) -> std::result::Result<(), String> {
        self.deliveries.send_delayed(batches, delay_s).await
    }

    fn secret(&self, name: &str) -> Option<String> {
        self.env
            .secret(name)
            .map(|s| s.to_string())
            .or_else(|_| self.env.var(name).map(|v| v.to_string()))
            .ok()
    }

    fn now(&self) -> Timestamp {
        now()
    }
}

/// Destinations as read once per isolate (or why they could not be).
type Destinations = Rc<std::result::Result<Vec<Destination>, String>>;

thread_local! {
    static DESTINATIONS: RefCell<Option<Destinations>> = const { RefCell::new(None) };
}

fn destinations(env: &Env) -> Destinations {
    DESTINATIONS.with(|d| {
        d.borrow_mut()
            .get_or_insert_with(|| {
                let json = env.var(DESTINATIONS_VAR).ok().map(|v| v.to_string());
                let parsed = destinations::parse(json.as_deref())
                    .map_err(|e| format!("{} ({})", e, e.code()));
                if let Err(e) = &parsed {
                    worker::console_error!("sluice: {e}");
                }
                Rc::new(parsed)
            })
            .clone()
    })
}

/// The queue entry point: the events Queue, the deliveries Queue, and their dead-letter queues.
pub async fn queue(batch: MessageBatch<String>, env: Env) -> Result<()> {
    let queue_name = batch.queue();
    let deps = DeliveryPlatform {
        db: d1::D1(env.d1(DB)?),
        lake: r2::R2(env.bucket(LAKE)?),
        deliveries: queue::EventsQueue(env.queue(DELIVERIES_QUEUE)?),
        dedup: env.durable_object(durable::DEDUP)?,
        env,
    };
    let config = config(&deps.env);
    let dests = destinations(&deps.env);
    let (config, dests) = match (config.as_ref(), dests.as_ref()) {
        (Ok(c), Ok(d)) => (c, d),
        _ => {
            // Nothing can be delivered with a broken configuration: keep the messages.
            batch.retry_all();
            return Ok(());
        }
    };
    let messages = batch.messages()?;
    let bodies: Vec<String> = messages.iter().map(|m| m.body().clone()).collect();
    let outcomes = if queue_name == EVENTS_QUEUE_NAME {
        let shards = deps
            .env
            .var(dedup::SHARDS_VAR)
            .ok()
            .and_then(|v| v.to_string().parse().ok())
            .filter(|n| *n > 0)
            .unwrap_or(dedup::DEFAULT_SHARDS);
        let settings = Settings {
            config,
            destinations: dests,
            shards,
        };
        delivery::consume_events(&bodies, &settings, &deps).await
    } else if queue_name == DELIVERIES_QUEUE_NAME {
        let mut out = Vec::with_capacity(bodies.len());
        for body in &bodies {
            out.push(delivery::deliver(body, dests, &deps).await);
        }
        out
    } else {
        // A dead-letter queue: the platform gave up on these messages.
        let mut out = Vec::with_capacity(bodies.len());
        for body in &bodies {
            out.push(delivery::dead_letter_raw(&queue_name, body, &deps).await);
        }
        out
    };
    for (message, outcome) in messages.iter().zip(outcomes) {
        match outcome {
            Outcome::Ack => message.ack(),
            Outcome::Retry(None) => message.retry(),
            Outcome::Retry(Some(delay_s)) => {
                message.retry_with_options(
                    &worker::QueueRetryOptionsBuilder::new()
                        .with_delay_seconds(delay_s)
                        .build(),
                );
            }
            Outcome::Reject => {
                worker::console_error!(
                    "sluice: undecodable message {} on {queue_name}",
                    message.id()
                );
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
