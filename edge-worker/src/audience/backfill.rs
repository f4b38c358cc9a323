//! Audience backfill: a new or changed definition computed from the lake,
//! then continuing live. `POST /admin/v1/audiences/backfill` creates a job
//! (`queued`), the jobs Queue runs it one bounded step at a time
//! (`running`), each step re-enqueuing the next, until `done` (or
//! `failed`: a definition of the job changed meanwhile).
//!
//! A step reads at most [`OBJECTS_PER_STEP`] lake objects (fewer once
//! [`PEOPLE_PER_STEP`] people are reached: each person is one Durable
//! Object request, and Workers limit subrequests), newest first, from the
//! job's cursor; groups their events by person exactly as ingest resolves
//! them (the userId, else the user the device is linked to, else the
//! device; suppressed people are left out) and sends each person their
//! share ([`PersonRequest::Backfill`]). The person's object folds it in for
//! the job's definitions only ([`sluice_shared::audience::backfill`]: why
//! newest first, and why nothing counts twice), evaluates, emits the
//! audience changes and arms its alarm at the next window exit, as for a
//! live event.
//!
//! Steps and redeliveries: `audience_backfills.step` is the next step to
//! run. A message for an earlier step is a redelivery and does nothing; one
//! for a later step came before its predecessor committed and is retried.
//! A step enqueues its successor *before* committing its progress (with
//! `WHERE step = n`, so counters move once): a failure in between reruns
//! the step, which the people recognise by their mark for the job.
//!
//! Errors: an object that cannot be read (not Parquet or gzip NDJSON, or
//! damaged) is counted in `errors`, named in `lastErrors`, and skipped; the
//! events beside it are still fed. A port that does not answer retries the
//! step.

use super::feed::{device_key, is_own, resolve, user_key};
use super::person::{Fed, PersonRequest};
use crate::config::Config;
use crate::db::{text_value, SqlValue, Statement};
use crate::delivery::config::{Destination, Kind};
use crate::error::ApiError;
use crate::ports::{JobPorts, JobQueue, PersonStates, PortError, Runtime, Sql};
use crate::privacy::JobError;
use crate::sinks::r2;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sluice_shared::audience::backfill::{BackfillError, Plan, Status, Step};
use sluice_shared::audience::Catalog;
use sluice_shared::{Event, Timestamp};
use std::collections::{BTreeMap, BTreeSet};

/// Lake objects one step reads at most.
pub const OBJECTS_PER_STEP: usize = 4;
/// A step stops taking objects once it has this many people to feed.
pub const PEOPLE_PER_STEP: usize = 200;
/// Unreadable objects named in a job's `lastErrors`.
const ERRORS_KEPT: usize = 10;
/// Above every object's position (`dt hour key`).
const TOP: &str = "~";

/// What the jobs Queue carries for a backfill step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepMessage {
    pub backfill: String,
    pub step: u32,
}

/// What a job reads: its plan and the lakes (one source prefix each).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Spec {
    plan: Plan,
    lakes: Vec<String>,
}

/// The source prefixes of the lake: per source, its first R2 destination
/// (a second R2 destination holds the same events again).
fn lakes(config: &Config, dests: &[Destination]) -> Vec<String> {
    let mut out: Vec<String> = config
        .sources
        .iter()
        .filter_map(|s| {
            dests
                .iter()
                .filter(|d| s.destinations.contains(&d.name))
                .find_map(|d| match &d.kind {
                    Kind::R2 { prefix, .. } => Some(r2::source_prefix(prefix, &s.name)),
                    _ => None,
                })
        })
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

fn day(ms: i64) -> String {
    Timestamp(ms).day()
}

/// An object's position: newest first is descending.
const POSITION: &str = "(dt || ' ' || substr(key, instr(key, '/hour=') + 6, 2) || ' ' || key)";

/// The job's objects at or below `top` and below `cursor`, newest first.
fn objects_sql(spec: &Spec, select: &str, limit: Option<usize>) -> (String, Vec<SqlValue>) {
    let from = spec.plan.from_ms.map_or_else(String::new, day);
    let mut params = vec![text_value(&from), text_value(&day(spec.plan.until_ms))];
    let lakes: Vec<String> = spec
        .lakes
        .iter()
        .map(|l| {
            params.push(text_value(l));
            let n = params.len();
            format!("substr(key, 1, length(?{n})) = ?{n}")
        })
        .collect();
    let n = params.len();
    let mut sql = format!(
        "SELECT {select} FROM lake_objects WHERE dt >= ?1 AND dt <= ?2 AND ({}) AND {POSITION} <= ?{} AND {POSITION} < ?{}",
        lakes.join(" OR "),
        n + 1,
        n + 2
    );
    if let Some(limit) = limit {
        sql.push_str(&format!(" ORDER BY {POSITION} DESC LIMIT {limit}"));
    }
    (sql, params)
}

/// Create a job for a request body; answers the job as [`status`] does.
pub async fn create(
    ports: &(impl Runtime + Sql + JobQueue),
    config: &Config,
    dests: &[Destination],
    body: &[u8],
    actor: &str,
) -> Result<Value, ApiError> {
    let now = ports.now();
    let plan = Plan::parse(body, &config.audiences, now.0).map_err(ApiError::Backfill)?;
    let spec = Spec {
        plan,
        lakes: lakes(config, dests),
    };
    if spec.lakes.is_empty() {
        return Err(ApiError::Backfill(BackfillError::NoLake));
    }
    let (sql, mut params) = objects_sql(
        &spec,
        &format!("COUNT(*) AS n, MAX({POSITION}) AS top"),
        None,
    );
    params.extend([text_value(TOP), text_value(TOP)]);
    let rows = ports.query(&sql, params).await?;
    let total = rows.first().and_then(|r| r["n"].as_i64()).unwrap_or(0);
    let top = rows
        .first()
        .and_then(|r| r["top"].as_str())
        .unwrap_or_default()
        .to_owned();
    let id = ports.new_uuid();
    let stamp = now.to_rfc3339();
    ports
        .run(vec![Statement::new(
            "INSERT INTO audience_backfills (id, spec, status, step, cursor, top, objects_total, actor, created_at, updated_at) VALUES (?1, ?2, ?3, 0, ?4, ?5, ?6, ?7, ?8, ?8)",
            vec![
                text_value(&id),
                text_value(&serde_json::to_string(&spec).unwrap_or_default()),
                text_value(Status::Queued.as_str()),
                text_value(TOP),
                text_value(&top),
                SqlValue::Int(total),
                text_value(actor),
                text_value(&stamp),
            ],
        )])
        .await?;
    enqueue(ports, &id, 0).await?;
    Ok(status(ports, &id).await?.unwrap_or(Value::Null))
}

async fn enqueue(queue: &impl JobQueue, id: &str, step: u32) -> Result<(), PortError> {
    let message = StepMessage {
        backfill: id.to_owned(),
        step,
    };
    queue
        .enqueue_job(serde_json::to_string(&message).unwrap_or_default())
        .await
}

/// A job as the admin API answers it; `None` if there is none.
pub async fn status(db: &impl Sql, id: &str) -> Result<Option<Value>, PortError> {
    let rows = db
        .query(
            "SELECT * FROM audience_backfills WHERE id = ?1",
            vec![text_value(id)],
        )
        .await?;
    let Some(r) = rows.into_iter().next() else {
        return Ok(None);
    };
    let spec: Option<Spec> = r["spec"]
        .as_str()
        .and_then(|s| serde_json::from_str(s).ok());
    let plan = spec.map(|s| s.plan);
    let at = |ms: Option<i64>| ms.map(|ms| Timestamp(ms).to_rfc3339());
    Ok(Some(json!({
        "id": r["id"],
        "status": r["status"],
        "definitions": plan.as_ref().map(|p| p.selection.definitions.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>()),
        "from": at(plan.as_ref().and_then(|p| p.from_ms)),
        "until": at(plan.as_ref().map(|p| p.until_ms)),
        "objects": {"total": r["objects_total"], "done": r["objects_done"]},
        "events": {"read": r["events_read"], "fed": r["events_fed"]},
        "errors": r["errors"],
        "lastErrors": r["last_errors"].as_str().and_then(|s| serde_json::from_str::<Value>(s).ok()).unwrap_or(json!([])),
        "error": r["error"],
        "actor": r["actor"],
        "createdAt": r["created_at"],
        "updatedAt": r["updated_at"],
    })))
}

/// A job as stored.
struct Job {
    spec: Spec,
    status: Option<Status>,
    step: u32,
    cursor: String,
    top: String,
    last_errors: Vec<Value>,
}

async fn load(db: &impl Sql, id: &str) -> Result<Option<Result<Job, String>>, PortError> {
    let rows = db
        .query(
            "SELECT spec, status, step, cursor, top, last_errors FROM audience_backfills WHERE id = ?1",
            vec![text_value(id)],
        )
        .await?;
    Ok(rows.into_iter().next().map(|r| {
        let spec = serde_json::from_str(r["spec"].as_str().unwrap_or_default())
            .map_err(|e| format!("spec: {e}"))?;
        Ok(Job {
            spec,
            status: r["status"].as_str().and_then(Status::parse),
            step: r["step"]
                .as_u64()
                .and_then(|s| u32::try_from(s).ok())
                .unwrap_or(0),
            cursor: r["cursor"].as_str().unwrap_or(TOP).to_owned(),
            top: r["top"].as_str().unwrap_or_default().to_owned(),
            last_errors: r["last_errors"]
                .as_str()
                .and_then(|s| serde_json::from_str(s).ok())
                .unwrap_or_default(),
        })
    }))
}

async fn finish(
    db: &impl Sql,
    id: &str,
    step: u32,
    status: Status,
    error: Option<&str>,
    now: Timestamp,
) -> Result<(), PortError> {
    db.run(vec![Statement::new(
        "UPDATE audience_backfills SET status = ?3, error = ?4, updated_at = ?5 WHERE id = ?1 AND step = ?2",
        vec![
            text_value(id),
            SqlValue::Int(i64::from(step)),
            text_value(status.as_str()),
            error.map_or(SqlValue::Null, text_value),
            text_value(&now.to_rfc3339()),
        ],
    )])
    .await
}

/// What one step did.
#[derive(Debug, Default)]
struct Tally {
    objects: i64,
    read: i64,
    fed: i64,
    errors: i64,
}

/// Run one step of a job. `Ok` when it is done or nothing was left to do
/// (acknowledge); `Err(Retry)` to run it again later; `Err(Fail)` once the
/// job is marked `failed`.
pub async fn run_step(
    ports: &(impl JobPorts + JobQueue),
    config: &Config,
    message: &StepMessage,
) -> Result<(), JobError> {
    let id = message.backfill.as_str();
    let job = match load(ports, id).await? {
        None => return Ok(()),
        Some(Err(why)) => {
            finish(
                ports,
                id,
                message.step,
                Status::Failed,
                Some(&why),
                ports.now(),
            )
            .await?;
            return Err(JobError::Fail(why));
        }
        Some(Ok(job)) => job,
    };
    if job.status.is_some_and(Status::is_final) || message.step < job.step {
        return Ok(()); // a redelivery
    }
    if message.step > job.step {
        return Err(JobError::Retry(format!(
            "backfill {id}: step {} came before step {} committed",
            message.step, job.step
        )));
    }
    if let Err(e) = job.spec.plan.selection.check(&config.audiences) {
        let why = format!("{} ({})", e, e.code());
        finish(ports, id, job.step, Status::Failed, Some(&why), ports.now()).await?;
        return Err(JobError::Fail(why));
    }
    let (sql, mut params) = objects_sql(
        &job.spec,
        &format!("key, {POSITION} AS pos"),
        Some(OBJECTS_PER_STEP),
    );
    params.extend([text_value(&job.top), text_value(&job.cursor)]);
    let objects = ports.query(&sql, params).await?;
    if objects.is_empty() {
        finish(ports, id, job.step, Status::Done, None, ports.now()).await?;
        return Ok(());
    }
    let mut tally = Tally::default();
    let mut errors = job.last_errors;
    let mut cursor = job.cursor;
    let mut events: Vec<Fed> = Vec::new();
    let mut people: BTreeSet<String> = BTreeSet::new();
    let plan = &job.spec.plan;
    for object in &objects {
        let (Some(key), Some(pos)) = (object["key"].as_str(), object["pos"].as_str()) else {
            continue;
        };
        if people.len() >= PEOPLE_PER_STEP {
            break;
        }
        tally.objects += 1;
        cursor = pos.to_owned();
        // Gone since (retention, a deletion): nothing to read.
        let Some(bytes) = ports.get(key).await? else {
            continue;
        };
        let (read, bad) = match r2::all_events(&bytes, key) {
            Ok(read) => read,
            Err(e) => {
                tally.errors += 1;
                errors.push(json!({"key": key, "code": e.code(), "message": e.to_string()}));
                continue;
            }
        };
        if bad > 0 {
            tally.errors += i64::try_from(bad).unwrap_or(i64::MAX);
            errors.push(json!({"key": key, "code": "unreadable_events", "message": format!("{bad} lines are not events")}));
        }
        tally.read += i64::try_from(read.len()).unwrap_or(i64::MAX);
        for (source, event) in read {
            let received = received_ms(&event);
            if received >= plan.until_ms || plan.from_ms.is_some_and(|f| received < f) {
                continue;
            }
            people.extend(event.user_id.iter().chain(&event.anonymous_id).cloned());
            let regime = config
                .sources
                .iter()
                .find(|s| s.name == source)
                .map(|s| s.consent.regime)
                .unwrap_or_default();
            events.push(Fed {
                source,
                regime,
                event,
            });
        }
    }
    let step = Step {
        job: id.to_owned(),
        step: job.step,
        plan: plan.clone(),
    };
    tally.fed = feed(ports, &config.audiences, &step, events).await?;
    let extra = errors.len().saturating_sub(ERRORS_KEPT);
    errors.drain(..extra);
    // The successor first: a failure below reruns this step, never loses the next.
    enqueue(ports, id, job.step + 1).await?;
    ports
        .run(vec![Statement::new(
            "UPDATE audience_backfills SET step = ?2 + 1, status = ?3, cursor = ?4, objects_done = objects_done + ?5, events_read = events_read + ?6, events_fed = events_fed + ?7, errors = errors + ?8, last_errors = ?9, updated_at = ?10 WHERE id = ?1 AND step = ?2",
            vec![
                text_value(id),
                SqlValue::Int(i64::from(job.step)),
                text_value(Status::Running.as_str()),
                text_value(&cursor),
                SqlValue::Int(tally.objects),
                SqlValue::Int(tally.read),
                SqlValue::Int(tally.fed),
                SqlValue::Int(tally.errors),
                text_value(&Value::from(errors).to_string()),
                text_value(&ports.now().to_rfc3339()),
            ],
        )])
        .await?;
    Ok(())
}

fn received_ms(e: &Event) -> i64 {
    [e.received_at.as_deref(), e.timestamp.as_deref()]
        .into_iter()
        .flatten()
        .find_map(|t| Timestamp::parse(t).ok())
        .map_or(i64::MIN, |t| t.0)
}

/// Send each person their share of the step's events (resolved and
/// filtered as ingest does); returns how many events were sent.
async fn feed(
    ports: &(impl Sql + PersonStates),
    catalog: &Catalog,
    step: &Step,
    mut events: Vec<Fed>,
) -> Result<i64, PortError> {
    events.retain(|f| {
        !is_own(&f.event) && (f.event.user_id.is_some() || f.event.anonymous_id.is_some())
    });
    if events.is_empty() || catalog.is_empty() {
        return Ok(0);
    }
    let links = resolve(ports, &mut events).await?;
    let mut people: BTreeMap<String, Vec<Fed>> = BTreeMap::new();
    let mut once = BTreeSet::new();
    for f in events {
        let key = match (&f.event.user_id, &f.event.anonymous_id) {
            (Some(u), _) => user_key(u),
            (None, Some(a)) => links.get(a).map_or_else(|| device_key(a), |u| user_key(u)),
            (None, None) => continue,
        };
        // The same event in two objects (a rewritten batch) is fed once.
        if once.insert((key.clone(), f.event.message_id.clone())) {
            people.entry(key).or_default().push(f);
        }
    }
    let mut fed = 0;
    for (key, events) in people {
        fed += i64::try_from(events.len()).unwrap_or(i64::MAX);
        let request = PersonRequest::Backfill {
            step: Box::new(step.clone()),
            events,
        };
        let answer = ports.person(&key, &request).await?;
        if let Some(target) = answer.forward {
            ports.person(&target, &request).await?;
        }
    }
    Ok(fed)
}
