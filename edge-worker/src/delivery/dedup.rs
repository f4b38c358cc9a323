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
//! What is written (a Durable Object bills each SQLite row written): a claim
//! call writes **one row for all the ids it wins** (`claims(at_ms, ids)`, a
//! JSON array) and a commit call one row for all the ids it commits
//! (`committed(at_ms, ids)`), so a batch of `k` events at one shard costs
//! `2/k` rows (plus their deletes by the sweep: claim rows once their lease
//! has passed, commit rows after the window), where one row per id and call
//! cost two per event before. The shard answers from its memory
//! ([`ShardState`]), loaded from both tables when it starts, so a shard that
//! restarts (a crash, a deploy, an eviction) still knows the claims of the
//! instance before it until their lease runs out.
//!
//! Sizing: a shard serves its calls one at a time. Each consumer batch makes
//! one claim and one commit call per shard it touches, each a few ms, and
//! each call writes a row: fewer shards are cheaper (a batch of a few hundred
//! events touches every shard, so 4 shards write 8 rows where 16 wrote 32).
//! Pick shards ≥ peak batches per second ÷ 50: the default 4 carry about 200
//! batches (of up to 100 messages) per second. A shard keeps its
//! window's ids in memory as 128-bit fingerprints (about 40 bytes each with
//! the map's overhead, loaded when it starts): keep ids per shard per window
//! under about 1.5 M (4 shards: 6 M events a window; more shards for more).
//! Changing the count re-homes ids, so a change only loses dedup memory for
//! in-window ids.

use serde::{Deserialize, Serialize};

/// Var with the number of shards.
pub const SHARDS_VAR: &str = "SLUICE_DEDUP_SHARDS";
/// Var with the dedup window in seconds.
pub const WINDOW_VAR: &str = "SLUICE_DEDUP_WINDOW_S";
pub const DEFAULT_SHARDS: u32 = 4;
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

/// An id as a shard remembers it: FNV-1a, 128 bits (a shard holds millions
/// of ids; two ids share a fingerprint with odds far below one in 10^25).
fn fingerprint(message_id: &str) -> u128 {
    message_id
        .bytes()
        .fold(0x6c62_272e_07bb_0142_62b8_2175_6295_c58d_u128, |h, b| {
            (h ^ u128::from(b)).wrapping_mul(0x0000_0000_0100_0000_0000_0000_0000_013b)
        })
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

/// A shard's answer to a claim: one decision per id, in order; with what the
/// call cost the shard (its SQL cursors' `rowsRead` / `rowsWritten`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimResponse {
    pub claims: Vec<Claim>,
    #[serde(default)]
    pub rows_read: u64,
    #[serde(default)]
    pub rows_written: u64,
}

/// What a shard must write after a call ([`ShardState`] decides, the Durable
/// Object stores).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Writes {
    /// Ids to store as claimed, in one row.
    pub claimed: Vec<String>,
    /// Ids to store as committed, in one row.
    pub committed: Vec<String>,
}

/// A shard's state in memory: the committed ids of the window (loaded from
/// its rows when it starts) and the claims of consumers writing right now.
#[derive(Debug, Clone, Default)]
pub struct ShardState {
    done: std::collections::HashMap<u128, i64>,
    claims: std::collections::HashMap<u128, i64>,
}

impl ShardState {
    /// A shard starting with its stored committed and claimed ids.
    pub fn start(
        committed: impl IntoIterator<Item = (String, i64)>,
        claimed: impl IntoIterator<Item = (String, i64)>,
    ) -> ShardState {
        let mut done = std::collections::HashMap::new();
        for (id, at) in committed {
            let latest = done.entry(fingerprint(&id)).or_insert(at);
            *latest = (*latest).max(at);
        }
        let mut claims = std::collections::HashMap::new();
        for (id, at) in claimed {
            let id = fingerprint(&id);
            if !done.contains_key(&id) {
                let latest = claims.entry(id).or_insert(at);
                *latest = (*latest).max(at);
            }
        }
        ShardState { done, claims }
    }

    fn seen(&self, id: u128) -> Option<Seen> {
        if let Some(&at_ms) = self.done.get(&id) {
            return Some(Seen::Done { at_ms });
        }
        self.claims.get(&id).map(|&at_ms| Seen::Claimed { at_ms })
    }

    /// Claim each id; the ids won are to be stored in one row.
    pub fn claim(&mut self, ids: &[String], now_ms: i64) -> (Vec<Claim>, Writes) {
        let mut claims = Vec::with_capacity(ids.len());
        let mut writes = Writes::default();
        for id in ids {
            let print = fingerprint(id);
            let claim = decide(self.seen(print), now_ms);
            if claim == Claim::Won {
                self.claims.insert(print, now_ms);
                writes.claimed.push(id.clone());
            }
            claims.push(claim);
        }
        (claims, writes)
    }

    /// The ids are written: done from now on (to be stored in one row).
    pub fn commit(&mut self, ids: &[String], now_ms: i64) -> Writes {
        for id in ids {
            let id = fingerprint(id);
            self.claims.remove(&id);
            self.done.insert(id, now_ms);
        }
        Writes {
            claimed: Vec::new(),
            committed: ids.to_vec(),
        }
    }

    /// The write failed: the ids may be claimed again at once.
    pub fn release(&mut self, ids: &[String]) {
        for id in ids {
            self.claims.remove(&fingerprint(id));
        }
    }

    /// Forget committed ids before the window and expired claims.
    pub fn sweep(&mut self, now_ms: i64, window_s: u64) {
        let (done_before, claimed_before) = sweep_bounds(now_ms, window_s);
        self.done.retain(|_, at| *at >= done_before);
        self.claims.retain(|_, at| *at >= claimed_before);
    }

    /// Ids committed in the window.
    pub fn remembered(&self) -> usize {
        self.done.len()
    }
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
    fn ids_that_differ_anywhere_have_different_fingerprints() {
        let ids: Vec<String> = (0..50_000)
            .map(|i| format!("8f1c{i:04}-5c3e-4b8a-9d2c-4b6f3f7e4a8b"))
            .chain((0..50_000).map(|i| format!("msg-{i}")))
            .collect();
        let prints: std::collections::HashSet<u128> =
            ids.iter().map(|id| fingerprint(id)).collect();
        assert_eq!(prints.len(), ids.len());
        assert_ne!(fingerprint("ab"), fingerprint("ba"));
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

    fn ids(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn a_claim_call_writes_one_row_for_the_ids_it_wins() {
        let mut s = ShardState::start([], []);
        let (c, w) = s.claim(&ids(&["a", "b"]), 1_000);
        assert_eq!(c, [Claim::Won, Claim::Won]);
        assert_eq!(w.claimed, ids(&["a", "b"]));
        let (c, w) = s.claim(&ids(&["a", "c"]), 2_000);
        assert_eq!(c, [Claim::InFlight, Claim::Won]);
        assert_eq!(w.claimed, ids(&["c"]), "only what it won");
        assert!(w.committed.is_empty());
    }

    #[test]
    fn a_commit_is_one_row_and_makes_later_copies_duplicates() {
        let mut s = ShardState::start([], []);
        s.claim(&ids(&["a", "b", "c"]), 0);
        let w = s.commit(&ids(&["a", "b", "c"]), 10);
        assert_eq!(w.committed, ids(&["a", "b", "c"]));
        let (c, _) = s.claim(&ids(&["a", "x"]), 20);
        assert_eq!(c, [Claim::Duplicate, Claim::Won]);
        s.release(&ids(&["x"]));
        assert_eq!(s.claim(&ids(&["x"]), 30).0, [Claim::Won], "released");
    }

    #[test]
    fn a_restarted_shard_still_knows_the_claims_before_it() {
        // The instance before it claimed `x` and `y`, committed `y`, and stopped.
        let mut s = ShardState::start(
            [("y".to_owned(), 1_500)],
            [("x".to_owned(), 1_000), ("y".to_owned(), 1_000)],
        );
        assert_eq!(
            s.claim(&ids(&["x", "y", "new"]), 2_000).0,
            [Claim::InFlight, Claim::Duplicate, Claim::Won]
        );
        assert_eq!(
            s.claim(&ids(&["x"]), 1_000 + LEASE_MS).0,
            [Claim::Won],
            "once its lease has run out"
        );
    }

    #[test]
    fn the_sweep_forgets_committed_ids_after_the_window() {
        let mut s = ShardState::start([("old".to_owned(), 0), ("new".to_owned(), 9_000)], []);
        s.sweep(10_000, 5);
        assert_eq!(s.remembered(), 1);
        assert_eq!(
            s.claim(&ids(&["old", "new"]), 10_000).0,
            [Claim::Won, Claim::Duplicate]
        );
    }

    #[test]
    fn the_sweep_forgets_after_the_window_and_expires_claims() {
        let (done_before, claimed_before) = sweep_bounds(1_000_000_000, 3600);
        assert_eq!(done_before, 1_000_000_000 - 3_600_000);
        assert_eq!(claimed_before, 1_000_000_000 - LEASE_MS);
    }
}
