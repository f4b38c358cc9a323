//! The backend worker's entry points: the Queue consumers (events,
//! deliveries, jobs, the dead-letter queues), cron, the requests the
//! collector passes on (admin API, debugger feed, profiles), and the
//! Durable Object classes it owns (`Dedup`, `Live`, `Person`).

use worker::{
    event, Context, Env, MessageBatch, Request, Response, Result, ScheduleContext, ScheduledEvent,
};

#[event(fetch)]
async fn fetch(req: Request, env: Env, ctx: Context) -> Result<Response> {
    sluice_edge_worker::platform::fetch(req, env, ctx).await
}

#[event(queue)]
async fn queue(batch: MessageBatch<String>, env: Env, _ctx: Context) -> Result<()> {
    sluice_edge_worker::platform::queue(batch, env).await
}

#[event(scheduled)]
async fn scheduled(event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
    if let Err(e) = sluice_edge_worker::platform::scheduled(&event.cron(), env).await {
        worker::console_error!("sluice: scheduled run failed: {e}");
    }
}

pub use sluice_edge_worker::{Dedup, Live, Person};
