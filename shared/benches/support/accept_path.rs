//! The collector's accept path without I/O, for the native measures: the
//! accept bench (`shared/benches/accept.rs`) and `cargo xtask bench worker`
//! (`tests/src/bin/bench.rs`) both run this one function, so the two
//! figures are of the same work. Per event of a batch: split, decode
//! (the fast lane, or every event whole), validate, clock skew, enrich,
//! consent, encode for the Queue; then pack the Queue messages.

use sluice_shared::consent::{self, Policy, Regime};
use sluice_shared::enrich::{self, ip::IpPolicy, Added, RequestFacts, Sent};
use sluice_shared::parse::split_batch;
use sluice_shared::skew::{self, SkewRules};
use sluice_shared::validate::validate;
use sluice_shared::{splice, Limits, Timestamp, ValidEvent};
use std::hint::black_box;

/// The stages, in order: a run stops after the one it is given, so each
/// stage's cost is a difference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stage {
    Decode = 1,
    Validate = 2,
    Pipeline = 3,
    Encode = 4,
    Pack = 5,
}

impl Stage {
    /// From its number (1 decode … 5 pack).
    pub fn from_number(n: u8) -> Option<Stage> {
        [
            Stage::Decode,
            Stage::Validate,
            Stage::Pipeline,
            Stage::Encode,
            Stage::Pack,
        ]
        .into_iter()
        .find(|s| *s as u8 == n)
    }
}

/// The clock the bench events' `sentAt` is read against.
pub const NOW: Timestamp = Timestamp(1_714_557_601_000);

/// Run a batch body (all valid events) through the accept path up to
/// `until`, the fast lane or (`lane` false) every event decoded whole.
/// Panics on an event the path refuses: the bench's events are all valid.
pub fn run(body: &[u8], lane: bool, until: Stage) {
    let limits = Limits::default();
    let policy = Policy {
        regime: Regime::OptOut,
        ..Policy::default()
    };
    let facts = RequestFacts {
        ip: Some("203.0.113.7".parse().expect("an address")),
        user_agent: Some("bench".into()),
        ..RequestFacts::default()
    };
    let received = skew::Received::new(NOW);
    let collector = consent::Collector::new(&policy);
    // What `ingest::process` does to a valid event (no tracking plan, bots
    // kept); the lane keeps what it adds apart from the event.
    let pipeline = |valid: ValidEvent, (mut added, sent): (Added, Option<&Sent<'_>>)| {
        let times = valid.times();
        let mut e = valid.into_event();
        e.normalize_ids();
        let note = skew::apply_parsed(&mut e, times, &received, SkewRules::default());
        enrich::enrich_to(&mut e, &mut added, sent, &facts, IpPolicy::Truncate);
        let held = e.context.as_ref();
        let decision = match held.and_then(|ctx| enrich::consent_sent(ctx, sent)) {
            Some(text) => collector.collect_sent(text),
            None => collector.collect(held),
        };
        enrich::note_code(&mut e, &mut added, "consent", decision.code());
        enrich::note_code(&mut e, &mut added, "skew", note.code());
        (e, added)
    };
    let split = split_batch(body, &limits).expect("a batch body");
    let mut out = Vec::with_capacity(split.events.len());
    if lane {
        let mut decoded = Vec::with_capacity(split.events.len());
        for raw in &split.events {
            let (mut e, passed) = splice::decode(raw, &limits).expect("the fast lane");
            if e.sent_at.is_none() {
                e.sent_at.clone_from(&split.envelope.sent_at);
            }
            decoded.push((e, passed, raw.len()));
        }
        if until < Stage::Validate {
            return drop(black_box(decoded));
        }
        let checked: Vec<_> = decoded
            .into_iter()
            .map(|(e, p, n)| (validate(e, n, &limits, NOW).expect("a valid event"), p))
            .collect();
        if until < Stage::Pipeline {
            return drop(black_box(checked));
        }
        for (valid, passed) in checked {
            let (e, added) = pipeline(valid, (Added::lane(), Some(passed.sent())));
            if until < Stage::Encode {
                drop(black_box((e, added)));
                continue;
            }
            out.push(passed.encode(&e, &added).expect("encodes"));
        }
    } else {
        let parsed = split.parse();
        if until < Stage::Validate {
            return drop(black_box(parsed));
        }
        let checked = parsed.check(&limits, NOW);
        if until < Stage::Pipeline {
            return drop(black_box(checked));
        }
        for c in checked {
            let (e, _) = pipeline(c.result.expect("a valid event"), (Added::off(), None));
            if until < Stage::Encode {
                drop(black_box(e));
                continue;
            }
            out.push(serde_json::to_string(&e).expect("encodes"));
        }
    }
    if until >= Stage::Pack {
        black_box(sluice_shared::pipeline::pack_events("bench", &out));
    }
}
