//! When to try again: exponential backoff with jitter, `Retry-After` for 429s,
//! and which answers are not worth retrying at all.

/// What an HTTP answer means for the batch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Verdict {
    /// Accepted (per-event rejections are in the body): remove the batch.
    Done,
    /// Try again after at least this many ms (`None`: the backoff schedule).
    Retry(Option<f64>),
    /// The server refused the whole request (400, 401, 403, 413): retrying cannot help.
    Drop,
}

/// Classify a response. Network errors are `Retry(None)`.
pub fn verdict(status: u16, retry_after: Option<&str>) -> Verdict {
    match status {
        200..=299 => Verdict::Done,
        429 => Verdict::Retry(retry_after.and_then(parse_retry_after)),
        408 | 500..=599 => Verdict::Retry(retry_after.and_then(parse_retry_after)),
        _ => Verdict::Drop,
    }
}

/// `Retry-After` in seconds (HTTP dates are rare from collectors and ignored).
pub fn parse_retry_after(v: &str) -> Option<f64> {
    // The one integer parser in the Wasm.
    let s = sluice_shared::text::parse_u64(v.trim_ascii())?;
    u32::try_from(s).ok().map(|s| f64::from(s) * 1000.0)
}

/// Delay before retry number `attempt` (1-based): `base · 2^(attempt-1)`,
/// capped, with "full jitter" from `random` in [0, 1) (spreads retries of
/// many browsers after an outage). Never below a tenth of the step.
pub fn backoff_ms(attempt: u32, base_ms: f64, max_ms: f64, random: f64) -> f64 {
    // An integer power of two: `powf` would pull libm's 4 KB of tables into the wasm.
    let doublings = attempt.saturating_sub(1).min(30);
    let step = (base_ms * f64::from(1u32 << doublings)).min(max_ms);
    (step * random.clamp(0.0, 1.0)).max(step / 10.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_classified() {
        assert_eq!(verdict(200, None), Verdict::Done);
        assert_eq!(verdict(429, Some("3")), Verdict::Retry(Some(3000.0)));
        assert_eq!(verdict(503, None), Verdict::Retry(None));
        assert_eq!(verdict(400, None), Verdict::Drop);
        assert_eq!(verdict(401, None), Verdict::Drop);
        assert_eq!(verdict(413, None), Verdict::Drop);
    }

    #[test]
    fn backoff_doubles_with_jitter_and_a_cap() {
        assert_eq!(backoff_ms(1, 1000.0, 60_000.0, 0.5), 500.0);
        assert_eq!(backoff_ms(3, 1000.0, 60_000.0, 0.5), 2000.0);
        assert_eq!(backoff_ms(10, 1000.0, 60_000.0, 0.99), 59_400.0);
        assert_eq!(
            backoff_ms(2, 1000.0, 60_000.0, 0.0),
            200.0,
            "floored at a tenth of the step"
        );
        assert_eq!(parse_retry_after("x"), None);
        assert_eq!(
            parse_retry_after("4294967296"),
            None,
            "more than a u32 of seconds"
        );
        assert_eq!(parse_retry_after(" 120 "), Some(120_000.0));
    }
}
