//! Per-event validation against the Segment Spec and Sluice's limits.
//!
//! [`validate`] turns an [`Event`] into a [`ValidEvent`] or explains, with
//! stable codes, everything that is wrong with it. Problems that do not make
//! the event unusable (an absurd date) are warnings carried by the valid event.

use crate::event::{kind_of, Event, EventType, Object};
use crate::skew::ClientTimes;
use crate::time::{Timestamp, DAY_MS};
use serde_json::Value;
use std::fmt;

/// Limits applied to every event. The defaults are the Segment Spec's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest event, as sent (bytes of its JSON).
    pub max_event_bytes: usize,
    /// Largest request body.
    pub max_batch_bytes: usize,
    /// Most events in one batch.
    pub max_batch_events: usize,
    /// Longest `userId`, `anonymousId`, `groupId`, `previousId`.
    pub max_id_len: usize,
    /// Longest `event`, `name`, `category`.
    pub max_name_len: usize,
    /// Longest string anywhere in `properties`, `traits` or `context`.
    pub max_string_len: usize,
    /// Deepest nesting of objects and arrays inside `properties`, `traits`, `context`.
    pub max_depth: usize,
    /// Most keys in one `properties` or `traits` object (nested ones counted too).
    pub max_properties: usize,
    /// Longest `messageId`.
    pub max_message_id_len: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_event_bytes: 32 * 1024,
            max_batch_bytes: 500 * 1024,
            max_batch_events: 2_500,
            max_id_len: 255,
            max_name_len: 255,
            max_string_len: 16 * 1024,
            max_depth: 16,
            max_properties: 512,
            max_message_id_len: 128,
        }
    }
}

/// Earliest plausible event time: anything before 2000-01-01 is a broken clock.
const EARLIEST_PLAUSIBLE: Timestamp = Timestamp(946_684_800_000);
/// How far past the server's clock a client's clock may plausibly run.
const FUTURE_TOLERANCE_MS: i64 = DAY_MS;

/// Everything that can be wrong with one event.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ValidationError {
    /// The event is not a JSON object, or a field has the wrong JSON type.
    Malformed(String),
    /// `type` is missing or not one of the six calls.
    UnknownType(String),
    /// Neither `userId` nor `anonymousId` is set.
    MissingIdentity,
    /// A field this call requires is missing or empty (`event` for track, …).
    MissingField(&'static str),
    /// The event's JSON is over the size limit.
    EventTooLarge { bytes: usize, limit: usize },
    /// A string is longer than allowed.
    StringTooLong {
        field: String,
        len: usize,
        limit: usize,
    },
    /// Objects or arrays nested deeper than allowed.
    TooDeep { field: &'static str, limit: usize },
    /// Too many keys in `properties` or `traits`.
    TooManyProperties {
        field: &'static str,
        count: usize,
        limit: usize,
    },
    /// A timestamp is not RFC 3339.
    InvalidTimestamp { field: &'static str, value: String },
    /// A timestamp parses but cannot be right (before 2000, or far in the future). A warning.
    AbsurdTimestamp { field: &'static str, value: String },
    /// `messageId` is too long or has characters outside `[A-Za-z0-9._:~+/=@-]`.
    InvalidMessageId(String),
    /// The event's bytes are not UTF-8 (at this offset into the event).
    InvalidUtf8 { at: usize },
}

impl ValidationError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            ValidationError::Malformed(_) => "malformed_event",
            ValidationError::UnknownType(_) => "unknown_type",
            ValidationError::MissingIdentity => "missing_identity",
            ValidationError::MissingField(_) => "missing_field",
            ValidationError::EventTooLarge { .. } => "event_too_large",
            ValidationError::StringTooLong { .. } => "string_too_long",
            ValidationError::TooDeep { .. } => "too_deep",
            ValidationError::TooManyProperties { .. } => "too_many_properties",
            ValidationError::InvalidTimestamp { .. } => "invalid_timestamp",
            ValidationError::AbsurdTimestamp { .. } => "absurd_timestamp",
            ValidationError::InvalidMessageId(_) => "invalid_message_id",
            ValidationError::InvalidUtf8 { .. } => "invalid_utf8",
        }
    }

    /// Warnings are attached to an accepted event; everything else rejects it.
    pub fn is_warning(&self) -> bool {
        matches!(self, ValidationError::AbsurdTimestamp { .. })
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ValidationError::Malformed(why) => write!(f, "not a valid Segment Spec event: {why}"),
            ValidationError::UnknownType(t) => write!(
                f,
                "`type` must be one of track, page, screen, identify, group, alias; got {t}"
            ),
            ValidationError::MissingIdentity => {
                f.write_str("`userId` or `anonymousId` is required")
            }
            ValidationError::MissingField(field) => {
                write!(f, "`{field}` is required for this call")
            }
            ValidationError::EventTooLarge { bytes, limit } => {
                write!(f, "event is {bytes} bytes; the limit is {limit}")
            }
            ValidationError::StringTooLong { field, len, limit } => {
                write!(f, "`{field}` is {len} characters; the limit is {limit}")
            }
            ValidationError::TooDeep { field, limit } => {
                write!(f, "`{field}` is nested deeper than {limit} levels")
            }
            ValidationError::TooManyProperties {
                field,
                count,
                limit,
            } => {
                write!(f, "`{field}` has {count} keys; the limit is {limit}")
            }
            ValidationError::InvalidTimestamp { field, value } => {
                write!(f, "`{field}` is not an RFC 3339 timestamp: {value:?}")
            }
            ValidationError::AbsurdTimestamp { field, value } => {
                write!(
                    f,
                    "`{field}` is implausible (before 2000 or in the future): {value}"
                )
            }
            ValidationError::InvalidMessageId(why) => write!(f, "`messageId` {why}"),
            ValidationError::InvalidUtf8 { at } => {
                write!(f, "the event is not valid UTF-8 (byte {at} of the event)")
            }
        }
    }
}

/// An event that passed validation. Only these are accepted, stored or sent.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidEvent {
    event: Event,
    warnings: Vec<ValidationError>,
    /// Its times as parsed here, for the clock-skew correction.
    times: ClientTimes,
}

impl ValidEvent {
    pub fn event(&self) -> &Event {
        &self.event
    }

    /// Mutable access for enrichment. Enrichment adds context; it does not
    /// remove what validation required, nor change the times ([`Self::times`]).
    pub fn event_mut(&mut self) -> &mut Event {
        &mut self.event
    }

    pub fn into_event(self) -> Event {
        self.event
    }

    /// Non-fatal findings (e.g. an absurd timestamp).
    pub fn warnings(&self) -> &[ValidationError] {
        &self.warnings
    }

    /// `timestamp`, `originalTimestamp` and `sentAt` as parsed by validation
    /// (as [`ClientTimes::parse`] reads them; absurd ones included).
    pub fn times(&self) -> ClientTimes {
        self.times
    }
}

/// Check one event. `raw_bytes` is the size of the event as sent; `now` the server's clock.
pub fn validate(
    event: Event,
    raw_bytes: usize,
    limits: &Limits,
    now: Timestamp,
) -> Result<ValidEvent, Vec<ValidationError>> {
    let mut problems = Vec::new();
    if raw_bytes > limits.max_event_bytes {
        problems.push(ValidationError::EventTooLarge {
            bytes: raw_bytes,
            limit: limits.max_event_bytes,
        });
    }
    check_message_id(&event.message_id, limits, &mut problems);
    check_identity_and_required(&event, &mut problems);
    for (field, value) in [
        ("userId", &event.user_id),
        ("anonymousId", &event.anonymous_id),
        ("groupId", &event.group_id),
        ("previousId", &event.previous_id),
    ] {
        check_len(field, value.as_deref(), limits.max_id_len, &mut problems);
    }
    for (field, value) in [
        ("event", &event.event),
        ("name", &event.name),
        ("category", &event.category),
    ] {
        check_len(field, value.as_deref(), limits.max_name_len, &mut problems);
    }
    for (field, object) in [
        ("properties", &event.properties),
        ("traits", &event.traits),
        ("context", &event.context),
        ("integrations", &event.integrations),
    ] {
        if let Some(object) = object {
            check_object(field, object, limits, &mut problems);
        }
    }
    let mut time =
        |field, value: &Option<String>| check_time(field, value.as_deref(), now, &mut problems);
    let times = ClientTimes {
        timestamp: time("timestamp", &event.timestamp),
        original_timestamp: time("originalTimestamp", &event.original_timestamp),
        sent_at: time("sentAt", &event.sent_at),
    };
    let (warnings, errors): (Vec<_>, Vec<_>) = problems.into_iter().partition(|p| p.is_warning());
    if errors.is_empty() {
        Ok(ValidEvent {
            event,
            warnings,
            times,
        })
    } else {
        Err(errors)
    }
}

fn check_message_id(id: &str, limits: &Limits, problems: &mut Vec<ValidationError>) {
    if id.is_empty() {
        problems.push(ValidationError::InvalidMessageId("is empty".into()));
    } else if id.len() > limits.max_message_id_len {
        problems.push(ValidationError::InvalidMessageId(format!(
            "is {} characters; the limit is {}",
            id.len(),
            limits.max_message_id_len
        )));
    } else if let Some(c) = id.chars().find(|c| !is_message_id_char(*c)) {
        problems.push(ValidationError::InvalidMessageId(format!(
            "contains {c:?}; allowed are letters, digits and . _ : ~ + / = @ -"
        )));
    }
}

/// The characters a `messageId` may contain.
pub fn is_message_id_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '~' | '+' | '/' | '=' | '@' | '-')
}

fn present(v: &Option<String>) -> bool {
    v.as_deref().is_some_and(|s| !s.trim().is_empty())
}

fn check_identity_and_required(e: &Event, problems: &mut Vec<ValidationError>) {
    if !present(&e.user_id) && !present(&e.anonymous_id) {
        problems.push(ValidationError::MissingIdentity);
    }
    let required: &[(&'static str, &Option<String>)] = match e.kind {
        EventType::Track => &[("event", &e.event)],
        EventType::Group => &[("groupId", &e.group_id)],
        EventType::Alias => &[("previousId", &e.previous_id)],
        EventType::Page | EventType::Screen | EventType::Identify => &[],
    };
    for (field, value) in required {
        if !present(value) {
            problems.push(ValidationError::MissingField(field));
        }
    }
    if e.kind == EventType::Alias && !present(&e.user_id) {
        problems.push(ValidationError::MissingField("userId"));
    }
}

fn check_len(field: &str, value: Option<&str>, limit: usize, problems: &mut Vec<ValidationError>) {
    if let Some(v) = value {
        let len = v.chars().count();
        if len > limit {
            problems.push(ValidationError::StringTooLong {
                field: field.to_owned(),
                len,
                limit,
            });
        }
    }
}

fn check_object(
    field: &'static str,
    object: &Object,
    limits: &Limits,
    problems: &mut Vec<ValidationError>,
) {
    let mut keys = object.len();
    let mut too_deep = false;
    // Iterative walk (arbitrary input must not overflow the stack). Paths are
    // only spelled out for a problem: each node records its parent and its
    // key or index, and the walk allocates no strings.
    enum Seg<'a> {
        Key(&'a str),
        Index(usize),
    }
    let mut nodes: Vec<(usize, Seg<'_>)> = Vec::new();
    let mut stack: Vec<(usize, &Value, usize)> = Vec::new();
    for (k, v) in object {
        nodes.push((usize::MAX, Seg::Key(k)));
        stack.push((nodes.len() - 1, v, 1));
    }
    let path = |nodes: &[(usize, Seg<'_>)], mut at: usize| {
        let mut segs = Vec::new();
        while at != usize::MAX {
            segs.push(at);
            at = nodes[at].0;
        }
        let mut out = String::from(field);
        for i in segs.into_iter().rev() {
            match &nodes[i].1 {
                Seg::Key(k) => {
                    out.push('.');
                    out.push_str(k);
                }
                Seg::Index(n) => {
                    out.push('[');
                    out.push_str(&n.to_string());
                    out.push(']');
                }
            }
        }
        out
    };
    while let Some((node, value, depth)) = stack.pop() {
        match value {
            Value::String(s) if s.len() > limits.max_string_len => {
                check_len(
                    &path(&nodes, node),
                    Some(s),
                    limits.max_string_len,
                    problems,
                );
            }
            Value::Object(m) if depth >= limits.max_depth && !m.is_empty() => too_deep = true,
            Value::Array(a) if depth >= limits.max_depth && !a.is_empty() => too_deep = true,
            Value::Object(m) => {
                keys += m.len();
                for (k, v) in m {
                    nodes.push((node, Seg::Key(k)));
                    stack.push((nodes.len() - 1, v, depth + 1));
                }
            }
            Value::Array(a) => {
                for (i, v) in a.iter().enumerate() {
                    nodes.push((node, Seg::Index(i)));
                    stack.push((nodes.len() - 1, v, depth + 1));
                }
            }
            Value::String(_) | Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }
    if too_deep {
        problems.push(ValidationError::TooDeep {
            field,
            limit: limits.max_depth,
        });
    }
    // `context` and `integrations` are free-form; only user data is counted.
    if matches!(field, "properties" | "traits") && keys > limits.max_properties {
        problems.push(ValidationError::TooManyProperties {
            field,
            count: keys,
            limit: limits.max_properties,
        });
    }
}

/// Check one time; the time, if it parses (an absurd one too: a warning).
fn check_time(
    field: &'static str,
    value: Option<&str>,
    now: Timestamp,
    problems: &mut Vec<ValidationError>,
) -> Option<Timestamp> {
    let value = value?;
    match Timestamp::parse(value) {
        Err(_) => {
            problems.push(ValidationError::InvalidTimestamp {
                field,
                value: value.to_owned(),
            });
            None
        }
        Ok(t) => {
            if t < EARLIEST_PLAUSIBLE || t > now.plus_millis(FUTURE_TOLERANCE_MS) {
                problems.push(ValidationError::AbsurdTimestamp {
                    field,
                    value: value.to_owned(),
                });
            }
            Some(t)
        }
    }
}

/// A short description of a JSON value for messages: `string "12"`, `number 3`, `object`.
pub fn describe(v: &Value) -> String {
    match v {
        Value::String(s) if s.chars().count() <= 40 => format!("string {s:?}"),
        Value::String(_) => "a long string".into(),
        Value::Number(n) => format!("number {n}"),
        Value::Bool(b) => format!("boolean {b}"),
        other => kind_of(other).to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: Timestamp = Timestamp(1_700_000_000_000);

    fn ev(v: Value) -> Event {
        serde_json::from_value(v).unwrap()
    }

    fn codes(v: Value) -> Vec<&'static str> {
        let e = ev(v);
        let size = serde_json::to_vec(&e).unwrap().len();
        match validate(e, size, &Limits::default(), NOW) {
            Ok(valid) => valid.warnings().iter().map(ValidationError::code).collect(),
            Err(errs) => errs.iter().map(ValidationError::code).collect(),
        }
    }

    #[test]
    fn a_complete_track_is_valid() {
        assert!(codes(json!({"type":"track","messageId":"m-1","anonymousId":"a","event":"Order Completed","timestamp":"2023-11-14T22:13:20Z"})).is_empty());
    }

    #[test]
    fn user_id_or_anonymous_id_is_required() {
        assert_eq!(
            codes(json!({"type":"page","messageId":"m"})),
            ["missing_identity"]
        );
        assert_eq!(
            codes(json!({"type":"page","messageId":"m","anonymousId":"  "})),
            ["missing_identity"]
        );
        assert!(codes(json!({"type":"page","messageId":"m","userId":"u"})).is_empty());
    }

    #[test]
    fn each_call_has_its_required_fields() {
        assert_eq!(
            codes(json!({"type":"track","messageId":"m","userId":"u"})),
            ["missing_field"]
        );
        assert_eq!(
            codes(json!({"type":"group","messageId":"m","userId":"u"})),
            ["missing_field"]
        );
        assert_eq!(
            codes(json!({"type":"alias","messageId":"m","userId":"u"})),
            ["missing_field"]
        );
        assert_eq!(
            codes(json!({"type":"alias","messageId":"m","anonymousId":"a","previousId":"p"})),
            ["missing_field"]
        );
        assert!(
            codes(json!({"type":"alias","messageId":"m","userId":"u","previousId":"p"})).is_empty()
        );
        assert!(
            codes(json!({"type":"group","messageId":"m","userId":"u","groupId":"g"})).is_empty()
        );
        assert!(codes(json!({"type":"identify","messageId":"m","userId":"u"})).is_empty());
        assert!(codes(json!({"type":"screen","messageId":"m","userId":"u"})).is_empty());
    }

    #[test]
    fn the_message_id_has_a_length_and_charset() {
        assert_eq!(
            codes(json!({"type":"page","messageId":"","userId":"u"})),
            ["invalid_message_id"]
        );
        assert_eq!(
            codes(json!({"type":"page","messageId":"has space","userId":"u"})),
            ["invalid_message_id"]
        );
        assert_eq!(
            codes(json!({"type":"page","messageId":"x".repeat(129),"userId":"u"})),
            ["invalid_message_id"]
        );
        assert!(codes(json!({"type":"page","messageId":"ajs-next-1700000000000-5f2b8e1c-5c3e-4b8a","userId":"u"})).is_empty());
    }

    #[test]
    fn oversized_events_are_rejected() {
        let e = ev(json!({"type":"page","messageId":"m","userId":"u"}));
        let errs = validate(e, 40_000, &Limits::default(), NOW).unwrap_err();
        assert_eq!(
            errs[0],
            ValidationError::EventTooLarge {
                bytes: 40_000,
                limit: 32_768
            }
        );
        assert_eq!(
            errs[0].to_string(),
            "event is 40000 bytes; the limit is 32768"
        );
    }

    #[test]
    fn string_lengths_depth_and_property_counts_are_limited() {
        let long = "x".repeat(256);
        assert_eq!(
            codes(json!({"type":"track","messageId":"m","userId":long,"event":"E"})),
            ["string_too_long"]
        );
        assert_eq!(
            codes(
                json!({"type":"track","messageId":"m","userId":"u","event":"E","properties":{"p":"y".repeat(16_385)}})
            ),
            ["string_too_long"]
        );
        let mut deep = json!(1);
        for _ in 0..20 {
            deep = json!({ "d": deep });
        }
        assert_eq!(
            codes(
                json!({"type":"track","messageId":"m","userId":"u","event":"E","properties":deep})
            ),
            ["too_deep"]
        );
        let many: Object = (0..600).map(|i| (format!("k{i}"), json!(i))).collect();
        assert_eq!(
            codes(
                json!({"type":"track","messageId":"m","userId":"u","event":"E","properties":many})
            ),
            ["too_many_properties"]
        );
    }

    #[test]
    fn timestamps_must_be_rfc3339_and_absurd_ones_are_flagged() {
        assert_eq!(
            codes(json!({"type":"page","messageId":"m","userId":"u","timestamp":"yesterday"})),
            ["invalid_timestamp"]
        );
        assert_eq!(
            codes(
                json!({"type":"page","messageId":"m","userId":"u","sentAt":"2023-13-01T00:00:00Z"})
            ),
            ["invalid_timestamp"]
        );
        // Flagged, but still valid:
        assert_eq!(
            codes(
                json!({"type":"page","messageId":"m","userId":"u","timestamp":"1970-01-01T00:00:00Z"})
            ),
            ["absurd_timestamp"]
        );
        assert_eq!(
            codes(
                json!({"type":"page","messageId":"m","userId":"u","originalTimestamp":"2099-01-01T00:00:00Z"})
            ),
            ["absurd_timestamp"]
        );
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let c = codes(json!({"type":"track","messageId":"","timestamp":"nope"}));
        assert_eq!(
            c,
            [
                "invalid_message_id",
                "missing_identity",
                "missing_field",
                "invalid_timestamp"
            ]
        );
    }
}
