//! The collector worker's entry point, and nothing else: what it reaches of
//! `sluice_edge_worker` is what the linker keeps (the accept path, the SDK
//! files, the id cookie, the forwarding to the backend), so the module
//! stays small and starts fast (`tests/tests/size.rs` holds its size).

use worker::{event, Context, Env, Request, Response, Result};

#[event(fetch)]
async fn fetch(req: Request, env: Env, ctx: Context) -> Result<Response> {
    sluice_edge_worker::platform::collector_fetch(req, env, ctx).await
}
