//! The visitor's consent, per purpose, and the decisions made from it.
//!
//! Consent travels with every event as `context.consent`:
//!
//! ```json
//! { "categories": { "analytics": "granted", "marketing": "denied" },
//!   "source": "explicit", "policyVersion": "2024-06", "updatedAt": "…", "gpc": true }
//! ```
//!
//! Segment's consent format (`categoryPreferences` with booleans) is read too.
//! Decisions deny by default: a purpose that is `unknown` counts as denied
//! under an opt-in regime (GDPR); under an opt-out regime (US state laws) it
//! counts as granted — except that Global Privacy Control always denies
//! sale/sharing and targeted advertising.

pub mod gcm;
pub mod gpp;
pub mod tcf;

use alloc::borrow::ToOwned;
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// Why something is collected or shared.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Purpose {
    /// Strictly necessary for the service; never needs consent.
    Necessary,
    /// Measurement and product analytics.
    Analytics,
    /// Remembering choices, storage on the device for features.
    Functional,
    /// Personalised content.
    Personalization,
    /// Marketing and advertising, including targeted advertising.
    Marketing,
    /// Sale or sharing of personal data with third parties (CCPA/CPRA).
    SaleSharing,
    /// A site-defined purpose.
    Custom(String),
}

impl Purpose {
    /// The built-in purposes.
    pub const STANDARD: [Purpose; 6] = [
        Purpose::Necessary,
        Purpose::Analytics,
        Purpose::Functional,
        Purpose::Personalization,
        Purpose::Marketing,
        Purpose::SaleSharing,
    ];

    /// The wire name (`analytics`, `sale_sharing`, or the custom name).
    pub fn as_str(&self) -> &str {
        match self {
            Purpose::Necessary => "necessary",
            Purpose::Analytics => "analytics",
            Purpose::Functional => "functional",
            Purpose::Personalization => "personalization",
            Purpose::Marketing => "marketing",
            Purpose::SaleSharing => "sale_sharing",
            Purpose::Custom(s) => s,
        }
    }

    /// From a wire name. Common aliases from CMPs and Segment's categories are
    /// accepted, case-insensitively (`Advertising` → marketing, `statistics` →
    /// analytics, …); anything else is a custom purpose.
    pub fn parse(name: &str) -> Purpose {
        let name = name.trim_ascii();
        // Compared byte by byte as if lower-cased with `-` and ` ` as `_`:
        // no lower-cased copy (smaller in the SDK's Wasm than building one).
        let is = |alias: &str| {
            name.len() == alias.len()
                && name.bytes().zip(alias.bytes()).all(|(c, a)| {
                    a == match c {
                        b'-' | b' ' => b'_',
                        c => c.to_ascii_lowercase(),
                    }
                })
        };
        const ALIASES: [(&str, u8); 24] = [
            ("necessary", 0),
            ("strictly_necessary", 0),
            ("essential", 0),
            ("security", 0),
            ("analytics", 1),
            ("statistics", 1),
            ("measurement", 1),
            ("performance", 1),
            ("functional", 2),
            ("functionality", 2),
            ("preferences", 2),
            ("storage", 2),
            ("personalization", 3),
            ("personalisation", 3),
            ("marketing", 4),
            ("advertising", 4),
            ("ads", 4),
            ("targeting", 4),
            ("targeted_advertising", 4),
            ("sale_sharing", 5),
            ("sale", 5),
            ("sharing", 5),
            ("sale_of_data", 5),
            ("do_not_sell", 5),
        ];
        let mut found = 6;
        for (alias, p) in ALIASES {
            if is(alias) {
                found = p;
                break;
            }
        }
        match found {
            0 => Purpose::Necessary,
            1 => Purpose::Analytics,
            2 => Purpose::Functional,
            3 => Purpose::Personalization,
            4 => Purpose::Marketing,
            5 => Purpose::SaleSharing,
            _ => Purpose::Custom(name.to_owned()),
        }
    }
}

impl fmt::Display for Purpose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Purpose {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Purpose {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(|s| Purpose::parse(&s))
    }
}

/// The visitor's answer for one purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Granted,
    Denied,
    /// Not asked, or not answered yet.
    #[default]
    Unknown,
}

/// Where the consent came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// The visitor's choice in the site's banner or through the API.
    Explicit,
    /// An IAB TCF v2 CMP (`__tcfapi`) or TC string.
    Tcf,
    /// An IAB GPP CMP (`__gpp`) or GPP string.
    Gpp,
    /// Google Consent Mode v2 signals.
    Gcm,
    /// Only the browser's Global Privacy Control signal.
    Gpc,
    /// Nothing known: the policy's defaults.
    #[default]
    Default,
}

/// The visitor's consent as it travels in `context.consent`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Consent {
    /// Purpose → state. Purposes not listed are `unknown`.
    #[serde(
        default,
        alias = "categoryPreferences",
        deserialize_with = "categories"
    )]
    pub categories: Categories,
    #[serde(default)]
    pub source: Source,
    /// The version of the site's consent policy the choice was made under.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_version: Option<String>,
    /// When the choice was made (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
    /// The browser sent Global Privacy Control.
    #[serde(default, skip_serializing_if = "core::ops::Not::not")]
    pub gpc: bool,
    /// The IAB TCF v2 TC string, when a CMP supplied one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tc_string: Option<String>,
    /// The IAB GPP string, when a CMP supplied one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpp_string: Option<String>,
}

/// Purpose → state, in purpose order. A short sorted list rather than a map:
/// a visitor has a handful of purposes, and the SDK pays for every byte of code.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Categories(Vec<(Purpose, State)>);

impl Categories {
    /// The recorded state of `purpose`, if any.
    pub fn get(&self, purpose: &Purpose) -> Option<&State> {
        self.0.iter().find(|(p, _)| p == purpose).map(|(_, s)| s)
    }

    /// Record `state` for `purpose`, replacing what was there.
    pub fn insert(&mut self, purpose: Purpose, state: State) {
        match self.0.binary_search_by(|(p, _)| p.cmp(&purpose)) {
            Ok(i) => self.0[i].1 = state,
            Err(i) => self.0.insert(i, (purpose, state)),
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&Purpose, &State)> {
        self.0.iter().map(|(p, s)| (p, s))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }
}

impl FromIterator<(Purpose, State)> for Categories {
    fn from_iter<I: IntoIterator<Item = (Purpose, State)>>(iter: I) -> Self {
        let mut c = Categories::default();
        for (p, s) in iter {
            c.insert(p, s);
        }
        c
    }
}

impl IntoIterator for Categories {
    type Item = (Purpose, State);
    type IntoIter = alloc::vec::IntoIter<(Purpose, State)>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl Serialize for Categories {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.iter())
    }
}

/// Accept `"granted" | "denied" | "unknown"` and Segment's booleans.
fn categories<'de, D: Deserializer<'de>>(d: D) -> Result<Categories, D::Error> {
    let raw = BTreeMap::<String, Sent>::deserialize(d)?;
    raw.into_iter()
        .map(|(k, v)| {
            let state = match v {
                Sent::State(state) => state,
                Sent::Text(other) => {
                    return Err(serde::de::Error::custom(format_args!(
                        "consent for `{k}` must be granted, denied, unknown or a boolean, got {other:?}"
                    )))
                }
                Sent::Other(other) => {
                    return Err(serde::de::Error::custom(format_args!(
                        "consent for `{k}` must be granted, denied, unknown or a boolean, got {other}"
                    )))
                }
            };
            Ok((Purpose::parse(&k), state))
        })
        .collect()
}

/// One category's value as sent: a state (read without copying it), or what
/// it was instead (for the message).
enum Sent {
    State(State),
    Text(String),
    Other(Value),
}

impl<'de> Deserialize<'de> for Sent {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Sent;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any valid JSON value")
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Sent, E> {
                Ok(Sent::State(if v { State::Granted } else { State::Denied }))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Sent, E> {
                Ok(match v {
                    "granted" => Sent::State(State::Granted),
                    "denied" => Sent::State(State::Denied),
                    "unknown" => Sent::State(State::Unknown),
                    other => Sent::Text(other.to_owned()),
                })
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<Sent, E> {
                Ok(Sent::State(State::Unknown))
            }
            fn visit_none<E: serde::de::Error>(self) -> Result<Sent, E> {
                Ok(Sent::State(State::Unknown))
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Sent, D::Error> {
                d.deserialize_any(V)
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Sent, E> {
                Ok(Sent::Other(Value::from(v)))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Sent, E> {
                Ok(Sent::Other(Value::from(v)))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Sent, E> {
                Ok(Sent::Other(Value::from(v)))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<Sent, A::Error> {
                Value::deserialize(SeqAccessDeserializer::new(seq)).map(Sent::Other)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Sent, A::Error> {
                Value::deserialize(MapAccessDeserializer::new(map)).map(Sent::Other)
            }
        }
        d.deserialize_any(V)
    }
}

impl Consent {
    /// The recorded state of a purpose (`unknown` if not recorded).
    pub fn state(&self, purpose: &Purpose) -> State {
        self.categories.get(purpose).copied().unwrap_or_default()
    }

    /// Record `state` for `purpose`.
    pub fn set(&mut self, purpose: Purpose, state: State) -> &mut Self {
        self.categories.insert(purpose, state);
        self
    }

    /// Read `context.consent` from an event context; `None` if absent.
    #[cfg(feature = "std")]
    pub fn from_context(
        context: Option<&crate::event::Object>,
    ) -> Result<Option<Consent>, ConsentError> {
        Consent::from_value(context.and_then(|c| c.get("consent")))
    }

    /// Read a `context.consent` value; `None` if absent or `null`.
    #[cfg(feature = "std")]
    pub fn from_value(value: Option<&Value>) -> Result<Option<Consent>, ConsentError> {
        match value {
            None | Some(Value::Null) => Ok(None),
            // Read in place: no copy of the tree (this runs once an event).
            Some(v) => Consent::deserialize(v)
                .map(Some)
                .map_err(|e| ConsentError::Invalid(e.to_string())),
        }
    }
}

/// Why consent information could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConsentError {
    /// `context.consent` is not of the documented shape.
    Invalid(String),
    /// A TC string could not be decoded.
    Tcf(String),
    /// A GPP string could not be decoded.
    Gpp(String),
}

impl ConsentError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            ConsentError::Invalid(_) => "invalid_consent",
            ConsentError::Tcf(_) => "invalid_tc_string",
            ConsentError::Gpp(_) => "invalid_gpp_string",
        }
    }
}

impl fmt::Display for ConsentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConsentError::Invalid(why) => write!(f, "`context.consent` is invalid: {why}"),
            ConsentError::Tcf(why) => write!(f, "the TC string is invalid: {why}"),
            ConsentError::Gpp(why) => write!(f, "the GPP string is invalid: {why}"),
        }
    }
}

/// What `unknown` means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Regime {
    /// Consent must be given (GDPR, ePrivacy): unknown = denied.
    #[default]
    OptIn,
    /// Processing is allowed until the visitor objects (US state laws): unknown = granted.
    OptOut,
}

/// What to do with an event collected without the consent the policy requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WithoutConsent {
    /// Do not store or forward it.
    #[default]
    Drop,
    /// Keep it without identifiers (no userId, anonymousId, IP, traits).
    Anonymize,
}

/// A source's consent policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    #[serde(default)]
    pub regime: Regime,
    /// Purposes an event needs to be stored at all (default: analytics).
    #[serde(default = "default_collect")]
    pub collect_requires: Vec<Purpose>,
    #[serde(default)]
    pub without_consent: WithoutConsent,
}

fn default_collect() -> Vec<Purpose> {
    alloc::vec![Purpose::Analytics]
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            regime: Regime::OptIn,
            collect_requires: default_collect(),
            without_consent: WithoutConsent::Drop,
        }
    }
}

/// Whether an event may be collected, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Collect {
    /// Store it as it is.
    Full,
    /// Store it without identifiers.
    Anonymous,
    /// Do not store it.
    Drop,
}

impl Collect {
    /// Stable machine-readable code.
    pub fn code(self) -> &'static str {
        match self {
            Collect::Full => "full",
            Collect::Anonymous => "anonymous",
            Collect::Drop => "drop",
        }
    }
}

/// Purposes that Global Privacy Control opts out of.
pub fn gpc_denies(purpose: &Purpose) -> bool {
    matches!(purpose, Purpose::SaleSharing | Purpose::Marketing)
}

/// Is `purpose` allowed under `consent` and `regime`? Necessary always is;
/// GPC denies sale/sharing and marketing whatever else was recorded.
pub fn allows(consent: Option<&Consent>, purpose: &Purpose, regime: Regime) -> bool {
    if *purpose == Purpose::Necessary {
        return true;
    }
    let consent_default = Consent::default();
    let consent = consent.unwrap_or(&consent_default);
    if consent.gpc && gpc_denies(purpose) {
        return false;
    }
    match consent.state(purpose) {
        State::Granted => true,
        State::Denied => false,
        State::Unknown => regime == Regime::OptOut,
    }
}

/// May this event be collected, and with identifiers?
pub fn collect(consent: Option<&Consent>, policy: &Policy) -> Collect {
    if policy
        .collect_requires
        .iter()
        .all(|p| allows(consent, p, policy.regime))
    {
        Collect::Full
    } else {
        match policy.without_consent {
            WithoutConsent::Drop => Collect::Drop,
            WithoutConsent::Anonymize => Collect::Anonymous,
        }
    }
}

/// [`collect`] for the events of one request, under its source's policy:
/// the last `context.consent` decided is remembered with its decision (a
/// batch's events mostly carry the same one, and reading it is most of the
/// cost). An invalid `context.consent` counts as none, as
/// [`Consent::from_context`]'s callers take it.
#[cfg(feature = "std")]
#[derive(Debug)]
pub struct Collector<'p> {
    policy: &'p Policy,
    last: core::cell::RefCell<Option<(Option<Value>, Collect)>>,
    /// The last `context.consent` decided as sent (JSON text), for [`Collector::collect_sent`].
    last_sent: core::cell::RefCell<Option<(String, Collect)>>,
}

#[cfg(feature = "std")]
impl<'p> Collector<'p> {
    pub fn new(policy: &'p Policy) -> Collector<'p> {
        Collector {
            policy,
            last: core::cell::RefCell::new(None),
            last_sent: core::cell::RefCell::new(None),
        }
    }

    /// The decision for an event whose `context.consent` is `sent`, the
    /// client's JSON text (the fast lane keeps it as sent): as
    /// [`Collector::collect`] decides the value it reads as.
    pub fn collect_sent(&self, sent: &str) -> Collect {
        let mut last = self.last_sent.borrow_mut();
        if let Some((_, decision)) = last.as_ref().filter(|(l, _)| l == sent) {
            return *decision;
        }
        let value: Option<Value> = serde_json::from_str(sent).ok();
        let consent = Consent::from_value(value.as_ref()).ok().flatten();
        let decision = collect(consent.as_ref(), self.policy);
        *last = Some((sent.to_owned(), decision));
        decision
    }

    /// The decision for an event with this `context`.
    pub fn collect(&self, context: Option<&crate::event::Object>) -> Collect {
        let sent = context.and_then(|c| c.get("consent"));
        let mut last = self.last.borrow_mut();
        if let Some((_, decision)) = last.as_ref().filter(|(l, _)| l.as_ref() == sent) {
            return *decision;
        }
        let consent = Consent::from_context(context).ok().flatten();
        let decision = collect(consent.as_ref(), self.policy);
        *last = Some((sent.cloned(), decision));
        decision
    }
}

/// May this event go to a destination that needs all of `purposes`?
pub fn may_forward(consent: Option<&Consent>, purposes: &[Purpose], regime: Regime) -> bool {
    purposes.iter().all(|p| allows(consent, p, regime))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn consent(v: Value) -> Consent {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn purpose_names_and_aliases_are_read_case_insensitively() {
        assert_eq!(Purpose::parse("analytics"), Purpose::Analytics);
        assert_eq!(Purpose::parse(" Statistics\n"), Purpose::Analytics);
        assert_eq!(Purpose::parse("Strictly-Necessary"), Purpose::Necessary);
        assert_eq!(Purpose::parse("strictly necessary"), Purpose::Necessary);
        assert_eq!(Purpose::parse("Targeted_Advertising"), Purpose::Marketing);
        assert_eq!(Purpose::parse("DO-NOT-SELL"), Purpose::SaleSharing);
        assert_eq!(
            Purpose::parse(" Crème-Brûlée "),
            Purpose::Custom("Crème-Brûlée".into()),
            "a custom purpose keeps its name, trimmed"
        );
        assert_eq!(
            Purpose::parse("ANALYTİCS"),
            Purpose::Custom("ANALYTİCS".into())
        );
    }

    #[test]
    fn unknown_is_denied_under_opt_in_and_granted_under_opt_out() {
        let c = Consent::default();
        assert!(!allows(Some(&c), &Purpose::Analytics, Regime::OptIn));
        assert!(allows(Some(&c), &Purpose::Analytics, Regime::OptOut));
        assert!(!allows(None, &Purpose::Marketing, Regime::OptIn));
        assert!(
            allows(None, &Purpose::Necessary, Regime::OptIn),
            "necessary never needs consent"
        );
    }

    #[test]
    fn gpc_opts_out_of_sale_sharing_and_marketing_whatever_was_recorded() {
        let c = consent(
            json!({"categories":{"marketing":"granted","sale_sharing":"granted","analytics":"granted"},"gpc":true}),
        );
        assert!(!allows(Some(&c), &Purpose::SaleSharing, Regime::OptOut));
        assert!(!allows(Some(&c), &Purpose::Marketing, Regime::OptIn));
        assert!(allows(Some(&c), &Purpose::Analytics, Regime::OptIn));
    }

    #[test]
    fn collection_follows_the_policy() {
        let denied = consent(json!({"categories":{"analytics":"denied"},"source":"explicit"}));
        let granted = consent(json!({"categories":{"analytics":"granted"}}));
        let drop = Policy::default();
        let anon = Policy {
            without_consent: WithoutConsent::Anonymize,
            ..Policy::default()
        };
        assert_eq!(collect(Some(&granted), &drop), Collect::Full);
        assert_eq!(collect(Some(&denied), &drop), Collect::Drop);
        assert_eq!(collect(Some(&denied), &anon), Collect::Anonymous);
        assert_eq!(
            collect(None, &drop),
            Collect::Drop,
            "no consent at all is denied under opt-in"
        );
        let us = Policy {
            regime: Regime::OptOut,
            ..Policy::default()
        };
        assert_eq!(collect(None, &us), Collect::Full);
        assert_eq!(
            collect(Some(&denied), &us),
            Collect::Drop,
            "an explicit no is a no under opt-out too"
        );
    }

    #[test]
    fn forwarding_needs_every_purpose_of_the_destination() {
        let c = consent(json!({"categories":{"analytics":"granted","marketing":"denied"}}));
        assert!(may_forward(Some(&c), &[Purpose::Analytics], Regime::OptIn));
        assert!(!may_forward(
            Some(&c),
            &[Purpose::Analytics, Purpose::Marketing],
            Regime::OptIn
        ));
        assert!(may_forward(Some(&c), &[], Regime::OptIn));
    }

    #[test]
    fn reads_segment_category_preferences_and_aliases() {
        let c = consent(
            json!({"categoryPreferences":{"Advertising":true,"Analytics":false,"Newsletter":true}}),
        );
        assert_eq!(c.state(&Purpose::Marketing), State::Granted);
        assert_eq!(c.state(&Purpose::Analytics), State::Denied);
        assert_eq!(
            c.state(&Purpose::Custom("Newsletter".into())),
            State::Granted
        );
        assert_eq!(c.source, Source::Default);
    }

    #[test]
    #[cfg(feature = "std")]
    fn round_trips_through_context() {
        let mut c = Consent {
            source: Source::Tcf,
            policy_version: Some("v3".into()),
            gpc: true,
            ..Consent::default()
        };
        c.set(Purpose::Analytics, State::Granted)
            .set(Purpose::Custom("chat".into()), State::Denied);
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(
            v,
            json!({"categories":{"analytics":"granted","chat":"denied"},"source":"tcf","policyVersion":"v3","gpc":true})
        );
        let mut ctx = crate::event::Object::new();
        ctx.insert("consent".into(), v);
        assert_eq!(Consent::from_context(Some(&ctx)).unwrap(), Some(c));
        ctx.insert(
            "consent".into(),
            json!({"categories":{"analytics":"maybe"}}),
        );
        let err = Consent::from_context(Some(&ctx)).unwrap_err();
        assert_eq!(err.code(), "invalid_consent");
        assert!(err.to_string().contains("maybe"), "{err}");
    }

    /// One request's collector decides each event as deciding it alone does,
    /// through repeats, changes, an invalid consent and none at all.
    #[test]
    fn a_requests_collector_decides_each_event_as_deciding_it_alone_does() {
        let policy = Policy {
            without_consent: WithoutConsent::Anonymize,
            ..Policy::default()
        };
        let granted = json!({"categories": {"analytics": "granted"}});
        let denied = json!({"categories": {"analytics": "denied"}});
        let contexts = [
            Some(json!({"consent": granted})),
            Some(json!({"consent": granted, "ip": "1.2.3.4"})),
            Some(json!({"consent": denied})),
            Some(json!({"consent": granted})),
            Some(json!({"consent": "not an object"})),
            Some(json!({"consent": null})),
            Some(json!({})),
            None,
            Some(json!({"consent": {"categories": {"analytics": "granted"}, "gpc": true}})),
            Some(json!({"consent": granted})),
        ];
        let collector = Collector::new(&policy);
        let mut seen = Vec::new();
        for context in &contexts {
            let object = context.as_ref().and_then(Value::as_object);
            let alone = collect(
                Consent::from_context(object).ok().flatten().as_ref(),
                &policy,
            );
            assert_eq!(collector.collect(object), alone, "{context:?}");
            seen.push(alone);
        }
        assert_eq!(
            seen.iter().filter(|d| **d == Collect::Full).count(),
            5,
            "{seen:?}"
        );
    }
}
