//! The Parquet lake: what is written reads back the same, a person's rows
//! can be found and cut out, small files merge, and damaged input is a typed
//! error. DuckDB reads the same files in `tests/tests/lake.rs`.
#![cfg(feature = "lake")]
#![allow(clippy::unwrap_used)] // test code: a panic is a failed test

use serde_json::{json, Value};
use sluice_shared::lake::{
    compact, compact_in_runs, events_of, events_to_parquet, filter_out, merge, parquet_to_events,
    read, write, Codec, Column, Field, Kind, LakeError, LakeEvent, Table,
};
use sluice_shared::parse::parse_single;
use sluice_shared::skew::{self, SkewRules};
use sluice_shared::{Event, EventType, Limits, Timestamp};
use std::io::Write;

const NOW: Timestamp = Timestamp(1_714_557_900_000); // 2024-05-01T10:05:00Z

fn fixture(path: &str, kind: EventType) -> Event {
    let full = format!("{}/tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
    let body = std::fs::read(&full).unwrap();
    let parsed = parse_single(&body, kind, &Limits::default()).unwrap();
    parsed
        .check(&Limits::default(), NOW)
        .remove(0)
        .result
        .unwrap()
        .into_event()
}

/// `n` events as the collector stores them: the analytics.js and RudderStack
/// fixtures in turn, each with its own ids and times, after skew correction.
fn typical(n: usize) -> Vec<Event> {
    let kinds = [
        ("analytics-js/track.json", EventType::Track),
        ("analytics-js/page.json", EventType::Page),
        ("analytics-js/identify.json", EventType::Identify),
        ("rudderstack/track.json", EventType::Track),
        ("rudderstack/identify.json", EventType::Identify),
    ];
    let base: Vec<Event> = kinds.iter().map(|(p, k)| fixture(p, *k)).collect();
    (0..n)
        .map(|i| {
            let mut e = base[i % base.len()].clone();
            e.message_id = format!("msg-{i:06}-{:08x}", i.wrapping_mul(2_654_435_761));
            e.anonymous_id = Some(format!("anon-{:04}", i / 3));
            if e.user_id.is_some() {
                e.user_id = Some(format!("user-{:04}", i / 7));
            }
            let received = NOW.plus_millis(i64::try_from(i).unwrap() * 1_003);
            skew::apply(&mut e, received, SkewRules::default());
            e
        })
        .collect()
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

fn ndjson_gz(events: &[Event]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    for e in events {
        serde_json::to_writer(&mut gz, e).unwrap();
        gz.write_all(b"\n").unwrap();
    }
    gz.finish().unwrap()
}

#[test]
fn typical_events_read_back_exactly_with_either_codec() {
    let events = typical(1_200);
    for codec in [Codec::Gzip, Codec::Uncompressed] {
        let file = events_to_parquet(&events, "web", codec).unwrap();
        assert_eq!(&file[..4], b"PAR1");
        assert_eq!(&file[file.len() - 4..], b"PAR1");
        assert_eq!(parquet_to_events(&file).unwrap(), sourced(&events, "web"));
        assert_eq!(read(&file).unwrap().1, codec);
    }
}

#[test]
fn nulls_unicode_empty_objects_and_odd_times_survive() {
    let mut e = Event::new(EventType::Track, "m-ü-🦀");
    e.event = Some("Bestellung abgeschlossen — 注文".into());
    e.user_id = Some(String::new());
    e.properties = Some(serde_json::Map::new());
    e.context = Some(
        json!({"locale": "ja-JP", "nested": {"a": [1, 2.5, null, "ß"]}})
            .as_object()
            .cloned()
            .unwrap(),
    );
    e.timestamp = Some("2024-05-01T12:00:00+02:00".into()); // not canonical: kept as text
    e.received_at = Some("yesterday".into()); // not a time at all: kept as text
    e.extra.insert("channel".into(), json!("web"));
    let mut bare = Event::new(EventType::Alias, "m2");
    bare.previous_id = Some("old".into());
    let events = vec![e, bare];
    let file = events_to_parquet(&events, "src-é", Codec::Gzip).unwrap();
    assert_eq!(parquet_to_events(&file).unwrap(), sourced(&events, "src-é"));

    // The odd times sit in `extra`, the timestamp columns are null there.
    let (table, _) = read(&file).unwrap();
    assert_eq!(
        table.column("timestamp"),
        Some(&Column::Int64(vec![None, None]))
    );
    let Some(Column::Text(extra)) = table.column("extra") else {
        panic!()
    };
    let extra: Value = serde_json::from_str(extra[0].as_deref().unwrap()).unwrap();
    assert_eq!(extra["timestamp"], "2024-05-01T12:00:00+02:00");
    assert_eq!(extra["receivedAt"], "yesterday");
    assert_eq!(extra["channel"], "web");
    assert_eq!(
        table.column("properties"),
        Some(&Column::Text(vec![Some("{}".into()), None]))
    );
}

#[test]
fn canonical_times_are_timestamp_columns() {
    let events = typical(3);
    let (table, _) = read(&events_to_parquet(&events, "web", Codec::Gzip).unwrap()).unwrap();
    let ms: Vec<Option<i64>> = events
        .iter()
        .map(|e| {
            Some(
                Timestamp::parse(e.received_at.as_deref().unwrap())
                    .unwrap()
                    .0,
            )
        })
        .collect();
    assert_eq!(table.column("received_at"), Some(&Column::Int64(ms)));
    let kinds: Vec<_> = table
        .fields
        .iter()
        .map(|f| (f.name.as_str(), f.kind))
        .collect();
    assert!(kinds.contains(&("received_at", Kind::TimestampMillis)));
    assert!(kinds.contains(&("context", Kind::Json)));
}

#[test]
fn big_columns_are_split_into_pages_and_read_back() {
    let mut events = typical(600);
    let blob = "x".repeat(5_000);
    for e in &mut events {
        e.properties
            .get_or_insert_with(Default::default)
            .insert("blob".into(), json!(blob));
    }
    let file = events_to_parquet(&events, "web", Codec::Uncompressed).unwrap();
    // 600 × 5 KB of properties is 3 MB: several data pages for that column
    // (the split itself is unit-tested in `write.rs`).
    assert!(file.len() > 3 << 20);
    assert_eq!(parquet_to_events(&file).unwrap(), sourced(&events, "web"));
}

#[test]
fn a_persons_rows_can_be_exported_and_cut_out() {
    let mut events = typical(10);
    for e in &mut events {
        e.user_id = None;
    }
    events[2].user_id = Some("u-1".into());
    events[5].anonymous_id = Some("a-1".into());
    let file = events_to_parquet(&events, "web", Codec::Gzip).unwrap();
    let people = vec!["u-1".to_string(), "a-1".to_string()];

    let theirs = events_of(&file, &people).unwrap();
    assert_eq!(theirs, vec![events[2].clone(), events[5].clone()]);

    let (rest, removed) = filter_out(&file, &people).unwrap();
    assert_eq!(removed, 2);
    let rest = rest.unwrap();
    let mut kept = events.clone();
    kept.remove(5);
    kept.remove(2);
    assert_eq!(parquet_to_events(&rest).unwrap(), sourced(&kept, "web"));
    assert_eq!(
        read(&rest).unwrap().1,
        Codec::Gzip,
        "the rewrite keeps the codec"
    );

    assert_eq!(
        filter_out(&file, &["nobody".into()]).unwrap(),
        (Some(file.clone()), 0)
    );
    let everyone: Vec<String> = events
        .iter()
        .filter_map(|e| e.anonymous_id.clone())
        .chain(people)
        .collect();
    assert_eq!(filter_out(&file, &everyone).unwrap(), (None, 10));
}

#[test]
fn small_files_compact_into_one_with_every_row_in_order() {
    let events = typical(250);
    let objects: Vec<Vec<u8>> = events
        .chunks(100)
        .map(|c| events_to_parquet(c, "web", Codec::Gzip).unwrap())
        .collect();
    let merged = compact(&objects, Codec::Gzip).unwrap();
    assert_eq!(parquet_to_events(&merged).unwrap(), sourced(&events, "web"));
    let small: usize = objects.iter().map(Vec::len).sum();
    assert!(merged.len() < small, "{} ≥ {small}", merged.len());
    assert_eq!(
        compact::<Vec<u8>>(&[], Codec::Gzip),
        Err(LakeError::NoObjects)
    );

    let other = write(
        &Table::empty(vec![Field::new("n", Kind::Int64, false)]),
        Codec::Gzip,
    )
    .unwrap();
    assert_eq!(
        compact(&[objects[0].clone(), other], Codec::Gzip),
        Err(LakeError::SchemaMismatch)
    );
}

#[test]
fn big_hours_merge_page_by_page_with_every_row_in_order() {
    let events = typical(300);
    let files: Vec<Vec<u8>> = events
        .chunks(50)
        .map(|c| events_to_parquet(c, "web", Codec::Gzip).unwrap())
        .collect();
    let merged = merge(&files).unwrap();
    assert_eq!(parquet_to_events(&merged).unwrap(), sourced(&events, "web"));
    // Pages are copied as they are: the merged file is the inputs' pages
    // between one `PAR1` and one footer.
    let footer = |f: &[u8]| {
        let n = f.len();
        12 + u32::from_le_bytes([f[n - 8], f[n - 7], f[n - 6], f[n - 5]]) as usize
    };
    let pages: usize = files.iter().map(|f| f.len() - footer(f)).sum();
    assert_eq!(merged.len(), pages + footer(&merged));
    // Runs of one input each (run size 1 byte) take the same path through `merge`;
    // runs of two re-encode pairs first.
    for run_bytes in [1, 700_000] {
        let out = compact_in_runs(&files, Codec::Gzip, run_bytes).unwrap();
        assert_eq!(parquet_to_events(&out).unwrap(), sourced(&events, "web"));
    }

    assert_eq!(merge::<Vec<u8>>(&[]), Err(LakeError::NoObjects));
    let plain = events_to_parquet(&events[..5], "web", Codec::Uncompressed).unwrap();
    assert_eq!(
        merge(&[files[0].clone(), plain]).unwrap_err().code(),
        "lake_unsupported"
    );
    let other = write(
        &Table::empty(vec![Field::new("n", Kind::Int64, false)]),
        Codec::Gzip,
    )
    .unwrap();
    assert_eq!(
        merge(&[files[0].clone(), other]),
        Err(LakeError::SchemaMismatch)
    );
    let mut damaged = files[1].clone();
    let mid = damaged.len() / 3;
    damaged[mid] ^= 0xFF;
    assert!(
        merge(&[files[0].clone(), damaged]).is_err(),
        "a damaged input is never copied"
    );
}

#[test]
fn generic_tables_of_every_kind_round_trip() {
    let table = Table {
        fields: vec![
            Field::new("flag", Kind::Bool, true),
            Field::new("bits", Kind::Bool, false),
            Field::new("n", Kind::Int64, true),
            Field::new("t", Kind::TimestampMillis, false),
            Field::new("s", Kind::Text, false),
        ],
        columns: vec![
            Column::Bool(
                (0..21)
                    .map(|i| (i % 3 != 0).then_some(i % 2 == 0))
                    .collect(),
            ),
            Column::Bool((0..21).map(|i| Some(i % 5 == 0)).collect()),
            Column::Int64((0..21).map(|i| (i != 4).then_some(i64::MIN + i)).collect()),
            Column::Int64((0..21).map(|i| Some(i * 1000 - 5000)).collect()),
            Column::Text((0..21).map(|i| Some(format!("{i}"))).collect()),
        ],
    };
    let file = write(&table, Codec::Uncompressed).unwrap();
    assert_eq!(read(&file).unwrap(), (table.clone(), Codec::Uncompressed));
    let empty = Table::empty(table.fields.clone());
    assert_eq!(read(&write(&empty, Codec::Gzip).unwrap()).unwrap().0, empty);
}

#[test]
fn bad_tables_are_typed_errors() {
    let f = |kind, optional| {
        vec![
            Field::new("c", kind, optional),
            Field::new("d", Kind::Text, true),
        ]
    };
    let t = |fields, columns| write(&Table { fields, columns }, Codec::Gzip).unwrap_err();
    let text = |n: usize| Column::Text(vec![Some("x".into()); n]);
    assert_eq!(
        t(
            f(Kind::Text, false),
            vec![Column::Text(vec![Some("a".into()), None]), text(2)]
        ),
        LakeError::NullInRequired {
            column: "c".into(),
            row: 1
        }
    );
    assert_eq!(
        t(f(Kind::Int64, true), vec![text(2), text(2)]),
        LakeError::ColumnType { column: "c".into() }
    );
    assert_eq!(
        t(f(Kind::Text, true), vec![text(2), text(3)]),
        LakeError::RaggedColumns {
            column: "d".into(),
            rows: 3,
            expected: 2
        }
    );
    assert_eq!(
        t(f(Kind::Text, true), vec![text(2)]).code(),
        "lake_column_count"
    );

    let mut e = Event::new(EventType::Track, "m");
    e.extra.insert("receivedAt".into(), json!("x"));
    let err = events_to_parquet(&[e], "web", Codec::Gzip).unwrap_err();
    assert_eq!(
        err,
        LakeError::ReservedKey {
            row: 0,
            key: "receivedAt"
        }
    );
    assert_eq!(err.code(), "lake_reserved_key");
}

#[test]
fn damaged_files_are_errors_never_panics() {
    let file = events_to_parquet(&typical(5), "web", Codec::Gzip).unwrap();
    assert_eq!(
        read(b"not parquet at all").unwrap_err(),
        LakeError::NotParquet
    );
    assert_eq!(
        parquet_to_events(&ndjson_gz(&typical(2)))
            .unwrap_err()
            .code(),
        "lake_not_parquet"
    );
    // Every truncation, and every single flipped byte, fails cleanly or reads
    // something that still checks out (a flipped bit inside a text value).
    for cut in 0..file.len() {
        assert!(read(&file[..cut]).is_err(), "cut at {cut}");
    }
    for i in 0..file.len() {
        let mut bad = file.clone();
        bad[i] ^= 0x5A;
        let _ = parquet_to_events(&bad);
    }
    let generic = write(
        &Table {
            fields: vec![Field::new("n", Kind::Int64, false)],
            columns: vec![Column::Int64(vec![Some(1)])],
        },
        Codec::Gzip,
    )
    .unwrap();
    assert_eq!(
        parquet_to_events(&generic).unwrap_err(),
        LakeError::SchemaMismatch
    );
}

#[test]
fn error_codes_are_distinct_and_prefixed() {
    let all = [
        LakeError::NotParquet,
        LakeError::Corrupt("x"),
        LakeError::Unsupported("x"),
        LakeError::Compression,
        LakeError::TooLarge,
        LakeError::ColumnCount {
            fields: 1,
            columns: 2,
        },
        LakeError::ColumnType { column: "c".into() },
        LakeError::RaggedColumns {
            column: "c".into(),
            rows: 1,
            expected: 2,
        },
        LakeError::NullInRequired {
            column: "c".into(),
            row: 0,
        },
        LakeError::SchemaMismatch,
        LakeError::BadValue {
            column: "c".into(),
            row: 0,
        },
        LakeError::ReservedKey {
            row: 0,
            key: "timestamp",
        },
        LakeError::NoObjects,
    ];
    let mut codes: Vec<&str> = all.iter().map(LakeError::code).collect();
    assert!(codes.iter().all(|c| c.starts_with("lake_")));
    assert!(all.iter().all(|e| !e.to_string().is_empty()));
    codes.sort_unstable();
    codes.dedup();
    assert_eq!(codes.len(), all.len());
}

/// Parquet (gzip pages) against the NDJSON.gz the lake writes today, for
/// typical collector events. A file carries ~1.7 KB of footer and a gzip
/// stream per column: a 100-event file is larger than its NDJSON.gz (hence
/// the hourly compaction), a 1,000-event one smaller. Sizes are deterministic
/// for a flate2 version; printed with `--nocapture`.
#[test]
fn parquet_beats_ndjson_gz_from_a_thousand_events() {
    let size = |n: usize| {
        let events = typical(n);
        let parquet = events_to_parquet(&events, "web", Codec::Gzip)
            .unwrap()
            .len();
        let raw = events_to_parquet(&events, "web", Codec::Uncompressed)
            .unwrap()
            .len();
        let ndjson = ndjson_gz(&events).len();
        println!("{n} events: parquet gzip {parquet} B, parquet uncompressed {raw} B, ndjson.gz {ndjson} B");
        (parquet, ndjson)
    };
    let (parquet, ndjson) = size(100);
    assert!(
        parquet * 2 <= ndjson * 3,
        "100 events: parquet {parquet} B vs ndjson.gz {ndjson} B"
    );
    let (parquet, ndjson) = size(1_000);
    assert!(
        parquet * 5 <= ndjson * 4,
        "1000 events: parquet {parquet} B vs ndjson.gz {ndjson} B"
    );
}
