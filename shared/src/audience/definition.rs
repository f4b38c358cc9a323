//! Definitions: computed traits and audiences, as a site declares them
//! (`SLUICE_AUDIENCES`, JSON), parsed and validated into a [`Catalog`].
//!
//! ```json
//! { "traits": [
//!     { "name": "lifetime_revenue", "kind": "sum", "property": "revenue",
//!       "event": "Order Completed", "purposes": ["personalization"], "browser_visible": true } ],
//!   "audiences": [
//!     { "name": "hot_shoppers", "purposes": ["personalization"], "browser_visible": true,
//!       "when": { "all": [
//!         { "did": { "event": "Product Viewed", "times": 3, "within_s": 604800 } },
//!         { "did_not": { "event": "Order Completed", "within_s": 604800 } } ] } } ] }
//! ```
//!
//! Every definition declares the consent purposes it needs: only events whose
//! consent covers them feed it. An audience may only read traits whose
//! purposes include all of its own (data consented for less is not used for
//! more). Changing a definition changes its fingerprint, which resets the
//! state kept for it (definitions are versioned by content).

use super::expr::{Condition, Did, Expr, Op};
use crate::consent::Purpose;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// Definitions of each kind at most.
pub const MAX_DEFINITIONS: usize = 64;
/// Expression nodes per audience at most, and nesting depth.
pub const MAX_EXPR_NODES: usize = 64;
pub const MAX_EXPR_DEPTH: usize = 8;
/// Distinct values a `most_frequent` / `unique_*` trait keeps (default, ceiling).
pub const DEFAULT_MAX_VALUES: u32 = 20;
pub const MAX_VALUES: u32 = 100;
/// Events a windowed trait keeps (default, ceiling): its window is exact up to this many.
pub const DEFAULT_MAX_EVENTS: u32 = 100;
pub const MAX_EVENTS: u32 = 1000;
/// `times` in a `did` at most (it keeps that many timestamps).
pub const MAX_TIMES: u32 = 1000;
/// The longest window: 400 days.
pub const MAX_WINDOW_S: u64 = 400 * 86_400;

/// What a computed trait computes over the matching events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TraitKind {
    Count,
    Sum,
    Min,
    Max,
    Avg,
    First,
    Last,
    MostFrequent,
    UniqueCount,
    UniqueValues,
}

impl TraitKind {
    /// Whether it reads a numeric property.
    pub fn is_numeric(self) -> bool {
        matches!(
            self,
            TraitKind::Sum | TraitKind::Min | TraitKind::Max | TraitKind::Avg
        )
    }

    /// Whether it keeps a bounded set of distinct values.
    pub fn keeps_values(self) -> bool {
        matches!(
            self,
            TraitKind::MostFrequent | TraitKind::UniqueCount | TraitKind::UniqueValues
        )
    }
}

/// A computed trait.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TraitDef {
    pub name: String,
    pub kind: TraitKind,
    /// The track event it is computed over.
    pub event: String,
    #[serde(default, rename = "where", skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The property read (every kind but `count`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub property: Option<String>,
    /// Only events of the last `window_s` seconds count; none: ever.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_s: Option<u64>,
    pub purposes: Vec<Purpose>,
    /// Returned to the page in the collector's answer (otherwise server-only).
    #[serde(default)]
    pub browser_visible: bool,
    /// Distinct values kept (`most_frequent`, `unique_*`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_values: Option<u32>,
    /// Events kept for a windowed trait.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_events: Option<u32>,
}

/// An audience.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AudienceDef {
    pub name: String,
    pub when: Expr,
    pub purposes: Vec<Purpose>,
    /// Membership is returned to the page in the collector's answer.
    #[serde(default)]
    pub browser_visible: bool,
    /// The destinations (names in `SLUICE_DESTINATIONS`) its `Audience
    /// Entered` / `Audience Exited` events go to, in place of the source's;
    /// empty: the source's. Not part of the fingerprint: routing elsewhere
    /// keeps the members.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub destinations: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    #[serde(default)]
    traits: Vec<TraitDef>,
    #[serde(default)]
    audiences: Vec<AudienceDef>,
}

/// Something events feed: a computed trait, or an audience's `did` counter.
#[derive(Debug, Clone, PartialEq)]
pub struct Feed {
    /// The state key: the trait's name, or `audience#n` for the n-th `did`.
    pub key: String,
    pub kind: TraitKind,
    pub event: String,
    pub conditions: Vec<Condition>,
    pub property: Option<String>,
    pub window_ms: Option<i64>,
    pub purposes: Vec<Purpose>,
    /// Values kept (`most_frequent`, `unique_*`).
    pub max_values: usize,
    /// Events kept when windowed.
    pub max_events: usize,
    /// Changes when the definition changes (its state is then reset).
    pub fingerprint: u64,
}

/// Validated definitions, ready to feed and evaluate.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Catalog {
    /// Computed traits first (in definition order), then the `did` counters.
    pub feeds: Vec<Feed>,
    /// How many of `feeds` are computed traits.
    pub trait_count: usize,
    pub traits: Vec<TraitDef>,
    pub audiences: Vec<AudienceDef>,
    /// For each audience, the index in `feeds` of its first `did` counter.
    pub did_offsets: Vec<usize>,
    /// Profile traits read by audiences, with the purposes they are kept under
    /// (the union of the reading audiences').
    pub profile_traits: BTreeMap<String, Vec<Purpose>>,
    pub audience_fingerprints: Vec<u64>,
}

/// Why definitions were refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DefinitionError {
    /// Not JSON of the expected shape (unknown field, wrong type, …).
    Invalid(String),
    /// A name that is empty, too long, or has characters outside `[A-Za-z0-9_ .:-]`.
    BadName(String),
    /// Two definitions with one name.
    DuplicateName(String),
    /// More definitions, expression nodes or nesting than allowed.
    TooMany { what: &'static str, max: usize },
    /// The kind reads a property and none is given (or `count` is given one).
    Property { name: String, kind: TraitKind },
    /// A window of zero or longer than [`MAX_WINDOW_S`].
    Window { name: String },
    /// `max_values`, `max_events` or `times` out of range.
    Limit {
        name: String,
        field: &'static str,
        max: u32,
    },
    /// An operator that needs a value without one.
    ValueRequired { name: String },
    /// No purposes declared.
    NoPurposes(String),
    /// An audience reads a trait that does not exist.
    UnknownTrait { audience: String, name: String },
    /// An audience reads a trait whose purposes do not include all of the audience's.
    PurposesNotCovered { audience: String, name: String },
    /// A filter on Sluice's own `Audience Entered` / `Audience Exited`.
    ReservedEvent { name: String },
    /// An audience routes to a destination that is not configured.
    UnknownDestination { audience: String, name: String },
}

impl DefinitionError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            DefinitionError::Invalid(_) => "invalid_definitions",
            DefinitionError::BadName(_) => "invalid_name",
            DefinitionError::DuplicateName(_) => "duplicate_name",
            DefinitionError::TooMany { .. } => "too_many",
            DefinitionError::Property { .. } => "property_mismatch",
            DefinitionError::Window { .. } => "invalid_window",
            DefinitionError::Limit { .. } => "limit_out_of_range",
            DefinitionError::ValueRequired { .. } => "value_required",
            DefinitionError::NoPurposes(_) => "purposes_required",
            DefinitionError::UnknownTrait { .. } => "unknown_trait",
            DefinitionError::PurposesNotCovered { .. } => "purposes_not_covered",
            DefinitionError::ReservedEvent { .. } => "reserved_event",
            DefinitionError::UnknownDestination { .. } => "unknown_destination",
        }
    }
}

impl fmt::Display for DefinitionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DefinitionError::Invalid(why) => write!(f, "audience definitions are invalid: {why}"),
            DefinitionError::BadName(n) => write!(
                f,
                "definition name {n:?} must be 1-64 characters of letters, digits, space, _ . : -"
            ),
            DefinitionError::DuplicateName(n) => write!(f, "two definitions are named {n:?}"),
            DefinitionError::TooMany { what, max } => write!(f, "at most {max} {what}"),
            DefinitionError::Property { name, kind } if *kind == TraitKind::Count => {
                write!(f, "trait {name:?}: count reads no property")
            }
            DefinitionError::Property { name, kind } => {
                write!(f, "trait {name:?}: {kind:?} needs a property")
            }
            DefinitionError::Window { name } => write!(
                f,
                "{name:?}: a window is 1 s to {MAX_WINDOW_S} s ({} days)",
                MAX_WINDOW_S / 86_400
            ),
            DefinitionError::Limit { name, field, max } => {
                write!(f, "{name:?}: {field} must be 1 to {max}")
            }
            DefinitionError::ValueRequired { name } => {
                write!(f, "{name:?}: the operator needs a value")
            }
            DefinitionError::NoPurposes(n) => {
                write!(f, "{n:?} must declare the consent purposes it needs")
            }
            DefinitionError::UnknownTrait { audience, name } => {
                write!(f, "audience {audience:?} reads trait {name:?}, which is not defined")
            }
            DefinitionError::PurposesNotCovered { audience, name } => write!(
                f,
                "audience {audience:?} reads trait {name:?}, whose purposes do not include all of the audience's"
            ),
            DefinitionError::ReservedEvent { name } => write!(
                f,
                "{name:?} filters on {:?} or {:?}, which Sluice emits itself",
                super::ENTERED,
                super::EXITED
            ),
            DefinitionError::UnknownDestination { audience, name } => write!(
                f,
                "audience {audience:?} routes to destination {name:?}, which is not in SLUICE_DESTINATIONS"
            ),
        }
    }
}

impl std::error::Error for DefinitionError {}

fn check_name(name: &str) -> Result<(), DefinitionError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || " _.:-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(DefinitionError::BadName(name.to_owned()))
    }
}

fn check_event(owner: &str, event: &str) -> Result<(), DefinitionError> {
    if event == super::ENTERED || event == super::EXITED {
        return Err(DefinitionError::ReservedEvent {
            name: owner.to_owned(),
        });
    }
    Ok(())
}

fn check_conditions(owner: &str, conditions: &[Condition]) -> Result<(), DefinitionError> {
    if conditions
        .iter()
        .any(|c| c.op.needs_value() && c.value.is_none())
    {
        return Err(DefinitionError::ValueRequired {
            name: owner.to_owned(),
        });
    }
    Ok(())
}

fn window_ms(owner: &str, window_s: Option<u64>) -> Result<Option<i64>, DefinitionError> {
    match window_s {
        None => Ok(None),
        Some(s) if s == 0 || s > MAX_WINDOW_S => Err(DefinitionError::Window {
            name: owner.to_owned(),
        }),
        Some(s) => Ok(Some(s as i64 * 1000)),
    }
}

fn limit(
    owner: &str,
    field: &'static str,
    v: Option<u32>,
    default: u32,
    max: u32,
) -> Result<usize, DefinitionError> {
    match v.unwrap_or(default) {
        n if n == 0 || n > max => Err(DefinitionError::Limit {
            name: owner.to_owned(),
            field,
            max,
        }),
        n => Ok(n as usize),
    }
}

/// FNV-1a, 64 bits: a stable fingerprint (not a security boundary).
pub fn fnv64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn fingerprint<T: Serialize>(v: &T) -> u64 {
    fnv64(serde_json::to_string(v).unwrap_or_default().as_bytes())
}

impl Catalog {
    /// Parse and validate definitions (the `SLUICE_AUDIENCES` JSON). Empty
    /// or absent text is an empty catalogue.
    pub fn parse(json: Option<&str>) -> Result<Catalog, DefinitionError> {
        let text = json.map(str::trim).unwrap_or_default();
        if text.is_empty() {
            return Ok(Catalog::default());
        }
        let raw: Raw =
            serde_json::from_str(text).map_err(|e| DefinitionError::Invalid(e.to_string()))?;
        Catalog::build(raw.traits, raw.audiences)
    }

    /// Validate definitions given as values.
    pub fn build(
        traits: Vec<TraitDef>,
        audiences: Vec<AudienceDef>,
    ) -> Result<Catalog, DefinitionError> {
        for (what, n) in [("traits", traits.len()), ("audiences", audiences.len())] {
            if n > MAX_DEFINITIONS {
                return Err(DefinitionError::TooMany {
                    what,
                    max: MAX_DEFINITIONS,
                });
            }
        }
        let mut names = BTreeSet::new();
        let mut feeds = Vec::new();
        for t in &traits {
            check_name(&t.name)?;
            if !names.insert(t.name.clone()) {
                return Err(DefinitionError::DuplicateName(t.name.clone()));
            }
            if t.purposes.is_empty() {
                return Err(DefinitionError::NoPurposes(t.name.clone()));
            }
            check_event(&t.name, &t.event)?;
            check_conditions(&t.name, &t.conditions)?;
            if (t.kind == TraitKind::Count) != t.property.is_none() {
                return Err(DefinitionError::Property {
                    name: t.name.clone(),
                    kind: t.kind,
                });
            }
            let window_ms = window_ms(&t.name, t.window_s)?;
            let max_values = limit(
                &t.name,
                "max_values",
                t.max_values,
                DEFAULT_MAX_VALUES,
                MAX_VALUES,
            )?;
            let max_events = limit(
                &t.name,
                "max_events",
                t.max_events,
                DEFAULT_MAX_EVENTS,
                MAX_EVENTS,
            )?;
            feeds.push(Feed {
                key: t.name.clone(),
                kind: t.kind,
                event: t.event.clone(),
                conditions: t.conditions.clone(),
                property: t.property.clone(),
                window_ms,
                purposes: t.purposes.clone(),
                max_values,
                max_events,
                fingerprint: fingerprint(t),
            });
        }
        let trait_count = feeds.len();
        let mut did_offsets = Vec::new();
        let mut profile_traits: BTreeMap<String, Vec<Purpose>> = BTreeMap::new();
        let mut audience_fingerprints = Vec::new();
        let mut audience_names = BTreeSet::new();
        for a in &audiences {
            check_name(&a.name)?;
            if !audience_names.insert(a.name.clone()) {
                return Err(DefinitionError::DuplicateName(a.name.clone()));
            }
            if a.purposes.is_empty() {
                return Err(DefinitionError::NoPurposes(a.name.clone()));
            }
            let (depth, nodes) = a.when.size();
            if nodes > MAX_EXPR_NODES {
                return Err(DefinitionError::TooMany {
                    what: "expression nodes",
                    max: MAX_EXPR_NODES,
                });
            }
            if depth > MAX_EXPR_DEPTH {
                return Err(DefinitionError::TooMany {
                    what: "levels of nesting",
                    max: MAX_EXPR_DEPTH,
                });
            }
            let mut conditions = Vec::new();
            a.when.visit_traits(&mut conditions);
            for (is_profile, c) in conditions {
                if c.op.needs_value() && c.value.is_none() {
                    return Err(DefinitionError::ValueRequired {
                        name: a.name.clone(),
                    });
                }
                if is_profile {
                    let kept = profile_traits.entry(c.name.clone()).or_default();
                    for p in &a.purposes {
                        if !kept.contains(p) {
                            kept.push(p.clone());
                        }
                    }
                    continue;
                }
                let t = traits.iter().find(|t| t.name == c.name).ok_or_else(|| {
                    DefinitionError::UnknownTrait {
                        audience: a.name.clone(),
                        name: c.name.clone(),
                    }
                })?;
                if !a.purposes.iter().all(|p| t.purposes.contains(p)) {
                    return Err(DefinitionError::PurposesNotCovered {
                        audience: a.name.clone(),
                        name: c.name.clone(),
                    });
                }
            }
            did_offsets.push(feeds.len());
            let mut dids: Vec<&Did> = Vec::new();
            a.when.visit_did(&mut dids);
            let fp = fingerprint(&AudienceDef {
                destinations: Vec::new(),
                ..a.clone()
            });
            for (i, d) in dids.into_iter().enumerate() {
                check_event(&a.name, &d.event)?;
                check_conditions(&a.name, &d.conditions)?;
                let times = limit(&a.name, "times", Some(d.times), 1, MAX_TIMES)?;
                feeds.push(Feed {
                    key: [a.name.as_str(), "#", &i.to_string()].concat(),
                    kind: TraitKind::Count,
                    event: d.event.clone(),
                    conditions: d.conditions.clone(),
                    property: None,
                    window_ms: window_ms(&a.name, d.within_s)?,
                    purposes: a.purposes.clone(),
                    max_values: 1,
                    max_events: times,
                    fingerprint: fp ^ (i as u64),
                });
            }
            audience_fingerprints.push(fp);
        }
        Ok(Catalog {
            feeds,
            trait_count,
            traits,
            audiences,
            did_offsets,
            profile_traits,
            audience_fingerprints,
        })
    }

    /// Check that every audience's `destinations` are configured (`known`
    /// answers for a destination name); done once the destinations are read.
    pub fn check_destinations(&self, known: impl Fn(&str) -> bool) -> Result<(), DefinitionError> {
        for a in &self.audiences {
            if let Some(name) = a.destinations.iter().find(|d| !known(d)) {
                return Err(DefinitionError::UnknownDestination {
                    audience: a.name.clone(),
                    name: name.clone(),
                });
            }
        }
        Ok(())
    }

    /// The destinations an audience's own events go to, if it names any
    /// (else they go to their source's).
    pub fn routes_of(&self, audience: &str) -> Option<&[String]> {
        self.audiences
            .iter()
            .find(|a| a.name == audience)
            .map(|a| a.destinations.as_slice())
            .filter(|d| !d.is_empty())
    }

    pub fn is_empty(&self) -> bool {
        self.feeds.is_empty() && self.audiences.is_empty()
    }

    /// Every purpose any definition needs (an event that covers none of the
    /// definitions' purposes feeds nothing).
    pub fn purpose_sets(&self) -> Vec<&[Purpose]> {
        let mut out: Vec<&[Purpose]> = self.feeds.iter().map(|f| f.purposes.as_slice()).collect();
        out.extend(self.profile_traits.values().map(Vec::as_slice));
        out
    }
}

/// Whether the operator reads a value (for callers building conditions).
pub fn op_needs_value(op: Op) -> bool {
    op.needs_value()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: serde_json::Value) -> Result<Catalog, DefinitionError> {
        Catalog::parse(Some(&v.to_string()))
    }

    fn example() -> serde_json::Value {
        json!({
            "traits": [
                {"name": "lifetime_revenue", "kind": "sum", "property": "revenue", "event": "Order Completed", "purposes": ["personalization"], "browser_visible": true},
                {"name": "views_7d", "kind": "count", "event": "Product Viewed", "window_s": 604800, "purposes": ["personalization", "analytics"]}
            ],
            "audiences": [
                {"name": "hot_shoppers", "purposes": ["personalization"], "browser_visible": true, "when": {"all": [
                    {"did": {"event": "Product Viewed", "times": 3, "within_s": 604800}},
                    {"did_not": {"event": "Order Completed", "within_s": 604800}}
                ]}},
                {"name": "big_spenders", "purposes": ["personalization"], "when": {"any": [
                    {"trait": {"name": "lifetime_revenue", "op": "gte", "value": 500}},
                    {"profile": {"name": "plan", "op": "eq", "value": "vip"}}
                ]}}
            ]
        })
    }

    #[test]
    fn the_example_compiles_into_feeds_and_counters() {
        let c = parse(example()).unwrap();
        let keys: Vec<&str> = c.feeds.iter().map(|f| f.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "lifetime_revenue",
                "views_7d",
                "hot_shoppers#0",
                "hot_shoppers#1"
            ]
        );
        assert_eq!(c.trait_count, 2);
        assert_eq!(c.did_offsets, [2, 4]);
        assert_eq!(c.feeds[2].max_events, 3, "a did keeps `times` timestamps");
        assert_eq!(c.feeds[3].window_ms, Some(604_800_000));
        assert_eq!(c.profile_traits["plan"], vec![Purpose::Personalization]);
        assert_eq!(Catalog::parse(None).unwrap(), Catalog::default());
        assert_eq!(Catalog::parse(Some("  ")).unwrap(), Catalog::default());
    }

    #[test]
    fn a_changed_definition_has_a_new_fingerprint() {
        let a = parse(example()).unwrap();
        let mut changed = example();
        changed["traits"][0]["property"] = json!("total");
        let b = parse(changed).unwrap();
        assert_ne!(a.feeds[0].fingerprint, b.feeds[0].fingerprint);
        assert_eq!(a.feeds[1].fingerprint, b.feeds[1].fingerprint);
    }

    #[test]
    fn an_audience_routes_only_to_configured_destinations_and_routing_keeps_its_state() {
        let mut routed = example();
        routed["audiences"][0]["destinations"] = json!(["braze", "hook"]);
        let c = parse(routed.clone()).unwrap();
        let known = |d: &str| ["braze", "hook"].contains(&d);
        assert_eq!(c.check_destinations(known), Ok(()));
        assert_eq!(
            c.routes_of("hot_shoppers"),
            Some(&["braze".to_owned(), "hook".to_owned()][..])
        );
        assert_eq!(c.routes_of("big_spenders"), None, "the source's");
        assert_eq!(c.routes_of("nope"), None);
        let e = c.check_destinations(|d| d == "braze").unwrap_err();
        assert_eq!(e.code(), "unknown_destination");
        assert_eq!(
            e.to_string(),
            r#"audience "hot_shoppers" routes to destination "hook", which is not in SLUICE_DESTINATIONS"#
        );
        let plain = parse(example()).unwrap();
        assert_eq!(
            plain.audience_fingerprints, c.audience_fingerprints,
            "routing is not part of the definition's version"
        );
        assert_eq!(plain.feeds, c.feeds);
        routed["audiences"][0]["destinations"] = json!("braze");
        assert_eq!(parse(routed).unwrap_err().code(), "invalid_definitions");
    }

    fn deep() -> serde_json::Value {
        let mut when = json!({"did": {"event": "E"}});
        for _ in 0..8 {
            when = json!({ "not": when });
        }
        json!({"audiences": [{"name": "x", "purposes": ["analytics"], "when": when}]})
    }

    #[test]
    fn every_mistake_has_its_own_code() {
        let cases: Vec<(serde_json::Value, &str)> = vec![
            (json!({"traits": [], "extra": 1}), "invalid_definitions"),
            (
                json!({"traits": [{"name": "", "kind": "count", "event": "E", "purposes": ["analytics"]}]}),
                "invalid_name",
            ),
            (
                json!({"traits": [{"name": "a#b", "kind": "count", "event": "E", "purposes": ["analytics"]}]}),
                "invalid_name",
            ),
            (
                json!({"traits": [{"name": "a", "kind": "count", "event": "E", "purposes": ["analytics"]}, {"name": "a", "kind": "count", "event": "F", "purposes": ["analytics"]}]}),
                "duplicate_name",
            ),
            (
                json!({"traits": [{"name": "a", "kind": "sum", "event": "E", "purposes": ["analytics"]}]}),
                "property_mismatch",
            ),
            (
                json!({"traits": [{"name": "a", "kind": "count", "property": "p", "event": "E", "purposes": ["analytics"]}]}),
                "property_mismatch",
            ),
            (
                json!({"traits": [{"name": "a", "kind": "count", "event": "E", "window_s": 0, "purposes": ["analytics"]}]}),
                "invalid_window",
            ),
            (
                json!({"traits": [{"name": "a", "kind": "unique_values", "property": "p", "max_values": 101, "event": "E", "purposes": ["analytics"]}]}),
                "limit_out_of_range",
            ),
            (
                json!({"traits": [{"name": "a", "kind": "count", "event": "E", "where": [{"property": "p", "op": "eq"}], "purposes": ["analytics"]}]}),
                "value_required",
            ),
            (
                json!({"traits": [{"name": "a", "kind": "count", "event": "E", "purposes": []}]}),
                "purposes_required",
            ),
            (
                json!({"traits": [{"name": "a", "kind": "count", "event": "Audience Entered", "purposes": ["analytics"]}]}),
                "reserved_event",
            ),
            (
                json!({"audiences": [{"name": "x", "purposes": ["analytics"], "when": {"trait": {"name": "nope", "op": "exists"}}}]}),
                "unknown_trait",
            ),
            (
                json!({"traits": [{"name": "a", "kind": "count", "event": "E", "purposes": ["analytics"]}], "audiences": [{"name": "x", "purposes": ["marketing"], "when": {"trait": {"name": "a", "op": "gt", "value": 1}}}]}),
                "purposes_not_covered",
            ),
            (
                json!({"audiences": [{"name": "x", "purposes": ["analytics"], "when": {"did": {"event": "E", "times": 0}}}]}),
                "limit_out_of_range",
            ),
            (deep(), "too_many"),
        ];
        for (v, code) in cases {
            let e = parse(v.clone()).expect_err(&v.to_string());
            assert_eq!(e.code(), code, "{v}: {e}");
            assert!(!e.to_string().is_empty());
        }
    }
}
