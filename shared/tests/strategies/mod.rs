//! Proptest strategies shared by the property tests (`props.rs`, `splice.rs`,
//! `lake_props.rs`).

use proptest::prelude::*;
use serde_json::Value;

/// What a generated JSON value may hold: its strings' and keys' patterns,
/// the floats' range and how deep it nests.
#[derive(Clone, Copy)]
pub struct Shape {
    pub text: &'static str,
    pub key: &'static str,
    pub float: f64,
    pub depth: u32,
    pub size: u32,
}

/// Short strings of any character but newlines, `[a-z_]` keys, four levels
/// (the collector's parsing and splicing tests).
pub const TEXT: Shape = Shape {
    text: ".{0,12}",
    key: "[a-z_]{1,8}",
    float: 1e9,
    depth: 4,
    size: 32,
};

/// Any printable text in strings and keys, three levels (the lake's
/// round trips, whose columns hold whatever an event carried).
#[allow(dead_code)] // each test binary includes this module; not all use every shape
pub const PRINTABLE: Shape = Shape {
    text: "\\PC{0,12}",
    key: "\\PC{1,8}",
    float: 1e12,
    depth: 3,
    size: 24,
};

/// Any JSON value of [`TEXT`]'s shape.
#[allow(dead_code)]
pub fn json_value() -> impl Strategy<Value = Value> {
    json_value_of(TEXT)
}

/// Any JSON value: scalars (strings, integers, finite floats) nested in
/// small arrays and objects, as `shape` says.
pub fn json_value_of(shape: Shape) -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (-shape.float..shape.float).prop_map(Value::from),
        shape.text.prop_map(Value::from),
    ];
    leaf.prop_recursive(shape.depth, shape.size, shape.depth + 2, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map(shape.key, inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}
