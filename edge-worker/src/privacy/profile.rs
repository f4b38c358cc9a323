//! The profile read model: what is stored about a person, read over every id
//! the identity graph links to them, and an access request's export of it.
//!
//! Ids are bound in chunks ([`db::query_in`]); a row matched by two chunks
//! (its user id in one, its anonymous id in another) is returned once, and
//! `ORDER BY … LIMIT` is applied again after the chunks are concatenated, so
//! the answer is the same as one unbounded query would give.

use super::graph::{resolve, Identities};
use super::{export_key, JobError, Subject};
use crate::db::{self, text_value};
use crate::ports::{ObjectStore, PortError, Runtime, Sql};
use crate::sinks;
use serde_json::{json, Value};

/// Rows of several chunks as one query would give them: sorted by `at`
/// (then `message_id`), each message once, at most `limit`.
fn merged(mut rows: Vec<Value>, at: &str, limit: usize) -> Vec<Value> {
    let key = |r: &Value| {
        (
            r[at].as_str().unwrap_or_default().to_owned(),
            r["message_id"].as_str().unwrap_or_default().to_owned(),
        )
    };
    rows.sort_by_key(key);
    rows.dedup_by(|a, b| a["message_id"] == b["message_id"]);
    rows.truncate(limit);
    rows
}

/// A user's first and last sighting (`None` if nobody has seen them, or
/// they were deleted) and traits. The sightings are their links' and, for
/// events without an anonymousId, their `profiles` row's
/// ([`crate::identity`]); `identity_links` has no `user_id` index, so this
/// (rare, audited) read scans it.
async fn person(db: &impl Sql, user: &str) -> Result<(Option<Value>, Value), PortError> {
    let seen = db
        .query(
            "SELECT MIN(first_seen) AS first_seen, MAX(last_seen) AS last_seen FROM (\
             SELECT first_seen, last_seen FROM profiles WHERE user_id = ?1 \
             UNION ALL SELECT first_seen, last_seen FROM identity_links WHERE user_id = ?1)",
            vec![text_value(user)],
        )
        .await?;
    let seen = seen.into_iter().find(|r| !r["first_seen"].is_null());
    let rows = db
        .query(
            "SELECT trait, value FROM profile_traits WHERE user_id = ?1 ORDER BY trait",
            vec![text_value(user)],
        )
        .await?;
    let traits: serde_json::Map<String, Value> = rows
        .iter()
        .filter_map(|r| {
            Some((
                r["trait"].as_str()?.to_owned(),
                serde_json::from_str(r["value"].as_str()?).ok()?,
            ))
        })
        .collect();
    Ok((seen, Value::Object(traits)))
}

/// Every consent change of the ids, oldest first.
async fn consent_history(db: &impl Sql, all: &[String]) -> Result<Vec<Value>, PortError> {
    let rows = db::query_in(db, all, 2, |m| {
        format!("SELECT message_id, at, consent FROM consent_events WHERE user_id IN ({m}) OR anonymous_id IN ({m})")
    })
    .await?;
    Ok(merged(rows, "at", usize::MAX)
        .iter()
        .map(|r| {
            let consent = serde_json::from_str::<Value>(r["consent"].as_str().unwrap_or("null"))
                .unwrap_or(Value::Null);
            json!({"messageId": r["message_id"], "at": r["at"], "consent": consent})
        })
        .collect())
}

/// A person's profile: traits, first and last seen, linked ids, consent
/// history; `None` if nothing at all is stored about them.
pub async fn profile(db: &impl Sql, subject: &Subject) -> Result<Option<Value>, PortError> {
    let ids = resolve(db, subject).await?;
    if ids.is_empty() {
        return Ok(None);
    }
    let (user, seen, traits) = match ids.user_ids.first() {
        Some(u) => {
            let (seen, traits) = person(db, u).await?;
            // A user id nobody has seen, or one deleted, is no profile's user.
            (seen.is_some().then(|| u.clone()), seen, traits)
        }
        None => (None, None, json!({})),
    };
    let seen = seen.unwrap_or(Value::Null);
    let history = consent_history(db, &ids.all()).await?;
    if user.is_none() && history.is_empty() && events(db, &ids, 1).await?.is_empty() {
        return Ok(None);
    }
    Ok(Some(json!({
        "userId": user,
        "userIds": ids.user_ids,
        "anonymousIds": ids.anonymous_ids,
        "firstSeen": seen["first_seen"],
        "lastSeen": seen["last_seen"],
        "traits": traits,
        "consentHistory": history,
    })))
}

/// The subject's stored events (the raw events, oldest first), at most `limit`.
pub async fn events(db: &impl Sql, ids: &Identities, limit: u32) -> Result<Vec<Value>, PortError> {
    let rows = db::query_in(db, &ids.all(), 1, |m| {
        // `person` is the key's first column: the anonymousId, else the
        // userId, and every anonymousId seen with a userId is linked to it, so
        // the person's ids name all their rows.
        format!("SELECT {} FROM events WHERE person IN ({m}) ORDER BY received_at, message_id LIMIT {limit}", sinks::d1::COLUMNS)
    })
    .await?;
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    Ok(merged(rows, "received_at", limit)
        .iter()
        .filter_map(sinks::d1::event_of)
        .collect())
}

/// Lake objects that hold the subject's events, by key.
pub async fn lake_keys(db: &impl Sql, ids: &Identities) -> Result<Vec<String>, PortError> {
    let rows = db::query_in(db, &ids.all(), 1, |m| {
        format!("SELECT DISTINCT o.key FROM lake_objects o, json_each(o.people) p WHERE p.value IN ({m})")
    })
    .await?;
    let mut keys: Vec<String> = rows
        .iter()
        .filter_map(|r| r["key"].as_str().map(str::to_owned))
        .collect();
    keys.sort_unstable();
    keys.dedup();
    Ok(keys)
}

/// An access request: the profile, the D1 events and the subject's lines of
/// every lake object, as one JSON document at [`export_key`]. Returns the
/// job's result and how many records were exported.
pub async fn export(
    deps: &(impl Runtime + Sql + ObjectStore),
    id: &str,
    subject: &Subject,
) -> Result<(Value, u64), JobError> {
    let ids = resolve(deps, subject).await?;
    let profile = profile(deps, subject).await?;
    let stored = events(deps, &ids, 100_000).await?;
    let people = ids.all();
    let keys = lake_keys(deps, &ids).await?;
    let mut lake = Vec::new();
    for key in &keys {
        let Some(object) = deps.get(key).await? else {
            continue;
        };
        let theirs = sinks::r2::events_of(&object, &people)?;
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
    deps.put(
        &export_key(id),
        export.to_string().into_bytes(),
        "application/json",
    )
    .await?;
    Ok((
        json!({"events": stored.len(), "lakeObjects": keys.len(), "export": export_key(id)}),
        u64::try_from(stored.len()).unwrap_or(u64::MAX),
    ))
}
