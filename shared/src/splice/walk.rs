//! One strict pass over an event's bytes for the fast lane: the JSON syntax
//! `serde_json` accepts, the limits validation applies, and the spans and
//! strings the lane keeps, without building anything it passes through.
//!
//! Where the walk is in doubt it answers `None` and the event is decoded
//! whole instead (as [`super::decode`] documents); it never accepts what
//! `serde_json` rejects. Values the pipeline reads whole (`traits`, the
//! decoded `context` members, unknown top-level keys) are checked here and
//! decoded by `serde_json` from their span.

use crate::validate::Limits;
use std::borrow::Cow;

/// Longest number passed through (a longer one, or one with an exponent, may
/// overflow `f64` where a full decode rejects it).
const MAX_NUMBER_LEN: usize = 18;

/// Deepest nesting the walk tracks (`limits.max_depth` beyond it: the full decode).
const MAX_TRACKED_DEPTH: usize = 64;

/// A reader over one event's text (valid UTF-8: [`Walk::new`] checks it).
pub(super) struct Walk<'a> {
    text: &'a str,
    bytes: &'a [u8],
    at: usize,
}

/// What a limited walk counts of a value (see [`Walk::value`]).
#[derive(Clone, Copy)]
pub(super) struct Checks {
    /// The value's own depth as validation counts it (members of `properties` are at 1).
    pub depth: usize,
    /// Count every key at any depth against `limits.max_properties`.
    pub count_keys: bool,
}

impl Checks {
    /// For a top-level object (`properties`, `integrations`).
    pub fn top(count_keys: bool) -> Checks {
        Checks {
            depth: 0,
            count_keys,
        }
    }
}

impl<'a> Walk<'a> {
    /// A walk over `raw`, or `None` if it is not UTF-8 (the full decode names that).
    pub(super) fn new(raw: &'a [u8]) -> Option<Walk<'a>> {
        let text = std::str::from_utf8(raw).ok()?;
        Some(Walk {
            text,
            bytes: raw,
            at: 0,
        })
    }

    /// Skip whitespace; the next byte, if any.
    #[inline(always)]
    pub(super) fn peek(&mut self) -> Option<u8> {
        while let Some(&b) = self.bytes.get(self.at) {
            if !matches!(b, b' ' | b'\t' | b'\n' | b'\r') {
                return Some(b);
            }
            self.at += 1;
        }
        None
    }

    /// Consume `byte` (after whitespace), or `None`.
    #[inline(always)]
    pub(super) fn eat(&mut self, byte: u8) -> Option<()> {
        (self.peek()? == byte).then(|| self.at += 1)
    }

    /// Nothing but whitespace is left.
    pub(super) fn at_end(&mut self) -> bool {
        self.peek().is_none()
    }

    /// `null` next (consumed if so).
    pub(super) fn null(&mut self) -> bool {
        if self.peek() == Some(b'n') && self.bytes[self.at..].starts_with(b"null") {
            self.at += 4;
            return true;
        }
        false
    }

    /// After `{` or a member: `Some(true)` if another member follows (the
    /// comma consumed), `Some(false)` at the closing `}` (consumed).
    #[inline(always)]
    pub(super) fn more(&mut self, first: bool) -> Option<bool> {
        match self.peek()? {
            b'}' => {
                self.at += 1;
                Some(false)
            }
            b',' if !first => {
                self.at += 1;
                Some(true)
            }
            b'"' if first => Some(true),
            _ => None,
        }
    }

    /// A member's key and its `:`.
    pub(super) fn key(&mut self) -> Option<Cow<'a, str>> {
        let key = self.string()?;
        self.eat(b':')?;
        Some(key)
    }

    /// A string (after whitespace), borrowed unless it has escapes; `None`
    /// for a lone surrogate escape, a control character or bad escape.
    pub(super) fn string(&mut self) -> Option<Cow<'a, str>> {
        if self.peek()? != b'"' {
            return None;
        }
        let start = self.at + 1;
        let mut i = to_special(self.bytes, start);
        if self.bytes.get(i) == Some(&b'"') {
            self.at = i + 1;
            return Some(Cow::Borrowed(&self.text[start..i]));
        }
        let mut owned = String::with_capacity(i - start + 16);
        owned.push_str(&self.text[start..i]);
        loop {
            match *self.bytes.get(i)? {
                b'"' => break,
                b'\\' => {
                    let (c, next) = unescape(self.bytes, i)?;
                    owned.push(c);
                    i = next;
                }
                _ => return None, // a control character
            }
            let run = i;
            i = to_special(self.bytes, i);
            owned.push_str(&self.text[run..i]);
        }
        self.at = i + 1;
        Some(Cow::Owned(owned))
    }

    /// Past a string (after whitespace) without building it; with `pairs`
    /// false, a surrogate pair escape is `None` too (the full decode writes
    /// it back as the character, the lane would copy the escape).
    fn skip_string(&mut self, pairs: bool) -> Option<()> {
        if self.peek()? != b'"' {
            return None;
        }
        let mut i = to_special(self.bytes, self.at + 1);
        loop {
            match *self.bytes.get(i)? {
                b'"' => break,
                b'\\' => {
                    let (c, next) = unescape(self.bytes, i)?;
                    if !pairs && u32::from(c) > 0xFFFF {
                        return None;
                    }
                    i = to_special(self.bytes, next);
                }
                _ => return None, // a control character
            }
        }
        self.at = i + 1;
        Some(())
    }

    /// A string, `Some(None)` for `null`; any other value is `None`.
    pub(super) fn opt_string(&mut self) -> Option<Option<String>> {
        if self.null() {
            return Some(None);
        }
        self.string().map(|s| Some(s.into_owned()))
    }

    /// Where the next value starts (after whitespace).
    #[inline(always)]
    pub(super) fn start(&mut self) -> Option<usize> {
        self.peek()?;
        Some(self.at)
    }

    /// The text from `start` to here.
    pub(super) fn since(&self, start: usize) -> &'a str {
        &self.text[start..self.at]
    }

    /// Walk one value (after whitespace) for `serde_json`'s syntax and, with
    /// `checks`, the limits validation applies: nesting, string length,
    /// the key count; numbers the full decode might read differently (an
    /// exponent, many digits) are `None` too. Returns the value's text.
    pub(super) fn value(&mut self, limits: &Limits, checks: Option<Checks>) -> Option<&'a str> {
        let start = self.start()?;
        // Open containers as bits (1: an object), the innermost lowest.
        let mut open: u64 = 0;
        let mut depth = 0usize;
        let mut keys = 0usize;
        let tracked = checks.map_or(MAX_TRACKED_DEPTH, |c| {
            limits
                .max_depth
                .saturating_sub(c.depth)
                .min(MAX_TRACKED_DEPTH)
        });
        loop {
            // A value.
            match self.peek()? {
                b'{' | b'[' => {
                    let object = self.bytes[self.at] == b'{';
                    if depth >= tracked {
                        return None;
                    }
                    depth += 1;
                    open = open << 1 | u64::from(object);
                    self.at += 1;
                    let close = if object { b'}' } else { b']' };
                    if self.peek()? == close {
                        self.at += 1;
                        depth -= 1;
                        open >>= 1;
                    } else {
                        if object {
                            self.member_key(limits, checks.is_some())?;
                            keys += 1;
                        }
                        continue;
                    }
                }
                b'"' => {
                    let from = self.at;
                    self.skip_string(checks.is_none())?;
                    if checks.is_some() && self.at - from - 2 > limits.max_string_len {
                        return None;
                    }
                }
                b'-' | b'0'..=b'9' => self.number()?,
                b't' => self.literal(b"true")?,
                b'f' => self.literal(b"false")?,
                b'n' => self.literal(b"null")?,
                _ => return None,
            }
            // After a value: close containers, or go on to the next element.
            loop {
                if depth == 0 {
                    if let Some(c) = checks {
                        if c.count_keys && keys > limits.max_properties {
                            return None;
                        }
                    }
                    return Some(self.since(start));
                }
                let object = open & 1 == 1;
                match self.peek()? {
                    b',' => {
                        self.at += 1;
                        if object {
                            self.member_key(limits, checks.is_some())?;
                            keys += 1;
                        }
                        break;
                    }
                    b'}' if object => {}
                    b']' if !object => {}
                    _ => return None,
                }
                self.at += 1;
                depth -= 1;
                open >>= 1;
            }
        }
    }

    /// A key inside a walked value, and its `:`.
    fn member_key(&mut self, limits: &Limits, checked: bool) -> Option<()> {
        let from = self.start()?;
        self.skip_string(!checked)?;
        if checked && self.at - from - 2 > limits.max_string_len {
            return None;
        }
        self.eat(b':')
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        self.bytes[self.at..]
            .starts_with(word)
            .then(|| self.at += word.len())
    }

    /// A number as JSON writes it, short and without an exponent.
    fn number(&mut self) -> Option<()> {
        let start = self.at;
        let b = self.bytes;
        let mut i = start;
        if b.get(i) == Some(&b'-') {
            i += 1;
        }
        match b.get(i)? {
            b'0' => i += 1,
            b'1'..=b'9' => {
                while b.get(i).is_some_and(u8::is_ascii_digit) {
                    i += 1;
                }
            }
            _ => return None,
        }
        if b.get(i) == Some(&b'.') {
            i += 1;
            let digits = i;
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            if i == digits {
                return None;
            }
        }
        if matches!(b.get(i), Some(b'e' | b'E' | b'0'..=b'9')) || i - start > MAX_NUMBER_LEN {
            return None;
        }
        self.at = i;
        Some(())
    }
}

/// The first index from `at` holding a quote, a backslash or a control
/// character (or the length).
#[inline(always)]
pub(super) fn to_special(bytes: &[u8], at: usize) -> usize {
    crate::scan::to_special::<true>(bytes, at)
}

/// The escape at `at` (a backslash): the character and the index after it.
fn unescape(bytes: &[u8], at: usize) -> Option<(char, usize)> {
    let c = match *bytes.get(at + 1)? {
        b'"' => '"',
        b'\\' => '\\',
        b'/' => '/',
        b'b' => '\u{8}',
        b'f' => '\u{c}',
        b'n' => '\n',
        b'r' => '\r',
        b't' => '\t',
        b'u' => {
            let unit = hex4(bytes, at + 2)?;
            if (0xD800..0xDC00).contains(&unit) {
                // A high surrogate: only with a low one after it.
                if bytes.get(at + 6..at + 8) != Some(b"\\u") {
                    return None;
                }
                let low = hex4(bytes, at + 8)?;
                if !(0xDC00..0xE000).contains(&low) {
                    return None;
                }
                let c = 0x10000 + ((u32::from(unit) - 0xD800) << 10) + (u32::from(low) - 0xDC00);
                return Some((char::from_u32(c)?, at + 12));
            }
            return Some((char::from_u32(u32::from(unit))?, at + 6));
        }
        _ => return None,
    };
    Some((c, at + 2))
}

fn hex4(bytes: &[u8], at: usize) -> Option<u16> {
    let mut unit = 0u16;
    for &b in bytes.get(at..at + 4)? {
        unit = unit << 4 | u16::from(char::from(b).to_digit(16)? as u8);
    }
    Some(unit)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn walk(json: &str) -> Option<String> {
        let mut w = Walk::new(json.as_bytes())?;
        let v = w.value(&Limits::default(), None)?.to_owned();
        w.at_end().then_some(v)
    }

    #[test]
    fn accepts_what_serde_json_accepts_and_keeps_the_span() {
        for ok in [
            r#"{"a":[1,-2.5,0,{"b":"x\"y\u00e9\ud83d\ude00"}],"c":true,"d":false,"e":null}"#,
            " [ ] ",
            r#"{ "a" : { } , "b" : [ 1 , 2 ] }"#,
            r#""é€😀""#,
            "-0.0",
        ] {
            assert!(
                serde_json::from_str::<serde_json::Value>(ok).is_ok(),
                "{ok}"
            );
            assert_eq!(walk(ok).as_deref(), Some(ok.trim()), "{ok}");
        }
    }

    #[test]
    fn refuses_what_serde_json_refuses_or_reads_differently() {
        for bad in [
            "{\"a\":1,}",
            "[1,]",
            "[1 2]",
            "{\"a\" 1}",
            "{a:1}",
            "01",
            "1.",
            "-",
            "1e5",
            "12345678901234567890",
            "\"\u{1}\"",
            "\"\\x\"",
            r#""\ud800""#,
            r#""\udc00x""#,
            r#""\ud800\u0041""#,
            "tru",
            "nul",
            "{\"a\":[}",
            "[1}",
            "\"open",
            "NaN",
        ] {
            assert_eq!(walk(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn strings_are_borrowed_unless_escaped_and_unescape_as_serde_json_does() {
        for s in [r#""plain""#, r#""a\nb\t\\\/\"\u0041\u00e9\ud83d\ude00""#] {
            let mut w = Walk::new(s.as_bytes()).unwrap();
            let got = w.string().unwrap();
            assert_eq!(got, serde_json::from_str::<String>(s).unwrap());
            assert_eq!(matches!(got, Cow::Borrowed(_)), !s.contains('\\'));
        }
    }

    #[test]
    fn limits_are_checked_when_asked() {
        let limits = Limits {
            max_depth: 3,
            max_string_len: 4,
            max_properties: 2,
            ..Limits::default()
        };
        let check = |json: &str, depth, count_keys| {
            let mut w = Walk::new(json.as_bytes()).unwrap();
            w.value(&limits, Some(Checks { depth, count_keys }))
                .is_some()
        };
        assert!(check(r#"{"a":{"b":1}}"#, 1, true));
        assert!(!check(r#"{"a":{"b":{}}}"#, 1, false)); // depth 1 + 3 containers
        assert!(!check(r#"{"a":"12345"}"#, 1, false));
        assert!(!check(r#"{"abcde":1}"#, 1, false));
        assert!(!check(r#"{"a":1,"b":{"c":1}}"#, 1, true)); // three keys
        assert!(check(r#"{"a":1,"b":{"c":1}}"#, 1, false));
    }
}
