//! RFC 3339 timestamps without a clock: parse, format, and compare.
//!
//! Times are milliseconds since the Unix epoch (UTC). Callers pass `now` in.

use alloc::string::String;
use core::fmt;

/// A point in time, in milliseconds since 1970-01-01T00:00:00Z.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub i64);

/// Milliseconds in a day.
pub const DAY_MS: i64 = 86_400_000;

/// Why a string is not an RFC 3339 timestamp.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TimeError {
    /// Not of the form `YYYY-MM-DDTHH:MM:SS[.fff](Z|±HH:MM)`.
    Syntax,
    /// A field is out of range (month 13, February 30th, hour 24, …).
    OutOfRange,
}

impl TimeError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            TimeError::Syntax => "time_syntax",
            TimeError::OutOfRange => "time_out_of_range",
        }
    }
}

impl fmt::Display for TimeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TimeError::Syntax => "not an RFC 3339 timestamp (YYYY-MM-DDTHH:MM:SS[.fff]Z or ±HH:MM)",
            TimeError::OutOfRange => "a date or time field is out of range",
        })
    }
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if is_leap(y) => 29,
        _ => 28,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day number since 1970-01-01: (year, month, day).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (
        if m <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        m,
        d,
    )
}

fn digits(b: &[u8]) -> Result<i64, TimeError> {
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
        return Err(TimeError::Syntax);
    }
    Ok(b.iter().fold(0, |n, c| n * 10 + i64::from(c - b'0')))
}

impl Timestamp {
    /// Parse an RFC 3339 date-time. Accepts `T`, `t` or a space between date
    /// and time, any number of fraction digits (kept to the millisecond), `Z`,
    /// `z` or a numeric offset. A leap second (`:60`) counts as `:59.999`.
    pub fn parse(s: &str) -> Result<Timestamp, TimeError> {
        let b = s.as_bytes();
        if b.len() < 20 {
            return Err(TimeError::Syntax);
        }
        let sep = |i: usize, c: u8| {
            if b[i] == c {
                Ok(())
            } else {
                Err(TimeError::Syntax)
            }
        };
        sep(4, b'-')?;
        sep(7, b'-')?;
        if !matches!(b[10], b'T' | b't' | b' ') {
            return Err(TimeError::Syntax);
        }
        sep(13, b':')?;
        sep(16, b':')?;
        let (year, month, day) = (digits(&b[0..4])?, digits(&b[5..7])?, digits(&b[8..10])?);
        let (hour, minute, mut second) = (
            digits(&b[11..13])?,
            digits(&b[14..16])?,
            digits(&b[17..19])?,
        );
        let mut i = 19;
        let mut millis = 0;
        if b[i] == b'.' {
            let start = i + 1;
            i = start;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            if i == start {
                return Err(TimeError::Syntax);
            }
            let frac = &b[start..i.min(start + 3)];
            millis = digits(frac)? * [100, 10, 1][frac.len() - 1];
        }
        let offset_min = match b.get(i..) {
            Some([b'Z' | b'z']) => 0,
            Some([sign @ (b'+' | b'-'), h1, h2, b':', m1, m2]) => {
                let (oh, om) = (digits(&[*h1, *h2])?, digits(&[*m1, *m2])?);
                if oh > 23 || om > 59 {
                    return Err(TimeError::OutOfRange);
                }
                let total = oh * 60 + om;
                if *sign == b'+' {
                    total
                } else {
                    -total
                }
            }
            _ => return Err(TimeError::Syntax),
        };
        if !(1..=12).contains(&month)
            || day < 1
            || day > days_in_month(year, month)
            || hour > 23
            || minute > 59
            || second > 60
        {
            return Err(TimeError::OutOfRange);
        }
        if second == 60 {
            second = 59;
            millis = 999;
        }
        let days = days_from_civil(year, month, day);
        let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_min * 60;
        Ok(Timestamp(secs * 1000 + millis))
    }

    /// `YYYY-MM-DDTHH:MM:SS.mmmZ` (always UTC, always milliseconds), as `Date.toISOString` does.
    /// Parse an HTTP date (RFC 9110 IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT`).
    pub fn parse_http_date(s: &str) -> Option<Timestamp> {
        let mut parts = s.split_whitespace().skip(1);
        let day: i64 = parts.next()?.parse().ok()?;
        let month = parts.next()?;
        let year: i64 = parts.next()?.parse().ok()?;
        let mut hms = parts.next()?.split(':').map(|p| p.parse::<i64>().ok());
        let (h, mi, sec) = (hms.next()??, hms.next()??, hms.next()??);
        if parts.next()? != "GMT" {
            return None;
        }
        const MONTHS: [&str; 12] = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        let m = i64::try_from(MONTHS.iter().position(|x| *x == month)? + 1).ok()?;
        if !(1..=days_in_month(year, m)).contains(&day) || h > 23 || mi > 59 || sec > 60 {
            return None;
        }
        let days = days_from_civil(year, m, day);
        Some(Timestamp(((days * 24 + h) * 60 + mi) * 60_000 + sec * 1000))
    }

    pub fn to_rfc3339(self) -> String {
        let ms = self.0.rem_euclid(1000);
        let secs = self.0.div_euclid(1000);
        let rem = secs.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
        let mut out = String::with_capacity(24);
        let fields = [
            ("", y, 4),
            ("-", m, 2),
            ("-", d, 2),
            ("T", rem / 3600, 2),
            (":", rem % 3600 / 60, 2),
            (":", rem % 60, 2),
            (".", ms, 3),
        ];
        for (sep, n, width) in fields {
            out.push_str(sep);
            if n < 0 {
                out.push('-');
            }
            crate::text::push_decimal(&mut out, n.unsigned_abs(), width);
        }
        out.push('Z');
        out
    }

    /// Milliseconds from `self` to `later` (negative if `later` is earlier).
    pub fn millis_until(self, later: Timestamp) -> i64 {
        later.0.saturating_sub(self.0)
    }

    /// This time plus `ms` milliseconds (saturating).
    pub fn plus_millis(self, ms: i64) -> Timestamp {
        Timestamp(self.0.saturating_add(ms))
    }

    /// The UTC date, `YYYY-MM-DD` (counters' and the lake's partition day).
    pub fn day(self) -> String {
        let mut s = self.to_rfc3339();
        s.truncate(10);
        s
    }

    /// `(year, month, day, hour)` in UTC, for partitioning.
    pub fn ymdh(self) -> (i64, i64, i64, i64) {
        let secs = self.0.div_euclid(1000);
        let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
        (y, m, d, secs.rem_euclid(86_400) / 3600)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> i64 {
        Timestamp::parse(s).unwrap().0
    }

    #[test]
    fn parses_utc_offsets_and_fractions() {
        assert_eq!(ts("1970-01-01T00:00:00Z"), 0);
        assert_eq!(ts("1970-01-01T00:00:00.5Z"), 500);
        assert_eq!(ts("1970-01-01T00:00:00.123456789Z"), 123);
        assert_eq!(ts("1970-01-01T01:00:00+01:00"), 0);
        assert_eq!(ts("1969-12-31T19:00:00-05:00"), 0);
        assert_eq!(ts("2024-02-29t12:00:00z"), ts("2024-02-29T12:00:00Z"));
        assert_eq!(ts("2024-02-29 12:00:00Z"), ts("2024-02-29T12:00:00Z"));
        assert_eq!(ts("2021-06-01T12:34:56.789Z"), 1_622_550_896_789);
    }

    #[test]
    fn rejects_what_is_not_rfc3339() {
        for bad in [
            "",
            "2021-06-01",
            "2021-06-01T12:34:56",
            "2021/06/01T12:34:56Z",
            "2021-06-01T12:34:56.Z",
            "2021-06-01T12:34:56+0100",
            "2021-06-01T12:34:56ZZ",
            "21-06-01T12:34:56Z",
            "2021-06-01T12:34:5aZ",
            "１９７０-01-01T00:00:00Z",
        ] {
            assert_eq!(Timestamp::parse(bad), Err(TimeError::Syntax), "{bad}");
        }
        for bad in [
            "2021-13-01T00:00:00Z",
            "2021-02-29T00:00:00Z",
            "2021-04-31T00:00:00Z",
            "2021-01-01T24:00:00Z",
            "2021-01-01T00:60:00Z",
            "2021-01-01T00:00:61Z",
            "2021-01-01T00:00:00+24:00",
        ] {
            assert_eq!(Timestamp::parse(bad), Err(TimeError::OutOfRange), "{bad}");
        }
    }

    #[test]
    fn a_leap_second_is_the_last_millisecond_of_its_minute() {
        assert_eq!(ts("2016-12-31T23:59:60Z"), ts("2016-12-31T23:59:59.999Z"));
    }

    #[test]
    fn formats_like_to_iso_string_and_round_trips() {
        assert_eq!(Timestamp(0).to_rfc3339(), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            Timestamp(1_622_550_896_789).to_rfc3339(),
            "2021-06-01T12:34:56.789Z"
        );
        assert_eq!(Timestamp(-1).to_rfc3339(), "1969-12-31T23:59:59.999Z");
        for ms in [0, 951_782_400_000, 4_102_444_799_999, -62_135_596_800_000] {
            assert_eq!(ts(&Timestamp(ms).to_rfc3339()), ms);
        }
    }

    #[test]
    fn splits_into_partition_fields() {
        assert_eq!(
            Timestamp(ts("2024-03-05T07:59:59Z")).ymdh(),
            (2024, 3, 5, 7)
        );
        assert_eq!(
            Timestamp(ts("2024-03-05T23:59:59.999Z")).day(),
            "2024-03-05"
        );
    }
}
