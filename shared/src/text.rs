//! Decimal digits by hand. `core::fmt` is several KB of Wasm, and the browser
//! SDK formats nothing else, so numbers it writes go through here.

use alloc::string::String;

/// Append `n` in decimal, left-padded with zeros to at least `width`
/// digits (at most 20).
pub fn push_decimal(out: &mut String, n: u64, width: usize) {
    let mut digits = [b'0'; 20];
    let mut n = n;
    let mut len = 0;
    let width = width.clamp(1, digits.len());
    while n > 0 || len < width {
        digits[len] = b'0' + (n % 10) as u8;
        n /= 10;
        len += 1;
    }
    out.extend(digits[..len].iter().rev().map(|d| char::from(*d)));
}

/// `n` in decimal.
pub fn decimal(n: u64) -> String {
    let mut out = String::new();
    push_decimal(&mut out, n, 1);
    out
}

/// `s` as a decimal number: one or more ASCII digits and nothing else,
/// `None` otherwise or past `u64::MAX`. (`str::parse::<u64>` also takes a
/// sign; this is what the stored and reported numbers are, in less Wasm.)
pub fn parse_u64(s: &str) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    s.bytes().try_fold(0u64, |n, b| {
        let d = b.wrapping_sub(b'0');
        (d < 10).then_some(())?;
        n.checked_mul(10)?.checked_add(u64::from(d))
    })
}

/// `s` split at each `sep`, as `str::split` with a `char` does for an ASCII
/// separator (a UTF-8 continuation byte is never ASCII, so the pieces are
/// the same): a byte scan, without core's char searcher and `memchr` (less
/// Wasm in the browser SDK, whose separators are all ASCII).
pub fn split(s: &str, sep: u8) -> Split<'_> {
    Split { rest: Some(s), sep }
}

/// The iterator of [`split`].
pub struct Split<'a> {
    rest: Option<&'a str>,
    sep: u8,
}

impl<'a> Iterator for Split<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let s = self.rest?;
        let (piece, rest) = match split_once(s, self.sep) {
            Some((a, b)) => (a, Some(b)),
            None => (s, None),
        };
        self.rest = rest;
        Some(piece)
    }
}

/// `s` around its first `sep` (an ASCII byte), as `str::split_once` with a `char`.
pub fn split_once(s: &str, sep: u8) -> Option<(&str, &str)> {
    let i = s.bytes().position(|b| b == sep)?;
    Some((s.get(..i)?, s.get(i + 1..)?))
}

/// Whether `s` holds the ASCII byte `b`.
pub fn has(s: &str, b: u8) -> bool {
    s.bytes().any(|c| c == b)
}

/// `s` without the ASCII byte `b` repeated at its start, as `trim_start_matches(char)`.
pub fn trim_start(s: &str, b: u8) -> &str {
    let n = s.bytes().take_while(|c| *c == b).count();
    s.get(n..).unwrap_or(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_splits_read_as_chars_split() {
        let texts = ["", ";", "a", "a;b", ";a;;b;", "é;ü=1;=", "k=v=w", "日本;語"];
        for t in texts {
            let ours: Vec<&str> = split(t, b';').collect();
            let core: Vec<&str> = t.split(';').collect();
            assert_eq!(ours, core, "{t:?}");
            assert_eq!(split_once(t, b'='), t.split_once('='), "{t:?}");
            assert_eq!(has(t, b'='), t.contains('='), "{t:?}");
        }
        assert_eq!(trim_start("??a?", b'?'), "a?");
        assert_eq!(trim_start("???", b'?'), "");
        assert_eq!(trim_start("é?", b'?'), "é?");
    }

    #[test]
    fn reads_digits_only() {
        assert_eq!(parse_u64("0"), Some(0));
        assert_eq!(parse_u64("0042"), Some(42));
        assert_eq!(parse_u64("18446744073709551615"), Some(u64::MAX));
        for bad in [
            "",
            "+1",
            "-1",
            " 1",
            "1 ",
            "1.5",
            "18446744073709551616",
            "x",
            "١",
        ] {
            assert_eq!(parse_u64(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn writes_digits_with_padding() {
        assert_eq!(decimal(0), "0");
        assert_eq!(decimal(42), "42");
        assert_eq!(decimal(u64::MAX), "18446744073709551615");
        let mut s = String::from("x");
        push_decimal(&mut s, 7, 3);
        push_decimal(&mut s, 1234, 2);
        assert_eq!(s, "x0071234");
    }
}
