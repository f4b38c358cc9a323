//! Tracking plans: the data dictionary a team agrees on, checked on every event.
//!
//! A plan is a JSON document:
//!
//! ```json
//! {
//!   "name": "shop",
//!   "naming": "object_action",
//!   "property_naming": "snake_case",
//!   "violations": "flag",
//!   "unplanned_events": "block",
//!   "unplanned_properties": "flag",
//!   "events": {
//!     "Order Completed": {
//!       "description": "A purchase went through.",
//!       "properties": {
//!         "order_id": { "type": "string", "required": true, "pattern": "^ord_[0-9]+$" },
//!         "revenue":  { "type": "number", "required": true, "minimum": 0 },
//!         "currency": { "type": "string", "enum": ["USD", "EUR"] }
//!       }
//!     }
//!   },
//!   "traits": { "email": { "type": "string", "pattern": "^[^@]+@[^@]+$" } }
//! }
//! ```
//!
//! Each kind of finding is handled by a mode: `allow` (ignore), `flag`
//! (accept, with the violations attached) or `block` (reject with reasons).
//! `violations` covers type, required, enum, pattern, range and naming
//! findings; `unplanned_events` and `unplanned_properties` cover what the plan
//! does not list. `track` events are checked against `events`, `identify`
//! traits against `traits`.

use crate::event::{Event, EventType, Object};
use crate::validate::describe;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;

/// What to do with a kind of finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Accept silently.
    #[default]
    Allow,
    /// Accept, with the violations attached to the event.
    Flag,
    /// Reject the event with the violations as reasons.
    Block,
}

/// A naming convention for event or property names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Naming {
    /// Segment's "Object Action": two or more Title Case words (`Order Completed`).
    ObjectAction,
    /// `order_completed`.
    SnakeCase,
    /// `orderCompleted`.
    CamelCase,
}

impl Naming {
    /// Does `name` follow the convention?
    pub fn accepts(self, name: &str) -> bool {
        match self {
            Naming::ObjectAction => {
                let words: Vec<&str> = name.split(' ').collect();
                words.len() >= 2
                    && words.iter().all(|w| {
                        let mut chars = w.chars();
                        chars
                            .next()
                            .is_some_and(|c| c.is_uppercase() || c.is_ascii_digit())
                            && chars.all(|c| c.is_alphanumeric())
                    })
            }
            Naming::SnakeCase => {
                !name.is_empty()
                    && name.starts_with(|c: char| c.is_ascii_lowercase())
                    && !name.ends_with('_')
                    && !name.contains("__")
                    && name
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            }
            Naming::CamelCase => {
                name.starts_with(|c: char| c.is_ascii_lowercase())
                    && name.chars().all(|c| c.is_ascii_alphanumeric())
            }
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Naming::ObjectAction => "\"Object Action\" in Title Case (e.g. \"Order Completed\")",
            Naming::SnakeCase => "snake_case",
            Naming::CamelCase => "camelCase",
        }
    }
}

/// A JSON type a property may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PropType {
    String,
    Number,
    Integer,
    Boolean,
    Object,
    Array,
    Null,
}

impl PropType {
    fn matches(self, v: &Value) -> bool {
        match self {
            PropType::String => v.is_string(),
            PropType::Number => v.is_number(),
            PropType::Integer => v.as_f64().is_some_and(|f| f.fract() == 0.0),
            PropType::Boolean => v.is_boolean(),
            PropType::Object => v.is_object(),
            PropType::Array => v.is_array(),
            PropType::Null => v.is_null(),
        }
    }

    fn name(self) -> &'static str {
        match self {
            PropType::String => "a string",
            PropType::Number => "a number",
            PropType::Integer => "an integer",
            PropType::Boolean => "a boolean",
            PropType::Object => "an object",
            PropType::Array => "an array",
            PropType::Null => "null",
        }
    }
}

/// One type or a list of allowed types.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Types {
    One(PropType),
    Any(Vec<PropType>),
}

impl Types {
    fn list(&self) -> &[PropType] {
        match self {
            Types::One(t) => std::slice::from_ref(t),
            Types::Any(ts) => ts,
        }
    }
}

/// The rules for one property or trait.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PropertySpec {
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub types: Option<Types>,
    #[serde(default)]
    pub required: bool,
    #[serde(rename = "enum", default, skip_serializing_if = "Option::is_none")]
    pub allowed: Option<Vec<Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maximum: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip)]
    regex: Option<regex_lite::Regex>,
}

/// One planned event.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default)]
    pub properties: BTreeMap<String, PropertySpec>,
}

/// A tracking plan.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrackingPlan {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub naming: Option<Naming>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub property_naming: Option<Naming>,
    #[serde(default = "flag")]
    pub violations: Mode,
    #[serde(default = "flag")]
    pub unplanned_events: Mode,
    #[serde(default = "flag")]
    pub unplanned_properties: Mode,
    #[serde(default)]
    pub events: BTreeMap<String, EventSpec>,
    #[serde(default)]
    pub traits: BTreeMap<String, PropertySpec>,
}

fn flag() -> Mode {
    Mode::Flag
}

/// Why a plan file cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PlanError {
    /// Not JSON of the documented shape.
    Invalid(String),
    /// A `pattern` is not a valid regular expression.
    BadPattern { property: String, why: String },
}

impl PlanError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            PlanError::Invalid(_) => "plan_invalid",
            PlanError::BadPattern { .. } => "plan_bad_pattern",
        }
    }
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlanError::Invalid(why) => write!(f, "tracking plan is invalid: {why}"),
            PlanError::BadPattern { property, why } => {
                write!(
                    f,
                    "tracking plan: `{property}` has an invalid pattern: {why}"
                )
            }
        }
    }
}

/// One finding of a plan check.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Violation {
    /// The event name is not in the plan.
    UnplannedEvent { event: String },
    /// A property or trait the plan does not list.
    UnplannedProperty { property: String },
    /// A required property or trait is missing.
    MissingProperty { property: String },
    /// A value of the wrong JSON type.
    WrongType {
        property: String,
        expected: Vec<PropType>,
        got: Value,
    },
    /// A value outside the allowed list.
    NotAllowed { property: String, got: Value },
    /// A string not matching the pattern.
    PatternMismatch {
        property: String,
        pattern: String,
        got: Value,
    },
    /// A number outside `minimum` / `maximum`.
    OutOfRange { property: String, got: Value },
    /// A name that breaks the naming convention.
    Naming { name: String, convention: Naming },
}

impl Violation {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Violation::UnplannedEvent { .. } => "unplanned_event",
            Violation::UnplannedProperty { .. } => "unplanned_property",
            Violation::MissingProperty { .. } => "missing_property",
            Violation::WrongType { .. } => "wrong_type",
            Violation::NotAllowed { .. } => "not_allowed",
            Violation::PatternMismatch { .. } => "pattern_mismatch",
            Violation::OutOfRange { .. } => "out_of_range",
            Violation::Naming { .. } => "naming_convention",
        }
    }

    fn mode(&self, plan: &TrackingPlan) -> Mode {
        match self {
            Violation::UnplannedEvent { .. } => plan.unplanned_events,
            Violation::UnplannedProperty { .. } => plan.unplanned_properties,
            _ => plan.violations,
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::UnplannedEvent { event } => {
                write!(f, "event {event:?} is not in the tracking plan")
            }
            Violation::UnplannedProperty { property } => {
                write!(f, "`{property}` is not in the tracking plan")
            }
            Violation::MissingProperty { property } => write!(f, "`{property}` is required"),
            Violation::WrongType {
                property,
                expected,
                got,
            } => {
                let names: Vec<&str> = expected.iter().map(|t| t.name()).collect();
                write!(
                    f,
                    "`{property}` must be {}, got {}",
                    names.join(" or "),
                    describe(got)
                )
            }
            Violation::NotAllowed { property, got } => {
                write!(
                    f,
                    "`{property}` must be one of the planned values, got {}",
                    describe(got)
                )
            }
            Violation::PatternMismatch {
                property,
                pattern,
                got,
            } => {
                write!(
                    f,
                    "`{property}` must match /{pattern}/, got {}",
                    describe(got)
                )
            }
            Violation::OutOfRange { property, got } => {
                write!(
                    f,
                    "`{property}` is out of the planned range, got {}",
                    describe(got)
                )
            }
            Violation::Naming { name, convention } => {
                write!(
                    f,
                    "{name:?} does not follow the naming convention: {}",
                    convention.describe()
                )
            }
        }
    }
}

/// The outcome of checking one event.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// The strictest mode among the findings (`allow` when there are none).
    pub action: Mode,
    /// Findings whose mode is `flag` or `block` (allowed ones are not reported).
    pub violations: Vec<Violation>,
}

impl TrackingPlan {
    /// Read a plan from JSON; unknown fields and invalid patterns are errors.
    pub fn from_json(json: &str) -> Result<TrackingPlan, PlanError> {
        let mut plan: TrackingPlan =
            serde_json::from_str(json).map_err(|e| PlanError::Invalid(e.to_string()))?;
        let compile = |path: String, spec: &mut PropertySpec| -> Result<(), PlanError> {
            if let Some(p) = &spec.pattern {
                let re = regex_lite::Regex::new(p).map_err(|e| PlanError::BadPattern {
                    property: path,
                    why: e.to_string(),
                })?;
                spec.regex = Some(re);
            }
            Ok(())
        };
        for (name, ev) in &mut plan.events {
            for (prop, spec) in &mut ev.properties {
                compile(format!("{name}.{prop}"), spec)?;
            }
        }
        for (name, spec) in &mut plan.traits {
            compile(format!("traits.{name}"), spec)?;
        }
        Ok(plan)
    }

    /// Check an event against the plan.
    pub fn check(&self, event: &Event) -> Verdict {
        let mut found = Vec::new();
        match event.kind {
            EventType::Track => {
                let name = event.event.as_deref().unwrap_or_default();
                if let Some(convention) = self.naming {
                    if !convention.accepts(name) {
                        found.push(Violation::Naming {
                            name: name.to_owned(),
                            convention,
                        });
                    }
                }
                match self.events.get(name) {
                    None => found.push(Violation::UnplannedEvent {
                        event: name.to_owned(),
                    }),
                    Some(spec) => self.check_object(
                        "properties",
                        event.properties.as_ref(),
                        &spec.properties,
                        &mut found,
                    ),
                }
            }
            EventType::Identify if !self.traits.is_empty() => {
                let traits = event.traits.as_ref().or_else(|| {
                    event
                        .context
                        .as_ref()
                        .and_then(|c| c.get("traits"))
                        .and_then(Value::as_object)
                });
                self.check_object("traits", traits, &self.traits, &mut found);
            }
            _ => {}
        }
        let violations: Vec<Violation> = found
            .into_iter()
            .filter(|v| v.mode(self) != Mode::Allow)
            .collect();
        let action = violations
            .iter()
            .map(|v| v.mode(self))
            .max()
            .unwrap_or(Mode::Allow);
        Verdict { action, violations }
    }

    fn check_object(
        &self,
        field: &str,
        object: Option<&Object>,
        specs: &BTreeMap<String, PropertySpec>,
        found: &mut Vec<Violation>,
    ) {
        let empty = Object::new();
        let object = object.unwrap_or(&empty);
        for (key, value) in object {
            let path = format!("{field}.{key}");
            if let Some(convention) = self.property_naming {
                if !convention.accepts(key) {
                    found.push(Violation::Naming {
                        name: key.clone(),
                        convention,
                    });
                }
            }
            match specs.get(key) {
                None => found.push(Violation::UnplannedProperty { property: path }),
                Some(spec) => check_value(path, value, spec, found),
            }
        }
        for (key, spec) in specs {
            if spec.required && object.get(key).is_none_or(Value::is_null) {
                found.push(Violation::MissingProperty {
                    property: format!("{field}.{key}"),
                });
            }
        }
    }
}

fn check_value(property: String, value: &Value, spec: &PropertySpec, found: &mut Vec<Violation>) {
    if let Some(types) = &spec.types {
        if !types.list().iter().any(|t| t.matches(value)) {
            found.push(Violation::WrongType {
                property,
                expected: types.list().to_vec(),
                got: value.clone(),
            });
            return;
        }
    }
    if let Some(allowed) = &spec.allowed {
        if !allowed.contains(value) {
            found.push(Violation::NotAllowed {
                property: property.clone(),
                got: value.clone(),
            });
        }
    }
    if let (Some(re), Some(s)) = (&spec.regex, value.as_str()) {
        if !re.is_match(s) {
            let pattern = spec.pattern.clone().unwrap_or_default();
            found.push(Violation::PatternMismatch {
                property: property.clone(),
                pattern,
                got: value.clone(),
            });
        }
    }
    if let Some(n) = value.as_f64() {
        if spec.minimum.is_some_and(|m| n < m) || spec.maximum.is_some_and(|m| n > m) {
            found.push(Violation::OutOfRange {
                property,
                got: value.clone(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const PLAN: &str = r#"{
        "name": "shop",
        "naming": "object_action",
        "violations": "block",
        "unplanned_events": "flag",
        "unplanned_properties": "allow",
        "events": {
            "Order Completed": { "properties": {
                "order_id": { "type": "string", "required": true, "pattern": "^ord_[0-9]+$" },
                "price": { "type": "number", "minimum": 0 },
                "currency": { "type": "string", "enum": ["USD", "EUR"] },
                "coupon": { "type": ["string", "null"] }
            } }
        },
        "traits": { "email": { "type": "string", "required": true, "pattern": "^[^@]+@[^@]+$" } }
    }"#;

    fn track(name: &str, props: Value) -> Event {
        serde_json::from_value(
            json!({"type":"track","messageId":"m","userId":"u","event":name,"properties":props}),
        )
        .unwrap()
    }

    fn plan() -> TrackingPlan {
        TrackingPlan::from_json(PLAN).unwrap()
    }

    #[test]
    fn a_planned_event_passes() {
        let v = plan().check(&track(
            "Order Completed",
            json!({"order_id":"ord_1","price":12.5,"currency":"EUR","coupon":null,"extra":1}),
        ));
        assert_eq!(
            v,
            Verdict {
                action: Mode::Allow,
                violations: vec![]
            }
        );
    }

    #[test]
    fn violations_are_typed_and_readable() {
        let v = plan().check(&track(
            "Order Completed",
            json!({"price":"12","currency":"GBP","order_id":"x"}),
        ));
        assert_eq!(v.action, Mode::Block);
        let messages: Vec<String> = v.violations.iter().map(ToString::to_string).collect();
        assert!(
            messages.contains(&"`properties.price` must be a number, got string \"12\"".to_owned()),
            "{messages:?}"
        );
        assert!(messages.contains(
            &"`properties.currency` must be one of the planned values, got string \"GBP\""
                .to_owned()
        ));
        assert!(messages.contains(
            &"`properties.order_id` must match /^ord_[0-9]+$/, got string \"x\"".to_owned()
        ));
        let v = plan().check(&track("Order Completed", json!({"price":-1})));
        let codes: Vec<_> = v.violations.iter().map(Violation::code).collect();
        assert_eq!(codes, ["out_of_range", "missing_property"]);
    }

    #[test]
    fn unplanned_events_and_names_follow_their_modes() {
        let v = plan().check(&track("Banner Seen", json!({})));
        assert_eq!(v.action, Mode::Flag);
        assert_eq!(v.violations[0].code(), "unplanned_event");
        let v = plan().check(&track("banner_seen", json!({})));
        assert_eq!(
            v.action,
            Mode::Block,
            "naming is a violation, and violations block"
        );
        assert!(v.violations[0].to_string().contains("Object Action"));
    }

    #[test]
    fn identify_traits_are_checked_including_rudderstack_context_traits() {
        let e: Event = serde_json::from_value(json!({"type":"identify","messageId":"m","userId":"u","context":{"traits":{"email":"nope"}}})).unwrap();
        let v = plan().check(&e);
        assert_eq!(v.violations[0].code(), "pattern_mismatch");
        let e: Event = serde_json::from_value(
            json!({"type":"identify","messageId":"m","userId":"u","traits":{}}),
        )
        .unwrap();
        assert_eq!(plan().check(&e).violations[0].code(), "missing_property");
    }

    #[test]
    fn naming_conventions() {
        assert!(Naming::ObjectAction.accepts("Order Completed"));
        assert!(Naming::ObjectAction.accepts("Product Added To Cart"));
        assert!(!Naming::ObjectAction.accepts("order completed"));
        assert!(!Naming::ObjectAction.accepts("Completed"));
        assert!(Naming::SnakeCase.accepts("order_completed2"));
        assert!(!Naming::SnakeCase.accepts("Order_completed"));
        assert!(!Naming::SnakeCase.accepts("order__completed"));
        assert!(Naming::CamelCase.accepts("orderCompleted"));
        assert!(!Naming::CamelCase.accepts("order_completed"));
    }

    #[test]
    fn bad_plans_fail_loudly() {
        assert_eq!(
            TrackingPlan::from_json(r#"{"name":"x","colour":1}"#)
                .unwrap_err()
                .code(),
            "plan_invalid"
        );
        let e =
            TrackingPlan::from_json(r#"{"name":"x","traits":{"a":{"pattern":"("}}}"#).unwrap_err();
        assert_eq!(e.code(), "plan_bad_pattern");
        assert!(e.to_string().contains("traits.a"));
        assert_eq!(
            TrackingPlan::from_json(r#"{"name":"x","violations":"warn"}"#)
                .unwrap_err()
                .code(),
            "plan_invalid"
        );
    }
}
