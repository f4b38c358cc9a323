//! Bytes → batch, with a result per event: one bad event never takes the
//! others down. Handles the batch envelope (`/v1/batch`, RudderStack's
//! `/beacon/v1/batch`) and the single-event bodies analytics.js posts to
//! `/v1/{t,p,s,i,g,a}`.

use crate::event::{kind_of, Event, EventType, Object};
use crate::time::Timestamp;
use crate::validate::{validate, Limits, ValidEvent, ValidationError};
use serde::Deserialize;
use serde_json::value::RawValue;
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
}

/// The outcome for one event after validation.
#[derive(Debug, Clone, PartialEq)]
pub struct Checked {
    pub index: usize,
    pub message_id: Option<String>,
    pub result: Result<ValidEvent, Vec<ValidationError>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope<'a> {
    #[serde(borrow)]
    batch: Option<Vec<&'a RawValue>>,
    #[serde(default)]
    sent_at: Option<String>,
    #[serde(default)]
    write_key: Option<String>,
    #[serde(default)]
    context: Option<Object>,
    #[serde(default)]
    integrations: Option<Object>,
    #[serde(flatten)]
    extra: Object,
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

fn not_json_or_envelope(bytes: &[u8], e: &serde_json::Error) -> ParseError {
    match serde_json::from_slice::<Value>(bytes) {
        Err(_) => ParseError::NotJson(e.to_string()),
        Ok(Value::Object(_)) => ParseError::BadEnvelope(e.to_string()),
        Ok(other) => ParseError::NotAnObject(kind_of(&other)),
    }
}

/// Parse a batch body: `{ "batch": [ … ], "sentAt", "writeKey", "context", … }`.
pub fn parse_batch(bytes: &[u8], limits: &Limits) -> Result<ParsedBatch, ParseError> {
    check_size(bytes, limits)?;
    let env: Envelope<'_> =
        serde_json::from_slice(bytes).map_err(|e| not_json_or_envelope(bytes, &e))?;
    let raw = env.batch.ok_or(ParseError::MissingBatch)?;
    if raw.len() > limits.max_batch_events {
        return Err(ParseError::TooManyEvents {
            count: raw.len(),
            limit: limits.max_batch_events,
        });
    }
    let events = raw
        .into_iter()
        .enumerate()
        .map(|(index, raw)| parse_event(index, raw.get(), None))
        .collect();
    Ok(ParsedBatch {
        sent_at: env.sent_at,
        write_key: env.write_key,
        context: env.context,
        integrations: env.integrations,
        extra: env.extra,
        events,
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
    let write_key = match object.remove("writeKey") {
        Some(Value::String(k)) => Some(k),
        Some(Value::Null) | None => None,
        Some(other) => {
            return Err(ParseError::BadEnvelope(format!(
                "`writeKey` must be a string, got {}",
                kind_of(&other)
            )))
        }
    };
    object
        .entry("type")
        .or_insert_with(|| Value::from(kind.as_str()));
    let sent_at = object
        .get("sentAt")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let text = value.to_string();
    let mut slot = parse_event(0, &text, Some(kind));
    slot.bytes = bytes.len();
    Ok(ParsedBatch {
        sent_at,
        write_key,
        context: None,
        integrations: None,
        extra: Object::new(),
        events: vec![slot],
    })
}

fn parse_event(index: usize, raw: &str, expected: Option<EventType>) -> Slot {
    let bytes = raw.len();
    let result = match serde_json::from_str::<Event>(raw) {
        Ok(mut event) => {
            if event.message_id.is_empty() {
                event.message_id = derive_message_id(raw.as_bytes());
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
        Err(_) => serde_json::from_str::<Value>(raw).ok().and_then(|v| {
            v.get("messageId")
                .and_then(Value::as_str)
                .map(str::to_owned)
        }),
    };
    Slot {
        index,
        bytes,
        message_id,
        result,
    }
}

/// Turn a serde error on one event into the most useful validation error.
fn diagnose(raw: &str, e: &serde_json::Error) -> ValidationError {
    let Ok(value) = serde_json::from_str::<Value>(raw) else {
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
        let ParsedBatch {
            sent_at,
            context,
            integrations,
            events,
            ..
        } = self;
        events
            .into_iter()
            .map(|slot| {
                let result = match slot.result {
                    Err(e) => Err(vec![e]),
                    Ok(mut event) => {
                        if event.sent_at.is_none() {
                            event.sent_at.clone_from(&sent_at);
                        }
                        merge_missing(&mut event.context, context.as_ref());
                        merge_missing(&mut event.integrations, integrations.as_ref());
                        validate(event, slot.bytes, limits, now)
                    }
                };
                Checked {
                    index: slot.index,
                    message_id: slot.message_id,
                    result,
                }
            })
            .collect()
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
            parse_batch(br#"{"batch":[],"sentAt":5}"#, &l)
                .unwrap_err()
                .code(),
            "invalid_envelope"
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
}
