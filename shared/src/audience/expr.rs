//! Event filters and audience expressions.
//!
//! A filter is an event name and property conditions, all of which must hold
//! (`{"event": "Product Viewed", "where": [{"property": "category", "op": "eq", "value": "shoes"}]}`).
//! An expression combines conditions on computed traits, profile traits and
//! "did / did not do X (n times) within a window" with `all`, `any`, `not`.

use crate::event::{Event, EventType};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    Eq,
    Ne,
    Gt,
    Gte,
    Lt,
    Lte,
    /// The value is present (not null); takes no `value`.
    Exists,
    /// Equal to one of `value` (an array).
    In,
    /// A string containing `value`, or an array holding it.
    Contains,
}

impl Op {
    /// Whether the comparison needs a `value`.
    pub fn needs_value(self) -> bool {
        self != Op::Exists
    }

    /// Does `actual` (absent = `None`) satisfy `op value`?
    pub fn holds(self, actual: Option<&Value>, value: Option<&Value>) -> bool {
        let actual = match actual {
            None | Some(Value::Null) => return false,
            Some(a) => a,
        };
        let Some(value) = value else {
            return self == Op::Exists;
        };
        match self {
            Op::Exists => true,
            Op::Eq => loose_eq(actual, value),
            Op::Ne => !loose_eq(actual, value),
            Op::Gt | Op::Gte | Op::Lt | Op::Lte => match (number(actual), number(value)) {
                (Some(a), Some(b)) => match self {
                    Op::Gt => a > b,
                    Op::Gte => a >= b,
                    Op::Lt => a < b,
                    _ => a <= b,
                },
                _ => false,
            },
            Op::In => value
                .as_array()
                .is_some_and(|vs| vs.iter().any(|v| loose_eq(actual, v))),
            Op::Contains => match (actual, value) {
                (Value::String(a), Value::String(b)) => a.contains(b.as_str()),
                (Value::Array(items), v) => items.iter().any(|i| loose_eq(i, v)),
                _ => false,
            },
        }
    }
}

/// Numbers compare by value (`3` equals `3.0`); everything else exactly.
fn loose_eq(a: &Value, b: &Value) -> bool {
    match (number(a), number(b)) {
        (Some(x), Some(y)) if a.is_number() && b.is_number() => x == y,
        _ => a == b,
    }
}

/// A JSON number as `f64`.
pub fn number(v: &Value) -> Option<f64> {
    v.as_f64()
}

/// One property condition of a filter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    /// A property of `properties`; dots reach into objects (`product.category`).
    pub property: String,
    pub op: Op,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
}

/// The value at a dotted path of an event's `properties`.
pub fn property<'e>(event: &'e Event, path: &str) -> Option<&'e Value> {
    let mut parts = path.split('.');
    let first = parts.next()?;
    let mut v = event.properties.as_ref()?.get(first)?;
    for p in parts {
        v = v.as_object()?.get(p)?;
    }
    Some(v)
}

/// Does this `track` event have the name and satisfy every condition?
pub fn matches(event: &Event, name: &str, conditions: &[Condition]) -> bool {
    event.kind == EventType::Track
        && event.event.as_deref() == Some(name)
        && conditions
            .iter()
            .all(|c| c.op.holds(property(event, &c.property), c.value.as_ref()))
}

/// "Did X": at least `times` matching events, within the last `within_s`
/// seconds (or ever).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Did {
    pub event: String,
    #[serde(default, rename = "where", skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    #[serde(default = "one")]
    pub times: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub within_s: Option<u64>,
}

fn one() -> u32 {
    1
}

/// A condition on a trait's value (computed or profile).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TraitCondition {
    pub name: String,
    pub op: Op,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
}

/// An audience's membership rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Expr {
    All(Vec<Expr>),
    Any(Vec<Expr>),
    Not(Box<Expr>),
    /// A computed trait of this catalogue.
    Trait(TraitCondition),
    /// A trait from the person's `identify` calls.
    Profile(TraitCondition),
    Did(Did),
    DidNot(Did),
}

/// What an expression reads, answered by the person's state.
pub trait Facts {
    /// The computed trait's current value.
    fn computed(&self, name: &str) -> Option<Value>;
    /// The profile trait's latest value.
    fn profile(&self, name: &str) -> Option<Value>;
    /// How many matching events the `did` counter at this index holds (capped at `times`).
    fn did_count(&self, counter: usize) -> u64;
}

impl Expr {
    /// Evaluate; `counters` gives the index of each `did` / `did_not` node,
    /// in the order [`Expr::visit_did`] meets them, from `next`.
    pub fn eval(&self, facts: &dyn Facts, next: &mut usize) -> bool {
        match self {
            // Every branch is evaluated (no short circuit), so the `did`
            // numbering does not depend on the values.
            Expr::All(xs) => xs
                .iter()
                .map(|x| x.eval(facts, next))
                .collect::<Vec<_>>()
                .into_iter()
                .all(|b| b),
            Expr::Any(xs) => xs
                .iter()
                .map(|x| x.eval(facts, next))
                .collect::<Vec<_>>()
                .into_iter()
                .any(|b| b),
            Expr::Not(x) => !x.eval(facts, next),
            Expr::Trait(c) => {
                c.op.holds(facts.computed(&c.name).as_ref(), c.value.as_ref())
            }
            Expr::Profile(c) => {
                c.op.holds(facts.profile(&c.name).as_ref(), c.value.as_ref())
            }
            Expr::Did(d) | Expr::DidNot(d) => {
                let i = *next;
                *next += 1;
                let did = facts.did_count(i) >= u64::from(d.times);
                did == matches!(self, Expr::Did(_))
            }
        }
    }

    /// Every `did` / `did_not` node, depth first (the order `eval` numbers them).
    pub fn visit_did<'a>(&'a self, out: &mut Vec<&'a Did>) {
        match self {
            Expr::All(xs) | Expr::Any(xs) => xs.iter().for_each(|x| x.visit_did(out)),
            Expr::Not(x) => x.visit_did(out),
            Expr::Did(d) | Expr::DidNot(d) => out.push(d),
            Expr::Trait(_) | Expr::Profile(_) => {}
        }
    }

    /// Every trait condition: `(is_profile, condition)`.
    pub fn visit_traits<'a>(&'a self, out: &mut Vec<(bool, &'a TraitCondition)>) {
        match self {
            Expr::All(xs) | Expr::Any(xs) => xs.iter().for_each(|x| x.visit_traits(out)),
            Expr::Not(x) => x.visit_traits(out),
            Expr::Trait(c) => out.push((false, c)),
            Expr::Profile(c) => out.push((true, c)),
            Expr::Did(_) | Expr::DidNot(_) => {}
        }
    }

    /// Nesting depth and node count.
    pub fn size(&self) -> (usize, usize) {
        match self {
            Expr::All(xs) | Expr::Any(xs) => xs.iter().fold((1, 1), |(d, n), x| {
                let (xd, xn) = x.size();
                (d.max(xd + 1), n + xn)
            }),
            Expr::Not(x) => {
                let (d, n) = x.size();
                (d + 1, n + 1)
            }
            _ => (1, 1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn track(name: &str, props: Value) -> Event {
        let mut e = Event::new(EventType::Track, "m");
        e.event = Some(name.into());
        e.properties = props.as_object().cloned();
        e
    }

    #[test]
    fn a_filter_needs_the_name_and_every_condition() {
        let e = track(
            "Product Viewed",
            json!({"category": "shoes", "price": 40, "product": {"brand": "acme"}}),
        );
        let c = |p: &str, op, v: Value| Condition {
            property: p.into(),
            op,
            value: Some(v),
        };
        assert!(matches(&e, "Product Viewed", &[]));
        assert!(!matches(&e, "Order Completed", &[]));
        assert!(matches(
            &e,
            "Product Viewed",
            &[
                c("category", Op::Eq, json!("shoes")),
                c("price", Op::Gte, json!(40.0))
            ]
        ));
        assert!(!matches(
            &e,
            "Product Viewed",
            &[c("price", Op::Gt, json!(40))]
        ));
        assert!(matches(
            &e,
            "Product Viewed",
            &[c("product.brand", Op::In, json!(["acme", "x"]))]
        ));
        assert!(
            !matches(&e, "Product Viewed", &[c("missing", Op::Ne, json!(1))]),
            "a missing property satisfies nothing"
        );
        let exists = Condition {
            property: "category".into(),
            op: Op::Exists,
            value: None,
        };
        assert!(matches(&e, "Product Viewed", &[exists]));
        let mut page = Event::new(EventType::Page, "p");
        page.event = Some("Product Viewed".into());
        assert!(
            !matches(&page, "Product Viewed", &[]),
            "filters match track calls only"
        );
    }

    #[test]
    fn comparisons_do_not_coerce_text_to_numbers() {
        assert!(!Op::Gt.holds(Some(&json!("500")), Some(&json!(10))));
        assert!(Op::Eq.holds(Some(&json!(3)), Some(&json!(3.0))));
        assert!(!Op::Eq.holds(Some(&json!("3")), Some(&json!(3))));
        assert!(Op::Contains.holds(Some(&json!("red shoes")), Some(&json!("shoe"))));
        assert!(Op::Contains.holds(Some(&json!(["a", "b"])), Some(&json!("b"))));
    }

    struct F;
    impl Facts for F {
        fn computed(&self, name: &str) -> Option<Value> {
            (name == "revenue").then(|| json!(600))
        }
        fn profile(&self, name: &str) -> Option<Value> {
            (name == "plan").then(|| json!("pro"))
        }
        fn did_count(&self, counter: usize) -> u64 {
            [3, 0][counter]
        }
    }

    #[test]
    fn did_nodes_are_numbered_depth_first_and_every_branch_is_evaluated() {
        let x: Expr = serde_json::from_value(json!({"any": [
            {"trait": {"name": "revenue", "op": "lt", "value": 500}},
            {"all": [{"did": {"event": "V", "times": 3}}, {"did_not": {"event": "O"}}]}
        ]}))
        .unwrap();
        let mut dids = Vec::new();
        x.visit_did(&mut dids);
        assert_eq!(
            dids.iter().map(|d| d.event.as_str()).collect::<Vec<_>>(),
            ["V", "O"]
        );
        let mut next = 0;
        assert!(x.eval(&F, &mut next));
        assert_eq!(next, 2, "no short circuit: numbering stays stable");
        let y: Expr = serde_json::from_value(json!({"all": [
            {"profile": {"name": "plan", "op": "eq", "value": "pro"}},
            {"not": {"trait": {"name": "revenue", "op": "gte", "value": 500}}}
        ]}))
        .unwrap();
        assert!(!y.eval(&F, &mut 0));
        assert_eq!(y.size(), (3, 4));
    }
}
