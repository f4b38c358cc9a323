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

#[cfg(test)]
mod tests {
    use super::*;

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
