//! Backfill: computing a new or changed definition from the lake, so it
//! does not start from zero, then letting live feeding continue.
//!
//! The worker walks the lake objects **newest first** in bounded steps and
//! hands each person their events of the step, newest first; [`apply`]
//! folds them into the person's [`PersonState`] for the selected
//! definitions only. Walking backwards is what makes "the latest consent
//! governs" exact without keeping history: live feeding clears a feed when
//! an event's consent does not cover it, so only the events *after* the
//! person's latest such event count. Backwards, that event is met first,
//! and every older event is then skipped for that feed (its *stop*). Every
//! aggregate kept ([`super::state`]) is order-free (sums, counts, min /
//! max, first / last by timestamp, windows as sorted lists keeping the
//! newest), so the order of folding changes nothing else.
//!
//! **No event counts twice.**
//! - *Live and backfill*: a feed's state records from when it holds events
//!   ([`FeedState::b`]: the `receivedAt` of the event that started it live).
//!   A backfill counts only events received before that time and before
//!   the job's `until` (its creation), then lowers `b` to the job's `from`
//!   (`None` without one: everything is counted), so a later backfill of
//!   the same definition adds nothing twice. Events arriving during the
//!   backfill are received after `until`: live feeding counts them, the
//!   backfill skips them. An event fed live among the person's last
//!   [`super::state::SEEN_IDS`] message ids is skipped too (it was received
//!   just before the cut but fed after it).
//! - *A redelivered step*: the person keeps a [`Mark`] per job with the last
//!   step it applied; a step at or below it does nothing. 64 recent message
//!   ids would not be enough for a replay of thousands of events.
//!
//! Sans-IO like the rest of the crate: callers pass `now` in.

use super::definition::{fnv64, Catalog, Feed};
use super::expr;
use super::state::{event_ms, feed_value, received_ms, FeedState, PersonState};
use crate::consent::{self, Consent, Regime};
use crate::event::{Event, EventType};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// Jobs a person remembers having been fed by (the oldest is forgotten).
pub const MAX_MARKS: usize = 4;

/// Why a backfill was refused, or stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BackfillError {
    /// The body is not JSON of the expected shape.
    Invalid(String),
    /// Neither `definitions` nor `all: true` (or both).
    NoDefinitions,
    /// A named definition is no computed trait or audience.
    UnknownDefinition(String),
    /// `from` / `until` is not an RFC 3339 time.
    BadTime { field: &'static str, value: String },
    /// `from` is not before `until`, or `until` is in the future.
    BadRange,
    /// A definition of the job changed or was removed since it was created.
    DefinitionChanged(String),
    /// No R2 lake destination is configured: there is nothing to read.
    NoLake,
}

impl BackfillError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            BackfillError::Invalid(_) => "invalid_backfill",
            BackfillError::NoDefinitions => "backfill_without_definitions",
            BackfillError::UnknownDefinition(_) => "unknown_definition",
            BackfillError::BadTime { .. } => "invalid_time",
            BackfillError::BadRange => "invalid_range",
            BackfillError::DefinitionChanged(_) => "definition_changed",
            BackfillError::NoLake => "no_lake",
        }
    }
}

impl fmt::Display for BackfillError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BackfillError::Invalid(why) => write!(f, "backfill request: {why}"),
            BackfillError::NoDefinitions => {
                f.write_str("name the definitions to backfill, or give \"all\": true")
            }
            BackfillError::UnknownDefinition(n) => {
                write!(f, "{n:?} is no computed trait or audience")
            }
            BackfillError::BadTime { field, value } => {
                write!(f, "{field}: {value:?} is not an RFC 3339 time")
            }
            BackfillError::BadRange => {
                f.write_str("from must be before until, until not later than now")
            }
            BackfillError::DefinitionChanged(n) => write!(
                f,
                "definition {n:?} changed or was removed since the backfill was created"
            ),
            BackfillError::NoLake => f.write_str("no R2 lake destination is configured"),
        }
    }
}

/// What a backfill computes: named definitions (with their fingerprints
/// when the job was created) and the state they are computed into.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Selection {
    pub definitions: Vec<(String, u64)>,
    /// Feed keys and fingerprints: the computed traits named or read by a
    /// named audience, and the named audiences' `did` counters.
    pub feeds: Vec<(String, u64)>,
    /// Profile traits (from `identify`) the named audiences read.
    pub profile: Vec<String>,
}

fn fingerprint_of(catalog: &Catalog, name: &str) -> Option<u64> {
    if let Some(f) = catalog.feeds[..catalog.trait_count]
        .iter()
        .find(|f| f.key == name)
    {
        return Some(f.fingerprint);
    }
    let i = catalog.audiences.iter().position(|a| a.name == name)?;
    catalog.audience_fingerprints.get(i).copied()
}

impl Selection {
    /// The definitions named (`None`: every one), validated.
    pub fn select(catalog: &Catalog, names: Option<&[String]>) -> Result<Selection, BackfillError> {
        let all: Vec<String> = catalog
            .traits
            .iter()
            .map(|t| t.name.clone())
            .chain(catalog.audiences.iter().map(|a| a.name.clone()))
            .collect();
        let names = names.unwrap_or(&all);
        if names.is_empty() {
            return Err(BackfillError::NoDefinitions);
        }
        let mut s = Selection::default();
        let mut feeds = BTreeSet::new();
        for name in names {
            let fp = fingerprint_of(catalog, name)
                .ok_or_else(|| BackfillError::UnknownDefinition(name.clone()))?;
            if s.definitions.iter().any(|(n, _)| n == name) {
                continue;
            }
            s.definitions.push((name.clone(), fp));
            match catalog.audiences.iter().position(|a| a.name == *name) {
                None => {
                    feeds.insert(name.clone());
                }
                Some(i) => {
                    let a = &catalog.audiences[i];
                    let first = catalog.did_offsets.get(i).copied().unwrap_or(0);
                    let mut dids = Vec::new();
                    a.when.visit_did(&mut dids);
                    for f in catalog.feeds.iter().skip(first).take(dids.len()) {
                        feeds.insert(f.key.clone());
                    }
                    let mut read = Vec::new();
                    a.when.visit_traits(&mut read);
                    for (is_profile, c) in read {
                        if is_profile {
                            if !s.profile.contains(&c.name) {
                                s.profile.push(c.name.clone());
                            }
                        } else {
                            feeds.insert(c.name.clone());
                        }
                    }
                }
            }
        }
        // In the catalogue's order.
        s.feeds = catalog
            .feeds
            .iter()
            .filter(|f| feeds.contains(&f.key))
            .map(|f| (f.key.clone(), f.fingerprint))
            .collect();
        Ok(s)
    }

    /// Refuse to go on if a definition changed since the job was created:
    /// its state was reset and the job's cuts belong to the old version.
    pub fn check(&self, catalog: &Catalog) -> Result<(), BackfillError> {
        for (name, fp) in &self.definitions {
            if fingerprint_of(catalog, name) != Some(*fp) {
                return Err(BackfillError::DefinitionChanged(name.clone()));
            }
        }
        for (key, fp) in &self.feeds {
            if !catalog
                .feeds
                .iter()
                .any(|f| f.key == *key && f.fingerprint == *fp)
            {
                let name = key.split('#').next().unwrap_or(key);
                return Err(BackfillError::DefinitionChanged(name.to_owned()));
            }
        }
        Ok(())
    }
}

/// The admin API's body: `{definitions: [..]}` or `{all: true}`, with an
/// optional `from` / `until` (RFC 3339, on when Sluice received the events).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewBackfill {
    #[serde(default)]
    definitions: Option<Vec<String>>,
    #[serde(default)]
    all: bool,
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    until: Option<String>,
}

/// A validated backfill request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub selection: Selection,
    /// Events received at or after this (epoch ms); `None`: from the start.
    pub from_ms: Option<i64>,
    /// Events received before this: the job's creation unless earlier.
    pub until_ms: i64,
}

fn time(field: &'static str, value: Option<String>) -> Result<Option<i64>, BackfillError> {
    value
        .map(|v| {
            Timestamp::parse(&v)
                .map(|t| t.0)
                .map_err(|_| BackfillError::BadTime { field, value: v })
        })
        .transpose()
}

impl Plan {
    /// Validate a request body against the definitions at `now_ms`.
    pub fn parse(body: &[u8], catalog: &Catalog, now_ms: i64) -> Result<Plan, BackfillError> {
        let raw: NewBackfill =
            serde_json::from_slice(body).map_err(|e| BackfillError::Invalid(e.to_string()))?;
        let names = match (raw.definitions, raw.all) {
            (Some(names), false) => Some(names),
            (None, true) => None,
            _ => return Err(BackfillError::NoDefinitions),
        };
        let selection = Selection::select(catalog, names.as_deref())?;
        let from_ms = time("from", raw.from)?;
        let until_ms = time("until", raw.until)?.unwrap_or(now_ms);
        if until_ms > now_ms || from_ms.is_some_and(|f| f >= until_ms) {
            return Err(BackfillError::BadRange);
        }
        Ok(Plan {
            selection,
            from_ms,
            until_ms,
        })
    }
}

/// What a person remembers of a job: the last step applied, the cut of
/// each feed (events received before it are the backfill's; kept only where
/// it is not the job's `until`) and the feeds a non-consenting event stopped.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mark {
    #[serde(rename = "j")]
    pub job: String,
    #[serde(rename = "s")]
    pub step: u32,
    #[serde(rename = "c", default, skip_serializing_if = "BTreeMap::is_empty")]
    pub cut: BTreeMap<String, i64>,
    #[serde(rename = "x", default, skip_serializing_if = "BTreeSet::is_empty")]
    pub stop: BTreeSet<String>,
}

/// One step of a job, as one person receives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    pub job: String,
    pub step: u32,
    pub plan: Plan,
}

/// The latest consent known for the person, with its regime.
#[derive(Debug, Clone, Copy)]
pub struct Latest<'a> {
    pub consent: Option<&'a Consent>,
    pub regime: Regime,
}

/// Sort events newest first, as [`apply`] takes them: by `receivedAt`,
/// then timestamp, then messageId (a stable order for equal times).
pub fn newest_first<T>(events: &mut [T], event: impl Fn(&T) -> &Event) {
    events.sort_by_cached_key(|x| {
        let e = event(x);
        std::cmp::Reverse((received_ms(e, 0), event_ms(e, 0), e.message_id.clone()))
    });
}

fn profile_key(name: &str) -> String {
    ["profile:", name].concat()
}

/// What one person's share of a step did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Applied {
    /// The step was applied before (a redelivery): nothing changed.
    pub repeated: bool,
    /// (event, definition) pairs counted.
    pub counted: u64,
}

/// Fold one person's events of a step (newest first, see [`newest_first`])
/// into their state, for the step's selection only. `latest` is the
/// consent of the newest event fed live (`None` if none was: the newest
/// event of the first step then governs, and sets which audiences are
/// withheld). Evaluate afterwards.
pub fn apply(
    state: &mut PersonState,
    marks: &mut Vec<Mark>,
    catalog: &Catalog,
    step: &Step,
    events: &[(Event, Regime)],
    latest: Option<Latest<'_>>,
    now_ms: i64,
) -> Applied {
    let plan = &step.plan;
    let selected: Vec<&Feed> = plan
        .selection
        .feeds
        .iter()
        .filter_map(|(k, fp)| {
            catalog
                .feeds
                .iter()
                .find(|f| f.key == *k && f.fingerprint == *fp)
        })
        .collect();
    let i = match marks.iter().position(|m| m.job == step.job) {
        Some(i) if marks[i].step >= step.step => {
            return Applied {
                repeated: true,
                counted: 0,
            }
        }
        Some(i) => i,
        None => {
            let mut mark = Mark {
                job: step.job.clone(),
                ..Mark::default()
            };
            for feed in &selected {
                let cut = match state.feeds.get_mut(&feed.key) {
                    Some(s) if s.fp == feed.fingerprint => {
                        let cut = s.b.map_or(i64::MIN, |b| b.min(plan.until_ms));
                        s.b = lowered(s.b, plan.from_ms);
                        cut
                    }
                    _ => plan.until_ms,
                };
                if cut != plan.until_ms {
                    mark.cut.insert(feed.key.clone(), cut);
                }
            }
            marks.push(mark);
            let extra = marks.len().saturating_sub(MAX_MARKS);
            marks.drain(..extra);
            marks.len() - 1
        }
    };
    let mark = &mut marks[i];
    mark.step = step.step;
    // The latest consent governs: live feeding cleared what it does not cover.
    let newest = events.first().map(|(e, regime)| {
        (
            Consent::from_context(e.context.as_ref()).ok().flatten(),
            *regime,
        )
    });
    let (latest_consent, latest_regime) = match (latest, &newest) {
        (Some(l), _) => (l.consent, l.regime),
        (None, Some((c, r))) => (c.as_ref(), *r),
        (None, None) => (None, Regime::default()),
    };
    if latest.is_none() && newest.is_some() {
        for a in &catalog.audiences {
            if consent::may_forward(latest_consent, &a.purposes, latest_regime) {
                state.withheld.remove(&a.name);
            } else {
                state.withheld.insert(a.name.clone());
            }
        }
    }
    if latest.is_some() || newest.is_some() {
        for feed in &selected {
            if !consent::may_forward(latest_consent, &feed.purposes, latest_regime) {
                mark.stop.insert(feed.key.clone());
            }
        }
        for name in &plan.selection.profile {
            let purposes = catalog
                .profile_traits
                .get(name)
                .map_or(&[][..], Vec::as_slice);
            if !consent::may_forward(latest_consent, purposes, latest_regime) {
                mark.stop.insert(profile_key(name));
            }
        }
    }
    let mut counted = 0;
    for (e, regime) in events {
        if e.kind == EventType::Track
            && matches!(e.event.as_deref(), Some(super::ENTERED | super::EXITED))
        {
            continue;
        }
        let received = received_ms(e, now_ms);
        if plan.from_ms.is_some_and(|f| received < f) {
            continue;
        }
        if state.seen.contains(&fnv64(e.message_id.as_bytes())) {
            continue; // fed live moments ago
        }
        let consent = Consent::from_context(e.context.as_ref()).ok().flatten();
        let at = event_ms(e, now_ms);
        for feed in &selected {
            if mark.stop.contains(&feed.key) {
                continue;
            }
            if !consent::may_forward(consent.as_ref(), &feed.purposes, *regime) {
                // Live feeding cleared the feed here: nothing older counts.
                mark.stop.insert(feed.key.clone());
                continue;
            }
            let cut = mark.cut.get(&feed.key).copied().unwrap_or(plan.until_ms);
            if received >= cut || !expr::matches(e, &feed.event, &feed.conditions) {
                continue;
            }
            let Some(v) = feed_value(feed, e) else {
                continue;
            };
            let fresh = || FeedState {
                b: lowered(Some(plan.until_ms), plan.from_ms),
                ..FeedState::fresh(feed.fingerprint)
            };
            let s = state.feeds.entry(feed.key.clone()).or_insert_with(fresh);
            if s.fp != feed.fingerprint {
                *s = fresh();
            }
            s.b = lowered(s.b, plan.from_ms);
            s.add(feed, at, v, now_ms);
            counted += 1;
        }
        if e.kind != EventType::Identify {
            continue;
        }
        let traits = e.traits.as_ref().or_else(|| {
            e.context
                .as_ref()
                .and_then(|c| c.get("traits"))
                .and_then(Value::as_object)
        });
        for name in &plan.selection.profile {
            let key = profile_key(name);
            if mark.stop.contains(&key) {
                continue;
            }
            let purposes = catalog
                .profile_traits
                .get(name)
                .map_or(&[][..], Vec::as_slice);
            if !consent::may_forward(consent.as_ref(), purposes, *regime) {
                mark.stop.insert(key);
                continue;
            }
            if let Some(v) = traits.and_then(|t| t.get(name)) {
                // The newest value wins; an older one never replaces it.
                if state.profile.get(name).is_none_or(|s| at > s.at) {
                    state
                        .profile
                        .insert(name.clone(), super::state::Stamped { at, v: v.clone() });
                    counted += 1;
                }
            }
        }
    }
    Applied {
        repeated: false,
        counted,
    }
}

/// A person's record as a backfill step touches it: the state, the jobs'
/// marks, and the source and consent of their latest event (which emitted
/// audience events carry).
pub struct Person<'a> {
    pub state: &'a mut PersonState,
    pub marks: &'a mut Vec<Mark>,
    pub source: &'a mut Option<String>,
    pub consent: &'a mut Option<Value>,
}

/// [`apply`] for a stored person, with events as `(source, event, regime)`
/// in any order: if nothing was fed live yet, the newest event's source
/// and consent become the person's.
pub fn apply_to(
    person: Person<'_>,
    catalog: &Catalog,
    step: &Step,
    mut events: Vec<(String, Event, Regime)>,
    now_ms: i64,
) -> Applied {
    newest_first(&mut events, |(_, e, _)| e);
    let live = person.source.is_some();
    let consent = person.consent.clone().and_then(|c| {
        let context = serde_json::Map::from_iter([("consent".to_owned(), c)]);
        Consent::from_context(Some(&context)).ok().flatten()
    });
    let regime = events.first().map(|(_, _, r)| *r).unwrap_or_default();
    let latest = live.then_some(Latest {
        consent: consent.as_ref(),
        regime,
    });
    if let (false, Some((source, newest, _))) = (live, events.first()) {
        *person.source = Some(source.clone());
        *person.consent = newest
            .context
            .as_ref()
            .and_then(|c| c.get("consent"))
            .cloned();
    }
    let events: Vec<(Event, Regime)> = events.into_iter().map(|(_, e, r)| (e, r)).collect();
    apply(
        person.state,
        person.marks,
        catalog,
        step,
        &events,
        latest,
        now_ms,
    )
}

/// A feed's `b` once a backfill from `from` is done: it holds everything
/// received from `from` on (`None`: everything).
fn lowered(b: Option<i64>, from: Option<i64>) -> Option<i64> {
    match (b, from) {
        (Some(b), Some(f)) => Some(b.min(f)),
        _ => None,
    }
}

/// A backfill job's state, as the admin API answers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Queued,
    Running,
    Done,
    Failed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Queued => "queued",
            Status::Running => "running",
            Status::Done => "done",
            Status::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        [
            Status::Queued,
            Status::Running,
            Status::Done,
            Status::Failed,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }

    pub fn is_final(self) -> bool {
        matches!(self, Status::Done | Status::Failed)
    }
}

#[cfg(test)]
#[path = "backfill_tests.rs"]
mod tests;
