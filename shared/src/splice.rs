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
//! `messageId`. [`decode`] is one pass over the event's bytes ([`walk`]): it
//! checks the syntax `serde_json` accepts and, in what it passes through, the
//! limits validation applies, while it reads the typed fields and finds the
//! spans [`Passed::encode`] copies; only the values the pipeline reads whole
//! (`traits`, the decoded `context` members, unknown keys) go through
//! `serde_json`. The same event decoded both ways reads back as the same
//! JSON value (`tests/splice.rs` holds the two to that, through the pipeline).
//!
//! Callers must not take this lane when something reads `properties` or
//! other passed-through parts (a tracking plan, audiences).

use crate::event::{EventType, Object};
use crate::validate::Limits;
use crate::Event;
use serde_json::Value;
use std::borrow::Cow;
use walk::{Checks, Walk};
use writer::Writer;

mod added;
mod walk;
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

/// What [`decode`] kept as sent, for [`Passed::encode`].
#[derive(Debug, Clone)]
pub struct Passed<'a> {
    /// Size of the event as sent (the encoding is about as long).
    bytes: usize,
    properties: Option<&'a str>,
    integrations: Option<&'a str>,
    /// `context` members passed through and the read-only ones, as sent, by key.
    context: Vec<(Cow<'a, str>, &'a str)>,
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
    pub consent: Option<&'a str>,
}

impl<'a> Sent<'a> {
    /// Read a read-only member (`userAgent`, `consent` or `page`), whose
    /// text the walk has checked.
    fn read(&mut self, key: &str, value: &'a str) -> Option<()> {
        if key == "userAgent" {
            self.has_user_agent = true;
            self.user_agent = string_of(value)?;
        } else if key == "consent" {
            self.consent = Some(value);
        } else if value.starts_with('{') {
            // `page`: its `url` and `referrer` (a duplicate of either is for the full decode).
            let mut w = Walk::new(value.as_bytes())?;
            w.eat(b'{')?;
            let (mut url, mut referrer) = (None, None);
            let mut first = true;
            while w.more(std::mem::take(&mut first))? {
                let key = w.key()?;
                let slot = match &*key {
                    "url" => &mut url,
                    "referrer" => &mut referrer,
                    _ => {
                        w.value(&Limits::default(), None)?;
                        continue;
                    }
                };
                if slot.is_some() {
                    return None;
                }
                *slot = Some(string_of(w.value(&Limits::default(), None)?)?);
            }
            self.url = url.flatten();
            self.referrer = referrer.flatten();
        }
        Some(())
    }
}

/// A checked value's text as a string if it is one (`Some(None)` if it is not).
fn string_of(value: &str) -> Option<Option<Cow<'_, str>>> {
    if !value.starts_with('"') {
        return Some(None);
    }
    Walk::new(value.as_bytes())?.string().map(Some)
}

/// Decode `raw` (one event of a batch) for the pipeline, or `None` where only
/// a full decode gives the right answer. The event has `properties` and
/// `integrations` unset and only the `context` members the pipeline uses;
/// the rest is in [`Passed`]. One pass over the bytes ([`walk`]): the
/// syntax, the limits and the spans together; only `context.page` (a few
/// hundred bytes) is walked once more, by [`Sent::read`], for its `url` and
/// `referrer`.
pub fn decode<'a>(raw: &'a [u8], limits: &Limits) -> Option<(Event, Passed<'a>)> {
    let mut w = Walk::new(raw)?;
    w.eat(b'{')?;
    let mut passed = Passed {
        bytes: raw.len(),
        properties: None,
        integrations: None,
        context: Vec::new(),
        sent: Sent::default(),
    };
    let mut event = Event::new(EventType::Track, "");
    let mut kind = None;
    let mut seen = 0u32;
    let mut first = true;
    while w.more(std::mem::take(&mut first))? {
        let key = w.key()?;
        let Some(field) = field(&key) else {
            let value: Value = serde_json::from_str(w.value(limits, None)?).ok()?;
            if event.extra.insert(key.into_owned(), value).is_some() {
                return None;
            }
            continue;
        };
        if seen & (1 << field) != 0 {
            return None;
        }
        seen |= 1 << field;
        match field {
            0 => kind = Some(event_type(&w.string()?)?),
            1 => event.message_id = id(&mut w)?.unwrap_or_default(),
            2 => event.anonymous_id = id(&mut w)?,
            3 => event.user_id = id(&mut w)?,
            4 => event.group_id = id(&mut w)?,
            5 => event.previous_id = id(&mut w)?,
            6 => event.event = w.opt_string()?,
            7 => event.name = w.opt_string()?,
            8 => event.category = w.opt_string()?,
            9 => event.timestamp = w.opt_string()?,
            10 => event.original_timestamp = w.opt_string()?,
            11 => event.sent_at = w.opt_string()?,
            12 => event.received_at = w.opt_string()?,
            13 => {
                event.traits = match object_or_none(&mut w, limits, None)? {
                    Some(text) => Some(serde_json::from_str(text).ok()?),
                    None => None,
                }
            }
            14 => passed.properties = object_or_none(&mut w, limits, Some(Checks::top(true)))?,
            15 => passed.integrations = object_or_none(&mut w, limits, Some(Checks::top(false)))?,
            _ => event.context = context(&mut w, limits, &mut passed)?,
        }
    }
    if !w.at_end() || event.message_id.is_empty() {
        return None; // a missing id is derived from the bytes: the full path does that
    }
    event.kind = kind?;
    passed.context.sort_by(|a, b| a.0.cmp(&b.0));
    Some((event, passed))
}

/// `type`, as [`Event`] decodes it (the wire names only).
fn event_type(name: &str) -> Option<EventType> {
    EventType::ALL.into_iter().find(|t| t.as_str() == name)
}

/// An id as [`Event`] decodes it: a string, or `null`; a number is kept as
/// text where it is written as serde_json writes it (digits, no sign);
/// anything else is for the full decode.
fn id(w: &mut Walk<'_>) -> Option<Option<String>> {
    match w.peek()? {
        b'0'..=b'9' => {
            let digits = w.value(&Limits::default(), None)?;
            digits
                .bytes()
                .all(|b| b.is_ascii_digit())
                .then(|| Some(digits.to_owned()))
        }
        _ => w.opt_string(),
    }
}

/// An object's text (walked with `checks`), `Some(None)` for `null`; any
/// other value is for the full decode to reject.
fn object_or_none<'a>(
    w: &mut Walk<'a>,
    limits: &Limits,
    checks: Option<Checks>,
) -> Option<Option<&'a str>> {
    match w.peek()? {
        b'{' => w.value(limits, checks).map(Some),
        _ if w.null() => Some(None),
        _ => None,
    }
}

/// `context`: the members the pipeline uses decoded, the others kept as
/// sent in `passed` (a duplicate key is for the full decode).
fn context<'a>(
    w: &mut Walk<'a>,
    limits: &Limits,
    passed: &mut Passed<'a>,
) -> Option<Option<Object>> {
    if w.null() {
        return Some(None);
    }
    w.eat(b'{')?;
    let mut decoded = Object::new();
    let member = Some(Checks {
        depth: 1,
        count_keys: false,
    });
    let mut first = true;
    while w.more(std::mem::take(&mut first))? {
        let key = w.key()?;
        if decoded.contains_key(&*key) || passed.context.iter().any(|(k, _)| *k == key) {
            return None;
        }
        match context_use(&key) {
            Use::Decoded => {
                let value = serde_json::from_str(w.value(limits, None)?).ok()?;
                decoded.insert(key.into_owned(), value);
            }
            Use::Read => {
                let value = w.value(limits, member)?;
                passed.sent.read(&key, value)?;
                passed.context.push((key, value));
            }
            Use::Passed => {
                let value = w.value(limits, member)?;
                passed.context.push((key, value));
            }
        }
    }
    Some(Some(decoded))
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
                Some(Piece::Sent(raw)) => out.push(raw),
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
    Sent(&'a str),
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
    passed: Option<&str>,
    held: &Option<Object>,
) -> Result<(), serde_json::Error> {
    match (passed, held) {
        (Some(raw), _) => {
            out.key(k)?;
            out.push(raw);
        }
        (None, Some(o)) => {
            out.key(k)?;
            out.object(o)?;
        }
        (None, None) => {}
    }
    Ok(())
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
