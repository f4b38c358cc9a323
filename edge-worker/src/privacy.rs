//! Privacy rights over the stored data: profiles, data-subject requests
//! (access, delete, suppress, opt out of sale/sharing), the audit log, and
//! retention. Works over the storage traits, so it is tested without a server.

use crate::delivery::config::{Destination, Kind};
use crate::sinks::d1::{text_value, Sql, SqlValue, Statement};
use crate::sinks::{self, HttpClient, ObjectStore};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sluice_shared::Timestamp;

/// Whose data a request is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Subject {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anonymous_id: Option<String>,
}

/// Every id linked to a subject: user ids and anonymous ids (devices).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Identities {
    pub user_ids: Vec<String>,
    pub anonymous_ids: Vec<String>,
}

impl Identities {
    pub fn all(&self) -> Vec<String> {
        self.user_ids
            .iter()
            .chain(&self.anonymous_ids)
            .cloned()
            .collect()
    }
}

fn marks(n: usize) -> String {
    vec!["?"; n].join(",")
}

fn texts(ids: &[String]) -> Vec<SqlValue> {
    ids.iter().map(|i| text_value(i)).collect()
}

/// Add to `to` the ids linked to any of `from` (`to_col` of the rows whose
/// `from_col` is one of them); true if any was new.
async fn follow(
    db: &impl Sql,
    from_col: &str,
    to_col: &str,
    from: &[String],
    to: &mut Vec<String>,
) -> Result<bool, String> {
    if from.is_empty() {
        return Ok(false);
    }
    let rows = db
        .query(
            &format!(
                "SELECT DISTINCT {to_col} FROM identity_links WHERE {from_col} IN ({})",
                marks(from.len())
            ),
            texts(from),
        )
        .await?;
    let mut grew = false;
    for id in rows.iter().filter_map(|r| r[to_col].as_str()) {
        if !to.iter().any(|x| x == id) {
            to.push(id.to_owned());
            grew = true;
        }
    }
    Ok(grew)
}

/// Follow the identity graph from the subject until no new id appears.
pub async fn resolve(db: &impl Sql, subject: &Subject) -> Result<Identities, String> {
    let mut ids = Identities {
        user_ids: subject.user_id.clone().into_iter().collect(),
        anonymous_ids: subject.anonymous_id.clone().into_iter().collect(),
    };
    for _ in 0..4 {
        let users = follow(
            db,
            "anonymous_id",
            "user_id",
            &ids.anonymous_ids,
            &mut ids.user_ids,
        )
        .await?;
        let devices = follow(
            db,
            "user_id",
            "anonymous_id",
            &ids.user_ids,
            &mut ids.anonymous_ids,
        )
        .await?;
        if !users && !devices {
            break;
        }
    }
    ids.user_ids.sort();
    ids.anonymous_ids.sort();
    Ok(ids)
}

/// A person's profile: traits, first and last seen, linked ids, consent history.
pub async fn profile(db: &impl Sql, subject: &Subject) -> Result<Option<Value>, String> {
    let ids = resolve(db, subject).await?;
    if ids.user_ids.is_empty() && ids.anonymous_ids.is_empty() {
        return Ok(None);
    }
    let mut user = ids.user_ids.first().cloned();
    let (first, last, traits) = match ids.user_ids.first() {
        Some(u) => {
            let p = db
                .query(
                    "SELECT first_seen, last_seen FROM profiles WHERE user_id = ?1",
                    vec![text_value(u)],
                )
                .await?;
            if p.is_empty() {
                user = None; // a user id nobody has seen, or one deleted
            }
            let t = db
                .query(
                    "SELECT trait, value FROM profile_traits WHERE user_id = ?1 ORDER BY trait",
                    vec![text_value(u)],
                )
                .await?;
            let traits: serde_json::Map<String, Value> = t
                .iter()
                .filter_map(|r| {
                    Some((
                        r["trait"].as_str()?.to_owned(),
                        serde_json::from_str(r["value"].as_str()?).ok()?,
                    ))
                })
                .collect();
            let p = p.first().cloned().unwrap_or(Value::Null);
            (
                p["first_seen"].clone(),
                p["last_seen"].clone(),
                Value::Object(traits),
            )
        }
        None => (Value::Null, Value::Null, json!({})),
    };
    let all = ids.all();
    let history = db
        .query(
            &format!("SELECT message_id, at, consent FROM consent_events WHERE user_id IN ({m}) OR anonymous_id IN ({m}) ORDER BY at", m = marks(all.len())),
            [texts(&all), texts(&all)].concat(),
        )
        .await?;
    let history: Vec<Value> = history
        .iter()
        .map(|r| json!({"messageId": r["message_id"], "at": r["at"], "consent": serde_json::from_str::<Value>(r["consent"].as_str().unwrap_or("null")).unwrap_or(Value::Null)}))
        .collect();
    if user.is_none() && history.is_empty() && events(db, &ids, 1).await?.is_empty() {
        return Ok(None);
    }
    Ok(Some(json!({
        "userId": user,
        "userIds": ids.user_ids,
        "anonymousIds": ids.anonymous_ids,
        "firstSeen": first,
        "lastSeen": last,
        "traits": traits,
        "consentHistory": history,
    })))
}

/// The subject's stored events (the raw events, oldest first).
pub async fn events(db: &impl Sql, ids: &Identities, limit: u32) -> Result<Vec<Value>, String> {
    let all = ids.all();
    if all.is_empty() {
        return Ok(Vec::new());
    }
    let rows = db
        .query(
            &format!("SELECT raw, source FROM events WHERE user_id IN ({m}) OR anonymous_id IN ({m}) ORDER BY received_at LIMIT {limit}", m = marks(all.len())),
            [texts(&all), texts(&all)].concat(),
        )
        .await?;
    Ok(rows
        .iter()
        .filter_map(|r| {
            let mut e: Value = serde_json::from_str(r["raw"].as_str()?).ok()?;
            e["source"] = r["source"].clone();
            Some(e)
        })
        .collect())
}

/// Lake objects that hold the subject's events.
async fn lake_keys(db: &impl Sql, ids: &Identities) -> Result<Vec<String>, String> {
    let all = ids.all();
    if all.is_empty() {
        return Ok(Vec::new());
    }
    let rows = db
        .query(
            &format!(
                "SELECT DISTINCT key FROM lake_index WHERE person IN ({}) ORDER BY key",
                marks(all.len())
            ),
            texts(&all),
        )
        .await?;
    Ok(rows
        .iter()
        .filter_map(|r| r["key"].as_str().map(str::to_owned))
        .collect())
}

/// Record an action in the audit log.
pub async fn audit(
    db: &impl Sql,
    now: Timestamp,
    actor: &str,
    action: &str,
    target: &str,
    outcome: &str,
    records: u64,
) -> Result<(), String> {
    db.run(vec![Statement::new(
        "INSERT INTO audit_log (at, actor, action, target, outcome, records) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        vec![text_value(&now.to_rfc3339()), text_value(actor), text_value(action), text_value(target), text_value(outcome), SqlValue::Int(i64::try_from(records).unwrap_or(i64::MAX))],
    )])
    .await
}

/// A data-subject request's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestType {
    /// Export everything stored about the person.
    Access,
    /// Delete it everywhere and suppress future events.
    Delete,
    /// Drop future events of the person.
    Suppress,
    /// Keep future events out of sale/sharing and marketing destinations.
    OptOut,
}

impl RequestType {
    pub fn as_str(self) -> &'static str {
        match self {
            RequestType::Access => "access",
            RequestType::Delete => "delete",
            RequestType::Suppress => "suppress",
            RequestType::OptOut => "opt_out",
        }
    }
}

/// What the jobs Queue carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobMessage {
    pub request_id: String,
}

/// Where an access request's export is kept.
pub fn export_key(request_id: &str) -> String {
    format!("exports/{request_id}.json")
}

/// Everything a job needs.
#[allow(async_fn_in_trait)]
pub trait JobDeps: Sql + ObjectStore + HttpClient {
    fn secret(&self, name: &str) -> Option<String>;
    fn now(&self) -> Timestamp;
}

async fn set_status(
    db: &impl Sql,
    id: &str,
    status: &str,
    now: Timestamp,
    result: Option<&Value>,
    error: Option<&str>,
) -> Result<(), String> {
    db.run(vec![Statement::new(
        "UPDATE dsr_requests SET status = ?2, updated_at = ?3, result = COALESCE(?4, result), error = ?5 WHERE id = ?1",
        vec![
            text_value(id),
            text_value(status),
            text_value(&now.to_rfc3339()),
            result.map_or(SqlValue::Null, |r| SqlValue::Text(r.to_string())),
            error.map_or(SqlValue::Null, text_value),
        ],
    )])
    .await
}

/// Run a request to completion. Every step is idempotent, so a job
/// re-delivered after a restart simply runs again. `Err` means retry later.
pub async fn run_job(
    deps: &impl JobDeps,
    request_id: &str,
    destinations: &[Destination],
) -> Result<(), String> {
    let rows = deps
        .query(
            "SELECT type, subject, status, actor FROM dsr_requests WHERE id = ?1",
            vec![text_value(request_id)],
        )
        .await?;
    let Some(row) = rows.first() else {
        return Ok(());
    };
    if row["status"] == "done" {
        return Ok(());
    }
    let kind: RequestType =
        serde_json::from_value(row["type"].clone()).map_err(|e| e.to_string())?;
    let subject: Subject =
        serde_json::from_str(row["subject"].as_str().unwrap_or("{}")).map_err(|e| e.to_string())?;
    let actor = row["actor"].as_str().unwrap_or("unknown").to_owned();
    let now = deps.now();
    set_status(deps, request_id, "running", now, None, None).await?;
    let outcome = match kind {
        RequestType::Access => access(deps, request_id, &subject).await,
        RequestType::Delete => delete(deps, request_id, &subject, destinations).await,
        RequestType::Suppress | RequestType::OptOut => {
            suppress(deps, request_id, &subject, kind).await
        }
    };
    match outcome {
        Ok((result, records)) => {
            set_status(deps, request_id, "done", deps.now(), Some(&result), None).await?;
            audit(
                deps,
                deps.now(),
                &actor,
                kind.as_str(),
                request_id,
                "done",
                records,
            )
            .await
        }
        Err(e) if e.starts_with("retry:") => Err(e),
        Err(e) => {
            set_status(deps, request_id, "failed", deps.now(), None, Some(&e)).await?;
            audit(
                deps,
                deps.now(),
                &actor,
                kind.as_str(),
                request_id,
                "failed",
                0,
            )
            .await
        }
    }
}

async fn access(deps: &impl JobDeps, id: &str, subject: &Subject) -> Result<(Value, u64), String> {
    let ids = resolve(deps, subject)
        .await
        .map_err(|e| format!("retry: {e}"))?;
    let profile = profile(deps, subject)
        .await
        .map_err(|e| format!("retry: {e}"))?;
    let stored = events(deps, &ids, 100_000)
        .await
        .map_err(|e| format!("retry: {e}"))?;
    let people = ids.all();
    let mut lake = Vec::new();
    let keys = lake_keys(deps, &ids)
        .await
        .map_err(|e| format!("retry: {e}"))?;
    for key in &keys {
        let Some(object) = deps.get(key).await.map_err(|e| format!("retry: {e}"))? else {
            continue;
        };
        let (_, theirs) = split(&object, &people)?;
        lake.push(json!({"key": key, "events": theirs}));
    }
    let export = json!({
        "requestId": id,
        "generatedAt": deps.now().to_rfc3339(),
        "subject": ids,
        "profile": profile,
        "events": stored,
        "lake": lake,
    });
    let records = u64::try_from(stored.len()).unwrap_or(u64::MAX);
    deps.put(
        &export_key(id),
        export.to_string().into_bytes(),
        "application/json",
    )
    .await
    .map_err(|e| format!("retry: {e}"))?;
    Ok((
        json!({"events": stored.len(), "lakeObjects": keys.len(), "export": export_key(id)}),
        records,
    ))
}

/// The subject's events in a lake object (the lines that are theirs).
fn split(object: &[u8], people: &[String]) -> Result<(usize, Vec<Value>), String> {
    use std::io::Read;
    let mut text = String::new();
    flate2::read::GzDecoder::new(object)
        .read_to_string(&mut text)
        .map_err(|e| e.to_string())?;
    let theirs: Vec<Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| {
            ["userId", "anonymousId"].iter().any(|k| {
                v[*k]
                    .as_str()
                    .is_some_and(|id| people.iter().any(|p| p == id))
            })
        })
        .collect();
    Ok((text.lines().count(), theirs))
}

async fn delete(
    deps: &impl JobDeps,
    id: &str,
    subject: &Subject,
    destinations: &[Destination],
) -> Result<(Value, u64), String> {
    let retry = |e: String| format!("retry: {e}");
    let ids = resolve(deps, subject).await.map_err(retry)?;
    let all = ids.all();
    if all.is_empty() {
        return Ok((json!({"events": 0}), 0));
    }
    // Suppress first: events still on their way are dropped, so the person stays deleted.
    suppress_ids(deps, &all, "suppress", id)
        .await
        .map_err(retry)?;
    let stored = events(deps, &ids, 1_000_000).await.map_err(retry)?.len();
    let mut lake_removed = 0usize;
    for key in lake_keys(deps, &ids).await.map_err(retry)? {
        if let Some(object) = deps.get(&key).await.map_err(retry)? {
            let (rest, removed) = sinks::r2::without(&object, &all).map_err(|e| e.to_string())?;
            lake_removed += removed;
            match rest {
                Some(bytes) => deps
                    .put(&key, bytes, "application/x-ndjson")
                    .await
                    .map_err(retry)?,
                None => deps.delete(&key).await.map_err(retry)?,
            }
        }
    }
    let m = marks(all.len());
    let both = [texts(&all), texts(&all)].concat();
    deps.run(vec![
        Statement {
            sql: format!("DELETE FROM events WHERE user_id IN ({m}) OR anonymous_id IN ({m})"),
            params: both.clone(),
        },
        Statement {
            sql: format!(
                "DELETE FROM consent_events WHERE user_id IN ({m}) OR anonymous_id IN ({m})"
            ),
            params: both.clone(),
        },
        Statement {
            sql: format!(
                "DELETE FROM identity_links WHERE user_id IN ({m}) OR anonymous_id IN ({m})"
            ),
            params: both,
        },
        Statement {
            sql: format!("DELETE FROM profile_traits WHERE user_id IN ({m})"),
            params: texts(&all),
        },
        Statement {
            sql: format!("DELETE FROM profiles WHERE user_id IN ({m})"),
            params: texts(&all),
        },
        Statement {
            sql: format!("DELETE FROM lake_index WHERE person IN ({m})"),
            params: texts(&all),
        },
    ])
    .await
    .map_err(retry)?;
    let _ = deps.delete(&export_key(id)).await;
    // Tell every webhook destination (they hold copies).
    let mut notified = Vec::new();
    for d in destinations {
        if let Kind::Webhook {
            url,
            secret_var,
            timeout_ms,
        } = &d.kind
        {
            let Some(secret) = deps.secret(secret_var) else {
                continue;
            };
            let body = json!({"type": "delete", "requestId": id, "userIds": ids.user_ids, "anonymousIds": ids.anonymous_ids}).to_string().into_bytes();
            let now = deps.now();
            let ts = now.0.div_euclid(1000);
            let headers = vec![
                ("content-type".to_owned(), "application/json".to_owned()),
                ("x-sluice-event".to_owned(), "deletion".to_owned()),
                ("x-sluice-timestamp".to_owned(), ts.to_string()),
                (
                    "x-sluice-signature".to_owned(),
                    sinks::webhook::sign(secret.as_bytes(), ts, &body),
                ),
                ("idempotency-key".to_owned(), ["delete-", id].concat()),
            ];
            let result = sinks::post(deps, url, &headers, body, *timeout_ms).await;
            match &result {
                Err(e) if e.is_retryable() => {
                    return Err(format!("retry: deletion notice to {}: {e}", d.name));
                }
                _ => {}
            }
            notified.push(json!({"destination": d.name, "ok": result.is_ok()}));
        }
    }
    let records = u64::try_from(stored + lake_removed).unwrap_or(u64::MAX);
    Ok((
        json!({"events": stored, "lakeEvents": lake_removed, "suppressed": all, "notified": notified}),
        records,
    ))
}

async fn suppress_ids(
    db: &impl Sql,
    ids: &[String],
    kind: &str,
    request: &str,
) -> Result<(), String> {
    db.run(
        ids.iter()
            .map(|i| {
                Statement::new(
                    "INSERT INTO suppressions (id, kind, created_at, request_id) VALUES (?1, ?2, datetime('now'), ?3) \
                     ON CONFLICT (id) DO UPDATE SET kind = CASE WHEN suppressions.kind = 'suppress' THEN 'suppress' ELSE excluded.kind END",
                    vec![text_value(i), text_value(kind), text_value(request)],
                )
            })
            .collect(),
    )
    .await
}

async fn suppress(
    deps: &impl JobDeps,
    id: &str,
    subject: &Subject,
    kind: RequestType,
) -> Result<(Value, u64), String> {
    let ids = resolve(deps, subject)
        .await
        .map_err(|e| format!("retry: {e}"))?;
    let mut all = ids.all();
    if all.is_empty() {
        all = [subject.user_id.clone(), subject.anonymous_id.clone()]
            .into_iter()
            .flatten()
            .collect();
    }
    let label = if kind == RequestType::Suppress {
        "suppress"
    } else {
        "opt_out"
    };
    suppress_ids(deps, &all, label, id)
        .await
        .map_err(|e| format!("retry: {e}"))?;
    Ok((
        json!({"ids": all, "kind": label}),
        u64::try_from(all.len()).unwrap_or(0),
    ))
}

/// Retention: delete a source's events older than `days` from D1 and R2.
pub async fn retention(
    deps: &(impl Sql + ObjectStore),
    source: &str,
    days: u32,
    now: Timestamp,
) -> Result<u64, String> {
    let cutoff = now.plus_millis(-i64::from(days) * sluice_shared::time::DAY_MS);
    let cutoff_text = cutoff.to_rfc3339();
    let cutoff_day = &cutoff_text[..10];
    let before = deps
        .query(
            "SELECT COUNT(*) AS n FROM events WHERE source = ?1 AND received_at < ?2",
            vec![text_value(source), text_value(&cutoff_text)],
        )
        .await?;
    let n = before.first().and_then(|r| r["n"].as_u64()).unwrap_or(0);
    deps.run(vec![Statement::new(
        "DELETE FROM events WHERE source = ?1 AND received_at < ?2",
        vec![text_value(source), text_value(&cutoff_text)],
    )])
    .await?;
    let prefix = format!("events/source={source}/");
    let mut removed_objects = 0u64;
    for key in deps.list(&prefix).await? {
        let day = key
            .split("/dt=")
            .nth(1)
            .and_then(|r| r.get(..10))
            .unwrap_or("9999-99-99");
        if day < cutoff_day {
            deps.delete(&key).await?;
            deps.run(vec![Statement::new(
                "DELETE FROM lake_index WHERE key = ?1",
                vec![text_value(&key)],
            )])
            .await?;
            removed_objects += 1;
        }
    }
    Ok(n + removed_objects)
}
