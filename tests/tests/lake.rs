//! The Parquet lake as analysts read it: files written by `sluice_shared::lake`
//! are read by DuckDB (from PyPI, as `cargo xtask test` installs it) with the
//! same values, nulls, unicode and JSON, one file or a Hive-partitioned tree.
#![allow(clippy::unwrap_used)] // test code: a panic is a failed test

use serde_json::{json, Value};
use sluice_e2e::{duckdb, temp_dir};
use sluice_shared::lake::{compact, events_to_parquet, filter_out, merge, Codec};
use sluice_shared::{Event, EventType, Timestamp};
use std::path::Path;

const T0: i64 = 1_714_557_600_000; // 2024-05-01T10:00:00Z

/// `n` events of every type, with unicode, nulls and nested JSON.
fn events(n: usize, first_ms: i64) -> Vec<Event> {
    (0..n)
        .map(|i| {
            let kind = EventType::ALL[i % EventType::ALL.len()];
            let mut e = Event::new(kind, format!("m{first_ms}-{i:05}"));
            e.anonymous_id = Some(format!("anon-{}", i % 97));
            e.user_id = (i % 3 == 0).then(|| format!("usér-{}-🦀", i % 11));
            e.event = (kind == EventType::Track).then(|| format!("Order Completed #{} — 注文", i % 4));
            e.name = (i % 5 == 1).then(|| "Startseite".to_string());
            let at = Timestamp(first_ms + i64::try_from(i).unwrap() * 1_000);
            e.received_at = Some(at.to_rfc3339());
            e.timestamp = Some(at.plus_millis(-250).to_rfc3339());
            e.sent_at = (i % 2 == 0).then(|| at.plus_millis(-100).to_rfc3339());
            let props = json!({"price": i as f64 + 0.5, "sku": format!("SKU-{i}"), "tags": ["a", "ü"], "n": null});
            e.properties = (i % 4 != 3).then(|| props.as_object().cloned().unwrap());
            e.context = Some(json!({"page": {"path": format!("/p/{i}")}, "locale": "de-DE"}).as_object().cloned().unwrap());
            if i % 10 == 0 {
                e.extra.insert("channel".into(), json!("web"));
            }
            e
        })
        .collect()
}

fn put(path: &Path, bytes: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

fn s(v: &Option<String>) -> Value {
    v.as_ref().map_or(Value::Null, |s| Value::String(s.clone()))
}

fn ms(v: &Option<String>) -> Value {
    v.as_deref()
        .map_or(Value::Null, |t| json!(Timestamp::parse(t).unwrap().0))
}

#[test]
fn duckdb_reads_every_value_of_a_file_back() {
    let dir = temp_dir("lake-one");
    let file = dir.join("events.parquet");
    let evs = events(1_500, T0);
    put(&file, &events_to_parquet(&evs, "web", Codec::Gzip).unwrap());
    let rows = duckdb(&format!(
        "SELECT message_id, source, type, event, name, user_id, anonymous_id, \
         epoch_ms(received_at) AS received_ms, epoch_ms(timestamp) AS ts_ms, sent_at, \
         original_timestamp, properties::VARCHAR AS properties, context::VARCHAR AS context, \
         extra::VARCHAR AS extra, json_extract(properties, '$.price')::DOUBLE AS price, \
         json_extract_string(context, '$.page.path') AS path \
         FROM read_parquet('{}') ORDER BY message_id",
        file.display()
    ));
    assert_eq!(rows.len(), evs.len());
    for (row, e) in rows.iter().zip(&evs) {
        let text = |o: &Option<serde_json::Map<String, Value>>| {
            o.as_ref()
                .map_or(Value::Null, |o| json!(serde_json::to_string(o).unwrap()))
        };
        let want = json!({
            "message_id": e.message_id,
            "source": "web",
            "type": e.kind.as_str(),
            "event": s(&e.event),
            "name": s(&e.name),
            "user_id": s(&e.user_id),
            "anonymous_id": s(&e.anonymous_id),
            "received_ms": ms(&e.received_at),
            "ts_ms": ms(&e.timestamp),
            "sent_at": s(&e.sent_at),
            "original_timestamp": Value::Null,
            "properties": text(&e.properties),
            "context": text(&e.context),
            "extra": if e.extra.is_empty() { Value::Null } else { json!(serde_json::to_string(&e.extra).unwrap()) },
            "price": e.properties.as_ref().map_or(Value::Null, |p| p["price"].clone()),
            "path": e.context.as_ref().unwrap()["page"]["path"].clone(),
        });
        assert_eq!(row, &want);
    }
}

#[test]
fn duckdb_sees_the_logical_types() {
    let dir = temp_dir("lake-types");
    let file = dir.join("events.parquet");
    put(
        &file,
        &events_to_parquet(&events(3, T0), "web", Codec::Uncompressed).unwrap(),
    );
    let described = duckdb(&format!(
        "SELECT column_name, column_type, \"null\" FROM (DESCRIBE SELECT * FROM read_parquet('{}'))",
        file.display()
    ));
    let of = |name: &str| {
        described
            .iter()
            .find(|r| r["column_name"] == name)
            .map(|r| r["column_type"].as_str().unwrap().to_string())
            .unwrap()
    };
    assert_eq!(of("message_id"), "VARCHAR");
    assert_eq!(of("received_at"), "TIMESTAMP WITH TIME ZONE");
    assert_eq!(of("properties"), "JSON");
    assert_eq!(described.len(), 19);
}

/// Three delivery batches over two days and two hours, plus a compacted
/// hour, read as one Hive-partitioned lake; a time filter (which DuckDB
/// answers with the files' statistics) keeps exactly the rows it should.
#[test]
fn duckdb_reads_a_hive_partitioned_tree_and_prunes_by_statistics() {
    let dir = temp_dir("lake-hive");
    let day2 = T0 + 86_400_000 + 3_600_000; // 2024-05-02T11:00:00Z
    let batches = [
        ("dt=2024-05-01/hour=10/b1.parquet", events(100, T0)),
        ("dt=2024-05-01/hour=10/b2.parquet", events(80, T0 + 200_000)),
        ("dt=2024-05-02/hour=11/b3.parquet", events(50, day2)),
    ];
    for (key, evs) in &batches {
        put(
            &dir.join("source=web").join(key),
            &events_to_parquet(evs, "web", Codec::Gzip).unwrap(),
        );
    }
    let glob = format!("{}/**/*.parquet", dir.display());
    let per_partition = duckdb(&format!(
        "SELECT dt::VARCHAR AS dt, hour::INTEGER AS hour, source, count(*) AS n, min(message_id) AS first \
         FROM read_parquet('{glob}', hive_partitioning = true) GROUP BY ALL ORDER BY dt, hour"
    ));
    assert_eq!(
        per_partition,
        vec![
            json!({"dt": "2024-05-01", "hour": 10, "source": "web", "n": 180, "first": batches[0].1[0].message_id}),
            json!({"dt": "2024-05-02", "hour": 11, "source": "web", "n": 50, "first": batches[2].1[0].message_id}),
        ]
    );
    // From b1's last row on day one: that row and all of b2. A written max
    // below a file's true max would make DuckDB skip b1 and lose its row.
    let cut = batches[0].1[99].received_at.clone().unwrap();
    let later = duckdb(&format!(
        "SELECT message_id FROM read_parquet('{glob}', hive_partitioning = true) \
         WHERE received_at >= TIMESTAMPTZ '{cut}' AND dt = '2024-05-01' ORDER BY message_id"
    ));
    let want: Vec<Value> = std::iter::once(&batches[0].1[99])
        .chain(&batches[1].1)
        .map(|e| json!({"message_id": e.message_id}))
        .collect();
    assert_eq!(later, want);

    // The hour compacted into one file reads the same as its two batches.
    let hour = dir.join("source=web/dt=2024-05-01/hour=10");
    let small: Vec<Vec<u8>> = ["b1", "b2"]
        .iter()
        .map(|b| std::fs::read(hour.join(format!("{b}.parquet"))).unwrap())
        .collect();
    let merged = dir.join("compacted/source=web/dt=2024-05-01/hour=10/all.parquet");
    put(&merged, &compact(&small, Codec::Gzip).unwrap());
    let q = |path: String| {
        duckdb(&format!(
            "SELECT message_id, epoch_ms(received_at) AS at, properties::VARCHAR AS p \
             FROM read_parquet('{path}') ORDER BY message_id"
        ))
    };
    let before = q(format!("{}/*.parquet", hour.display()));
    assert_eq!(before.len(), 180);
    assert_eq!(q(merged.display().to_string()), before);

    // Merged page by page: same rows, and statistics combined over both
    // inputs (a max kept from b1 alone would make DuckDB skip the row group).
    let copied = dir.join("merged/all.parquet");
    put(&copied, &merge(&small).unwrap());
    assert_eq!(q(copied.display().to_string()), before);
    let after_b1 = duckdb(&format!(
        "SELECT message_id FROM read_parquet('{}') WHERE received_at > TIMESTAMPTZ '{cut}' \
         ORDER BY message_id",
        copied.display()
    ));
    let want: Vec<Value> = batches[1]
        .1
        .iter()
        .map(|e| json!({"message_id": e.message_id}))
        .collect();
    assert_eq!(after_b1, want);
}

#[test]
fn a_person_cut_out_of_a_file_is_gone_for_duckdb_and_the_rest_stays() {
    let dir = temp_dir("lake-delete");
    let evs = events(300, T0);
    let person = evs[0].user_id.clone().unwrap();
    let (rest, removed) = filter_out(
        &events_to_parquet(&evs, "web", Codec::Gzip).unwrap(),
        std::slice::from_ref(&person),
    )
    .unwrap();
    let theirs = evs
        .iter()
        .filter(|e| e.user_id.as_deref() == Some(&person))
        .count();
    assert_eq!(removed, theirs);
    let file = dir.join("rest.parquet");
    put(&file, &rest.unwrap());
    let rows = duckdb(&format!(
        "SELECT message_id, user_id FROM read_parquet('{}') ORDER BY message_id",
        file.display()
    ));
    let want: Vec<Value> = evs
        .iter()
        .filter(|e| e.user_id.as_deref() != Some(&person))
        .map(|e| json!({"message_id": e.message_id, "user_id": s(&e.user_id)}))
        .collect();
    assert_eq!(rows, want);
}
