//! One person's traits and audiences, updated one event at a time.
//!
//! Each event updates only the definitions ("feeds") it matches: lifetime
//! traits keep O(1) aggregates (count, sum, min, max, first, last) or a
//! bounded value table (`most_frequent`, `unique_*`: `max_values` entries);
//! nothing is rescanned.
//!
//! **Windows are exact**, by a bounded, sorted list of `(timestamp, value)`
//! per windowed feed rather than time buckets: a bucket would make an exit
//! fire up to a bucket late, or need many buckets for a short window. A
//! `did X ≥ n times within W` keeps only the n newest timestamps (that is
//! all "≥ n in the last W" depends on); a windowed trait keeps at most
//! `max_events` (default 100) and is exact up to that many events in its
//! window (past it, the oldest are forgotten first: a count saturates at
//! `max_events`). [`PersonState::next_expiry`] is the earliest time a kept
//! timestamp leaves its window: an alarm set there fires the exit on time.
//!
//! Duplicates (a resent batch, the collector and the consumer both feeding
//! the same event) are recognised by a fingerprint of the `messageId` among
//! the last [`SEEN_IDS`] the person sent.
//!
//! Consent: an event whose consent does not cover a feed's purposes clears
//! that feed (the latest consent governs), and an audience whose purposes
//! are not covered is left.

use super::definition::{Catalog, Feed, TraitKind};
use super::expr::{self, Facts};
use crate::consent::{self, Consent, Regime};
use crate::event::{Event, EventType};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// Message-id fingerprints remembered per person.
pub const SEEN_IDS: usize = 64;
/// Longest text value kept (characters); longer ones are cut.
pub const MAX_TEXT_CHARS: usize = 128;

/// A value and when it was observed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stamped {
    pub at: i64,
    pub v: Value,
}

/// What one feed has accumulated. Short field names: this is stored per person.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FeedState {
    pub fp: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub n: u64,
    #[serde(default, skip_serializing_if = "is_zero_f")]
    pub sum: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first: Option<Stamped>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last: Option<Stamped>,
    /// Distinct values (as JSON text) with their counts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub vals: Vec<(String, u64)>,
    /// More distinct values were seen than are kept.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sat: bool,
    /// Windowed: the kept events, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub win: Vec<(i64, Value)>,
    /// Holds only the events received from this time (epoch ms) on: those
    /// fed live since the definition (this version of it) first matched the
    /// person. A backfill adds the earlier ones from the lake and lowers it;
    /// `None`: every event is counted already (nothing to backfill).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub b: Option<i64>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

fn is_zero_f(n: &f64) -> bool {
    *n == 0.0
}

/// An audience's membership and when it last changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    #[serde(rename = "in")]
    pub member: bool,
    pub since: i64,
}

/// A computed trait's last value and when it last changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Seen {
    pub v: Value,
    pub since: i64,
}

/// One person's state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PersonState {
    #[serde(default, rename = "f", skip_serializing_if = "BTreeMap::is_empty")]
    pub feeds: BTreeMap<String, FeedState>,
    #[serde(default, rename = "p", skip_serializing_if = "BTreeMap::is_empty")]
    pub profile: BTreeMap<String, Stamped>,
    #[serde(default, rename = "a", skip_serializing_if = "BTreeMap::is_empty")]
    pub audiences: BTreeMap<String, Membership>,
    #[serde(default, rename = "t", skip_serializing_if = "BTreeMap::is_empty")]
    pub traits: BTreeMap<String, Seen>,
    /// Audiences whose purposes the latest consent does not cover.
    #[serde(default, rename = "w", skip_serializing_if = "BTreeSet::is_empty")]
    pub withheld: BTreeSet<String>,
    /// Fingerprints of the latest message ids, newest last.
    #[serde(default, rename = "s", skip_serializing_if = "Vec::is_empty")]
    pub seen: Vec<u64>,
}

/// Entering or leaving an audience.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub audience: String,
    pub entered: bool,
    pub at_ms: i64,
    /// The computed traits the audience reads, as they are now.
    pub traits: BTreeMap<String, Value>,
}

/// A trait's value and when it last changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TraitView {
    pub value: Value,
    pub changed_at: String,
}

/// An audience's membership and when it last changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AudienceView {
    pub name: String,
    pub member: bool,
    pub changed_at: String,
}

/// What a reader is shown.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct View {
    /// The audiences the person is in.
    pub audiences: Vec<String>,
    pub traits: BTreeMap<String, Value>,
}

/// The profile API's view: every trait and audience, with change times.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Detail {
    pub traits: BTreeMap<String, TraitView>,
    pub audiences: Vec<AudienceView>,
}

/// When Sluice received an event (its `receivedAt`), else its timestamp, else now.
pub(super) fn received_ms(e: &Event, now_ms: i64) -> i64 {
    [e.received_at.as_deref(), e.timestamp.as_deref()]
        .into_iter()
        .flatten()
        .find_map(|t| Timestamp::parse(t).ok())
        .map_or(now_ms, |t| t.0)
}

/// An event's time: its (skew-corrected) timestamp, else when it was received, else now.
pub(super) fn event_ms(e: &Event, now_ms: i64) -> i64 {
    [e.timestamp.as_deref(), e.received_at.as_deref()]
        .into_iter()
        .flatten()
        .find_map(|t| Timestamp::parse(t).ok())
        .map_or(now_ms, |t| t.0)
}

/// The value a feed reads from an event, `None` if unusable.
pub(super) fn feed_value(feed: &Feed, e: &Event) -> Option<Value> {
    let Some(path) = &feed.property else {
        return Some(Value::Null);
    };
    let v = expr::property(e, path)?;
    if feed.kind.is_numeric() {
        return v.is_number().then(|| v.clone());
    }
    match v {
        Value::String(s) if s.chars().count() > MAX_TEXT_CHARS => {
            Some(Value::String(s.chars().take(MAX_TEXT_CHARS).collect()))
        }
        Value::String(_) | Value::Number(_) | Value::Bool(_) => Some(v.clone()),
        _ => None,
    }
}

impl FeedState {
    pub(super) fn fresh(fp: u64) -> FeedState {
        FeedState {
            fp,
            ..FeedState::default()
        }
    }

    fn add_value(&mut self, feed: &Feed, text: String) {
        if let Some(entry) = self.vals.iter_mut().find(|(v, _)| *v == text) {
            entry.1 += 1;
        } else if self.vals.len() < feed.max_values {
            self.vals.push((text, 1));
        } else if feed.kind == TraitKind::MostFrequent {
            // Space-saving: the least counted value gives way, its count inherited.
            if let Some(i) = (0..self.vals.len()).min_by_key(|i| self.vals[*i].1) {
                let count = self.vals[i].1 + 1;
                self.vals[i] = (text, count);
            }
            self.sat = true;
        } else {
            self.sat = true;
        }
    }

    /// Count one matching event.
    pub(super) fn add(&mut self, feed: &Feed, at: i64, v: Value, now_ms: i64) {
        if let Some(window) = feed.window_ms {
            if at <= now_ms - window {
                return; // already outside the window
            }
            let i = self.win.partition_point(|(t, _)| *t <= at);
            self.win.insert(i, (at, v));
            if self.win.len() > feed.max_events {
                self.win.remove(0);
            }
            return;
        }
        self.n += 1;
        if let Some(x) = v.as_f64() {
            self.sum += x;
            self.min = Some(self.min.map_or(x, |m| m.min(x)));
            self.max = Some(self.max.map_or(x, |m| m.max(x)));
        }
        match feed.kind {
            TraitKind::First if self.first.as_ref().is_none_or(|f| at < f.at) => {
                self.first = Some(Stamped { at, v });
            }
            TraitKind::Last if self.last.as_ref().is_none_or(|l| at >= l.at) => {
                self.last = Some(Stamped { at, v });
            }
            k if k.keeps_values() => self.add_value(feed, v.to_string()),
            _ => {}
        }
    }

    /// Fold another device's state for the same definition into this one.
    fn merge(&mut self, feed: &Feed, other: FeedState) {
        // Both hold events from their own `b` on: a backfill may add only
        // what is older than both (never counting an event twice).
        self.b = match (self.b, other.b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            _ => None,
        };
        if feed.window_ms.is_some() {
            self.win.extend(other.win);
            self.win.sort_by_key(|(t, _)| *t);
            let extra = self.win.len().saturating_sub(feed.max_events);
            self.win.drain(..extra);
            return;
        }
        self.n += other.n;
        self.sum += other.sum;
        self.min = match (self.min, other.min) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.max = match (self.max, other.max) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        if let Some(f) = other.first {
            if self.first.as_ref().is_none_or(|s| f.at < s.at) {
                self.first = Some(f);
            }
        }
        if let Some(l) = other.last {
            if self.last.as_ref().is_none_or(|s| l.at >= s.at) {
                self.last = Some(l);
            }
        }
        self.sat |= other.sat;
        for (text, count) in other.vals {
            for _ in 0..count.min(feed.max_values as u64 + 1) {
                self.add_value(feed, text.clone());
            }
        }
    }

    /// How many matching events count now.
    fn count(&self, feed: &Feed) -> u64 {
        if feed.window_ms.is_some() {
            self.win.len() as u64
        } else {
            self.n
        }
    }

    /// The trait's value now (windowed feeds are pruned before this is read).
    fn value(&self, feed: &Feed) -> Value {
        if feed.window_ms.is_some() {
            let mut lifetime = FeedState::fresh(self.fp);
            let unbounded = Feed {
                window_ms: None,
                ..feed.clone()
            };
            for (at, v) in &self.win {
                lifetime.add(&unbounded, *at, v.clone(), *at);
            }
            return lifetime.value(&unbounded);
        }
        let num = |x: Option<f64>| {
            x.and_then(serde_json::Number::from_f64)
                .map_or(Value::Null, Value::Number)
        };
        match feed.kind {
            TraitKind::Count => Value::from(self.n),
            TraitKind::Sum => num(Some(self.sum)),
            TraitKind::Min => num(self.min),
            TraitKind::Max => num(self.max),
            TraitKind::Avg => num((self.n > 0).then(|| self.sum / self.n as f64)),
            TraitKind::First => self.first.as_ref().map_or(Value::Null, |s| s.v.clone()),
            TraitKind::Last => self.last.as_ref().map_or(Value::Null, |s| s.v.clone()),
            TraitKind::MostFrequent => self
                .vals
                .iter()
                .max_by(|a, b| a.1.cmp(&b.1).then_with(|| b.0.cmp(&a.0)))
                .and_then(|(t, _)| serde_json::from_str(t).ok())
                .unwrap_or(Value::Null),
            TraitKind::UniqueCount => Value::from(self.vals.len()),
            TraitKind::UniqueValues => Value::Array(
                self.vals
                    .iter()
                    .filter_map(|(t, _)| serde_json::from_str(t).ok())
                    .collect(),
            ),
        }
    }
}

/// The facts one audience's expression reads.
struct AudienceFacts<'a> {
    catalog: &'a Catalog,
    state: &'a PersonState,
    values: &'a BTreeMap<String, Value>,
    offset: usize,
}

impl Facts for AudienceFacts<'_> {
    fn computed(&self, name: &str) -> Option<Value> {
        self.values.get(name).cloned()
    }

    fn profile(&self, name: &str) -> Option<Value> {
        self.state.profile.get(name).map(|s| s.v.clone())
    }

    fn did_count(&self, counter: usize) -> u64 {
        let Some(feed) = self.catalog.feeds.get(self.offset + counter) else {
            return 0;
        };
        self.state.feeds.get(&feed.key).map_or(0, |s| s.count(feed))
    }
}

fn covers(consent: Option<&Consent>, purposes: &[consent::Purpose], regime: Regime) -> bool {
    consent::may_forward(consent, purposes, regime)
}

impl PersonState {
    /// Nothing worth keeping: no feed, profile trait or membership.
    pub fn is_empty(&self) -> bool {
        self.feeds.is_empty()
            && self.profile.is_empty()
            && !self.audiences.values().any(|m| m.member)
    }

    /// Feed one event. Returns false for a duplicate or one of Sluice's own
    /// audience events (nothing changed).
    pub fn apply(&mut self, catalog: &Catalog, e: &Event, regime: Regime, now_ms: i64) -> bool {
        if e.kind == EventType::Track
            && matches!(e.event.as_deref(), Some(super::ENTERED | super::EXITED))
        {
            return false;
        }
        let id = super::definition::fnv64(e.message_id.as_bytes());
        if self.seen.contains(&id) {
            return false;
        }
        self.seen.push(id);
        let extra = self.seen.len().saturating_sub(SEEN_IDS);
        self.seen.drain(..extra);
        let consent = Consent::from_context(e.context.as_ref()).ok().flatten();
        let consent = consent.as_ref();
        let at = event_ms(e, now_ms);
        for feed in &catalog.feeds {
            if !covers(consent, &feed.purposes, regime) {
                self.feeds.remove(&feed.key);
                continue;
            }
            if !expr::matches(e, &feed.event, &feed.conditions) {
                continue;
            }
            let Some(v) = feed_value(feed, e) else {
                continue;
            };
            let live_from = || FeedState {
                b: Some(received_ms(e, now_ms)),
                ..FeedState::fresh(feed.fingerprint)
            };
            let state = self.feeds.entry(feed.key.clone()).or_insert_with(live_from);
            if state.fp != feed.fingerprint {
                *state = live_from();
            }
            state.add(feed, at, v, now_ms);
        }
        let traits = e.traits.as_ref().or_else(|| {
            e.context
                .as_ref()
                .and_then(|c| c.get("traits"))
                .and_then(Value::as_object)
        });
        for (name, purposes) in &catalog.profile_traits {
            if !covers(consent, purposes, regime) {
                self.profile.remove(name);
                continue;
            }
            if e.kind != EventType::Identify {
                continue;
            }
            if let Some(v) = traits.and_then(|t| t.get(name)) {
                if self.profile.get(name).is_none_or(|s| at >= s.at) {
                    self.profile
                        .insert(name.clone(), Stamped { at, v: v.clone() });
                }
            }
        }
        for a in &catalog.audiences {
            if covers(consent, &a.purposes, regime) {
                self.withheld.remove(&a.name);
            } else {
                self.withheld.insert(a.name.clone());
            }
        }
        true
    }

    /// Fold the state of another of the person's devices into this one
    /// (after identify linked them). Evaluate afterwards.
    pub fn merge(&mut self, catalog: &Catalog, other: PersonState) {
        let PersonState {
            mut feeds,
            profile,
            audiences,
            withheld,
            seen,
            ..
        } = other;
        for feed in &catalog.feeds {
            let Some(theirs) = feeds.remove(&feed.key) else {
                continue;
            };
            if theirs.fp != feed.fingerprint {
                continue;
            }
            match self.feeds.get_mut(&feed.key) {
                Some(ours) if ours.fp == feed.fingerprint => ours.merge(feed, theirs),
                _ => {
                    self.feeds.insert(feed.key.clone(), theirs);
                }
            }
        }
        for (name, s) in profile {
            if self.profile.get(&name).is_none_or(|o| s.at >= o.at) {
                self.profile.insert(name, s);
            }
        }
        for (name, m) in audiences {
            match self.audiences.get(&name) {
                Some(o) if o.member || !m.member => {}
                _ => {
                    self.audiences.insert(name, m);
                }
            }
        }
        self.withheld.extend(withheld);
        for id in seen {
            if !self.seen.contains(&id) {
                self.seen.push(id);
            }
        }
        let extra = self.seen.len().saturating_sub(SEEN_IDS);
        self.seen.drain(..extra);
    }

    /// Bring everything to `now`: drop what left its window or belongs to a
    /// changed or removed definition, recompute the traits, and decide each
    /// audience. Returns the entries and exits, in audience order.
    pub fn evaluate(&mut self, catalog: &Catalog, now_ms: i64) -> Vec<Change> {
        let current: BTreeMap<&str, &Feed> =
            catalog.feeds.iter().map(|f| (f.key.as_str(), f)).collect();
        self.feeds.retain(|key, s| {
            let Some(feed) = current.get(key.as_str()) else {
                return false;
            };
            if s.fp != feed.fingerprint {
                return false;
            }
            if let Some(window) = feed.window_ms {
                let gone = s.win.partition_point(|(t, _)| *t <= now_ms - window);
                s.win.drain(..gone);
                return !s.win.is_empty();
            }
            true
        });
        self.profile
            .retain(|name, _| catalog.profile_traits.contains_key(name));
        let values = self.values(catalog);
        self.traits.retain(|name, _| values.contains_key(name));
        for (name, v) in &values {
            match self.traits.get_mut(name) {
                Some(seen) if seen.v == *v => {}
                _ => {
                    self.traits.insert(
                        name.clone(),
                        Seen {
                            v: v.clone(),
                            since: now_ms,
                        },
                    );
                }
            }
        }
        let mut changes = Vec::new();
        for (i, a) in catalog.audiences.iter().enumerate() {
            let facts = AudienceFacts {
                catalog,
                state: self,
                values: &values,
                offset: catalog.did_offsets.get(i).copied().unwrap_or(0),
            };
            let member = !self.withheld.contains(&a.name) && a.when.eval(&facts, &mut 0);
            let was = self.audiences.get(&a.name).is_some_and(|m| m.member);
            if member != was {
                let mut read = Vec::new();
                a.when.visit_traits(&mut read);
                changes.push(Change {
                    audience: a.name.clone(),
                    entered: member,
                    at_ms: now_ms,
                    traits: read
                        .into_iter()
                        .filter(|(profile, _)| !profile)
                        .filter_map(|(_, c)| Some((c.name.clone(), values.get(&c.name)?.clone())))
                        .collect(),
                });
                self.audiences.insert(
                    a.name.clone(),
                    Membership {
                        member,
                        since: now_ms,
                    },
                );
            }
        }
        self.audiences
            .retain(|name, _| catalog.audiences.iter().any(|a| a.name == *name));
        self.withheld
            .retain(|name| catalog.audiences.iter().any(|a| a.name == *name));
        if self.is_empty() {
            self.traits.clear();
            self.audiences.clear();
            self.withheld.clear();
        }
        changes
    }

    /// The computed traits' values (traits with no matching event yet are absent).
    fn values(&self, catalog: &Catalog) -> BTreeMap<String, Value> {
        catalog.feeds[..catalog.trait_count]
            .iter()
            .filter_map(|f| Some((f.key.clone(), self.feeds.get(&f.key)?.value(f))))
            .collect()
    }

    /// When the next kept event leaves its window (after [`Self::evaluate`]).
    pub fn next_expiry(&self, catalog: &Catalog) -> Option<i64> {
        catalog
            .feeds
            .iter()
            .filter_map(|f| Some(self.feeds.get(&f.key)?.win.first()?.0 + f.window_ms?))
            .min()
    }

    /// Audiences the person is in and trait values; with `browser`, only the
    /// definitions marked `browser_visible`.
    pub fn view(&self, catalog: &Catalog, browser: bool) -> View {
        View {
            audiences: catalog
                .audiences
                .iter()
                .filter(|a| !browser || a.browser_visible)
                .filter(|a| self.audiences.get(&a.name).is_some_and(|m| m.member))
                .map(|a| a.name.clone())
                .collect(),
            traits: catalog
                .traits
                .iter()
                .filter(|t| !browser || t.browser_visible)
                .filter_map(|t| Some((t.name.clone(), self.traits.get(&t.name)?.v.clone())))
                .collect(),
        }
    }

    /// Every trait and audience with when it last changed (the profile API).
    pub fn detail(&self) -> Detail {
        let at = |ms: i64| Timestamp(ms).to_rfc3339();
        Detail {
            traits: self
                .traits
                .iter()
                .map(|(k, s)| {
                    (
                        k.clone(),
                        TraitView {
                            value: s.v.clone(),
                            changed_at: at(s.since),
                        },
                    )
                })
                .collect(),
            audiences: self
                .audiences
                .iter()
                .map(|(k, m)| AudienceView {
                    name: k.clone(),
                    member: m.member,
                    changed_at: at(m.since),
                })
                .collect(),
        }
    }

    /// The stored size in bytes (what a Durable Object keeps for the person).
    pub fn stored_bytes(&self) -> usize {
        serde_json::to_vec(self).map_or(0, |v| v.len())
    }
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;
