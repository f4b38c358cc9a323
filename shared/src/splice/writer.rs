//! JSON text written straight into one buffer, byte for byte as
//! `serde_json::to_string` writes the same values: a string is copied whole
//! when nothing in it needs an escape (checked eight bytes at a time), and
//! only a string that does, and numbers, go through `serde_json`. (Through
//! `serde_json`'s `io::Write` path every quote and comma is its own call,
//! which in the worker's size-optimised Wasm was most of encoding's cost.)

use super::Json;
use crate::event::Object;
use serde_json::Value;

/// JSON text being written (a `String` throughout: every piece is text,
/// so the result needs no UTF-8 check at the end).
pub(super) struct Writer(String);

impl Writer {
    pub(super) fn with_capacity(bytes: usize) -> Writer {
        Writer(String::with_capacity(bytes))
    }

    /// Text that is already JSON (punctuation, a passed-through value).
    pub(super) fn push(&mut self, json: &str) {
        self.0.push_str(json);
    }

    /// `s` as a JSON string.
    pub(super) fn string(&mut self, s: &str) -> Result<(), serde_json::Error> {
        if is_plain(s.as_bytes()) {
            self.0.push('"');
            self.0.push_str(s);
            self.0.push('"');
        } else {
            self.0.push_str(&serde_json::to_string(s)?);
        }
        Ok(())
    }

    /// `,"k":` (a member after the first).
    pub(super) fn key(&mut self, k: &str) -> Result<(), serde_json::Error> {
        if is_plain(k.as_bytes()) {
            self.0.push_str(",\"");
            self.0.push_str(k);
            self.0.push_str("\":");
            return Ok(());
        }
        self.0.push(',');
        self.string(k)?;
        self.0.push(':');
        Ok(())
    }

    pub(super) fn value(&mut self, v: &Value) -> Result<(), serde_json::Error> {
        match v {
            Value::Null => self.push("null"),
            Value::Bool(b) => self.push(if *b { "true" } else { "false" }),
            Value::Number(n) => self.0.push_str(&serde_json::to_string(n)?),
            Value::String(s) => self.string(s)?,
            Value::Array(a) => {
                self.0.push('[');
                for (i, item) in a.iter().enumerate() {
                    if i > 0 {
                        self.0.push(',');
                    }
                    self.value(item)?;
                }
                self.0.push(']');
            }
            Value::Object(o) => self.object(o)?,
        }
        Ok(())
    }

    pub(super) fn object(&mut self, o: &Object) -> Result<(), serde_json::Error> {
        self.members(o.iter().map(|(k, v)| (k.as_str(), v)), Writer::value)
    }

    /// `{"k":v,…}`, each value written by `write`.
    fn members<'m, V: 'm>(
        &mut self,
        members: impl Iterator<Item = (&'m str, &'m V)>,
        write: fn(&mut Writer, &V) -> Result<(), serde_json::Error>,
    ) -> Result<(), serde_json::Error> {
        self.0.push('{');
        for (i, (k, v)) in members.enumerate() {
            if i > 0 {
                self.0.push(',');
            }
            self.string(k)?;
            self.0.push(':');
            write(self, v)?;
        }
        self.0.push('}');
        Ok(())
    }

    /// A member the pipeline added (see [`super::Added`]).
    pub(super) fn json(&mut self, j: &Json) -> Result<(), serde_json::Error> {
        match j {
            Json::Text(t) => self.push(t),
            Json::Str(s) => self.string(s)?,
            Json::Code(s) => self.string(s)?,
            Json::Value(v) => self.value(v)?,
            Json::Members(members) => {
                self.members(members.iter().map(|(k, v)| (*k, v)), Writer::json)?
            }
        }
        Ok(())
    }

    /// The text.
    pub(super) fn finish(self) -> String {
        self.0
    }
}

/// Nothing in `bytes` needs an escape in a JSON string (no quote, backslash
/// or control character).
fn is_plain(bytes: &[u8]) -> bool {
    super::walk::to_special(bytes, 0) == bytes.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn writes_what_serde_json_writes() {
        let v = json!({"plain": "just text é 😀", "quote": "a\"b", "slash": "a\\b/c",
            "controls": "\u{0}\u{1f}\t\n\r", "long": "x".repeat(37) + "\"", "n": [0, -1, 1.5, 1e300, u64::MAX],
            "nested": {"a": [null, true, false, {"": ""}]}, "k\"ey\n": 1});
        for value in [v.clone(), json!("\u{7f}"), json!([]), json!({})] {
            let mut w = Writer::with_capacity(0);
            w.value(&value).unwrap();
            assert_eq!(w.finish(), serde_json::to_string(&value).unwrap());
        }
        for n in 0..=255u8 {
            let s =
                String::from_utf8_lossy(&[b'a'; 9].iter().copied().chain([n]).collect::<Vec<u8>>())
                    .into_owned();
            let mut w = Writer::with_capacity(0);
            w.string(&s).unwrap();
            assert_eq!(w.finish(), serde_json::to_string(&s).unwrap(), "{n}");
        }
    }
}
