//! The structure of a JSON body without decoding it: the members of its
//! top-level object and the elements of an array, as byte spans.
//!
//! A batch is split this way before any event is decoded, so that what is
//! wrong inside one event (bytes that are not UTF-8, a lone surrogate, `NaN`,
//! nesting past the decoder's recursion limit, a duplicate key) is that
//! event's error and not the whole request's. The scan is iterative (no
//! recursion, so no stack to exhaust) and strict only where it splits: the
//! top-level object, and the array it is asked to split. Inside a member or an
//! element it only balances brackets and skips strings; `serde_json` then
//! decodes each span on its own and reports what is wrong with it.

use core::fmt;

/// Why a body cannot be split.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ScanError {
    /// The body (or the span) is not the kind of value asked for.
    Expected { what: &'static str, at: usize },
    /// A string, object or array is not closed, or a bracket closes the wrong one.
    Unbalanced { at: usize },
    /// Something other than whitespace follows the value.
    Trailing { at: usize },
}

impl ScanError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            ScanError::Expected { .. } => "scan_expected",
            ScanError::Unbalanced { .. } => "scan_unbalanced",
            ScanError::Trailing { .. } => "scan_trailing",
        }
    }
}

impl fmt::Display for ScanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScanError::Expected { what, at } => write!(f, "expected {what} at byte {at}"),
            ScanError::Unbalanced { at } => {
                write!(
                    f,
                    "unterminated or mismatched string, object or array at byte {at}"
                )
            }
            ScanError::Trailing { at } => write!(f, "unexpected data after the value at byte {at}"),
        }
    }
}

/// One member of an object: the key as written (with its quotes and escapes)
/// and the value's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member<'a> {
    pub key: &'a [u8],
    pub value: &'a [u8],
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

#[inline(always)]
fn skip_ws(bytes: &[u8], mut at: usize) -> usize {
    while bytes.get(at).copied().is_some_and(is_ws) {
        at += 1;
    }
    at
}

/// End (exclusive) of the string starting at `at` (which is a `"`).
#[inline(always)]
fn skip_string(bytes: &[u8], at: usize) -> Result<usize, ScanError> {
    let mut i = at + 1;
    loop {
        i = to_special::<false>(bytes, i);
        match bytes.get(i) {
            Some(b'\\') => i += 2,
            Some(_) => return Ok(i + 1),
            None => return Err(ScanError::Unbalanced { at }),
        }
    }
}

/// The first index from `at` holding a quote or a backslash (with
/// `CONTROL`, a control character too), or the length. Most of a body is
/// string contents, skipped here eight bytes at a time: the lowest byte a
/// word's mask flags is the first such byte (a borrow only flags bytes
/// above one that is flagged), so a short string is one word, not a loop
/// over its bytes.
#[inline(always)]
pub(crate) fn to_special<const CONTROL: bool>(bytes: &[u8], mut at: usize) -> usize {
    const ONES: u64 = u64::from_le_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_le_bytes([0x80; 8]);
    while let Some(chunk) = bytes.get(at..at + 8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let w = u64::from_le_bytes(word);
        let quote = w ^ (ONES * u64::from(b'"'));
        let backslash = w ^ (ONES * u64::from(b'\\'));
        let mut mask =
            quote.wrapping_sub(ONES) & !quote | backslash.wrapping_sub(ONES) & !backslash;
        if CONTROL {
            mask |= w.wrapping_sub(ONES * 0x20) & !w;
        }
        mask &= HIGHS;
        if mask != 0 {
            return at + (mask.trailing_zeros() / 8) as usize;
        }
        at += 8;
    }
    while let Some(&b) = bytes.get(at) {
        if b == b'"' || b == b'\\' || (CONTROL && b < 0x20) {
            break;
        }
        at += 1;
    }
    at
}

/// End (exclusive) of the value starting at `at` (after whitespace).
fn skip_value(bytes: &[u8], at: usize) -> Result<usize, ScanError> {
    match bytes.get(at) {
        None => Err(ScanError::Expected {
            what: "a value",
            at,
        }),
        Some(b'"') => skip_string(bytes, at),
        Some(b'{' | b'[') => {
            let mut closers: Vec<u8> = Vec::new();
            let mut i = at;
            while let Some(&b) = bytes.get(i) {
                match b {
                    b'"' => {
                        i = skip_string(bytes, i)?;
                        continue;
                    }
                    b'{' => closers.push(b'}'),
                    b'[' => closers.push(b']'),
                    b'}' | b']' => {
                        if closers.pop() != Some(b) {
                            return Err(ScanError::Unbalanced { at: i });
                        }
                        if closers.is_empty() {
                            return Ok(i + 1);
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
            Err(ScanError::Unbalanced { at })
        }
        Some(_) => {
            // A scalar (number, literal, or junk the decoder will name): up to the next delimiter.
            let mut i = at;
            while let Some(&b) = bytes.get(i) {
                if is_ws(b) || matches!(b, b',' | b':' | b'}' | b']' | b'{' | b'[' | b'"') {
                    break;
                }
                i += 1;
            }
            if i == at {
                Err(ScanError::Expected {
                    what: "a value",
                    at,
                })
            } else {
                Ok(i)
            }
        }
    }
}

fn expect(bytes: &[u8], at: usize, byte: u8, what: &'static str) -> Result<usize, ScanError> {
    if bytes.get(at) == Some(&byte) {
        Ok(at + 1)
    } else {
        Err(ScanError::Expected { what, at })
    }
}

fn end(bytes: &[u8], at: usize) -> Result<(), ScanError> {
    let at = skip_ws(bytes, at);
    if at == bytes.len() {
        Ok(())
    } else {
        Err(ScanError::Trailing { at })
    }
}

/// The members of the object `bytes` holds (surrounding whitespace allowed), in order.
pub fn object_members(bytes: &[u8]) -> Result<Vec<Member<'_>>, ScanError> {
    object_members_splitting(bytes, b"").map(|s| s.members)
}

/// An object's members, and the elements of one of them (see
/// [`object_members_splitting`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Members<'a> {
    pub members: Vec<Member<'a>>,
    pub split: Option<Vec<&'a [u8]>>,
}

/// [`object_members`], and in the same pass the [`array_elements`] of the
/// last member whose key is written exactly `key` (quotes included, e.g.
/// `"batch"`), if its value is an array that splits: a batch body is scanned
/// once, not once for the envelope and again for its events. `None` when no
/// such member splits (the caller splits the value itself, and gets the same
/// elements or the same error as before).
pub fn object_members_splitting<'a>(
    bytes: &'a [u8],
    split_key: &[u8],
) -> Result<Members<'a>, ScanError> {
    let mut at = expect(bytes, skip_ws(bytes, 0), b'{', "an object")?;
    let mut members = Vec::new();
    let mut split = None;
    at = skip_ws(bytes, at);
    if bytes.get(at) == Some(&b'}') {
        end(bytes, at + 1)?;
        return Ok(Members { members, split });
    }
    loop {
        at = skip_ws(bytes, at);
        if bytes.get(at) != Some(&b'"') {
            return Err(ScanError::Expected {
                what: "a string key",
                at,
            });
        }
        let key_end = skip_string(bytes, at)?;
        let key = &bytes[at..key_end];
        at = expect(bytes, skip_ws(bytes, key_end), b':', "`:`")?;
        let start = skip_ws(bytes, at);
        let value_end = if !split_key.is_empty() && key == split_key {
            // The last such member is the one that counts.
            split = None;
            match split_array(bytes, start) {
                Ok((elements, value_end)) => {
                    split = Some(elements);
                    value_end
                }
                Err(_) => skip_value(bytes, start)?,
            }
        } else {
            skip_value(bytes, start)?
        };
        members.push(Member {
            key,
            value: &bytes[start..value_end],
        });
        at = skip_ws(bytes, value_end);
        match bytes.get(at) {
            Some(b',') => at += 1,
            Some(b'}') => {
                end(bytes, at + 1)?;
                return Ok(Members { members, split });
            }
            _ => {
                return Err(ScanError::Expected {
                    what: "`,` or `}`",
                    at,
                })
            }
        }
    }
}

/// The elements of the array `bytes` holds (surrounding whitespace allowed), in order.
pub fn array_elements(bytes: &[u8]) -> Result<Vec<&[u8]>, ScanError> {
    let (elements, at) = split_array(bytes, skip_ws(bytes, 0))?;
    end(bytes, at)?;
    Ok(elements)
}

/// The elements of the array at `at`, and the end (exclusive) of the array.
fn split_array(bytes: &[u8], at: usize) -> Result<(Vec<&[u8]>, usize), ScanError> {
    let mut at = expect(bytes, at, b'[', "an array")?;
    let mut elements = Vec::new();
    at = skip_ws(bytes, at);
    if bytes.get(at) == Some(&b']') {
        return Ok((elements, at + 1));
    }
    loop {
        let start = skip_ws(bytes, at);
        let value_end = skip_value(bytes, start)?;
        elements.push(&bytes[start..value_end]);
        at = skip_ws(bytes, value_end);
        match bytes.get(at) {
            Some(b',') => at += 1,
            Some(b']') => return Ok((elements, at + 1)),
            _ => {
                return Err(ScanError::Expected {
                    what: "`,` or `]`",
                    at,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_an_envelope_into_members_and_a_batch_into_elements() {
        let body = br#" {"batch": [ {"a":[1,{"b":"]}"}]} , 42,"x\"y", [] ], "sentAt" : 5 } "#;
        let members = object_members(body).unwrap();
        assert_eq!(members.len(), 2);
        assert_eq!(members[0].key, br#""batch""#);
        assert_eq!(members[1].key, br#""sentAt""#);
        assert_eq!(members[1].value, b"5");
        let elements = array_elements(members[0].value).unwrap();
        assert_eq!(
            elements,
            [&br#"{"a":[1,{"b":"]}"}]}"#[..], b"42", br#""x\"y""#, b"[]"]
        );
    }

    /// One pass gives what the two did: the same members, and the same
    /// elements as splitting the member's value again (or `None`, where the
    /// caller splits it and gets the error it always got).
    #[test]
    fn splitting_while_scanning_the_envelope_gives_what_splitting_after_gives() {
        let bodies: [&[u8]; 9] = [
            br#" {"batch": [ {"a":[1,{"b":"]}"}]} , 42,"x\"y", [] ], "sentAt" : 5 } "#,
            br#"{"sentAt":1,"batch":[]}"#,
            br#"{"batch":[1 2],"x":1}"#,
            br#"{"batch":[1,],"x":1}"#,
            br#"{"batch":{"a":[1]}}"#,
            br#"{"batch":null}"#,
            br#"{"batch":[1,2]}"#,
            br#"{"batch":[1],"batch":[2,3]}"#,
            br#"{"x":[1,2]}"#,
        ];
        for body in bodies {
            let Members { members, split } = object_members_splitting(body, br#""batch""#).unwrap();
            assert_eq!(members, object_members(body).unwrap());
            let last = members.iter().rev().find(|m| m.key == br#""batch""#);
            assert_eq!(
                split,
                last.and_then(|m| array_elements(m.value).ok()),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        for bad in [
            &b"{\"batch\":[1,2}"[..],
            b"{\"batch\":[1]",
            b"{\"batch\":[1]} x",
        ] {
            assert_eq!(
                object_members_splitting(bad, br#""batch""#).unwrap_err(),
                object_members(bad).unwrap_err()
            );
        }
    }

    #[test]
    fn what_is_inside_a_value_is_left_to_the_decoder() {
        // Not UTF-8, NaN and deep nesting inside an element still split.
        let mut body = b"[{\"p\":\"\xff\xfe\"},NaN,".to_vec();
        body.extend(std::iter::repeat_n(b'[', 100_000));
        body.extend(std::iter::repeat_n(b']', 100_000));
        body.extend_from_slice(b",{}]");
        let elements = array_elements(&body).unwrap();
        assert_eq!(elements.len(), 4);
        assert_eq!(elements[1], b"NaN");
        assert_eq!(elements[2].len(), 200_000);
    }

    #[test]
    fn a_strings_scan_stops_at_the_first_special_byte() {
        let text: Vec<u8> = (0u8..=255)
            .chain(b"abcdefghij\"x\\\x01".iter().copied())
            .collect();
        for from in 0..text.len() {
            for to in from..=text.len() {
                let bytes = &text[..to];
                let first = |control: bool| {
                    (from..to)
                        .find(|&i| matches!(bytes[i], b'"' | b'\\') || (control && bytes[i] < 0x20))
                        .unwrap_or(to)
                };
                assert_eq!(
                    to_special::<false>(bytes, from),
                    first(false),
                    "{from}..{to}"
                );
                assert_eq!(to_special::<true>(bytes, from), first(true), "{from}..{to}");
            }
        }
    }

    #[test]
    fn broken_structure_is_an_error() {
        for bad in [
            &b""[..],
            b"[",
            b"{",
            b"{\"a\":1",
            b"{\"a\" 1}",
            b"{\"a\":1,}",
            b"{a:1}",
            b"{\"a\":[}",
            b"{\"a\":\"unterminated}",
            b"{} x",
            b"[1 2]",
            b"[1,]",
            b"42",
        ] {
            assert!(
                object_members(bad).is_err() && array_elements(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(
            object_members(b"{\"a\":[1}").unwrap_err(),
            ScanError::Unbalanced { at: 7 }
        );
        assert_eq!(object_members(b" {} ").unwrap(), vec![]);
        assert_eq!(array_elements(b"[]").unwrap(), Vec::<&[u8]>::new());
    }
}
