//! Sluice's edge worker: only the platform entry points live here.
//!
//! The data path reads top to bottom in [`ingest`] (HTTP → Queue) and
//! [`delivery`] (Queue → dedup → storage and destinations). Both are written over small traits so they
//! run natively in unit tests; the `worker` bindings sit in [`platform`].

pub mod admin;
pub mod audience;
pub mod auth;
pub mod compact;
pub mod config;
pub mod cors;
pub mod db;
pub mod decode;
pub mod delivery;
pub mod error;
pub mod http;
pub mod identity;
pub mod ingest;
pub mod live;
pub mod platform;
pub mod ports;
pub mod privacy;
pub mod ratelimit;
pub mod router;
pub mod serve;
pub mod services;
pub mod sinks;

use worker::{
    event, Context, Env, MessageBatch, Request, Response, Result, ScheduleContext, ScheduledEvent,
};

#[event(fetch)]
async fn fetch(req: Request, env: Env, ctx: Context) -> Result<Response> {
    platform::fetch(req, env, ctx).await
}

#[event(queue)]
async fn queue(batch: MessageBatch<String>, env: Env, _ctx: Context) -> Result<()> {
    platform::queue(batch, env).await
}

#[event(scheduled)]
async fn scheduled(event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
    if let Err(e) = platform::scheduled(&event.cron(), env).await {
        worker::console_error!("sluice: scheduled run failed: {e}");
    }
}

pub use platform::durable::Dedup;
pub use platform::live::Live;
pub use platform::person::Person;
