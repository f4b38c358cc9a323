//! Local-only fault injection for the end-to-end tests.
//!
//! `SLUICE_FAULTS` (JSON) is never set in `wrangler.toml`: only the tests
//! pass it (`wrangler dev --var`), so a deployment has no faults. Each fault
//! applies only to consumer batches that won the claim of an event whose
//! `messageId` contains `marker`, so other traffic (sentinels) is untouched.
//!
//! - `hold_after_d1_write_ms`: after the D1 write, wait this long before
//!   fanning out and committing (the batch is "in flight": claimed, written,
//!   not acknowledged), so a test can act in that window.
//! - `die_after_d1_write`: the first time a marked event has been written,
//!   stop right there as a consumer that died would: nothing fanned out,
//!   committed, released or acknowledged; the Queue redelivers the batch.
//! - `poison`: marked events fail every attempt at once (retried without
//!   delay), so the Queue gives up on them and moves them to its
//!   dead-letter queue.

use serde::Deserialize;
use std::cell::RefCell;
use std::collections::HashSet;

/// The var holding the faults (tests only).
pub const FAULTS_VAR: &str = "SLUICE_FAULTS";

/// Faults to inject (none by default).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Faults {
    /// Faults apply to batches holding a won event whose id contains this.
    pub marker: String,
    #[serde(default)]
    pub hold_after_d1_write_ms: u32,
    #[serde(default)]
    pub die_after_d1_write: bool,
    #[serde(default)]
    pub poison: bool,
}

thread_local! {
    /// Ids this isolate already "died" on (a death happens once per id).
    static DIED: RefCell<HashSet<String>> = RefCell::new(HashSet::new());
}

impl Faults {
    /// Parse the var; absent or unparseable means no faults.
    pub fn from_var(value: Option<&str>) -> Faults {
        value
            .and_then(|v| serde_json::from_str(v).ok())
            .unwrap_or_default()
    }

    /// Whether any of these ids is marked.
    pub fn applies(&self, ids: &[&str]) -> bool {
        !self.marker.is_empty() && ids.iter().any(|id| id.contains(self.marker.as_str()))
    }

    /// Whether this event is a poison message.
    pub fn poisons(&self, id: &str) -> bool {
        self.poison && self.applies(&[id])
    }

    /// Whether the consumer dies now (true once per marked id).
    pub fn dies(&self, ids: &[&str]) -> bool {
        if !self.die_after_d1_write || !self.applies(ids) {
            return false;
        }
        DIED.with(|d| {
            let mut died = d.borrow_mut();
            let fresh: Vec<&str> = ids
                .iter()
                .copied()
                .filter(|id| id.contains(self.marker.as_str()) && !died.contains(*id))
                .collect();
            died.extend(fresh.iter().map(|id| (*id).to_owned()));
            !fresh.is_empty()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_are_off_unless_configured_and_a_death_happens_once() {
        assert_eq!(Faults::from_var(None), Faults::default());
        assert!(!Faults::default().applies(&["anything"]));
        let f = Faults::from_var(Some(r#"{"marker": "die-", "die_after_d1_write": true}"#));
        assert!(!f.dies(&["other"]));
        assert!(f.dies(&["x", "die-1"]));
        assert!(!f.dies(&["die-1"]), "the redelivered batch goes through");
    }
}
