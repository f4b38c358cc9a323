//! The consent gate: a pure state machine over the visitor's consent, whether
//! it is known yet, and the events held until it is. Each new event gets a
//! [`Verdict`]; a consent report returns the events it releases (held ones go
//! through the gate again, now that the consent is known). `sdk.rs` carries
//! the verdicts out (queue, log, store); nothing here touches the browser.
//!
//! Consent denies by default: until it is known, events wait (`Wait`, at most
//! [`MAX_PENDING`]), go without identifiers (`Anonymous`) or are dropped
//! (`Drop`), as `consentPending` says; once known, an event goes only if every
//! purpose of `consentRequired` is granted.

use crate::options::Pending;
use crate::prelude::*;
use sluice_shared::consent::{allows, Consent, Purpose, Regime, State};

/// Most events held while waiting for consent.
pub const MAX_PENDING: usize = 1000;

/// What happens to a new event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Queue it, with the visitor's identifiers.
    Release,
    /// Queue it without identifiers (a per-page id; nothing stored).
    Anonymous,
    /// Hold it until the consent is known ([`Gate::hold`]).
    Hold,
    /// Not sent, and why (for the debug log).
    Drop(&'static str),
}

/// The gate's state, over the drafts `D` it holds.
pub struct Gate<D> {
    consent: Consent,
    known: bool,
    pending: Vec<D>,
    /// What to do with events before the consent is known.
    mode: Pending,
    /// Purposes every event needs.
    required: Vec<Purpose>,
}

impl<D> Gate<D> {
    /// At load: the defaults of the options (`consentDefault: "granted"`
    /// grants the required purposes) and a choice stored by an earlier visit.
    pub fn new(
        mut consent: Consent,
        default_granted: bool,
        stored: Option<Consent>,
        mode: Pending,
        required: Vec<Purpose>,
    ) -> Gate<D> {
        if default_granted {
            for p in &required {
                consent.set(p.clone(), State::Granted);
            }
        }
        let known = default_granted || stored.is_some();
        if let Some(c) = stored {
            merge(&mut consent, c);
        }
        Gate {
            consent,
            known,
            pending: Vec::new(),
            mode,
            required,
        }
    }

    pub fn consent(&self) -> &Consent {
        &self.consent
    }

    pub fn known(&self) -> bool {
        self.known
    }

    /// Is `p` granted (opt-in: unknown is denied)?
    pub fn allows(&self, p: &Purpose) -> bool {
        allows(Some(&self.consent), p, Regime::OptIn)
    }

    /// The events held until the consent is known, oldest first.
    pub fn held(&self) -> &[D] {
        &self.pending
    }

    /// May the SDK store anything (`storage: "none"` until functional consent)?
    pub fn storage_allowed(&self) -> bool {
        self.known && self.allows(&Purpose::Functional)
    }

    /// What happens to a new event now.
    pub fn verdict(&self) -> Verdict {
        if !self.known {
            return match self.mode {
                Pending::Wait if self.pending.len() < MAX_PENDING => Verdict::Hold,
                Pending::Wait => Verdict::Drop("dropped (too many events waiting for consent)"),
                Pending::Anonymous => Verdict::Anonymous,
                Pending::Drop => Verdict::Drop("dropped (consent not yet known)"),
            };
        }
        if self.required.iter().all(|p| self.allows(p)) {
            Verdict::Release
        } else {
            Verdict::Drop("dropped (no consent for the required purposes)")
        }
    }

    /// Keep an event the verdict was [`Verdict::Hold`] for.
    pub fn hold(&mut self, d: D) {
        self.pending.push(d);
    }

    /// A consent report (`updated_at`: now, ISO 8601). `None` when it changed
    /// nothing already known (CMPs report the same choice again); otherwise
    /// the consent is known and the events that were held, to submit again.
    pub fn update(&mut self, update: Consent, updated_at: String) -> Option<Vec<D>> {
        let before = self.consent.clone();
        merge(&mut self.consent, update);
        if self.known && self.consent == before {
            return None;
        }
        self.consent.updated_at = Some(updated_at);
        self.known = true;
        Some(core::mem::take(&mut self.pending))
    }
}

/// Merge `update` into `current`: its purposes replace the old ones.
pub fn merge(current: &mut Consent, update: Consent) {
    for (p, s) in update.categories {
        current.categories.insert(p, s);
    }
    current.source = update.source;
    if update.tc_string.is_some() {
        current.tc_string = update.tc_string;
    }
    if update.gpp_string.is_some() {
        current.gpp_string = update.gpp_string;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_shared::consent::Source;

    fn choice(p: Purpose, s: State) -> Consent {
        let mut c = Consent {
            source: Source::Explicit,
            ..Consent::default()
        };
        c.set(p, s);
        c
    }

    /// An event through the gate as `sdk.rs` passes it: held ones are kept.
    fn submit(g: &mut Gate<u32>, d: u32) -> Verdict {
        let v = g.verdict();
        if v == Verdict::Hold {
            g.hold(d);
        }
        v
    }

    fn gate(mode: Pending) -> Gate<u32> {
        Gate::new(
            Consent::default(),
            false,
            None,
            mode,
            vec![Purpose::Analytics],
        )
    }

    #[test]
    fn events_wait_for_consent_and_a_grant_releases_them_in_order() {
        let mut g = gate(Pending::Wait);
        assert_eq!(submit(&mut g, 1), Verdict::Hold);
        assert_eq!(submit(&mut g, 2), Verdict::Hold);
        assert_eq!(g.held(), [1, 2]);
        let held = g.update(choice(Purpose::Analytics, State::Granted), "t".into());
        assert_eq!(held, Some(vec![1, 2]));
        assert!(g.known());
        assert_eq!(g.consent().updated_at.as_deref(), Some("t"));
        assert_eq!(g.verdict(), Verdict::Release);
        assert!(g.held().is_empty());
    }

    #[test]
    fn held_events_are_dropped_when_the_required_purpose_is_denied() {
        let mut g = gate(Pending::Wait);
        submit(&mut g, 1);
        let held = g
            .update(choice(Purpose::Analytics, State::Denied), "t".into())
            .unwrap_or_default();
        assert_eq!(held, vec![1]);
        let v = g.verdict();
        assert!(matches!(v, Verdict::Drop(_)), "{v:?}");
    }

    #[test]
    fn no_more_than_max_pending_are_held() {
        let mut g = gate(Pending::Wait);
        for i in 0..MAX_PENDING as u32 {
            assert_eq!(submit(&mut g, i), Verdict::Hold);
        }
        assert!(matches!(submit(&mut g, 0), Verdict::Drop(_)));
        let held = g
            .update(choice(Purpose::Analytics, State::Granted), "t".into())
            .unwrap_or_default();
        assert_eq!(held.len(), MAX_PENDING);
    }

    #[test]
    fn before_consent_events_go_anonymously_or_are_dropped_as_configured() {
        assert_eq!(gate(Pending::Anonymous).verdict(), Verdict::Anonymous);
        assert!(matches!(gate(Pending::Drop).verdict(), Verdict::Drop(_)));
    }

    #[test]
    fn the_same_choice_reported_again_changes_nothing() {
        let mut g = gate(Pending::Wait);
        let grant = choice(Purpose::Analytics, State::Granted);
        assert!(g.update(grant.clone(), "t1".into()).is_some());
        assert_eq!(g.update(grant, "t2".into()), None);
        assert_eq!(g.consent().updated_at.as_deref(), Some("t1"));
        // A first report is news even if it matches the defaults.
        let mut g = gate(Pending::Wait);
        assert!(g.update(Consent::default(), "t".into()).is_some());
        assert!(g.known());
    }

    #[test]
    fn a_default_grant_or_a_stored_choice_makes_consent_known_at_load() {
        let g: Gate<u32> = Gate::new(
            Consent::default(),
            true,
            None,
            Pending::Wait,
            vec![Purpose::Analytics],
        );
        assert!(g.known() && g.allows(&Purpose::Analytics));
        assert!(!g.storage_allowed(), "functional was not granted");
        let g: Gate<u32> = Gate::new(
            Consent::default(),
            true,
            Some(choice(Purpose::Analytics, State::Denied)),
            Pending::Wait,
            vec![Purpose::Analytics],
        );
        assert!(!g.allows(&Purpose::Analytics), "the stored choice wins");
        let g: Gate<u32> = Gate::new(
            Consent::default(),
            false,
            Some(choice(Purpose::Functional, State::Granted)),
            Pending::Wait,
            vec![],
        );
        assert!(g.known() && g.storage_allowed());
    }

    #[test]
    fn a_merge_replaces_only_the_purposes_reported() {
        let mut c = choice(Purpose::Analytics, State::Granted);
        c.tc_string = Some("tc".into());
        merge(&mut c, choice(Purpose::Marketing, State::Denied));
        assert!(allows(Some(&c), &Purpose::Analytics, Regime::OptIn));
        assert!(!allows(Some(&c), &Purpose::Marketing, Regime::OptIn));
        assert_eq!(c.tc_string.as_deref(), Some("tc"));
    }
}
