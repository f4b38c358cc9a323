//! The per-person audience state: a SQLite-backed Durable Object per person
//! (`u:<userId>` or `a:<anonymousId>`; the client that reaches it is in
//! [`super::stubs`]). The
//! decisions are in [`crate::audience::person`]; this file stores the
//! record (one JSON value), arms the alarm at the next window exit and puts
//! the `Audience Entered` / `Audience Exited` events on the events Queue.

use super::queue::EventsQueue;
use crate::audience::person::{self, PersonAnswer, Record, Step};
use crate::audience::AUDIENCES_VAR;
use sluice_shared::audience::Catalog;
use std::cell::RefCell;
use std::rc::Rc;
use worker::{durable_object, DurableObject, Env, Request, Response, Result, State};

const RECORD: &str = "record";
const KEY: &str = "key";

thread_local! {
    static CATALOG: RefCell<Option<Rc<Catalog>>> = const { RefCell::new(None) };
}

/// The definitions, parsed once per isolate (the worker refuses to start
/// with invalid ones, so an error here means none).
fn catalog(env: &Env) -> Rc<Catalog> {
    CATALOG.with(|c| {
        c.borrow_mut()
            .get_or_insert_with(|| {
                let text = env.var(AUDIENCES_VAR).ok().map(|v| v.to_string());
                Rc::new(Catalog::parse(text.as_deref()).unwrap_or_default())
            })
            .clone()
    })
}

#[durable_object]
pub struct Person {
    state: State,
    env: Env,
}

impl DurableObject for Person {
    fn new(state: State, env: Env) -> Self {
        Person { state, env }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        // serde_json, not `req.json()` (JS numbers): fingerprints are u64s.
        let super::stubs::Envelope { key, request } = serde_json::from_str(&req.text().await?)?;
        let stored = self.load().await?;
        let now = js_sys::Date::now() as i64;
        let step = person::step(&key, stored, request, &catalog(&self.env), now);
        let answer = self.settle(&key, step, now).await?;
        Response::from_json(&answer)
    }

    async fn alarm(&self) -> Result<Response> {
        let Some(key) = self.state.storage().get::<String>(KEY).await? else {
            return Response::ok("empty");
        };
        let stored = self.load().await?;
        let now = js_sys::Date::now() as i64;
        let step = person::tick(&key, stored, &catalog(&self.env), now);
        // An error (the Queue down) makes the platform retry the alarm.
        self.settle(&key, step, now).await?;
        Response::ok("evaluated")
    }
}

impl Person {
    async fn load(&self) -> Result<Option<Record>> {
        let text = self.state.storage().get::<String>(RECORD).await?;
        Ok(text.and_then(|t| serde_json::from_str(&t).ok()))
    }

    /// Emit, then store (so a failed store re-emits rather than loses an
    /// exit), then arm the alarm.
    async fn settle(&self, key: &str, step: Step, now: i64) -> Result<PersonAnswer> {
        let Step {
            mut answer,
            record,
            emit,
            alarm_at,
        } = step;
        if !emit.is_empty() {
            let queue = EventsQueue(self.env.queue(super::EVENTS_QUEUE)?);
            let mut messages = Vec::new();
            for (source, event) in &emit {
                let json = serde_json::to_string(event)?;
                messages.extend(sluice_shared::pipeline::pack_events(source, &[json]));
            }
            queue
                .send(messages)
                .await
                .map_err(|e| worker::Error::RustError(e.to_string()))?;
        }
        // Billed as rows (SQLite-backed storage): a get reads one, a put or
        // a delete writes one, an alarm set or deleted writes one.
        answer.rows_read = 1;
        let storage = self.state.storage();
        match record {
            Some(r) => {
                // The key never changes: written with the object's first record.
                if !answer.existed {
                    storage.put(KEY, key.to_owned()).await?;
                    answer.rows_written += 1;
                }
                storage.put(RECORD, serde_json::to_string(&r)?).await?;
                answer.rows_written += 1;
            }
            None => {
                storage.delete_all().await?;
                if answer.existed {
                    answer.rows_written += 2;
                }
            }
        }
        match alarm_at {
            Some(at) => storage.set_alarm((at - now).max(0)).await?,
            None => storage.delete_alarm().await?,
        }
        answer.rows_written += 1;
        Ok(answer)
    }
}
