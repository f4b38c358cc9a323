//! The thin layer over the `worker` crate: converts requests and responses,
//! reads configuration once per isolate, and implements the ports of
//! [`crate::ports`] with the real bindings (one file per binding).

mod assets;
mod d1;
/// The Durable Object classes: only the backend worker exports them.
#[cfg(feature = "objects")]
pub mod durable;
mod fetch;
#[cfg(feature = "objects")]
pub mod live;
pub mod meter;
#[cfg(feature = "objects")]
pub mod person;
mod queue;
mod r2;
pub mod stubs;

use crate::admin::tokens;
use crate::audience::person::{PersonAnswer, PersonRequest};
use crate::compact;
use crate::config::{vars, Config};
use crate::db::{SqlValue, Statement};
use crate::delivery::config::Destination;
use crate::delivery::dedup::{ClaimResponse, ShardRequest};
use crate::delivery::overview;
use crate::delivery::{self, Outcome, Settings};
use crate::error::ApiError;
use crate::http::{Client, HttpRequest, HttpResponse};
use crate::ports::{
    Asset, Assets, DedupShards, DeliveryQueue, EventQueue, HttpClient, JobQueue, LiveFeed,
    ObjectStore, PersonStates, PortError, Runtime, SharedRateLimit, Sql, Timer,
};
use crate::privacy::{self, JobError, JobMessage};
use crate::ratelimit::Limiter;
use crate::router;
use crate::services::Services;
use serde::Deserialize;
use sluice_shared::cost::Meter;
use sluice_shared::dest::{HttpAnswer, HttpRequest as Outbound};
use sluice_shared::enrich::bot::CfBot;
use sluice_shared::enrich::Geo;
use sluice_shared::Timestamp;
use std::cell::{OnceCell, RefCell};
use std::rc::Rc;
use wasm_bindgen::JsCast;
use worker::{Env, MessageBatch, MessageExt, Request, Response, Result};

/// Binding names, as in collector.toml and backend.toml.
pub const EVENTS_QUEUE: &str = "EVENTS";
pub const DELIVERIES_QUEUE: &str = "DELIVERIES";
pub const JOBS_QUEUE: &str = "JOBS";
pub const DB: &str = "DB";
pub const LAKE: &str = "LAKE";
pub const ASSETS: &str = "ASSETS";
/// The collector's service binding to the backend worker.
pub const BACKEND: &str = "BACKEND";
/// Queue names (as in backend.toml), to dispatch the queue handler.
pub const EVENTS_QUEUE_NAME: &str = "sluice-events";
pub const DELIVERIES_QUEUE_NAME: &str = "sluice-deliveries";
pub const JOBS_QUEUE_NAME: &str = "sluice-jobs";

/// Configuration as read once per isolate (or why it could not be).
type Loaded = Rc<std::result::Result<(Config, Vec<Destination>), String>>;

thread_local! {
    static CONFIG: RefCell<Option<Loaded>> = const { RefCell::new(None) };
    static COLLECTOR_CONFIG: RefCell<Option<Loaded>> = const { RefCell::new(None) };
    static LIMITER: Rc<RefCell<Limiter>> = Rc::new(RefCell::new(Limiter::default()));
    /// The SDK's manifest and its content-hashed files (the Wasm that
    /// `sdk.wasm` serves), read once per isolate: an isolate runs one
    /// deployment, whose assets do not change, and a hashed name's bytes
    /// never do (each Wasm download is then no assets subrequest). Where the
    /// manifest does change (an SDK rebuilt under a running dev server),
    /// `sdk.wasm` names the old build or is not found, and the loader
    /// fetches its own hashed file.
    static SDK_FILES: RefCell<Vec<(String, Asset)>> = const { RefCell::new(Vec::new()) };
}

/// Sources, admin tokens and destinations, read from the vars once per isolate.
fn config(env: &Env) -> Loaded {
    read_config(&CONFIG, env, vars::full_destinations)
}

/// The collector's configuration: as [`config`], with destination names only.
fn collector_config(env: &Env) -> Loaded {
    read_config(&COLLECTOR_CONFIG, env, vars::destination_names)
}

fn read_config(
    cache: &'static std::thread::LocalKey<RefCell<Option<Loaded>>>,
    env: &Env,
    read_destinations: vars::ReadDestinations,
) -> Loaded {
    cache.with(|c| {
        c.borrow_mut()
            .get_or_insert_with(|| {
                let var = |name: &str| {
                    env.var(name)
                        .ok()
                        .map(|v| v.to_string())
                        .or_else(|| env.secret(name).ok().map(|v| v.to_string()))
                };
                let loaded = vars::load(&var, read_destinations);
                if let Err(e) = &loaded {
                    worker::console_error!("sluice: configuration error: {e}");
                }
                Rc::new(loaded)
            })
            .clone()
    })
}

/// Every binding, behind the traits the logic is written against. Bindings
/// are optional here so that a deployment without one (or a benchmark on raw
/// workerd) fails only the calls that need it, with a clear error. Each is
/// looked up on first use, not per request: the accept path uses two of the
/// ten (the events Queue and the rate limiter), and each lookup is a few
/// calls into JavaScript (and, for a missing one, an error built and dropped).
struct Bindings {
    env: Env,
    db: OnceCell<Option<d1::D1>>,
    lake: OnceCell<Option<r2::R2>>,
    events: OnceCell<Option<queue::EventsQueue>>,
    deliveries: OnceCell<Option<queue::EventsQueue>>,
    jobs: OnceCell<Option<queue::EventsQueue>>,
    dedup: OnceCell<Option<worker::ObjectNamespace>>,
    live: OnceCell<Option<worker::ObjectNamespace>>,
    people: OnceCell<Option<worker::ObjectNamespace>>,
    assets: OnceCell<Option<assets::Assets>>,
    rate_limiter: OnceCell<Option<worker::RateLimiter>>,
    observed: RefCell<Vec<serde_json::Value>>,
}

impl Bindings {
    fn new(env: Env) -> Bindings {
        Bindings {
            env,
            db: OnceCell::new(),
            lake: OnceCell::new(),
            events: OnceCell::new(),
            deliveries: OnceCell::new(),
            jobs: OnceCell::new(),
            dedup: OnceCell::new(),
            live: OnceCell::new(),
            people: OnceCell::new(),
            assets: OnceCell::new(),
            rate_limiter: OnceCell::new(),
            observed: RefCell::new(Vec::new()),
        }
    }

    fn db(&self) -> std::result::Result<&d1::D1, PortError> {
        self.db
            .get_or_init(|| self.env.d1(DB).ok().map(d1::D1))
            .as_ref()
            .ok_or(PortError::MissingBinding(DB))
    }

    fn lake(&self) -> std::result::Result<&r2::R2, PortError> {
        self.lake
            .get_or_init(|| self.env.bucket(LAKE).ok().map(r2::R2))
            .as_ref()
            .ok_or(PortError::MissingBinding(LAKE))
    }

    /// A Queue producer binding, looked up once.
    fn queue<'q>(
        &self,
        queue: &'q OnceCell<Option<queue::EventsQueue>>,
        name: &'static str,
    ) -> std::result::Result<&'q queue::EventsQueue, PortError> {
        queue
            .get_or_init(|| self.env.queue(name).ok().map(queue::EventsQueue))
            .as_ref()
            .ok_or(PortError::MissingBinding(name))
    }

    /// A Durable Object namespace binding, looked up once.
    fn namespace<'n>(
        &self,
        namespace: &'n OnceCell<Option<worker::ObjectNamespace>>,
        name: &'static str,
    ) -> Option<&'n worker::ObjectNamespace> {
        namespace
            .get_or_init(|| self.env.durable_object(name).ok())
            .as_ref()
    }

    fn live(&self) -> Option<&worker::ObjectNamespace> {
        self.namespace(&self.live, crate::live::LIVE)
    }

    /// What was observed for the live debugger, taken out to publish.
    fn take_observed(&self) -> Vec<serde_json::Value> {
        std::mem::take(&mut *self.observed.borrow_mut())
    }
}

type PortResult<T> = std::result::Result<T, PortError>;

impl Runtime for Bindings {
    fn now(&self) -> Timestamp {
        now()
    }

    fn secret(&self, name: &str) -> Option<String> {
        secret(&self.env, name)
    }

    fn new_uuid(&self) -> String {
        sluice_shared::id::uuid_v4(random_bytes())
    }
}

impl Sql for Bindings {
    async fn run(&self, statements: Vec<Statement>) -> PortResult<()> {
        self.db()?.run(statements).await
    }

    async fn query(&self, sql: &str, params: Vec<SqlValue>) -> PortResult<Vec<serde_json::Value>> {
        self.db()?.query(sql, params).await
    }

    async fn size_bytes(&self) -> PortResult<Option<u64>> {
        self.db()?.size_bytes().await
    }
}

impl SharedRateLimit for Bindings {
    async fn shared_rate_limit(&self, key: &str) -> PortResult<Option<bool>> {
        let limiter = self
            .rate_limiter
            .get_or_init(|| self.env.rate_limiter(crate::ratelimit::RATE_LIMITER).ok());
        let Some(limiter) = limiter else {
            return Ok(None);
        };
        limiter
            .limit(key.to_owned())
            .await
            .map(|outcome| Some(outcome.success))
            .map_err(|e| PortError::Unavailable(format!("rate limiter: {e}")))
    }
}

impl ObjectStore for Bindings {
    async fn put(&self, key: &str, body: Vec<u8>, content_type: &str) -> PortResult<()> {
        self.lake()?.put(key, body, content_type).await
    }

    async fn get(&self, key: &str) -> PortResult<Option<Vec<u8>>> {
        self.lake()?.get(key).await
    }

    async fn delete(&self, key: &str) -> PortResult<()> {
        self.lake()?.delete(key).await
    }

    async fn list(&self, prefix: &str) -> PortResult<Vec<String>> {
        self.lake()?.list(prefix).await
    }
}

impl HttpClient for Bindings {
    async fn send(&self, request: &Outbound, timeout_ms: u32) -> PortResult<HttpAnswer> {
        fetch::Fetch.send(request, timeout_ms).await
    }
}

impl EventQueue for Bindings {
    async fn enqueue(&self, messages: Vec<String>) -> PortResult<()> {
        self.queue(&self.events, EVENTS_QUEUE)?.send(messages).await
    }
}

impl JobQueue for Bindings {
    async fn enqueue_job(&self, message: String) -> PortResult<()> {
        self.queue(&self.jobs, JOBS_QUEUE)?
            .send(vec![message])
            .await
    }
}

impl DeliveryQueue for Bindings {
    async fn enqueue_deliveries(&self, batches: Vec<String>, delay_s: u32) -> PortResult<()> {
        self.queue(&self.deliveries, DELIVERIES_QUEUE)?
            .send_delayed(batches, delay_s)
            .await
    }
}

impl DedupShards for Bindings {
    async fn shard(&self, shard: u32, request: &ShardRequest) -> PortResult<ClaimResponse> {
        let namespace = self
            .namespace(&self.dedup, stubs::DEDUP)
            .ok_or(PortError::MissingBinding(stubs::DEDUP))?;
        let started = js_sys::Date::now();
        let answer = stubs::dedup(namespace, shard, request).await;
        metered_call(started, &answer, |a| (a.rows_read, a.rows_written));
        answer
    }
}

impl PersonStates for Bindings {
    async fn person(&self, key: &str, request: &PersonRequest) -> PortResult<PersonAnswer> {
        let namespace = self
            .namespace(&self.people, stubs::PEOPLE)
            .ok_or(PortError::MissingBinding(stubs::PEOPLE))?;
        let started = js_sys::Date::now();
        let answer = stubs::person(namespace, key, request).await;
        metered_call(started, &answer, |a| (a.rows_read, a.rows_written));
        answer
    }
}

/// Count a Durable Object call in the cost meter: one request, its wall
/// time since `started`, and the rows (read, written) its answer reports.
fn metered_call<T>(started: f64, answer: &PortResult<T>, rows: impl Fn(&T) -> (u64, u64)) {
    meter::add(Meter::DoRequests, 1);
    meter::add(
        Meter::DoWallMs,
        (js_sys::Date::now() - started).max(0.0) as u64,
    );
    if let Ok(a) = answer {
        let (read, written) = rows(a);
        meter::add(Meter::DoRowsRead, read);
        meter::add(Meter::DoRowsWritten, written);
    }
}

impl Assets for Bindings {
    async fn asset(&self, path: &str) -> PortResult<Option<Asset>> {
        let assets = self
            .assets
            .get_or_init(|| self.env.assets(ASSETS).ok().map(assets::Assets));
        let Some(assets) = assets else {
            return Ok(None);
        };
        let kept = crate::serve::kept_per_isolate(path);
        if let Some(cached) = kept
            .then(|| {
                SDK_FILES.with_borrow(|files| {
                    files
                        .iter()
                        .find(|(p, _)| p == path)
                        .map(|(_, a)| a.clone())
                })
            })
            .flatten()
        {
            return Ok(Some(cached));
        }
        let asset = assets.get(path).await?;
        if let Some(found) = asset.as_ref().filter(|_| kept) {
            SDK_FILES.with_borrow_mut(|files| {
                if files.len() < SDK_FILES_KEPT && !files.iter().any(|(p, _)| p == path) {
                    files.push((path.to_owned(), found.clone()));
                }
            });
        }
        Ok(asset)
    }
}

/// At most this many SDK files are kept per isolate (the manifest, the
/// loader, the Wasm, and room for a few more hashed files).
const SDK_FILES_KEPT: usize = 5;

impl Timer for Bindings {
    async fn sleep(&self, ms: u32) {
        worker::Delay::from(std::time::Duration::from_millis(u64::from(ms))).await;
    }
}

impl LiveFeed for Bindings {
    fn observe(&self, summaries: Vec<serde_json::Value>) {
        self.observed.borrow_mut().extend(summaries);
    }
}

fn secret(env: &Env, name: &str) -> Option<String> {
    env.secret(name)
        .map(|s| s.to_string())
        .or_else(|_| env.var(name).map(|v| v.to_string()))
        .ok()
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

/// Path of the live debugger's WebSocket.
pub const LIVE_PATH: &str = "/admin/v1/live";

/// The collector's fetch entry point: the accept path, the SDK files and
/// the id cookie here; every other path (admin API, debugger feed,
/// profiles) passed on whole over the `BACKEND` service binding, WebSocket
/// upgrades included.
pub async fn collector_fetch(req: Request, env: Env, ctx: worker::Context) -> Result<Response> {
    let loaded = collector_config(&env);
    let (config, destinations) = match loaded.as_ref() {
        Ok(c) => c,
        Err(e) => return into_response(ApiError::Config(e.clone()).into_response()),
    };
    if router::owner(&req.path(), &config.sdk_path) == router::Owner::Backend {
        return match env.service(BACKEND) {
            Ok(backend) => backend.fetch_request(req).await,
            Err(_) => {
                into_response(ApiError::from(PortError::MissingBinding(BACKEND)).into_response())
            }
        };
    }
    meter::configure(&env);
    // Billed once here: a service binding's requests are not billed again.
    meter::add(Meter::WorkerRequests, 1);
    let answer = async |http: &HttpRequest, s: &Services<'_, Bindings>| {
        router::handle_collector(http, s).await
    };
    serve(req, env, ctx, config, destinations, answer).await
}

/// The backend's fetch entry point: the requests the collector passes on
/// (and, in a worker built with both, every request).
pub async fn fetch(req: Request, env: Env, ctx: worker::Context) -> Result<Response> {
    let loaded = config(&env);
    let (config, destinations) = match loaded.as_ref() {
        Ok(c) => c,
        Err(e) => return into_response(ApiError::Config(e.clone()).into_response()),
    };
    if req.path() == LIVE_PATH {
        return live_socket(req, env, config).await;
    }
    meter::configure(&env);
    let answer =
        async |http: &HttpRequest, s: &Services<'_, Bindings>| router::handle(http, s).await;
    serve(req, env, ctx, config, destinations, answer).await
}

/// Read the request, answer it with `answer`, publish what the live
/// debugger should see, flush the cost meter.
async fn serve(
    mut req: Request,
    env: Env,
    ctx: worker::Context,
    config: &Config,
    destinations: &[Destination],
    answer: impl AsyncFnOnce(&HttpRequest, &Services<'_, Bindings>) -> HttpResponse,
) -> Result<Response> {
    let http = read_request(&mut req).await?;
    let bindings = Bindings::new(env);
    let limiter = LIMITER.with(Rc::clone);
    let services = Services {
        config,
        destinations,
        platform: &bindings,
        limiter: &limiter,
        now: now(),
    };
    let response = answer(&http, &services).await;
    let observed = bindings.take_observed();
    if let (false, Some(namespace)) = (observed.is_empty(), bindings.live().cloned()) {
        ctx.wait_until(async move { stubs::publish_live(&namespace, &observed).await });
    }
    flush_meter(&bindings).await;
    into_response(response)
}

/// Add what this invocation used to the `cost_*` counters (meter on only).
async fn flush_meter(deps: &Bindings) {
    let statements = meter::take(&crate::delivery::ledger::day(now()));
    if let (false, Ok(db)) = (statements.is_empty(), deps.db()) {
        let _ = db.run_unmetered(statements).await;
    }
}

/// The debugger's WebSocket: `?token=` (browsers cannot set headers on a
/// WebSocket) must be an admin token with `read:events`.
async fn live_socket(req: Request, env: Env, config: &Config) -> Result<Response> {
    let token = req
        .url()?
        .query_pairs()
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    let url = req.url()?;
    let allowed =
        tokens::authenticate(&config.admin_tokens, &token, url.host_str()).and_then(|t| {
            if t.allows(tokens::Scope::ReadEvents) {
                Ok(())
            } else {
                Err(ApiError::Forbidden(tokens::Scope::ReadEvents.as_str()))
            }
        });
    let upgrade = req
        .headers()
        .get("upgrade")
        .ok()
        .flatten()
        .is_some_and(|u| u.eq_ignore_ascii_case("websocket"));
    let error = match (allowed, upgrade) {
        (Err(refused), _) => refused,
        (Ok(()), false) => ApiError::BadRequest("expected a WebSocket upgrade".into()),
        (Ok(()), true) => {
            return stubs::connect_live(&env.durable_object(crate::live::LIVE)?, req).await
        }
    };
    into_response(error.into_response())
}

/// The queue entry point: events, deliveries, privacy jobs, and the dead-letter queues.
pub async fn queue(batch: MessageBatch<String>, env: Env) -> Result<()> {
    let queue_name = batch.queue();
    meter::configure(&env);
    meter::add(Meter::WorkerRequests, 1);
    let deps = Bindings::new(env);
    let loaded = config(&deps.env);
    let Ok((config, dests)) = loaded.as_ref() else {
        // Nothing can be delivered with a broken configuration: keep the messages.
        batch.retry_all();
        return Ok(());
    };
    let messages = batch.messages()?;
    let bodies: Vec<String> = messages.iter().map(|m| m.body().clone()).collect();
    let outcomes = if queue_name == EVENTS_QUEUE_NAME {
        let settings = Settings {
            config,
            destinations: dests,
            shards: config.tuning.dedup_shards,
            faults: delivery::faults::Faults::from_var(
                deps.env
                    .var(delivery::faults::FAULTS_VAR)
                    .ok()
                    .map(|v| v.to_string())
                    .as_deref(),
            ),
        };
        delivery::consume_events(&bodies, &settings, &deps).await
    } else if queue_name == DELIVERIES_QUEUE_NAME {
        delivery::deliver_all(&bodies, dests, &deps).await
    } else {
        let mut out = Vec::with_capacity(bodies.len());
        for body in &bodies {
            out.push(match queue_name.as_str() {
                JOBS_QUEUE_NAME => job(body, config, dests, &deps).await,
                // A dead-letter queue: the platform gave up on these messages.
                _ => delivery::dead_letter_raw(&queue_name, body, &deps).await,
            });
        }
        out
    };
    let observed = deps.take_observed();
    if let (false, Some(live)) = (observed.is_empty(), deps.live()) {
        stubs::publish_live(live, &observed).await;
    }
    let now_ms = js_sys::Date::now();
    for (message, outcome) in messages.iter().zip(outcomes) {
        // Read once per delivery, deleted once when acknowledged.
        let ops = sluice_shared::cost::queue_ops(message.body().len());
        let acked = matches!(outcome, Outcome::Ack | Outcome::Reject);
        meter::add(Meter::QueueOps, if acked { 2 * ops } else { ops });
        settle(message, outcome, now_ms, &queue_name);
    }
    flush_meter(&deps).await;
    Ok(())
}

/// Run one privacy job, or one step of an audience backfill, from the jobs Queue.
async fn job(body: &str, config: &Config, dests: &[Destination], deps: &Bindings) -> Outcome {
    if let Ok(hour) = serde_json::from_str::<compact::CompactMessage>(body) {
        return match compact::run(deps, &hour.compact).await {
            Ok(_) => Outcome::Ack,
            Err(e) if e.is_retryable() => {
                worker::console_error!(
                    "sluice: compaction of {} will be retried: {e}",
                    hour.compact
                );
                Outcome::Retry(Some(60))
            }
            Err(e) => {
                worker::console_error!("sluice: compaction of {} failed: {e}", hour.compact);
                Outcome::Ack
            }
        };
    }
    if let Ok(step) = serde_json::from_str::<crate::audience::backfill::StepMessage>(body) {
        return match crate::audience::backfill::run_step(deps, config, &step).await {
            Ok(()) => Outcome::Ack,
            Err(e @ JobError::Retry(_)) => {
                worker::console_error!("sluice: backfill {} will be retried: {e}", step.backfill);
                Outcome::Retry(Some(2))
            }
            Err(e) => {
                worker::console_error!("sluice: backfill {} failed: {e}", step.backfill);
                Outcome::Ack
            }
        };
    }
    let Ok(job) = serde_json::from_str::<JobMessage>(body) else {
        return Outcome::Reject;
    };
    match privacy::run_job(deps, &job.request_id, dests).await {
        Ok(()) => Outcome::Ack,
        Err(e @ JobError::Retry(_)) => {
            worker::console_error!(
                "sluice: privacy job {} will be retried: {e}",
                job.request_id
            );
            Outcome::Retry(Some(5))
        }
        Err(e) => {
            // Marked failed and audited: nothing is left to run.
            worker::console_error!("sluice: privacy job {} failed: {e}", job.request_id);
            Outcome::Ack
        }
    }
}

/// Tell the Queue what became of a message.
fn settle(message: &worker::Message<String>, outcome: Outcome, now_ms: f64, queue_name: &str) {
    let retry_in = |delay_s: u32| {
        message.retry_with_options(
            &worker::QueueRetryOptionsBuilder::new()
                .with_delay_seconds(delay_s)
                .build(),
        );
    };
    match outcome {
        Outcome::Ack => message.ack(),
        // Transient (D1, a dedup shard): back off by the message's age
        // instead of the platform's immediate retry.
        Outcome::Retry(None) => retry_in(delivery::backoff_s(
            (now_ms - message.timestamp().as_millis() as f64) as i64,
        )),
        Outcome::Retry(Some(delay_s)) => retry_in(delay_s),
        Outcome::Reject => {
            worker::console_error!(
                "sluice: undecodable message {} on {queue_name}",
                message.id()
            );
            message.ack();
        }
    }
}

/// The scheduled entry point: retention, per source, daily.
pub async fn scheduled(cron: &str, env: Env) -> Result<()> {
    let deps = Bindings::new(env);
    let loaded = config(&deps.env);
    let Ok((config, dests)) = loaded.as_ref() else {
        return Ok(());
    };
    meter::configure(&deps.env);
    meter::add(Meter::WorkerRequests, 1);
    if cron == compact::CRON {
        let after_ms = i64::try_from(config.tuning.compact_after_s.saturating_mul(1000));
        let after_ms = after_ms.unwrap_or(i64::MAX);
        if let Err(e) = compact::enqueue_due(&deps, now(), after_ms).await {
            worker::console_error!("sluice: queueing lake compactions failed: {e}");
        }
        flush_meter(&deps).await;
        return Ok(());
    }
    let window = config.d1;
    if window.retention_days > 0 {
        let run = privacy::retention::hot_window(&deps, window.retention_days, now());
        if let Err(e) = run.await {
            worker::console_error!("sluice: D1 hot-window retention failed: {e}");
        }
    }
    for source in &config.sources {
        let Some(days) = source.retention_days else {
            continue;
        };
        let prefixes = privacy::lake_prefixes(&source.destinations, dests);
        let run = privacy::retention::run_audited(&deps, &source.name, days, &prefixes, now());
        if let Err(e) = run.await {
            worker::console_error!("sluice: retention for {} failed: {e}", source.name);
        }
    }
    if let Err(e) = deps.run(vec![overview::prune(now())]).await {
        worker::console_error!("sluice: pruning the delivery overview failed: {e}");
    }
    flush_meter(&deps).await;
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
    let all = req.headers();
    let headers = crate::http::READ_HEADERS
        .iter()
        .filter_map(|name| Some(((*name).to_owned(), all.get(name).ok()??)))
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
