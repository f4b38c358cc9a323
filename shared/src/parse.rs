//! Bytes → batch, with a result per event: one bad event never takes the
//! others down. Handles the batch envelope (`/v1/batch`, RudderStack's
//! `/beacon/v1/batch`) and the single-event bodies analytics.js posts to
//! `/v1/{t,p,s,i,g,a}`.

use crate::event::{kind_of, Event, EventType, Object};
use crate::scan::{self, ScanError};
use crate::time::Timestamp;
use crate::validate::{validate, Limits, ValidEvent, ValidationError};
use serde_json::Value;
use std::fmt;

/// Why a request body cannot be read as a batch at all.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParseError {
    /// The body is empty.
    Empty,
    /// The body is over the batch limit.
    TooLarge { bytes: usize, limit: usize },
    /// The body is not JSON (or not UTF-8).
    NotJson(String),
    /// The body is JSON but not an object.
    NotAnObject(&'static str),
    /// A batch body has no `batch` field.
    MissingBatch,
    /// `batch` is not an array (or an envelope field has the wrong type).
    BadEnvelope(String),
    /// More events than allowed in one batch.
    TooManyEvents { count: usize, limit: usize },
}

impl ParseError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            ParseError::Empty => "empty_body",
            ParseError::TooLarge { .. } => "payload_too_large",
            ParseError::NotJson(_) => "invalid_json",
            ParseError::NotAnObject(_) => "not_an_object",
            ParseError::MissingBatch => "missing_batch",
            ParseError::BadEnvelope(_) => "invalid_envelope",
            ParseError::TooManyEvents { .. } => "too_many_events",
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::Empty => f.write_str("the request body is empty"),
            ParseError::TooLarge { bytes, limit } => {
                write!(f, "the request body is {bytes} bytes; the limit is {limit}")
            }
            ParseError::NotJson(why) => write!(f, "the request body is not valid JSON: {why}"),
            ParseError::NotAnObject(got) => {
                write!(f, "the request body must be a JSON object, got {got}")
            }
            ParseError::MissingBatch => f.write_str("the request body has no `batch` array"),
            ParseError::BadEnvelope(why) => write!(f, "the batch envelope is invalid: {why}"),
            ParseError::TooManyEvents { count, limit } => {
                write!(f, "the batch has {count} events; the limit is {limit}")
            }
        }
    }
}

/// One event of a request, as parsed: where it was, how big, and what came of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Slot {
    /// Position in the batch (0 for single-event bodies).
    pub index: usize,
    /// Size of the event's JSON as sent.
    pub bytes: usize,
    /// The `messageId` if one could be read, for reporting.
    pub message_id: Option<String>,
    /// The event, or why it is not one.
    pub result: Result<Event, ValidationError>,
}

/// An envelope field that was ignored, and why. The events do not depend on
/// it being right (a bad `sentAt` only means no clock-skew correction), so a
/// bad one is a warning, never a reason to lose the batch.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EnvelopeWarning {
    /// The field has the wrong JSON type (or cannot be decoded).
    Invalid {
        field: String,
        expected: &'static str,
        got: String,
    },
    /// The field appears more than once: which one was meant is unknowable.
    Duplicate { field: String },
}

impl EnvelopeWarning {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            EnvelopeWarning::Invalid { .. } => "invalid_envelope_field",
            EnvelopeWarning::Duplicate { .. } => "duplicate_envelope_field",
        }
    }
}

impl fmt::Display for EnvelopeWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EnvelopeWarning::Invalid {
                field,
                expected,
                got,
            } => write!(
                f,
                "the envelope's `{field}` must be {expected}, got {got}; it is ignored"
            ),
            EnvelopeWarning::Duplicate { field } => write!(
                f,
                "the envelope's `{field}` appears more than once; it is ignored"
            ),
        }
    }
}

/// A parsed request: the envelope and each event.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedBatch {
    pub sent_at: Option<String>,
    pub write_key: Option<String>,
    pub context: Option<Object>,
    pub integrations: Option<Object>,
    /// `_metadata` and other envelope fields.
    pub extra: Object,
    pub events: Vec<Slot>,
    /// Envelope fields that were ignored.
    pub warnings: Vec<EnvelopeWarning>,
}

/// The outcome for one event after validation.
#[derive(Debug, Clone, PartialEq)]
pub struct Checked {
    pub index: usize,
    pub message_id: Option<String>,
    pub result: Result<ValidEvent, Vec<ValidationError>>,
}

fn check_size(bytes: &[u8], limits: &Limits) -> Result<(), ParseError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ParseError::Empty);
    }
    if bytes.len() > limits.max_batch_bytes {
        return Err(ParseError::TooLarge {
            bytes: bytes.len(),
            limit: limits.max_batch_bytes,
        });
    }
    Ok(())
}

/// The whole body cannot be split: say why as precisely as the decoder can.
fn unsplittable(bytes: &[u8], scan: &ScanError) -> ParseError {
    match serde_json::from_slice::<Value>(bytes) {
        Err(e) => ParseError::NotJson(e.to_string()),
        Ok(Value::Object(_)) => ParseError::NotJson(scan.to_string()),
        Ok(other) => ParseError::NotAnObject(kind_of(&other)),
    }
}

/// What a span holds, for messages: `number`, `string`, … or `invalid JSON`.
fn kind_of_raw(raw: &[u8]) -> String {
    serde_json::from_slice::<Value>(raw).map_or_else(
        |e| format!("invalid JSON ({e})"),
        |v| kind_of(&v).to_owned(),
    )
}

/// An optional envelope field of type `T` (`null` is absent); anything else is
/// ignored with a warning.
fn envelope_field<T: serde::de::DeserializeOwned>(
    field: &str,
    raw: &[u8],
    expected: &'static str,
    warnings: &mut Vec<EnvelopeWarning>,
) -> Option<T> {
    if raw == b"null" {
        return None;
    }
    match serde_json::from_slice::<T>(raw) {
        Ok(v) => Some(v),
        Err(_) => {
            warnings.push(EnvelopeWarning::Invalid {
                field: field.to_owned(),
                expected,
                got: kind_of_raw(raw),
            });
            None
        }
    }
}

/// Parse a batch body: `{ "batch": [ … ], "sentAt", "writeKey", "context", … }`.
///
/// Only a body that cannot be split into its envelope and events, or has no
/// usable `batch`, fails as a whole. Each event is decoded on its own, so what
/// is wrong inside one (not UTF-8, `NaN`, too deep, duplicate keys, wrong
/// types) rejects only that one; a bad envelope field is ignored with a warning.
pub fn parse_batch(bytes: &[u8], limits: &Limits) -> Result<ParsedBatch, ParseError> {
    Ok(split_batch(bytes, limits)?.parse())
}

/// A batch body split into its envelope and its events' bytes, no event
/// decoded yet (the accept path decodes each one its own way).
#[derive(Debug, Clone, PartialEq)]
pub struct SplitBatch<'a> {
    /// The envelope; its `events` is empty.
    pub envelope: ParsedBatch,
    /// Each event's JSON, in order.
    pub events: Vec<&'a [u8]>,
}

impl SplitBatch<'_> {
    /// Decode every event: what [`parse_batch`] returns.
    pub fn parse(self) -> ParsedBatch {
        let SplitBatch {
            mut envelope,
            events,
        } = self;
        envelope.events = events
            .into_iter()
            .enumerate()
            .map(|(index, raw)| parse_event(index, raw, None))
            .collect();
        envelope
    }
}

/// [`parse_batch`] up to the events: the envelope read (with the same errors
/// and warnings), the events only split.
pub fn split_batch<'a>(bytes: &'a [u8], limits: &Limits) -> Result<SplitBatch<'a>, ParseError> {
    check_size(bytes, limits)?;
    // The events are split in the same pass (`batch` written plainly, as clients do).
    let scan::Members { members, split } = scan::object_members_splitting(bytes, br#""batch""#)
        .map_err(|e| unsplittable(bytes, &e))?;
    let mut warnings = Vec::new();
    let mut seen: Vec<String> = Vec::new();
    let mut duplicates: Vec<String> = Vec::new();
    let mut named: Vec<(String, &[u8])> = Vec::with_capacity(members.len());
    for m in &members {
        let Ok(key) = serde_json::from_slice::<String>(m.key) else {
            warnings.push(EnvelopeWarning::Invalid {
                field: String::from_utf8_lossy(m.key).into_owned(),
                expected: "a valid JSON string key",
                got: "an undecodable key".to_owned(),
            });
            continue;
        };
        if seen.contains(&key) {
            if !duplicates.contains(&key) {
                duplicates.push(key.clone());
            }
        } else {
            seen.push(key.clone());
        }
        named.push((key, m.value));
    }
    if duplicates.iter().any(|d| d == "batch") {
        return Err(ParseError::BadEnvelope(
            "`batch` appears more than once".into(),
        ));
    }
    let mut batch = None;
    let mut parsed = ParsedBatch {
        sent_at: None,
        write_key: None,
        context: None,
        integrations: None,
        extra: Object::new(),
        events: Vec::new(),
        warnings: Vec::new(),
    };
    for (key, raw) in named {
        if key != "batch" && duplicates.contains(&key) {
            continue;
        }
        match key.as_str() {
            "batch" if raw == b"null" => {}
            "batch" => batch = Some(raw),
            "sentAt" => parsed.sent_at = envelope_field(&key, raw, "a string", &mut warnings),
            "writeKey" => {
                parsed.write_key = envelope_field(&key, raw, "a string", &mut warnings);
            }
            "context" => parsed.context = envelope_field(&key, raw, "an object", &mut warnings),
            "integrations" => {
                parsed.integrations = envelope_field(&key, raw, "an object", &mut warnings);
            }
            _ => {
                if let Some(v) = envelope_field::<Value>(&key, raw, "valid JSON", &mut warnings) {
                    parsed.extra.insert(key, v);
                }
            }
        }
    }
    warnings.extend(
        duplicates
            .into_iter()
            .map(|field| EnvelopeWarning::Duplicate { field }),
    );
    let raw = batch.ok_or(ParseError::MissingBatch)?;
    // `split` is the one `batch` member's when it is written plainly and
    // splits (a second `batch` is refused above); else split it here, for
    // the elements or the error.
    let elements = match split {
        Some(elements) => elements,
        None => scan::array_elements(raw).map_err(|e| {
            if raw.first() == Some(&b'[') {
                ParseError::NotJson(["in `batch`: ", &e.to_string()].concat())
            } else {
                ParseError::BadEnvelope(
                    ["`batch` must be an array, got ", &kind_of_raw(raw)].concat(),
                )
            }
        })?,
    };
    if elements.len() > limits.max_batch_events {
        return Err(ParseError::TooManyEvents {
            count: elements.len(),
            limit: limits.max_batch_events,
        });
    }
    parsed.warnings = warnings;
    Ok(SplitBatch {
        envelope: parsed,
        events: elements,
    })
}

/// Parse a single-event body (analytics.js's `/v1/t` etc.): the event itself,
/// with `writeKey` and `sentAt` beside its fields. `kind` comes from the path;
/// a body `type` that disagrees is an error for that event.
pub fn parse_single(
    bytes: &[u8],
    kind: EventType,
    limits: &Limits,
) -> Result<ParsedBatch, ParseError> {
    check_size(bytes, limits)?;
    let mut value: Value =
        serde_json::from_slice(bytes).map_err(|e| ParseError::NotJson(e.to_string()))?;
    let Value::Object(object) = &mut value else {
        return Err(ParseError::NotAnObject(kind_of(&value)));
    };
    let object: &mut Object = object;
    let mut warnings = Vec::new();
    let mut take_string = |object: &mut Object, field: &str, remove: bool| {
        let value = if remove {
            object.remove(field)
        } else {
            object.get(field).cloned()
        };
        match value {
            Some(Value::String(v)) => Some(v),
            Some(Value::Null) | None => None,
            Some(other) => {
                object.remove(field);
                warnings.push(EnvelopeWarning::Invalid {
                    field: field.to_owned(),
                    expected: "a string",
                    got: kind_of(&other).to_owned(),
                });
                None
            }
        }
    };
    let write_key = take_string(object, "writeKey", true);
    let sent_at = take_string(object, "sentAt", false);
    object
        .entry("type")
        .or_insert_with(|| Value::from(kind.as_str()));
    let text = value.to_string();
    let mut slot = parse_event(0, text.as_bytes(), Some(kind));
    slot.bytes = bytes.len();
    Ok(ParsedBatch {
        sent_at,
        write_key,
        context: None,
        integrations: None,
        extra: Object::new(),
        events: vec![slot],
        warnings,
    })
}

/// Decode one event of a batch (`expected`: the type the endpoint takes).
pub fn parse_event(index: usize, raw: &[u8], expected: Option<EventType>) -> Slot {
    let bytes = raw.len();
    let result = match serde_json::from_slice::<Event>(raw) {
        Ok(mut event) => {
            if event.message_id.is_empty() {
                event.message_id = derive_message_id(raw);
            }
            match expected {
                Some(kind) if kind != event.kind => Err(ValidationError::Malformed(format!(
                    "`type` is {} but this endpoint takes {}",
                    event.kind.as_str(),
                    kind.as_str()
                ))),
                _ => Ok(event),
            }
        }
        Err(e) => Err(diagnose(raw, &e)),
    };
    let message_id = match &result {
        Ok(e) => Some(e.message_id.clone()),
        Err(_) => reported_message_id(raw),
    };
    Slot {
        index,
        bytes,
        message_id,
        result,
    }
}

/// The `messageId` of an event that could not be decoded, for the client's
/// report: read from the event's top-level members only, so it is found even
/// when something elsewhere in the event is broken.
fn reported_message_id(raw: &[u8]) -> Option<String> {
    let members = scan::object_members(raw).ok()?;
    let id = members.iter().find(|m| m.key == b"\"messageId\"")?.value;
    serde_json::from_slice::<String>(id)
        .ok()
        .or_else(|| serde_json::from_str::<String>(&String::from_utf8_lossy(id)).ok())
}

/// Turn a serde error on one event into the most useful validation error.
fn diagnose(raw: &[u8], e: &serde_json::Error) -> ValidationError {
    if let Err(bad) = std::str::from_utf8(raw) {
        return ValidationError::InvalidUtf8 {
            at: bad.valid_up_to(),
        };
    }
    if e.to_string().starts_with("recursion limit exceeded") {
        return ValidationError::TooDeep {
            field: "event",
            limit: SERDE_RECURSION_LIMIT,
        };
    }
    let Ok(value) = serde_json::from_slice::<Value>(raw) else {
        return ValidationError::Malformed(e.to_string());
    };
    let Value::Object(o) = &value else {
        return ValidationError::Malformed(format!(
            "an event must be an object, got {}",
            kind_of(&value)
        ));
    };
    match o.get("type") {
        None | Some(Value::Null) => ValidationError::UnknownType("nothing".into()),
        Some(Value::String(t)) if EventType::from_name(t).is_none() || t.len() == 1 => {
            ValidationError::UnknownType(format!("{t:?}"))
        }
        Some(Value::String(_)) => ValidationError::Malformed(e.to_string()),
        Some(other) => ValidationError::UnknownType(kind_of(other).into()),
    }
}

/// How deep `serde_json` decodes before it gives up (its fixed limit).
pub const SERDE_RECURSION_LIMIT: usize = 128;

/// A stable `messageId` for an event sent without one: the same bytes give the
/// same id, so a client's retry of the identical event is still deduplicated.
pub fn derive_message_id(raw: &[u8]) -> String {
    // FNV-1a, 128-bit.
    const OFFSET: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    const PRIME: u128 = 0x0000_0000_0100_0000_0000_0000_0000_013b;
    let hash = raw
        .iter()
        .fold(OFFSET, |h, b| (h ^ u128::from(*b)).wrapping_mul(PRIME));
    let mut out = String::with_capacity(39);
    out.push_str("sluice-");
    for i in (0..32).rev() {
        let nibble = ((hash >> (i * 4)) & 0xf) as u8;
        out.push(char::from(b"0123456789abcdef"[usize::from(nibble)]));
    }
    out
}

impl ParsedBatch {
    /// Validate every event, after giving it the envelope's `sentAt`, `context`
    /// and `integrations` where it has none of its own (the event's keys win).
    pub fn check(self, limits: &Limits, now: Timestamp) -> Vec<Checked> {
        let mut envelope = self;
        let events = std::mem::take(&mut envelope.events);
        events
            .into_iter()
            .map(|slot| envelope.check_one(slot, limits, now))
            .collect()
    }

    /// [`ParsedBatch::check`] for one event of this envelope.
    pub fn check_one(&self, slot: Slot, limits: &Limits, now: Timestamp) -> Checked {
        let result = match slot.result {
            Err(e) => Err(vec![e]),
            Ok(mut event) => {
                if event.sent_at.is_none() {
                    event.sent_at.clone_from(&self.sent_at);
                }
                merge_missing(&mut event.context, self.context.as_ref());
                merge_missing(&mut event.integrations, self.integrations.as_ref());
                validate(event, slot.bytes, limits, now)
            }
        };
        Checked {
            index: slot.index,
            message_id: slot.message_id,
            result,
        }
    }
}

fn merge_missing(target: &mut Option<Object>, shared: Option<&Object>) {
    let Some(shared) = shared else { return };
    let target = target.get_or_insert_with(Object::new);
    for (k, v) in shared {
        target.entry(k.clone()).or_insert_with(|| v.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits::default()
    }

    #[test]
    fn one_bad_event_does_not_take_the_others_down() {
        let body = br#"{"batch":[
            {"type":"track","messageId":"a","anonymousId":"x","event":"Ok"},
            {"type":"launch","messageId":"b","anonymousId":"x"},
            42,
            {"type":"track","messageId":"c","anonymousId":"x","properties":"not an object","event":"E"},
            {"type":"page","messageId":"d","anonymousId":"x"}
        ],"sentAt":"2023-11-14T22:13:20Z","writeKey":"wk"}"#;
        let parsed = parse_batch(body, &limits()).unwrap();
        assert_eq!(parsed.write_key.as_deref(), Some("wk"));
        let codes: Vec<_> = parsed
            .events
            .iter()
            .map(|s| s.result.as_ref().err().map(ValidationError::code))
            .collect();
        assert_eq!(
            codes,
            [
                None,
                Some("unknown_type"),
                Some("malformed_event"),
                Some("malformed_event"),
                None
            ]
        );
        assert_eq!(parsed.events[1].message_id.as_deref(), Some("b"));
        let checked = parsed.check(&limits(), Timestamp(1_700_000_000_000));
        assert!(checked[0].result.is_ok());
        assert_eq!(
            checked[4]
                .result
                .as_ref()
                .unwrap()
                .event()
                .sent_at
                .as_deref(),
            Some("2023-11-14T22:13:20Z"),
            "the envelope's sentAt is given to each event"
        );
    }

    #[test]
    fn whole_request_errors_have_codes() {
        let l = limits();
        assert_eq!(parse_batch(b"  ", &l).unwrap_err().code(), "empty_body");
        assert_eq!(
            parse_batch(b"{nope", &l).unwrap_err().code(),
            "invalid_json"
        );
        assert_eq!(
            parse_batch(b"[1,2]", &l).unwrap_err().code(),
            "not_an_object"
        );
        assert_eq!(parse_batch(b"{}", &l).unwrap_err().code(), "missing_batch");
        assert_eq!(
            parse_batch(br#"{"batch":{}}"#, &l).unwrap_err().code(),
            "invalid_envelope"
        );
        assert_eq!(
            parse_batch(br#"{"batch":"x"}"#, &l).unwrap_err().code(),
            "invalid_envelope"
        );
        assert_eq!(
            parse_batch(br#"{"batch":[],"batch":[]}"#, &l)
                .unwrap_err()
                .code(),
            "invalid_envelope",
            "two batches: which one was meant is unknowable"
        );
        assert_eq!(
            parse_batch(br#"{"batch":[1 2]}"#, &l).unwrap_err().code(),
            "invalid_json"
        );
        assert_eq!(
            parse_batch(br#"{"batch":[{}]} trailing"#, &l)
                .unwrap_err()
                .code(),
            "invalid_json"
        );
        assert_eq!(
            parse_batch(br#"{"batch":null}"#, &l).unwrap_err().code(),
            "missing_batch"
        );
        let big = vec![b' '; 600 * 1024];
        let mut body = b"{\"batch\":[]}".to_vec();
        body.extend_from_slice(&big);
        assert_eq!(
            parse_batch(&body, &l).unwrap_err().code(),
            "payload_too_large"
        );
        let many = format!("{{\"batch\":[{}]}}", vec!["{}"; 2501].join(","));
        assert_eq!(
            parse_batch(many.as_bytes(), &l).unwrap_err().code(),
            "too_many_events"
        );
    }

    #[test]
    fn the_batch_context_fills_in_but_never_overrides() {
        let body = br#"{"batch":[{"type":"page","messageId":"a","anonymousId":"x","context":{"locale":"fr"}}],
            "context":{"locale":"en","library":{"name":"l"}}}"#;
        let checked = parse_batch(body, &limits())
            .unwrap()
            .check(&limits(), Timestamp(0));
        let ctx = checked[0]
            .result
            .as_ref()
            .unwrap()
            .event()
            .context
            .clone()
            .unwrap();
        assert_eq!(ctx["locale"], "fr");
        assert_eq!(ctx["library"]["name"], "l");
    }

    #[test]
    fn single_event_bodies_take_their_type_from_the_path() {
        let body = br#"{"event":"Clicked","anonymousId":"x","messageId":"m","writeKey":"wk","sentAt":"2023-11-14T22:13:20Z","_metadata":{"bundled":["Segment.io"]}}"#;
        let parsed = parse_single(body, EventType::Track, &limits()).unwrap();
        assert_eq!(parsed.write_key.as_deref(), Some("wk"));
        let event = parsed.events[0].result.clone().unwrap();
        assert_eq!(event.kind, EventType::Track);
        assert!(event.extra.contains_key("_metadata"));
        assert!(
            !event.extra.contains_key("writeKey"),
            "the write key is not stored with the event"
        );
        let wrong = parse_single(
            br#"{"type":"page","anonymousId":"x"}"#,
            EventType::Track,
            &limits(),
        )
        .unwrap();
        assert_eq!(
            wrong.events[0].result.as_ref().unwrap_err().code(),
            "malformed_event"
        );
    }

    #[test]
    fn a_missing_message_id_is_derived_from_the_event_bytes() {
        let body = br#"{"batch":[{"type":"page","anonymousId":"x"},{"type":"page","anonymousId":"x"},{"type":"page","anonymousId":"y"}]}"#;
        let parsed = parse_batch(body, &limits()).unwrap();
        let ids: Vec<_> = parsed
            .events
            .iter()
            .map(|s| s.result.as_ref().unwrap().message_id.clone())
            .collect();
        assert_eq!(
            ids[0], ids[1],
            "identical events get the same id, so a resend is deduplicated"
        );
        assert_ne!(ids[0], ids[2]);
        assert!(ids[0].starts_with("sluice-") && ids[0].len() == 39);
    }

    const GOOD: &str = r#"{"type":"track","messageId":"good","anonymousId":"x","event":"Ok"}"#;

    fn codes(body: &[u8]) -> Vec<Option<&'static str>> {
        parse_batch(body, &limits())
            .unwrap()
            .events
            .iter()
            .map(|s| s.result.as_ref().err().map(ValidationError::code))
            .collect()
    }

    #[test]
    fn a_bad_envelope_field_is_ignored_with_a_warning_and_the_events_are_kept() {
        let body = format!(
            r#"{{"batch":[{GOOD}],"sentAt":5,"writeKey":["wk"],"context":"ctx","integrations":7,"_metadata":{{"a":1}}}}"#
        );
        let parsed = parse_batch(body.as_bytes(), &limits()).unwrap();
        assert_eq!(parsed.events.len(), 1);
        assert!(parsed.events[0].result.is_ok());
        assert_eq!(
            (parsed.sent_at.as_deref(), parsed.write_key.as_deref()),
            (None, None)
        );
        assert_eq!(parsed.context, None);
        assert_eq!(parsed.extra["_metadata"]["a"], 1);
        let warned: Vec<String> = parsed.warnings.iter().map(ToString::to_string).collect();
        assert_eq!(
            warned,
            [
                "the envelope's `sentAt` must be a string, got number; it is ignored",
                "the envelope's `writeKey` must be a string, got array; it is ignored",
                "the envelope's `context` must be an object, got string; it is ignored",
                "the envelope's `integrations` must be an object, got number; it is ignored",
            ]
        );
        assert!(parsed
            .warnings
            .iter()
            .all(|w| w.code() == "invalid_envelope_field"));
        let checked = parsed.check(&limits(), Timestamp(1_700_000_000_000));
        assert!(checked[0].result.is_ok(), "{checked:?}");
    }

    #[test]
    fn a_duplicate_envelope_field_is_ignored_with_a_warning() {
        let body = format!(
            r#"{{"batch":[{GOOD}],"sentAt":"2023-11-14T22:13:20Z","sentAt":"2020-01-01T00:00:00Z"}}"#
        );
        let parsed = parse_batch(body.as_bytes(), &limits()).unwrap();
        assert_eq!(parsed.sent_at, None);
        assert_eq!(
            parsed.warnings,
            [EnvelopeWarning::Duplicate {
                field: "sentAt".into()
            }]
        );
        assert!(parsed.events[0].result.is_ok());
    }

    #[test]
    fn what_is_wrong_inside_one_event_rejects_only_that_event() {
        let deep = format!(
            r#"{{"type":"track","messageId":"deep","anonymousId":"x","event":"E","properties":{{"p":{}1{}}}}}"#,
            "[".repeat(200),
            "]".repeat(200)
        );
        let mut body = b"{\"batch\":[".to_vec();
        for event in [
            GOOD.as_bytes(),
            b"{\"type\":\"track\",\"messageId\":\"utf8\",\"anonymousId\":\"x\",\"event\":\"\xff\xfe\"}",
            br#"{"type":"track","messageId":"surrogate","anonymousId":"x","event":"\ud800"}"#,
            br#"{"type":"track","messageId":"nan","anonymousId":"x","event":"E","properties":{"v":NaN}}"#,
            br#"{"type":"track","messageId":"dup","messageId":"dup2","anonymousId":"x","event":"E"}"#,
            deep.as_bytes(),
            br#"{"type":"launch","messageId":"unknown","anonymousId":"x"}"#,
            br#"{"type":"track","messageId":"wrong-type","anonymousId":"x","event":"E","properties":[1]}"#,
            br#"{"type":"track","messageId":"g2","anonymousId":"x","event":"E"}"#,
        ] {
            body.extend_from_slice(event);
            body.push(b',');
        }
        body.pop();
        body.extend_from_slice(b"]}");
        let parsed = parse_batch(&body, &limits()).unwrap();
        let ids: Vec<_> = parsed
            .events
            .iter()
            .map(|s| s.message_id.as_deref())
            .collect();
        assert_eq!(
            ids,
            [
                Some("good"),
                Some("utf8"),
                Some("surrogate"),
                Some("nan"),
                Some("dup"),
                Some("deep"),
                Some("unknown"),
                Some("wrong-type"),
                Some("g2")
            ]
        );
        assert_eq!(
            codes(&body),
            [
                None,
                Some("invalid_utf8"),
                Some("malformed_event"),
                Some("malformed_event"),
                Some("malformed_event"),
                Some("too_deep"),
                Some("unknown_type"),
                Some("malformed_event"),
                None
            ]
        );
    }

    #[test]
    fn nesting_far_past_the_recursion_limit_is_one_events_error() {
        let depth = 100_000;
        let body = format!(
            r#"{{"batch":[{GOOD},{{"type":"track","messageId":"d","anonymousId":"x","event":"E","properties":{{"p":{}{}}}}}]}}"#,
            "[".repeat(depth),
            "]".repeat(depth)
        );
        assert_eq!(codes(body.as_bytes()), [None, Some("too_deep")]);
    }

    #[test]
    fn a_single_event_body_ignores_a_bad_write_key_or_sent_at() {
        let parsed = parse_single(
            br#"{"event":"E","anonymousId":"x","messageId":"m","writeKey":5,"sentAt":true}"#,
            EventType::Track,
            &limits(),
        )
        .unwrap();
        assert_eq!(parsed.write_key, None);
        assert_eq!(parsed.warnings.len(), 2);
        let event = parsed.events[0].result.clone().unwrap();
        assert_eq!(event.sent_at, None);
        assert!(!event.extra.contains_key("writeKey"));
    }
}
