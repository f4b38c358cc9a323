//! Routing events to the people they belong to, and reading a person back.

use super::person::{Fed, PersonAnswer, PersonRequest};
use crate::db;
use crate::ports::{PersonStates, PortError, Sql};
use sluice_shared::audience::state::Detail;
use sluice_shared::audience::{self, Catalog, View};
use sluice_shared::{EventType, QueuedEvent};
use std::collections::{BTreeMap, BTreeSet};

/// The person key of a user id.
pub fn user_key(id: &str) -> String {
    ["u:", id].concat()
}

/// The person key of an anonymous id (a device not linked to a user).
pub fn device_key(id: &str) -> String {
    ["a:", id].concat()
}

/// Mark an event as fed at the collector (`context.sluice.audiences: "fed"`).
pub fn mark_fed(e: &mut sluice_shared::Event) {
    sluice_shared::enrich::sluice_context(e).insert(FED.0.into(), FED.1.into());
}

/// Whether the collector fed this event already.
pub fn was_fed(e: &sluice_shared::Event) -> bool {
    e.context
        .as_ref()
        .and_then(|c| c.get("sluice"))
        .and_then(|s| s.get(FED.0))
        .and_then(serde_json::Value::as_str)
        == Some(FED.1)
}

const FED: (&str, &str) = ("audiences", "fed");

pub(super) fn is_own(e: &sluice_shared::Event) -> bool {
    e.kind == EventType::Track
        && matches!(
            e.event.as_deref(),
            Some(audience::ENTERED | audience::EXITED)
        )
}

/// Drop the events of suppressed people; returns the user each remaining
/// anonymous event's device is linked to (as ingest resolves them).
pub(super) async fn resolve(
    db: &impl Sql,
    events: &mut Vec<Fed>,
) -> Result<BTreeMap<String, String>, PortError> {
    let mut ids: Vec<String> = events
        .iter()
        .flat_map(|f| [&f.event.user_id, &f.event.anonymous_id])
        .flatten()
        .cloned()
        .collect();
    ids.sort_unstable();
    ids.dedup();
    let held = suppressed(db, &ids).await?;
    events.retain(|f| {
        ![&f.event.user_id, &f.event.anonymous_id]
            .into_iter()
            .flatten()
            .any(|id| held.contains(id))
    });
    let mut devices: Vec<String> = events
        .iter()
        .filter(|f| f.event.user_id.is_none())
        .filter_map(|f| f.event.anonymous_id.clone())
        .collect();
    devices.sort_unstable();
    devices.dedup();
    let links = if devices.is_empty() {
        BTreeMap::new()
    } else {
        linked_users(db, &devices).await?
    };
    Ok(links)
}

/// Ids under a `suppress` hold (deleted or suppressed people).
pub(super) async fn suppressed(
    db: &impl Sql,
    ids: &[String],
) -> Result<BTreeSet<String>, PortError> {
    let rows = db::query_in(db, ids, 1, |m| {
        format!("SELECT id FROM suppressions WHERE kind = 'suppress' AND id IN ({m})")
    })
    .await?;
    Ok(rows
        .iter()
        .filter_map(|r| Some(r["id"].as_str()?.to_owned()))
        .collect())
}

/// The user each of these devices is linked to (the smallest id if several).
pub(super) async fn linked_users(
    db: &impl Sql,
    devices: &[String],
) -> Result<BTreeMap<String, String>, PortError> {
    let rows = db::query_in(db, devices, 1, |m| {
        format!("SELECT anonymous_id, MIN(user_id) AS user_id FROM identity_links WHERE anonymous_id IN ({m}) GROUP BY anonymous_id")
    })
    .await?;
    Ok(rows
        .iter()
        .filter_map(|r| {
            Some((
                r["anonymous_id"].as_str()?.to_owned(),
                r["user_id"].as_str()?.to_owned(),
            ))
        })
        .collect())
}

/// Feed events to their people. Returns the browser view of the person of
/// the last event (the visitor, for a page's request), if any was fed.
pub async fn feed(
    ports: &(impl Sql + PersonStates),
    catalog: &Catalog,
    mut events: Vec<Fed>,
) -> Result<Option<View>, PortError> {
    if catalog.is_empty() {
        return Ok(None);
    }
    events.retain(|f| {
        !is_own(&f.event) && (f.event.user_id.is_some() || f.event.anonymous_id.is_some())
    });
    if events.is_empty() {
        return Ok(None);
    }
    let links = resolve(ports, &mut events).await?;
    // Per person, in order of first appearance: the events and the devices seen with the user.
    let mut people: Vec<(String, Vec<Fed>, Vec<String>)> = Vec::new();
    let mut last = None;
    for f in events {
        let (key, device) = match (&f.event.user_id, &f.event.anonymous_id) {
            (Some(u), anon) => (user_key(u), anon.clone()),
            (None, Some(a)) => match links.get(a) {
                Some(u) => (user_key(u), Some(a.clone())),
                None => (device_key(a), None),
            },
            (None, None) => continue,
        };
        last = Some(key.clone());
        let i = match people.iter().position(|(k, _, _)| *k == key) {
            Some(i) => i,
            None => {
                people.push((key, Vec::new(), Vec::new()));
                people.len() - 1
            }
        };
        people[i].1.push(f);
        if let Some(d) = device {
            if !people[i].2.contains(&d) {
                people[i].2.push(d);
            }
        }
    }
    let mut views = BTreeMap::new();
    for (key, events, devices) in people {
        let view = apply(ports, &key, events, devices).await?;
        views.insert(key, view);
    }
    Ok(last.and_then(|k| views.remove(&k)))
}

/// Feed one person, following a device's forward and merging the devices
/// its object has not merged yet.
async fn apply(
    ports: &impl PersonStates,
    key: &str,
    events: Vec<Fed>,
    devices: Vec<String>,
) -> Result<View, PortError> {
    let request = PersonRequest::Apply { events, devices };
    let mut key = key.to_owned();
    let mut answer = ports.person(&key, &request).await?;
    if let Some(target) = answer.forward.take() {
        key = target;
        answer = ports.person(&key, &request).await?;
    }
    for device in std::mem::take(&mut answer.missing_devices) {
        let taken = ports
            .person(
                &device_key(&device),
                &PersonRequest::Take { into: key.clone() },
            )
            .await?;
        let record = taken.taken.unwrap_or_default();
        answer = ports
            .person(&key, &PersonRequest::Merge { device, record })
            .await?;
    }
    Ok(answer.view)
}

/// The consumer's step after `store`: feed the stored events the collector
/// did not (its call failed, or they came another way). Best-effort: a
/// failure is logged; the events stay stored and delivered.
pub async fn feed_stored<'e>(
    ports: &(impl Sql + PersonStates),
    config: &crate::config::Config,
    stored: impl IntoIterator<Item = &'e QueuedEvent>,
) {
    if config.audiences.is_empty() {
        return;
    }
    let events: Vec<Fed> = stored
        .into_iter()
        .filter(|q| !was_fed(&q.event))
        .map(|q| Fed {
            source: q.source.clone(),
            regime: config
                .sources
                .iter()
                .find(|s| s.name == q.source)
                .map(|s| s.consent.regime)
                .unwrap_or_default(),
            event: q.event.clone(),
        })
        .collect();
    if events.is_empty() {
        return;
    }
    if let Err(e) = feed(ports, &config.audiences, events).await {
        crate::delivery::log(&["sluice: feeding audiences failed: ", &e.to_string()].concat());
    }
}

/// A person's traits and audiences with their change times, by user id or
/// anonymous id (a linked device reads its user's): `None` if no state.
pub async fn profile(
    ports: &(impl Sql + PersonStates),
    id: &str,
) -> Result<Option<(String, Detail)>, PortError> {
    let linked = linked_users(ports, &[id.to_owned()]).await?;
    let mut keys: Vec<String> = linked.get(id).map(|u| user_key(u)).into_iter().collect();
    keys.extend([user_key(id), device_key(id)]);
    for key in keys {
        let mut answer: PersonAnswer = ports.person(&key, &PersonRequest::Read).await?;
        let mut key = key;
        if let Some(target) = answer.forward.take() {
            key = target;
            answer = ports.person(&key, &PersonRequest::Read).await?;
        }
        if let Some(detail) = answer.detail {
            return Ok(Some((key, detail)));
        }
    }
    Ok(None)
}

/// Delete the state of every id of a person (the deletion job); returns how
/// many objects held one.
pub async fn forget(
    ports: &impl PersonStates,
    user_ids: &[String],
    anonymous_ids: &[String],
) -> Result<u64, PortError> {
    let keys = user_ids
        .iter()
        .map(|u| user_key(u))
        .chain(anonymous_ids.iter().map(|a| device_key(a)));
    let mut held = 0;
    for key in keys {
        if ports.person(&key, &PersonRequest::Delete).await?.existed {
            held += 1;
        }
    }
    Ok(held)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_shared::Event;

    #[test]
    fn a_marked_event_is_known_as_fed() {
        let mut e = Event::new(EventType::Track, "m1");
        assert!(!was_fed(&e));
        mark_fed(&mut e);
        assert!(was_fed(&e));
        let text = serde_json::to_string(&e).unwrap();
        assert!(text.contains(r#""sluice":{"audiences":"fed"}"#), "{text}");
    }
}
