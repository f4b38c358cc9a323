//! Property tests: parsing never panics on arbitrary input, and what we
//! serialise parses back to the same thing.
#![cfg(not(target_arch = "wasm32"))]
#![allow(clippy::unwrap_used)] // test code: a panic is a failed test

use proptest::prelude::*;
use serde_json::{json, Value};
use sluice_shared::parse::{parse_batch, parse_single};
use sluice_shared::{Event, EventType, Limits, Timestamp};

mod strategies;
use strategies::json_value;

fn limits() -> Limits {
    Limits::default()
}

fn object() -> impl Strategy<Value = Option<serde_json::Map<String, Value>>> {
    prop::option::of(
        prop::collection::btree_map("[a-zA-Z_]{1,10}", json_value(), 0..5)
            .prop_map(|m| m.into_iter().collect()),
    )
}

prop_compose! {
    fn event()(
        kind in prop::sample::select(EventType::ALL.to_vec()),
        message_id in "[A-Za-z0-9-]{1,40}",
        anonymous_id in prop::option::of("[a-f0-9-]{1,36}"),
        user_id in prop::option::of(".{1,20}"),
        name in prop::option::of(".{0,20}"),
        properties in object(),
        context in object(),
        ms in 946_684_800_000i64..4_102_444_800_000,
    ) -> Event {
        let mut e = Event::new(kind, message_id);
        e.anonymous_id = anonymous_id;
        e.user_id = user_id;
        e.event = name.clone();
        e.name = name;
        e.properties = properties;
        e.context = context;
        e.timestamp = Some(Timestamp(ms).to_rfc3339());
        e
    }
}

proptest! {
    #[test]
    fn parsing_arbitrary_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_batch(&bytes, &limits()).map(|b| b.check(&limits(), Timestamp(0)));
        let _ = parse_single(&bytes, EventType::Track, &limits()).map(|b| b.check(&limits(), Timestamp(0)));
    }

    #[test]
    fn parsing_arbitrary_json_batches_never_panics(events in prop::collection::vec(json_value(), 0..6), sent_at in json_value()) {
        let body = json!({"batch": events, "sentAt": sent_at}).to_string();
        if let Ok(parsed) = parse_batch(body.as_bytes(), &limits()) {
            let n = parsed.events.len();
            prop_assert_eq!(parsed.check(&limits(), Timestamp(1_700_000_000_000)).len(), n);
        }
    }

    #[test]
    fn events_round_trip(e in event()) {
        let text = serde_json::to_string(&e).unwrap();
        let back: Event = serde_json::from_str(&text).unwrap();
        prop_assert_eq!(back, e);
    }

    #[test]
    fn a_valid_batch_keeps_every_event(events in prop::collection::vec(event(), 1..8)) {
        let body = json!({"batch": events, "sentAt": "2024-05-01T10:00:00Z"}).to_string();
        let parsed = parse_batch(body.as_bytes(), &limits()).unwrap();
        prop_assert_eq!(parsed.events.len(), events.len());
        for (slot, e) in parsed.events.iter().zip(&events) {
            prop_assert_eq!(slot.result.as_ref().unwrap(), e);
        }
    }

    #[test]
    fn timestamps_round_trip(ms in -62_135_596_800_000i64..253_402_300_799_999) {
        let text = Timestamp(ms).to_rfc3339();
        prop_assert_eq!(Timestamp::parse(&text), Ok(Timestamp(ms)));
    }

    #[test]
    fn parsing_arbitrary_timestamps_never_panics(s in ".{0,40}") {
        let _ = Timestamp::parse(&s);
    }
}

#[cfg(feature = "iab")]
proptest! {
    #[test]
    fn consent_strings_never_panic(s in "[A-Za-z0-9_~.-]{0,80}") {
        let _ = sluice_shared::consent::tcf::parse(&s);
        let _ = sluice_shared::consent::gpp::parse(&s);
    }
}
