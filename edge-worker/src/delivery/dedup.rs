//! Deduplication by `messageId`, against SQLite-backed Durable Objects
//! sharded by a hash of the id.
//!
//! Each id moves through: absent → `claimed` (a consumer is writing it) →
//! `done` (durably written; later copies are duplicates). A claim expires
//! after a lease, so a consumer that died mid-write does not block the id
//! forever; an id is only `done` after its write succeeded, so a failed write
//! followed by a retry is never mistaken for a duplicate. Ids are forgotten
//! after the dedup window by the shard's alarm (the sweep is idempotent).
//!
//! Sizing: a shard serves its calls one at a time. Each consumer batch makes
//! one claim and one commit call per shard it touches, each a few ms. Pick
//! shards ≥ peak batches per second ÷ 50; the default 16 shards carry several
//! hundred batches (tens of thousands of events) per second. Changing the
//! count re-homes ids, so a change only loses dedup memory for in-window ids.

use serde::{Deserialize, Serialize};

/// Var with the number of shards.
pub const SHARDS_VAR: &str = "SLUICE_DEDUP_SHARDS";
/// Var with the dedup window in seconds.
pub const WINDOW_VAR: &str = "SLUICE_DEDUP_WINDOW_S";
pub const DEFAULT_SHARDS: u32 = 16;
pub const DEFAULT_WINDOW_S: u64 = 7 * 24 * 3600;
/// How long a claim protects an id being written.
pub const LEASE_MS: i64 = 60_000;

/// The shard of an id (FNV-1a, stable across releases).
pub fn shard_of(message_id: &str, shards: u32) -> u32 {
    let hash = message_id.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    (hash % u64::from(shards.max(1))) as u32
}

/// The stored state of an id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    Claimed { at_ms: i64 },
    Done { at_ms: i64 },
}

/// What a claim decided for one id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Claim {
    /// This consumer writes it.
    Won,
    /// Already written: drop this copy.
    Duplicate,
    /// Another consumer is writing it right now: try again later.
    InFlight,
}

/// Decide a claim on an id given what the shard has stored.
pub fn decide(stored: Option<Seen>, now_ms: i64) -> Claim {
    match stored {
        None => Claim::Won,
        Some(Seen::Done { .. }) => Claim::Duplicate,
        Some(Seen::Claimed { at_ms }) if now_ms - at_ms < LEASE_MS => Claim::InFlight,
        Some(Seen::Claimed { .. }) => Claim::Won,
    }
}

/// Request to a shard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum ShardRequest {
    Claim { ids: Vec<String> },
    Commit { ids: Vec<String> },
    Release { ids: Vec<String> },
}

/// A shard's answer to a claim: one decision per id, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimResponse {
    pub claims: Vec<Claim>,
}

/// The sweep: what an alarm at `now_ms` deletes, as SQL over `seen(id, done, at_ms)`.
pub fn sweep_bounds(now_ms: i64, window_s: u64) -> (i64, i64) {
    let window_ms = i64::try_from(window_s.saturating_mul(1000)).unwrap_or(i64::MAX);
    (
        now_ms.saturating_sub(window_ms),
        now_ms.saturating_sub(LEASE_MS),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_are_stable_and_spread() {
        assert_eq!(shard_of("abc", 16), shard_of("abc", 16));
        let mut counts = [0u32; 16];
        for i in 0..16_000 {
            counts[shard_of(&format!("msg-{i}"), 16) as usize] += 1;
        }
        assert!(counts.iter().all(|c| (800..1200).contains(c)), "{counts:?}");
        assert_eq!(shard_of("x", 0), 0);
    }

    #[test]
    fn only_a_written_id_is_a_duplicate() {
        assert_eq!(decide(None, 0), Claim::Won);
        assert_eq!(decide(Some(Seen::Done { at_ms: 0 }), 10), Claim::Duplicate);
        assert_eq!(
            decide(Some(Seen::Claimed { at_ms: 0 }), 1_000),
            Claim::InFlight
        );
        assert_eq!(
            decide(Some(Seen::Claimed { at_ms: 0 }), LEASE_MS + 1),
            Claim::Won,
            "an abandoned claim expires"
        );
    }

    #[test]
    fn the_sweep_forgets_after_the_window_and_expires_claims() {
        let (done_before, claimed_before) = sweep_bounds(1_000_000_000, 3600);
        assert_eq!(done_before, 1_000_000_000 - 3_600_000);
        assert_eq!(claimed_before, 1_000_000_000 - LEASE_MS);
    }
}
