//! Deletion and suppression of a person, across D1, the lake, webhooks and
//! the vendors with a deletion API (Mixpanel, Amplitude, PostHog, Braze).
//!
//! A delete request, in order: suppress every linked id first (events still
//! on their way are then dropped, so the person stays deleted); send every
//! webhook destination a signed deletion notice
//! ([`sinks::webhook::deletion_request`], idempotent by request id); cut
//! their lines out of every lake object that holds them (an object left
//! empty is removed); delete their audience states (one Durable Object
//! per linked id, counted in the result as `audienceStates`); delete their D1 rows, the identity graph last of all,
//! in one atomic batch. A notice answered with a 5xx (or not answered) makes
//! the job retry before anything is deleted, so the retry still knows every
//! linked id and notifies again; a 4xx notice is recorded as not
//! acknowledged.
//!
//! Suppressions are upserts that never downgrade: an id suppressed stays
//! suppressed when it is later opted out.

use super::graph::{resolve, Identities};
use super::profile::lake_keys;
use super::{JobError, RequestType, Subject};
use crate::db::{self, text_value, Statement};
use crate::delivery::config::{Destination, Kind};
use crate::delivery::consume::SuppressionKind;
use crate::ports::{JobPorts, ObjectStore, PortError, Sql};
use crate::sinks::{self, vendor};
use serde_json::{json, Value};
use sluice_shared::dest::Verdict;

/// Record `kind` for every id (never replacing `suppress` by `opt_out`).
async fn suppress_ids(
    db: &impl Sql,
    ids: &[String],
    kind: SuppressionKind,
    request: &str,
) -> Result<(), PortError> {
    db.run(
        ids.iter()
            .map(|i| {
                Statement::new(
                    "INSERT INTO suppressions (id, kind, created_at, request_id) VALUES (?1, ?2, datetime('now'), ?3) \
                     ON CONFLICT (id) DO UPDATE SET kind = CASE WHEN suppressions.kind = 'suppress' THEN 'suppress' ELSE excluded.kind END",
                    vec![text_value(i), text_value(kind.as_str()), text_value(request)],
                )
            })
            .collect(),
    )
    .await
}

/// A suppress or opt-out request: the subject's ids (the ones given if the
/// graph knows none, so a person not seen yet is suppressed too).
pub async fn suppress(
    db: &impl Sql,
    id: &str,
    subject: &Subject,
    request: RequestType,
) -> Result<(Value, u64), JobError> {
    let mut all = resolve(db, subject).await?.all();
    if all.is_empty() {
        all = [subject.user_id.clone(), subject.anonymous_id.clone()]
            .into_iter()
            .flatten()
            .collect();
    }
    let kind = if request == RequestType::Suppress {
        SuppressionKind::Suppress
    } else {
        SuppressionKind::OptOut
    };
    suppress_ids(db, &all, kind, id).await?;
    Ok((
        json!({"ids": all, "kind": kind.as_str()}),
        u64::try_from(all.len()).unwrap_or(0),
    ))
}

/// How many D1 events the ids have (each once, however many chunks match it).
async fn stored_events(db: &impl Sql, all: &[String]) -> Result<usize, PortError> {
    let rows = db::query_in(db, all, 1, |m| {
        format!("SELECT message_id FROM events WHERE person IN ({m})")
    })
    .await?;
    let mut ids: Vec<&str> = rows
        .iter()
        .filter_map(|r| r["message_id"].as_str())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    Ok(ids.len())
}

/// Cut the subject's lines out of every lake object holding them; returns
/// how many events were removed.
async fn cut_lake(db: &(impl Sql + ObjectStore), ids: &Identities) -> Result<usize, JobError> {
    let all = ids.all();
    let mut removed = 0;
    for key in lake_keys(db, ids).await? {
        let Some(object) = db.get(&key).await? else {
            continue;
        };
        let (rest, n) = sinks::r2::without(&object, &all)?;
        removed += n;
        match rest {
            Some(bytes) => {
                let content_type = sinks::r2::content_type(&bytes);
                db.put(&key, bytes, content_type).await?
            }
            None => db.delete(&key).await?,
        }
        unindex(db, &key, &all).await?;
    }
    Ok(removed)
}

/// Take the ids out of a lake object's index row (the row goes when no one is left).
async fn unindex(db: &impl Sql, key: &str, all: &[String]) -> Result<(), PortError> {
    let rows = db
        .query(
            "SELECT people FROM lake_objects WHERE key = ?1",
            vec![text_value(key)],
        )
        .await?;
    let Some(people) = rows.first().and_then(|r| r["people"].as_str()) else {
        return Ok(());
    };
    let left: Vec<String> = serde_json::from_str::<Vec<String>>(people)
        .unwrap_or_default()
        .into_iter()
        .filter(|p| !all.contains(p))
        .collect();
    let statement = if left.is_empty() {
        Statement::new(
            "DELETE FROM lake_objects WHERE key = ?1",
            vec![text_value(key)],
        )
    } else {
        Statement::new(
            "UPDATE lake_objects SET people = ?2 WHERE key = ?1",
            vec![text_value(key), text_value(&json!(left).to_string())],
        )
    };
    db.run(vec![statement]).await
}

/// Every D1 row of the ids, in statements within D1's parameter limit.
fn d1_deletes(all: &[String]) -> Vec<Statement> {
    let either = |table: &'static str| {
        db::statements_in(all, 2, move |m| {
            format!("DELETE FROM {table} WHERE user_id IN ({m}) OR anonymous_id IN ({m})")
        })
    };
    let one = |table: &'static str, col: &'static str| {
        db::statements_in(all, 1, move |m| {
            format!("DELETE FROM {table} WHERE {col} IN ({m})")
        })
    };
    [
        one("events", "person"),
        either("consent_events"),
        one("profile_traits", "user_id"),
        one("profiles", "user_id"),
        either("identity_links"),
    ]
    .concat()
}

/// Send every webhook destination the deletion notice; a retryable answer
/// retries the job. Returns `{destination, ok}` per webhook notified.
async fn notify(
    deps: &impl JobPorts,
    id: &str,
    ids: &Identities,
    destinations: &[Destination],
) -> Result<Vec<Value>, JobError> {
    let mut notified = Vec::new();
    for d in destinations {
        let Kind::Webhook {
            url,
            secret_var,
            timeout_ms,
        } = &d.kind
        else {
            continue;
        };
        let Some(secret) = deps.secret(secret_var) else {
            continue;
        };
        let request = sinks::webhook::deletion_request(
            url,
            secret.as_bytes(),
            id,
            &ids.user_ids,
            &ids.anonymous_ids,
            deps.now(),
        );
        let answer = deps.send(&request, *timeout_ms).await;
        let ok = match sinks::status_verdicts(&[0], answer).pop() {
            Some(Verdict::Delivered) => true,
            Some(Verdict::Retry { reason, .. }) => {
                return Err(JobError::Retry(format!(
                    "deletion notice to {}: {reason}",
                    d.name
                )))
            }
            _ => false,
        };
        notified.push(json!({"destination": d.name, "ok": ok}));
    }
    notified.extend(erase_at_vendors(deps, ids, destinations).await?);
    Ok(notified)
}

/// Ask every vendor destination with a deletion API (Mixpanel, Amplitude,
/// PostHog, Braze) to delete each of the person's user ids; a retryable
/// answer retries the job (the calls are idempotent). Returns
/// `{destination, userId, ok, reason}` per call, kept in the job's result.
async fn erase_at_vendors(
    deps: &impl JobPorts,
    ids: &Identities,
    destinations: &[Destination],
) -> Result<Vec<Value>, JobError> {
    use sluice_shared::dest::{amplitude, braze, mixpanel, posthog};
    let mut out = Vec::new();
    for d in destinations {
        for user in &ids.user_ids {
            macro_rules! erase {
                ($vendor:ty, $v:expr) => {
                    vendor::delete_user::<$vendor, _>(deps, &$v.settings, deps, user, $v.timeout_ms)
                        .await
                };
            }
            let verdict = match &d.kind {
                Kind::Mixpanel(v) => erase!(mixpanel::Mixpanel, v),
                Kind::Amplitude(v) => erase!(amplitude::Amplitude, v),
                Kind::Posthog(v) => erase!(posthog::PostHog, v),
                Kind::Braze(v) => erase!(braze::Braze, v),
                _ => break,
            };
            let reason = match &verdict {
                Verdict::Retry { reason, .. } => {
                    return Err(JobError::Retry(format!("deletion at {}: {reason}", d.name)))
                }
                Verdict::Permanent { reason } | Verdict::Skipped { reason } => Some(reason.clone()),
                Verdict::Delivered => None,
            };
            out.push(json!({"destination": d.name, "userId": user, "ok": reason.is_none(), "reason": reason}));
        }
    }
    Ok(out)
}

/// A delete request (see the module doc). Returns the job's result and how
/// many events were removed (D1 and lake).
pub async fn delete(
    deps: &impl JobPorts,
    id: &str,
    subject: &Subject,
    destinations: &[Destination],
) -> Result<(Value, u64), JobError> {
    let ids = resolve(deps, subject).await?;
    let all = ids.all();
    if all.is_empty() {
        return Ok((json!({"events": 0}), 0));
    }
    suppress_ids(deps, &all, SuppressionKind::Suppress, id).await?;
    let notified = notify(deps, id, &ids, destinations).await?;
    let stored = stored_events(deps, &all).await?;
    let lake_removed = cut_lake(deps, &ids).await?;
    let audience_states =
        crate::audience::feed::forget(deps, &ids.user_ids, &ids.anonymous_ids).await?;
    deps.run(d1_deletes(&all)).await?;
    let records = u64::try_from(stored + lake_removed).unwrap_or(u64::MAX);
    Ok((
        json!({"events": stored, "lakeEvents": lake_removed, "audienceStates": audience_states, "suppressed": all, "notified": notified}),
        records,
    ))
}
