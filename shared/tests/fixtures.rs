//! The shared fixtures, shaped exactly like analytics.js and RudderStack
//! payloads, parse, validate and round-trip.
#![allow(clippy::unwrap_used)] // test code: a panic is a failed test

use serde_json::Value;
use sluice_shared::parse::{parse_batch, parse_single};
use sluice_shared::skew::{self, SkewRules};
use sluice_shared::{Event, EventType, Limits, Timestamp};

const NOW: Timestamp = Timestamp(1_714_557_900_000); // 2024-05-01T10:05:00Z

fn fixture(path: &str) -> String {
    let full = format!("{}/tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

fn single(path: &str, kind: EventType) -> Event {
    let parsed = parse_single(fixture(path).as_bytes(), kind, &Limits::default()).unwrap();
    assert_eq!(
        parsed
            .write_key
            .as_deref()
            .filter(|_| path.starts_with("analytics-js")),
        path.starts_with("analytics-js").then_some("demo-write-key")
    );
    let mut checked = parsed.check(&Limits::default(), NOW);
    let valid = checked
        .remove(0)
        .result
        .unwrap_or_else(|e| panic!("{path}: {e:?}"));
    assert!(
        valid.warnings().is_empty(),
        "{path}: {:?}",
        valid.warnings()
    );
    valid.into_event()
}

#[test]
fn analytics_js_single_event_bodies_are_accepted() {
    let t = single("analytics-js/track.json", EventType::Track);
    assert_eq!(t.event.as_deref(), Some("Order Completed"));
    assert_eq!(t.user_id, None, "userId: null is absent");
    assert!(t.extra.contains_key("_metadata"), "unknown fields are kept");
    let p = single("analytics-js/page.json", EventType::Page);
    assert_eq!(
        (p.name.as_deref(), p.category.as_deref()),
        (Some("Product"), Some("Shop"))
    );
    let i = single("analytics-js/identify.json", EventType::Identify);
    assert_eq!(i.traits.unwrap()["email"], "ada@example.com");
}

#[test]
fn rudderstack_events_are_accepted_with_original_timestamp() {
    let mut t = single("rudderstack/track.json", EventType::Track);
    assert_eq!(t.extra["channel"], "web");
    assert_eq!(t.integrations.as_ref().unwrap()["All"], true);
    assert_eq!(
        t.context_value("sessionId"),
        Some(&Value::from(1_714_557_600_000_u64))
    );
    skew::apply(&mut t, NOW, SkewRules::default());
    assert_eq!(
        t.timestamp.as_deref(),
        Some("2024-05-01T10:04:59.950Z"),
        "50 ms before receipt, by the server's clock"
    );
    let i = single("rudderstack/identify.json", EventType::Identify);
    assert_eq!(
        i.context_value("traits").unwrap()["email"],
        "grace@example.com"
    );
}

#[test]
fn batches_from_both_clients_are_accepted_whole() {
    for path in ["analytics-js/batch.json", "rudderstack/beacon-batch.json"] {
        let parsed = parse_batch(fixture(path).as_bytes(), &Limits::default()).unwrap();
        let n = parsed.events.len();
        let checked = parsed.check(&Limits::default(), NOW);
        assert_eq!(checked.len(), n);
        for c in checked {
            let valid = c
                .result
                .unwrap_or_else(|e| panic!("{path} #{}: {e:?}", c.index));
            assert!(
                valid.event().sent_at.is_some(),
                "{path}: the envelope's sentAt reaches each event"
            );
        }
    }
}

#[test]
fn every_fixture_round_trips_unchanged() {
    for path in [
        "analytics-js/track.json",
        "analytics-js/page.json",
        "analytics-js/identify.json",
        "rudderstack/track.json",
        "rudderstack/identify.json",
    ] {
        let mut original: Value = serde_json::from_str(&fixture(path)).unwrap();
        let map = original.as_object_mut().unwrap();
        map.remove("writeKey");
        if map.get("userId") == Some(&Value::Null) {
            map.remove("userId");
        }
        let event: Event = serde_json::from_value(original.clone()).unwrap();
        assert_eq!(serde_json::to_value(&event).unwrap(), original, "{path}");
    }
    for path in ["analytics-js/batch.json", "rudderstack/beacon-batch.json"] {
        let original: Value = serde_json::from_str(&fixture(path)).unwrap();
        let batch: sluice_shared::Batch = serde_json::from_value(original.clone()).unwrap();
        assert_eq!(serde_json::to_value(&batch).unwrap(), original, "{path}");
    }
}
