//! The Parquet lake on workerd: events collected over HTTP are in D1 and in
//! the R2 lake as Parquet, and DuckDB reads the lake back as the same rows
//! with the same values as D1 — before the hourly compaction (one object per
//! delivery batch) and after it (one file for the hour, every row once, the
//! lake index pointing at it).
#![allow(clippy::unwrap_used)] // test code: a panic is a failed test

use serde_json::{json, Value};
use sluice_e2e::stores::{event, post};
use sluice_e2e::{duckdb, eventually, temp_dir, Stack};
use sluice_shared::Timestamp;
use std::collections::BTreeMap;
use std::time::Duration;

const EVENTS: usize = 1_200;

fn vars() -> Vec<(&'static str, String)> {
    let destinations = json!([{"name": "lake", "kind": "r2", "format": "parquet"}]);
    let sources = json!([{"name": "demo", "write_key": "demo-write-key", "allowed_origins": [],
                          "consent": {"regime": "opt_in"}, "destinations": ["lake"]}]);
    vec![
        ("SLUICE_SOURCES", sources.to_string()),
        ("SLUICE_DESTINATIONS", destinations.to_string()),
        // Compact an hour as soon as it has started (the default waits two hours).
        ("SLUICE_COMPACT_AFTER_S", "0".to_owned()),
    ]
}

/// Every Parquet row of the lake, by message id: the columns D1 has too, as
/// DuckDB reads them (times as epoch ms, JSON parsed), and the file it is in.
fn lake(stack: &Stack) -> (Vec<String>, BTreeMap<String, Vec<Value>>) {
    let dir = temp_dir("parquet-lake");
    let keys: Vec<String> = stack
        .export_r2("sluice-lake", &dir)
        .into_iter()
        .filter(|k| k.starts_with("events/"))
        .collect();
    let mut rows: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    if keys.is_empty() {
        return (keys, rows);
    }
    for r in duckdb(&format!(
        "SELECT message_id, source, type, event, anonymous_id, user_id, \
         epoch_ms(received_at) AS received_ms, epoch_ms(timestamp) AS ts_ms, \
         properties::VARCHAR AS properties, context::VARCHAR AS context \
         FROM read_parquet('{}/events/**/*.parquet', hive_partitioning = true) ORDER BY message_id",
        dir.display()
    )) {
        let id = r["message_id"].as_str().unwrap().to_owned();
        rows.entry(id).or_default().push(normalised(&r));
    }
    (keys, rows)
}

/// A row with its JSON columns parsed, so text formatting cannot differ.
fn normalised(r: &Value) -> Value {
    let parse = |v: &Value| {
        v.as_str()
            .map_or(Value::Null, |s| serde_json::from_str(s).unwrap())
    };
    json!({
        "message_id": r["message_id"], "source": r["source"], "type": r["type"], "event": r["event"],
        "anonymous_id": r["anonymous_id"], "user_id": r["user_id"],
        "received_ms": r["received_ms"], "ts_ms": r["ts_ms"],
        "properties": parse(&r["properties"]), "context": parse(&r["context"]),
    })
}

/// D1's rows in the same shape.
fn d1(stack: &Stack) -> BTreeMap<String, Value> {
    let ms = |v: &Value| {
        v.as_str()
            .map_or(Value::Null, |s| json!(Timestamp::parse(s).unwrap().0))
    };
    stack
        .d1("SELECT message_id, source, type, event, anonymous_id, user_id, received_at, timestamp, \
             properties, context FROM events ORDER BY message_id")
        .iter()
        .map(|r| {
            let mut row = r.clone();
            row["received_ms"] = ms(&r["received_at"]);
            row["ts_ms"] = ms(&r["timestamp"]);
            (r["message_id"].as_str().unwrap().to_owned(), normalised(&row))
        })
        .collect()
}

#[tokio::test]
async fn duckdb_reads_the_same_events_as_d1_before_and_after_the_hourly_compaction() {
    let vars = vars();
    let borrowed: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let stack = Stack::start_with(&borrowed);
    let ids: Vec<String> = (0..EVENTS).map(|i| format!("pq-{i:04}")).collect();
    for (n, chunk) in ids.chunks(50).enumerate() {
        let events = chunk
            .iter()
            .map(|id| {
                let mut e = event(id, &format!("anon-{}", n % 3));
                e["timestamp"] = json!("2026-01-02T03:04:05.678Z");
                e["properties"]["tags"] = json!(["a", "b"]);
                e
            })
            .collect();
        post(&stack, events);
    }
    let (keys, before) = eventually(
        "every event in the lake and in D1",
        Duration::from_secs(120),
        || async {
            let (keys, rows) = lake(&stack);
            (rows.len() == EVENTS && d1(&stack).len() == EVENTS).then_some((keys, rows))
        },
    )
    .await;
    assert!(keys.len() >= 2, "one object per delivery batch: {keys:?}");
    let in_d1 = d1(&stack);
    let lake_once: BTreeMap<String, Value> = before
        .iter()
        .map(|(id, copies)| {
            assert_eq!(copies.len(), 1, "{id} is in the lake once");
            (id.clone(), copies[0].clone())
        })
        .collect();
    assert_eq!(lake_once, in_d1, "the lake and D1 hold the same values");
    assert_eq!(
        lake_once.keys().cloned().collect::<Vec<_>>(),
        ids,
        "every event collected"
    );

    assert_eq!(stack.run_cron("7 * * * *"), 200);
    // Done once the index holds only the output and no deletion of inputs
    // is left (R2 is read after, not while objects are being deleted).
    let index = eventually(
        "the hour compacted into one file",
        Duration::from_secs(60),
        || async {
            let index = stack.d1("SELECT key, people FROM lake_objects");
            let done = index.len() == 1
                && index[0]["key"]
                    .as_str()
                    .is_some_and(|k| k.ends_with("/compacted-0001.parquet"))
                && stack.d1("SELECT 1 FROM lake_compactions").is_empty();
            done.then_some(index)
        },
    )
    .await;
    let (after_keys, after) = lake(&stack);
    assert_eq!(
        after_keys,
        [index[0]["key"].as_str().unwrap()],
        "one file for the hour"
    );
    assert_eq!(after, before, "the same rows, each once, after compaction");
    let people: Vec<String> = serde_json::from_str(index[0]["people"].as_str().unwrap()).unwrap();
    assert_eq!(
        people,
        ["anon-0", "anon-1", "anon-2"],
        "the index names everyone in it"
    );
}
