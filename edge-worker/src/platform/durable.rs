//! The dedup shards: a SQLite-backed Durable Object per shard, and the client
//! the consumer uses to reach them. The decisions are in
//! [`crate::delivery::dedup`]; this file only stores and sweeps.

use crate::delivery::dedup::{self, Claim, ClaimResponse, Seen, ShardRequest};
use crate::ports::PortError;
use worker::{
    durable_object, DurableObject, Env, Request, Response, Result, SqlStorageValue, State,
};

/// Binding name of the dedup namespace.
pub const DEDUP: &str = "DEDUP";
/// How often the sweep runs while ids remain.
const SWEEP_EVERY_MS: i64 = 3_600_000;

#[durable_object]
pub struct Dedup {
    state: State,
    window_s: u64,
}

impl DurableObject for Dedup {
    fn new(state: State, env: Env) -> Self {
        let window_s = env
            .var(dedup::WINDOW_VAR)
            .ok()
            .and_then(|v| v.to_string().parse().ok())
            .unwrap_or(dedup::DEFAULT_WINDOW_S);
        let _ = state.storage().sql().exec(
            "CREATE TABLE IF NOT EXISTS seen (id TEXT PRIMARY KEY, done INTEGER NOT NULL, at_ms INTEGER NOT NULL)",
            None,
        );
        Dedup { state, window_s }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let request: ShardRequest = req.json().await?;
        let sql = self.state.storage().sql();
        let now = js_sys::Date::now() as i64;
        let response = match request {
            ShardRequest::Claim { ids } => {
                let mut claims = Vec::with_capacity(ids.len());
                for id in ids {
                    #[derive(serde::Deserialize)]
                    struct Row {
                        done: i64,
                        at_ms: i64,
                    }
                    let stored: Vec<Row> = sql
                        .exec(
                            "SELECT done, at_ms FROM seen WHERE id = ?",
                            vec![SqlStorageValue::from(id.clone())],
                        )?
                        .to_array()?;
                    let seen = stored.first().map(|r| {
                        if r.done == 1 {
                            Seen::Done { at_ms: r.at_ms }
                        } else {
                            Seen::Claimed { at_ms: r.at_ms }
                        }
                    });
                    let claim = dedup::decide(seen, now);
                    if claim == Claim::Won {
                        sql.exec(
                            "INSERT INTO seen (id, done, at_ms) VALUES (?, 0, ?) ON CONFLICT (id) DO UPDATE SET done = 0, at_ms = excluded.at_ms",
                            vec![SqlStorageValue::from(id), SqlStorageValue::from(now)],
                        )?;
                    }
                    claims.push(claim);
                }
                ClaimResponse { claims }
            }
            ShardRequest::Commit { ids } => {
                for id in ids {
                    sql.exec(
                        "UPDATE seen SET done = 1, at_ms = ? WHERE id = ?",
                        vec![SqlStorageValue::from(now), SqlStorageValue::from(id)],
                    )?;
                }
                self.ensure_alarm().await?;
                ClaimResponse { claims: vec![] }
            }
            ShardRequest::Release { ids } => {
                for id in ids {
                    sql.exec(
                        "DELETE FROM seen WHERE id = ? AND done = 0",
                        vec![SqlStorageValue::from(id)],
                    )?;
                }
                ClaimResponse { claims: vec![] }
            }
        };
        Response::from_json(&response)
    }

    async fn alarm(&self) -> Result<Response> {
        let (done_before, claimed_before) =
            dedup::sweep_bounds(js_sys::Date::now() as i64, self.window_s);
        let sql = self.state.storage().sql();
        // Idempotent: running it twice deletes nothing more.
        sql.exec(
            "DELETE FROM seen WHERE (done = 1 AND at_ms < ?) OR (done = 0 AND at_ms < ?)",
            vec![
                SqlStorageValue::from(done_before),
                SqlStorageValue::from(claimed_before),
            ],
        )?;
        #[derive(serde::Deserialize)]
        struct Count {
            n: i64,
        }
        let left: Vec<Count> = sql
            .exec("SELECT COUNT(*) AS n FROM seen", None)?
            .to_array()?;
        if left.first().is_some_and(|c| c.n > 0) {
            self.state
                .storage()
                .set_alarm(self.sweep_every_ms())
                .await?;
        }
        Response::ok("swept")
    }
}

impl Dedup {
    /// Sweep every hour, or sooner when the window is shorter (a test's).
    /// `set_alarm` takes an `i64` as an offset from now, not a time: it was
    /// given `now + offset`, which put the first sweep decades away, so ids
    /// were never forgotten and the shards grew without bound.
    fn sweep_every_ms(&self) -> i64 {
        let window_ms = i64::try_from(self.window_s.saturating_mul(1000)).unwrap_or(i64::MAX);
        SWEEP_EVERY_MS.min(window_ms.max(1000))
    }

    async fn ensure_alarm(&self) -> Result<()> {
        // Also resets an alarm set too far away (by the offset bug above).
        let latest = js_sys::Date::now() as i64 + self.sweep_every_ms();
        let due = self.state.storage().get_alarm().await?;
        if due.is_none_or(|at| at > latest) {
            self.state
                .storage()
                .set_alarm(self.sweep_every_ms())
                .await?;
        }
        Ok(())
    }
}

/// Send a request to shard `shard` of the namespace.
pub async fn call(
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
