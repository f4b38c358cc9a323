//! The accept path's fast lane: decode only the parts of an event the
//! pipeline reads, and write the rest back as the client sent it.
//!
//! Decoding a whole event into `serde_json::Value` trees and encoding it
//! again was most of the collector's CPU per event. Yet the pipeline
//! (validation, clock skew, enrichment, consent, anonymisation) reads only the
//! typed top-level fields, `traits` and a few `context` members. So
//! [`decode`] gives it an [`Event`] with just those, and keeps the rest as the
//! client's own bytes (`properties`, `integrations`, the other `context`
//! members, and `context.page`, `context.userAgent` and `context.consent`,
//! which the pipeline reads from [`Sent`], strings borrowed from the bytes);
//! [`Passed::encode`] splices them back around the pipeline's result, with
//! what the pipeline added as text ([`Added`]: enrichment's values, made once
//! per request, and its notes under `context.sluice`).
//!
//! The lane is only taken where it cannot differ from decoding everything:
//! [`decode`] answers `None` (decode the full event instead) for anything a
//! full decode might judge or read differently: a duplicate key, a lone
//! surrogate escape, a number with an exponent or many digits, nesting or a
//! string near the limits, a non-object where an object belongs, a missing
//! `messageId`. What it passes through is walked for the same limits
//! validation applies. The same event decoded both ways reads back as the same
//! JSON value (`tests/splice.rs` holds the two to that, through the pipeline).
//!
//! Callers must not take this lane when something reads `properties` or
//! other passed-through parts (a tracking plan, audiences).

use crate::event::{opt_id, EventType, Object};
use crate::validate::Limits;
use crate::Event;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;
use std::borrow::Cow;
use std::fmt;
use writer::Writer;

mod added;
mod writer;

pub use added::{Added, Json};

/// What the pipeline does with a `context` member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Use {
    /// Reads or writes it (enrichment, consent, anonymisation): decoded into the event.
    Decoded,
    /// Only reads it (from [`Sent`]): written back as sent, unless the
    /// pipeline decoded it into the event to write it (`consent` with GPC).
    Read,
    /// Never looks at it: written back as sent.
    Passed,
}

fn context_use(key: &str) -> Use {
    match key {
        "browser" | "campaign" | "device" | "device_id" | "externalIds" | "ip" | "location"
        | "os" | "sessionId" | "sluice" | "traits" => Use::Decoded,
        // `consent` is written only with GPC (enrichment decodes it then).
        "consent" | "page" | "userAgent" => Use::Read,
        _ => Use::Passed,
    }
}

/// Longest number passed through (a longer one, or one with an exponent, may
/// overflow `f64` where a full decode rejects it).
const MAX_NUMBER_LEN: usize = 18;

/// What [`decode`] kept as sent, for [`Passed::encode`].
#[derive(Debug, Clone)]
pub struct Passed<'a> {
    /// Size of the event as sent (the encoding is about as long).
    bytes: usize,
    properties: Option<&'a RawValue>,
    integrations: Option<&'a RawValue>,
    /// `context` members passed through and the read-only ones, as sent, by key.
    context: Vec<(Cow<'a, str>, &'a RawValue)>,
    sent: Sent<'a>,
}

/// What enrichment reads of the members it only reads, as sent (the event's
/// `context` does not have them in the lane).
#[derive(Debug, Clone, Default)]
pub struct Sent<'a> {
    /// `context.userAgent` is there (of any type).
    pub has_user_agent: bool,
    /// `context.userAgent`, if a string.
    pub user_agent: Option<Cow<'a, str>>,
    /// `context.page.url`, if `page` is an object and it a string.
    pub url: Option<Cow<'a, str>>,
    /// `context.page.referrer`, likewise.
    pub referrer: Option<Cow<'a, str>>,
    /// `context.consent`, as sent.
    pub consent: Option<&'a RawValue>,
}

impl<'a> Sent<'a> {
    /// Read a read-only member (`userAgent` or `page`).
    fn read(&mut self, key: &str, value: &'a RawValue) -> Option<()> {
        if key == "userAgent" {
            self.has_user_agent = true;
            self.user_agent = serde_json::from_str::<Text<'a>>(value.get()).ok()?.0;
        } else if key == "consent" {
            self.consent = Some(value);
        } else if value.get().starts_with('{') {
            let page: PageRead<'a> = serde_json::from_str(value.get()).ok()?;
            self.url = page.url.and_then(|t| t.0);
            self.referrer = page.referrer.and_then(|t| t.0);
        }
        Some(())
    }
}

/// Decode `raw` (one event of a batch) for the pipeline, or `None` where only
/// a full decode gives the right answer. The event has `properties` and
/// `integrations` unset and only the `context` members the pipeline uses;
/// the rest is in [`Passed`].
pub fn decode<'a>(raw: &'a [u8], limits: &Limits) -> Option<(Event, Passed<'a>)> {
    let parts: Parts<'a> = serde_json::from_slice(raw).ok()?;
    if parts.event.message_id.is_empty() {
        return None; // derived from the bytes: the full path does that
    }
    let mut passed = Passed {
        bytes: raw.len(),
        properties: object_or_none(parts.properties)?,
        integrations: object_or_none(parts.integrations)?,
        context: Vec::with_capacity(parts.context.as_ref().map_or(0, Vec::len)),
        sent: Sent::default(),
    };
    if let Some(p) = passed.properties {
        clean(p, 0, true, limits)?;
    }
    if let Some(i) = passed.integrations {
        clean(i, 0, false, limits)?;
    }
    let context = match parts.context {
        None => None,
        Some(members) => {
            let mut decoded = Object::new();
            for (key, value) in members {
                match context_use(&key) {
                    Use::Decoded => {
                        decoded.insert(key.into_owned(), serde_json::from_str(value.get()).ok()?);
                    }
                    Use::Read => {
                        clean(value, 1, false, limits)?;
                        passed.sent.read(&key, value)?;
                        passed.context.push((key, value));
                    }
                    Use::Passed => {
                        clean(value, 1, false, limits)?;
                        passed.context.push((key, value));
                    }
                }
            }
            Some(decoded)
        }
    };
    passed.context.sort_by(|a, b| a.0.cmp(&b.0));
    let mut event = parts.event;
    event.context = context;
    Some((event, passed))
}

/// `context.page` as enrichment reads it (a duplicate of either key fails it).
#[derive(Deserialize)]
struct PageRead<'a> {
    #[serde(borrow)]
    url: Option<Text<'a>>,
    #[serde(borrow)]
    referrer: Option<Text<'a>>,
}

/// Any JSON value, keeping it if a string (borrowed unless it has escapes).
struct Text<'a>(Option<Cow<'a, str>>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Text<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Text<'a>, E> {
                Ok(Text(Some(Cow::Borrowed(v))))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Text<'a>, E> {
                Ok(Text(Some(Cow::Owned(v.to_owned()))))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Text<'a>, E> {
                Ok(Text(None))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Text<'a>, E> {
                Ok(Text(None))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Text<'a>, E> {
                Ok(Text(None))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Text<'a>, E> {
                Ok(Text(None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Text<'a>, E> {
                Ok(Text(None))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Text<'a>, A::Error> {
                while seq.next_element::<de::IgnoredAny>()?.is_some() {}
                Ok(Text(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Text<'a>, A::Error> {
                while map
                    .next_entry::<de::IgnoredAny, de::IgnoredAny>()?
                    .is_some()
                {}
                Ok(Text(None))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

/// `null` is absent; anything but an object is for the full decode to reject.
fn object_or_none(raw: Option<&RawValue>) -> Option<Option<&RawValue>> {
    match raw {
        Some(r) if r.get() == "null" => Some(None),
        Some(r) if r.get().starts_with('{') => Some(Some(r)),
        Some(_) => None,
        None => Some(None),
    }
}

/// Walk JSON that the decoder has already checked for syntax, for what
/// validation would find or a full decode would read differently; `None` if
/// anything is in doubt. `depth` is the value's own depth as validation
/// counts it (members of `properties` are at 1); `count_keys` applies the
/// key limit (`properties`, `traits`).
fn clean(raw: &RawValue, depth: usize, count_keys: bool, limits: &Limits) -> Option<()> {
    let bytes = raw.get().as_bytes();
    // Open containers: `true` for an object.
    let mut open: Vec<bool> = Vec::new();
    let mut keys = 0usize;
    let mut expect_key = false;
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'{' | b'[' => {
                if depth + open.len() >= limits.max_depth {
                    return None;
                }
                open.push(b == b'{');
                expect_key = b == b'{';
                i += 1;
            }
            b'}' | b']' => {
                open.pop();
                expect_key = false;
                i += 1;
            }
            b',' => {
                expect_key = open.last() == Some(&true);
                i += 1;
            }
            b':' => {
                expect_key = false;
                i += 1;
            }
            b'"' => {
                let start = i + 1;
                i = start;
                loop {
                    i = crate::scan::to_quote_or_escape(bytes, i);
                    match *bytes.get(i)? {
                        b'"' => break,
                        b'\\' => {
                            if bytes.get(i + 1) == Some(&b'u') {
                                let hex = std::str::from_utf8(bytes.get(i + 2..i + 6)?).ok()?;
                                let unit = u16::from_str_radix(hex, 16).ok()?;
                                if (0xD800..=0xDFFF).contains(&unit) {
                                    return None;
                                }
                                i += 6;
                            } else {
                                i += 2;
                            }
                        }
                        _ => return None, // not reached: it stops at a quote or a backslash
                    }
                }
                if i - start > limits.max_string_len {
                    return None;
                }
                if expect_key {
                    keys += 1;
                    expect_key = false;
                }
                i += 1;
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                while bytes
                    .get(i)
                    .is_some_and(|b| matches!(b, b'-' | b'+' | b'.' | b'0'..=b'9' | b'e' | b'E'))
                {
                    i += 1;
                }
                let number = &bytes[start..i];
                if number.len() > MAX_NUMBER_LEN || number.iter().any(|b| matches!(b, b'e' | b'E'))
                {
                    return None;
                }
            }
            _ => i += 1,
        }
    }
    (!count_keys || keys <= limits.max_properties).then_some(())
}

impl<'a> Passed<'a> {
    /// What enrichment reads of `context.userAgent` and `context.page`.
    pub fn sent(&self) -> &Sent<'a> {
        &self.sent
    }

    /// The event as JSON, as `serde_json::to_string(&event)` writes it, with
    /// what was passed through spliced back in and the members `added`
    /// (whose keys the event's `context` does not have) written into `context`.
    pub fn encode(&self, event: &Event, added: &Added) -> Result<String, serde_json::Error> {
        let Event {
            kind,
            message_id,
            anonymous_id,
            user_id,
            event: action,
            name,
            category,
            properties,
            traits,
            group_id,
            previous_id,
            timestamp,
            original_timestamp,
            sent_at,
            received_at,
            context,
            integrations,
            extra,
        } = event;
        let mut out = Writer::with_capacity(self.bytes + 512);
        out.push("{\"type\":\"");
        out.push(kind.as_str());
        out.push("\"");
        out.key("messageId")?;
        out.string(message_id)?;
        for (k, v) in [
            ("anonymousId", anonymous_id),
            ("userId", user_id),
            ("event", action),
            ("name", name),
            ("category", category),
        ] {
            text(&mut out, k, v)?;
        }
        passed_or(&mut out, "properties", self.properties, properties)?;
        passed_or(&mut out, "traits", None, traits)?;
        for (k, v) in [
            ("groupId", group_id),
            ("previousId", previous_id),
            ("timestamp", timestamp),
            ("originalTimestamp", original_timestamp),
            ("sentAt", sent_at),
            ("receivedAt", received_at),
        ] {
            text(&mut out, k, v)?;
        }
        self.context(&mut out, context.as_ref(), added.context())?;
        passed_or(&mut out, "integrations", self.integrations, integrations)?;
        for (k, v) in extra {
            out.key(k)?;
            out.value(v)?;
        }
        out.push("}");
        Ok(out.finish())
    }

    /// `context`: the pipeline's members, the passed-through ones and those
    /// added, in key order (as a map writes them).
    fn context(
        &self,
        out: &mut Writer,
        decoded: Option<&Object>,
        added: &[(&'static str, Json)],
    ) -> Result<(), serde_json::Error> {
        if decoded.is_none() && self.context.is_empty() && added.is_empty() {
            return Ok(());
        }
        out.key("context")?;
        out.push("{");
        let mut passed = self
            .context
            .iter()
            .map(|(k, v)| (k.as_ref(), Piece::Sent(v)))
            .peekable();
        let mut held = decoded
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.as_str(), Piece::Held(v)))
            .peekable();
        let mut added = added.iter().map(|(k, v)| (*k, Piece::Added(v))).peekable();
        let mut first = true;
        loop {
            let heads = [passed.peek(), held.peek(), added.peek()];
            let Some(key) = heads.into_iter().flatten().map(|(k, _)| *k).min() else {
                break;
            };
            // A read-only member the pipeline wrote (`consent` with GPC) is
            // both held and sent: the held one is written.
            let piece = [
                next_at(&mut held, key),
                next_at(&mut passed, key),
                next_at(&mut added, key),
            ]
            .into_iter()
            .flatten()
            .next();
            if !std::mem::take(&mut first) {
                out.push(",");
            }
            out.string(key)?;
            out.push(":");
            match piece {
                Some(Piece::Sent(raw)) => out.push(raw.get()),
                Some(Piece::Held(v)) => out.value(v)?,
                Some(Piece::Added(j)) => out.json(j)?,
                None => {} // not reached: the key is some source's head
            }
        }
        out.push("}");
        Ok(())
    }
}

/// The source's next member if its key is `key`.
fn next_at<'a, I: Iterator<Item = (&'a str, Piece<'a>)>>(
    source: &mut std::iter::Peekable<I>,
    key: &str,
) -> Option<Piece<'a>> {
    source.next_if(|(k, _)| *k == key).map(|(_, p)| p)
}

/// A `context` member's value, from where it is kept.
enum Piece<'a> {
    Sent(&'a RawValue),
    Held(&'a Value),
    Added(&'a Json),
}

/// `,"k":"v"` if there is a `v`.
fn text(out: &mut Writer, k: &str, v: &Option<String>) -> Result<(), serde_json::Error> {
    if let Some(v) = v {
        out.key(k)?;
        out.string(v)?;
    }
    Ok(())
}

/// `,"k":` and what was passed through, else what the pipeline holds (if anything).
fn passed_or(
    out: &mut Writer,
    k: &str,
    passed: Option<&RawValue>,
    held: &Option<Object>,
) -> Result<(), serde_json::Error> {
    match (passed, held) {
        (Some(raw), _) => {
            out.key(k)?;
            out.push(raw.get());
        }
        (None, Some(o)) => {
            out.key(k)?;
            out.object(o)?;
        }
        (None, None) => {}
    }
    Ok(())
}

/// An event's top level, decoded as [`Event`]'s derive does, with the parts
/// the fast lane passes through kept as bytes.
struct Parts<'a> {
    event: Event,
    properties: Option<&'a RawValue>,
    integrations: Option<&'a RawValue>,
    context: Option<Vec<(Cow<'a, str>, &'a RawValue)>>,
}

/// An id as [`Event`] decodes it (a number is kept as text).
struct Id(Option<String>);

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        opt_id(d).map(Id)
    }
}

/// A key, borrowed from the input unless it has escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Key<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Key<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'a>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'a>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(V(std::marker::PhantomData))
    }
}

/// `context`'s members, as sent; a duplicate key is an error (for the full decode).
struct Members<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'de: 'a, 'a> Deserialize<'de> for Members<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Members<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Members<'a>, A::Error> {
                let mut members: Vec<(Cow<'a, str>, &'a RawValue)> = Vec::with_capacity(16);
                while let Some(Key(key)) = map.next_key()? {
                    if members.iter().any(|(k, _)| *k == key) {
                        return Err(de::Error::custom("duplicate key"));
                    }
                    members.push((key, map.next_value()?));
                }
                Ok(Members(members))
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

/// The top-level keys [`Event`] has a field for, numbered (a bit each, to catch a duplicate).
fn field(key: &str) -> Option<u32> {
    Some(match key {
        "type" => 0,
        "messageId" => 1,
        "anonymousId" => 2,
        "userId" => 3,
        "groupId" => 4,
        "previousId" => 5,
        "event" => 6,
        "name" => 7,
        "category" => 8,
        "timestamp" => 9,
        "originalTimestamp" => 10,
        "sentAt" => 11,
        "receivedAt" => 12,
        "traits" => 13,
        "properties" => 14,
        "integrations" => 15,
        "context" => 16,
        _ => return None,
    })
}

impl<'de: 'a, 'a> Deserialize<'de> for Parts<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Parts<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("struct Event")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Parts<'a>, A::Error> {
                let mut seen = 0u32;
                let mut kind: Option<EventType> = None;
                let mut event = Event::new(EventType::Track, "");
                let mut properties = None;
                let mut integrations = None;
                let mut context = None;
                while let Some(Key(key)) = map.next_key()? {
                    let Some(field) = field(&key) else {
                        let value: Value = map.next_value()?;
                        if event.extra.insert(key.into_owned(), value).is_some() {
                            return Err(de::Error::custom("duplicate key"));
                        }
                        continue;
                    };
                    if seen & (1 << field) != 0 {
                        return Err(de::Error::custom("duplicate key"));
                    }
                    seen |= 1 << field;
                    match field {
                        0 => kind = Some(map.next_value()?),
                        1 => event.message_id = map.next_value::<Id>()?.0.unwrap_or_default(),
                        2 => event.anonymous_id = map.next_value::<Id>()?.0,
                        3 => event.user_id = map.next_value::<Id>()?.0,
                        4 => event.group_id = map.next_value::<Id>()?.0,
                        5 => event.previous_id = map.next_value::<Id>()?.0,
                        6 => event.event = map.next_value()?,
                        7 => event.name = map.next_value()?,
                        8 => event.category = map.next_value()?,
                        9 => event.timestamp = map.next_value()?,
                        10 => event.original_timestamp = map.next_value()?,
                        11 => event.sent_at = map.next_value()?,
                        12 => event.received_at = map.next_value()?,
                        13 => event.traits = map.next_value()?,
                        14 => properties = map.next_value()?,
                        15 => integrations = map.next_value()?,
                        _ => context = map.next_value::<Option<Members<'a>>>()?.map(|m| m.0),
                    }
                }
                event.kind = kind.ok_or_else(|| de::Error::missing_field("type"))?;
                Ok(Parts {
                    event,
                    properties,
                    integrations,
                    context,
                })
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}
