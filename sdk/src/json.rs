//! Building event JSON as text. The page's own values (properties, traits,
//! ids it chose) are serialised by `JSON.stringify`; the SDK's parts (ids,
//! times, session, viewport) are written here, so an event crosses from JS to
//! the Wasm as a few short strings rather than as one large object and its
//! serialisation.

use crate::prelude::*;

/// The members of a serialised object: `{"a":1,"b":2}` → `"a":1,"b":2`
/// (empty for `{}` or anything that is not an object).
pub fn members(object: &str) -> &str {
    match object.as_bytes() {
        [b'{', .., b'}'] => object.get(1..object.len() - 1).unwrap_or_default(),
        _ => "",
    }
}

/// Append `member` (a `"key":value` list) after a comma, unless it is empty.
pub fn push_members(out: &mut String, member: &str) {
    if !member.is_empty() {
        out.push(',');
        out.push_str(member);
    }
}

/// The parts joined: `[..].concat()` without its overflow checks and panics
/// (smaller Wasm).
pub fn cat(parts: &[&str]) -> String {
    let mut out = String::new();
    push_all(&mut out, parts);
    out
}

/// Append every part (one loop instead of a call per part: smaller Wasm).
#[inline(never)]
pub fn push_all(out: &mut String, parts: &[&str]) {
    for p in parts {
        out.push_str(p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_are_the_inside_of_an_object() {
        assert_eq!(members(r#"{"a":1,"b":{"c":2}}"#), r#""a":1,"b":{"c":2}"#);
        assert_eq!(members("{}"), "");
        assert_eq!(members("[1]"), "");
        assert_eq!(members(""), "");
        assert_eq!(members("{"), "");
    }

    #[test]
    fn members_are_written() {
        let mut s = String::from("{");
        push_all(&mut s, &[r#""n":"#, "0", r#","m":"#, "1"]);
        push_members(&mut s, "");
        push_members(&mut s, r#""id":"x-1""#);
        s.push('}');
        assert_eq!(s, r#"{"n":0,"m":1,"id":"x-1"}"#);
    }
}
