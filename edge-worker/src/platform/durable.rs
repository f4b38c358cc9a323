//! The dedup shards: a SQLite-backed Durable Object per shard (the client
//! the consumer reaches them with is in [`super::stubs`]). The decisions are
//! in [`crate::delivery::dedup`]; this file only stores and sweeps.

use crate::config::tuning;
use crate::delivery::dedup::{self, ClaimResponse, ShardRequest, ShardState, Writes};
use std::cell::{Cell, RefCell};
use worker::{
    durable_object, DurableObject, Env, Request, Response, Result, SqlStorage, SqlStorageValue,
    State,
};

/// How often the sweep runs while ids remain.
const SWEEP_EVERY_MS: i64 = 3_600_000;

/// The shard's tables: one row per claim call (the ids it won) and one per
/// commit call (the ids committed), each a JSON array. Rowid tables with no
/// index: each insert or delete is one row written.
const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS claims (at_ms INTEGER NOT NULL, ids TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS committed (at_ms INTEGER NOT NULL, ids TEXT NOT NULL)",
];

/// `(id, at_ms)` of every id in the rows of a table of [`SCHEMA`].
fn unpack(rows: Vec<serde_json::Value>) -> Vec<(String, i64)> {
    let mut out = Vec::new();
    for row in rows {
        let at = row["at_ms"].as_i64().unwrap_or(0);
        let ids: Vec<String> =
            serde_json::from_str(row["ids"].as_str().unwrap_or("[]")).unwrap_or_default();
        out.extend(ids.into_iter().map(|id| (id, at)));
    }
    out
}

#[durable_object]
pub struct Dedup {
    state: State,
    window_s: u64,
    /// Loaded from the rows on the first call.
    shard: RefCell<Option<ShardState>>,
    /// When the sweep alarm is due, once known.
    alarm_due: Cell<Option<i64>>,
    /// Rows read and written (cursor counts; a `setAlarm` is billed as one
    /// row written) since the last answer, reported in the next one.
    cost: Cell<(u64, u64)>,
}

impl Dedup {
    /// Run a statement, adding what its cursor read and wrote to the cost.
    fn exec(
        &self,
        sql: &SqlStorage,
        query: &str,
        params: Vec<SqlStorageValue>,
    ) -> Result<Vec<serde_json::Value>> {
        let cursor = sql.exec(query, params)?;
        let rows = cursor.to_array()?;
        let (r, w) = self.cost.get();
        self.cost.set((
            r + cursor.rows_read() as u64,
            w + cursor.rows_written() as u64,
        ));
        Ok(rows)
    }

    /// The shard's committed ids and horizon, from its rows; ids a shard of
    /// the previous layout (`seen`, one row per id) holds are moved into one row.
    fn load(&self, sql: &SqlStorage, now: i64) -> Result<ShardState> {
        for statement in SCHEMA {
            self.exec(sql, statement, vec![])?;
        }
        let old = self.exec(
            sql,
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'seen'",
            vec![],
        )?;
        if !old.is_empty() {
            let rows = self.exec(sql, "SELECT id FROM seen WHERE done = 1", vec![])?;
            let ids: Vec<&str> = rows.iter().filter_map(|r| r["id"].as_str()).collect();
            if !ids.is_empty() {
                self.exec(
                    sql,
                    "INSERT INTO committed (at_ms, ids) VALUES (?, ?)",
                    vec![
                        SqlStorageValue::from(now),
                        SqlStorageValue::from(serde_json::json!(ids).to_string()),
                    ],
                )?;
            }
            self.exec(sql, "DROP TABLE seen", vec![])?;
        }
        let committed = unpack(self.exec(sql, "SELECT at_ms, ids FROM committed", vec![])?);
        let claimed = unpack(self.exec(
            sql,
            "SELECT at_ms, ids FROM claims WHERE at_ms >= ?",
            vec![SqlStorageValue::from(now - dedup::LEASE_MS)],
        )?);
        Ok(ShardState::start(committed, claimed))
    }

    /// Store what the state decided must be written.
    fn store(&self, sql: &SqlStorage, writes: &Writes, now: i64) -> Result<()> {
        for (table, ids) in [
            ("claims", &writes.claimed),
            ("committed", &writes.committed),
        ] {
            if ids.is_empty() {
                continue;
            }
            self.exec(
                sql,
                &["INSERT INTO ", table, " (at_ms, ids) VALUES (?, ?)"].concat(),
                vec![
                    SqlStorageValue::from(now),
                    SqlStorageValue::from(serde_json::json!(ids).to_string()),
                ],
            )?;
        }
        Ok(())
    }
}

impl DurableObject for Dedup {
    fn new(state: State, env: Env) -> Self {
        // The consumers that call a shard read the same var and refuse to
        // run on a bad value, so only an alarm's sweep can see one here.
        let value = env.var(dedup::WINDOW_VAR).ok().map(|v| v.to_string());
        let default = dedup::DEFAULT_WINDOW_S;
        let window_s = tuning::positive(dedup::WINDOW_VAR, value.as_deref(), default)
            .unwrap_or_else(|e| {
                worker::console_error!("sluice: {e} ({}); sweeping at the default", e.code());
                default
            });
        Dedup {
            state,
            window_s,
            shard: RefCell::new(None),
            alarm_due: Cell::new(None),
            cost: Cell::new((0, 0)),
        }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let request: ShardRequest = req.json().await?;
        let sql = self.state.storage().sql();
        let now = js_sys::Date::now() as i64;
        let mut shard = match self.shard.take() {
            Some(s) => s,
            None => self.load(&sql, now)?,
        };
        let stored = match &request {
            ShardRequest::Claim { ids } => {
                let (claims, writes) = shard.claim(ids, now);
                let stored = self.store(&sql, &writes, now);
                if stored.is_err() {
                    // Not stored: give the claims back (the call fails and is retried).
                    let won: Vec<String> = ids
                        .iter()
                        .zip(&claims)
                        .filter(|(_, c)| **c == dedup::Claim::Won)
                        .map(|(id, _)| id.clone())
                        .collect();
                    shard.release(&won);
                }
                stored.map(|()| claims)
            }
            ShardRequest::Commit { ids } => {
                // Stored first: an id is only done in memory once it is done in its row.
                let writes = Writes {
                    claimed: Vec::new(),
                    committed: ids.clone(),
                };
                self.store(&sql, &writes, now).map(|()| {
                    shard.commit(ids, now);
                    vec![]
                })
            }
            ShardRequest::Release { ids } => {
                shard.release(ids);
                Ok(vec![])
            }
        };
        self.shard.replace(Some(shard));
        let claims = stored?;
        if matches!(request, ShardRequest::Commit { .. }) {
            self.ensure_alarm().await?;
        }
        let (rows_read, rows_written) = self.cost.take();
        Response::from_json(&ClaimResponse {
            claims,
            rows_read,
            rows_written,
        })
    }

    async fn alarm(&self) -> Result<Response> {
        let now = js_sys::Date::now() as i64;
        let (done_before, claimed_before) = dedup::sweep_bounds(now, self.window_s);
        let sql = self.state.storage().sql();
        let mut shard = match self.shard.take() {
            Some(s) => s,
            None => self.load(&sql, now)?,
        };
        shard.sweep(now, self.window_s);
        let left = shard.remembered();
        self.shard.replace(Some(shard));
        // Idempotent: running it twice deletes nothing more.
        self.exec(
            &sql,
            "DELETE FROM committed WHERE at_ms < ?",
            vec![SqlStorageValue::from(done_before)],
        )?;
        self.exec(
            &sql,
            "DELETE FROM claims WHERE at_ms < ?",
            vec![SqlStorageValue::from(claimed_before)],
        )?;
        self.alarm_due.set(None);
        if left > 0 {
            self.set_alarm().await?;
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

    async fn set_alarm(&self) -> Result<()> {
        self.state
            .storage()
            .set_alarm(self.sweep_every_ms())
            .await?;
        self.alarm_due
            .set(Some(js_sys::Date::now() as i64 + self.sweep_every_ms()));
        let (r, w) = self.cost.get();
        self.cost.set((r, w + 1)); // billed as a row written
        Ok(())
    }

    async fn ensure_alarm(&self) -> Result<()> {
        // Also resets an alarm set too far away (by the offset bug above).
        let latest = js_sys::Date::now() as i64 + self.sweep_every_ms();
        let due = match self.alarm_due.get() {
            Some(due) => Some(due),
            None => self.state.storage().get_alarm().await?,
        };
        self.alarm_due.set(due);
        if due.is_none_or(|at| at > latest) {
            self.set_alarm().await?;
        }
        Ok(())
    }
}
