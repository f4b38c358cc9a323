//! Rate limits per write key and client IP, in two layers:
//!
//! - per isolate: token buckets in the isolate's memory, with each source's
//!   `rate_limit` (requests per second and burst). Always on, no I/O; but each
//!   isolate keeps its own buckets, so across the edge the effective limit is
//!   a multiple of the configured one.
//! - across isolates: Cloudflare's Rate Limiting binding (`RATE_LIMITER` in
//!   `collector.toml`, a fixed limit per 10 or 60 s period), asked after the
//!   local bucket allowed the request. Where the binding is not configured
//!   (or cannot answer) only the per-isolate limit applies.
//!
//! Both protect the pipeline from a runaway client; neither is a billing meter.

use crate::config::RateLimit;

/// Binding name of the shared rate limiter (as in collector.toml).
pub const RATE_LIMITER: &str = "RATE_LIMITER";
/// `Retry-After` when the shared limit is reached: its period in collector.toml.
pub const SHARED_RETRY_AFTER_S: u32 = 10;
use std::collections::HashMap;

/// Most buckets kept; beyond this the fullest (idle) ones are forgotten.
const MAX_BUCKETS: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated_ms: f64,
}

/// Buckets keyed by `write key + client`.
#[derive(Debug, Default)]
pub struct Limiter {
    buckets: HashMap<String, Bucket>,
}

impl Limiter {
    /// Take one token for `key` at `now_ms`. `Err(seconds)` to wait when empty.
    pub fn check(&mut self, key: &str, limit: RateLimit, now_ms: f64) -> Result<(), u32> {
        if self.buckets.len() >= MAX_BUCKETS && !self.buckets.contains_key(key) {
            self.forget_idle(limit, now_ms);
        }
        let burst = f64::from(limit.burst);
        let bucket = self.buckets.entry(key.to_owned()).or_insert(Bucket {
            tokens: burst,
            updated_ms: now_ms,
        });
        let elapsed_s = ((now_ms - bucket.updated_ms) / 1000.0).max(0.0);
        bucket.tokens = (bucket.tokens + elapsed_s * limit.requests_per_second).min(burst);
        bucket.updated_ms = now_ms;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            let wait_s = (1.0 - bucket.tokens) / limit.requests_per_second;
            // Bounded by burst / rate, a small positive number.
            Err(wait_s.ceil().clamp(1.0, 3600.0) as u32)
        }
    }

    fn forget_idle(&mut self, limit: RateLimit, now_ms: f64) {
        let full_after_ms = f64::from(limit.burst) / limit.requests_per_second * 1000.0;
        self.buckets
            .retain(|_, b| now_ms - b.updated_ms < full_after_ms);
        if self.buckets.len() >= MAX_BUCKETS {
            self.buckets.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: RateLimit = RateLimit {
        requests_per_second: 2.0,
        burst: 3,
    };

    #[test]
    fn a_burst_then_the_steady_rate() {
        let mut l = Limiter::default();
        for _ in 0..3 {
            assert_eq!(l.check("k", LIMIT, 0.0), Ok(()));
        }
        assert_eq!(l.check("k", LIMIT, 0.0), Err(1));
        assert_eq!(
            l.check("k", LIMIT, 500.0),
            Ok(()),
            "one token back after 0.5 s at 2/s"
        );
        assert_eq!(
            l.check("other", LIMIT, 500.0),
            Ok(()),
            "each key has its own bucket"
        );
    }
}
