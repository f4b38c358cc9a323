//! Property tests of the Parquet lake: write → read is the identity on any
//! events, compaction keeps every row in order, cutting a person out removes
//! exactly their rows, and no byte string makes the reader panic.
#![cfg(all(feature = "lake", not(target_arch = "wasm32")))]
#![allow(clippy::unwrap_used)] // test code: a panic is a failed test

use proptest::prelude::*;
use serde_json::Value;
use sluice_shared::lake::{
    compact_in_runs, events_to_parquet, filter_out, parquet_to_events, Codec, LakeEvent,
};
use sluice_shared::{Event, EventType, Timestamp};

mod strategies;

fn json_value() -> impl Strategy<Value = Value> {
    strategies::json_value_of(strategies::PRINTABLE)
}

fn object() -> impl Strategy<Value = Option<serde_json::Map<String, Value>>> {
    prop::option::of(
        prop::collection::btree_map("\\PC{1,10}", json_value(), 0..4)
            .prop_map(|m| m.into_iter().collect()),
    )
}

/// Any text, or a canonical timestamp (the collector's form), or another RFC 3339 spelling.
fn time() -> impl Strategy<Value = Option<String>> {
    prop::option::of(prop_oneof![
        (-62_135_596_800_000i64..253_402_300_799_000).prop_map(|ms| Timestamp(ms).to_rfc3339()),
        (0i64..4_102_444_800)
            .prop_map(|s| format!("{}+01:00", &Timestamp(s * 1000).to_rfc3339()[..19])),
        "\\PC{0,24}",
    ])
}

fn text() -> impl Strategy<Value = Option<String>> {
    prop::option::of("\\PC{0,16}")
}

prop_compose! {
    fn event()(
        kind in prop::sample::select(EventType::ALL.to_vec()),
        message_id in "\\PC{0,40}",
        ids in (text(), text(), text(), text()),
        names in (text(), text(), text()),
        times in (time(), time(), text(), text()),
        objects in (object(), object(), object(), object()),
        extra in prop::collection::btree_map("x_[a-z]{1,6}", json_value(), 0..3),
    ) -> Event {
        let mut e = Event::new(kind, message_id);
        (e.anonymous_id, e.user_id, e.group_id, e.previous_id) = ids;
        (e.event, e.name, e.category) = names;
        (e.timestamp, e.received_at, e.sent_at, e.original_timestamp) = times;
        (e.properties, e.traits, e.context, e.integrations) = objects;
        e.extra = extra.into_iter().collect();
        e
    }
}

fn sourced(events: &[Event], source: &str) -> Vec<LakeEvent> {
    events
        .iter()
        .map(|e| LakeEvent {
            source: source.into(),
            event: e.clone(),
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn write_then_read_is_the_identity(
        events in prop::collection::vec(event(), 0..40),
        source in "\\PC{0,12}",
        gzip in any::<bool>(),
    ) {
        let codec = if gzip { Codec::Gzip } else { Codec::Uncompressed };
        let file = events_to_parquet(&events, &source, codec).unwrap();
        prop_assert_eq!(parquet_to_events(&file).unwrap(), sourced(&events, &source));
    }

    #[test]
    fn compaction_keeps_every_row_in_order(
        batches in prop::collection::vec(prop::collection::vec(event(), 1..12), 1..5),
        run_bytes in 1usize..20_000,
    ) {
        let files: Vec<Vec<u8>> = batches
            .iter()
            .map(|b| events_to_parquet(b, "web", Codec::Gzip).unwrap())
            .collect();
        let all: Vec<Event> = batches.concat();
        // Small runs: a mix of re-encoded runs and page-by-page merges.
        let merged = compact_in_runs(&files, Codec::Gzip, run_bytes).unwrap();
        prop_assert_eq!(parquet_to_events(&merged).unwrap(), sourced(&all, "web"));
    }

    #[test]
    fn cutting_people_out_removes_exactly_their_rows(
        events in prop::collection::vec(event(), 1..30),
        pick in prop::collection::vec(any::<prop::sample::Index>(), 0..3),
    ) {
        let people: Vec<String> = pick
            .iter()
            .filter_map(|i| {
                let e = &events[i.index(events.len())];
                e.user_id.clone().or_else(|| e.anonymous_id.clone())
            })
            .collect();
        let theirs = |e: &Event| [&e.user_id, &e.anonymous_id].iter().any(|id| id.as_ref().is_some_and(|id| people.contains(id)));
        let kept: Vec<Event> = events.iter().filter(|e| !theirs(e)).cloned().collect();
        let file = events_to_parquet(&events, "web", Codec::Gzip).unwrap();
        let (rest, removed) = filter_out(&file, &people).unwrap();
        prop_assert_eq!(removed, events.len() - kept.len());
        match rest {
            None => prop_assert!(kept.is_empty()),
            Some(rest) => prop_assert_eq!(parquet_to_events(&rest).unwrap(), sourced(&kept, "web")),
        }
    }

    #[test]
    fn any_bytes_are_an_error_or_events_never_a_panic(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let mut framed = b"PAR1".to_vec();
        framed.extend_from_slice(&bytes);
        framed.extend_from_slice(b"PAR1");
        let _ = parquet_to_events(&bytes);
        let _ = parquet_to_events(&framed);
    }
}
