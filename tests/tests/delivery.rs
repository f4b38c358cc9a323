//! Exactly-once into storage, on workerd, under retries and faults: D1, R2
//! (read back with DuckDB), webhooks (signature verified), ClickHouse.
#![allow(clippy::unwrap_used)] // test code: a panic is a failed test

use serde_json::{json, Value};
use sluice_e2e::{duckdb, eventually, temp_dir, Behaviour, ClickHouse, Receiver, Stack};
use std::collections::BTreeMap;
use std::time::Duration;

const SECRET: &str = "e2e-webhook-secret";
const CHROME: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36";

fn event(id: &str, purposes: &[&str]) -> Value {
    let categories: serde_json::Map<String, Value> = purposes
        .iter()
        .map(|p| ((*p).to_owned(), json!("granted")))
        .collect();
    json!({"type": "track", "messageId": id, "anonymousId": "visitor-1", "event": "Product Viewed",
           "properties": {"product_id": id, "price": 12.5},
           "context": {"consent": {"categories": categories, "source": "explicit"}}})
}

fn post(stack: &Stack, events: Vec<Value>) {
    let (status, body) = stack.post_json(
        "/v1/batch?writeKey=demo-write-key",
        &[("user-agent", CHROME)],
        &json!({"batch": events}),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["rejected"], 0, "{body}");
}

fn counts(ids: &[String]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for id in ids {
        *m.entry(id.clone()).or_default() += 1;
    }
    m
}

#[tokio::test]
async fn every_event_lands_exactly_once_in_every_store_and_destination() {
    let clickhouse = ClickHouse::start();
    clickhouse.query(
        "CREATE TABLE default.events (message_id String, source String, type String, event String, name String, \
         anonymous_id String, user_id String, timestamp String, received_at String, properties String, traits String, context String) \
         ENGINE = ReplacingMergeTree ORDER BY message_id",
    );
    let hook = Receiver::start(SECRET, Behaviour::Healthy);
    let flaky = Receiver::start(SECRET, Behaviour::FailFirst(3));
    let down = Receiver::start(SECRET, Behaviour::Down);
    let marketing = Receiver::start(SECRET, Behaviour::Healthy);
    let fast = json!({"initial_delay_s": 1, "max_delay_s": 2, "max_attempts": 6});
    let destinations = json!([
        {"name": "lake", "kind": "r2", "format": "ndjson", "purposes": ["analytics"]},
        {"name": "hook", "kind": "webhook", "url": hook.url(), "secret_var": "HOOK_SECRET", "retry": fast},
        {"name": "flaky", "kind": "webhook", "url": flaky.url(), "secret_var": "HOOK_SECRET", "retry": fast},
        {"name": "down", "kind": "webhook", "url": down.url(), "secret_var": "HOOK_SECRET",
         "retry": {"initial_delay_s": 1, "max_delay_s": 1, "max_attempts": 3}},
        {"name": "ads", "kind": "webhook", "url": marketing.url(), "secret_var": "HOOK_SECRET", "purposes": ["marketing"], "retry": fast},
        {"name": "ch", "kind": "clickhouse", "url": clickhouse.url(), "table": "events", "retry": fast}
    ]);
    let sources = json!([{"name": "demo", "write_key": "demo-write-key", "allowed_origins": [], "consent": {"regime": "opt_in"},
                          "destinations": ["lake", "hook", "flaky", "down", "ads", "ch"]}]);
    let stack = Stack::start_with(&[
        ("SLUICE_SOURCES", &sources.to_string()),
        ("SLUICE_DESTINATIONS", &destinations.to_string()),
        ("HOOK_SECRET", SECRET),
    ]);

    // The same event three times: an SDK retry (same batch again), a replay
    // later, and two tabs sending it at once; plus events that differ.
    let repeated = event("evt-repeated", &["analytics"]);
    post(
        &stack,
        vec![repeated.clone(), event("evt-a", &["analytics"])],
    );
    post(
        &stack,
        vec![
            repeated.clone(),
            event("evt-b", &["analytics", "marketing"]),
        ],
    );
    let tab = |s: &Stack| post(s, vec![repeated.clone()]);
    std::thread::scope(|scope| {
        scope.spawn(|| tab(&stack));
        scope.spawn(|| tab(&stack));
    });
    let ids: Vec<String> = ["evt-a", "evt-b", "evt-repeated"]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();

    // D1: each present (the primary key makes a row count 0 or 1; the
    // `d1_written` and dedup counters below count the copies).
    let rows = eventually("three events in D1", Duration::from_secs(30), || async {
        let r = stack.d1(
            "SELECT message_id, COUNT(*) AS n FROM events GROUP BY message_id ORDER BY message_id",
        );
        (r.len() >= 3).then_some(r)
    })
    .await;
    assert_eq!(
        rows,
        vec![
            json!({"message_id": "evt-a", "n": 1}),
            json!({"message_id": "evt-b", "n": 1}),
            json!({"message_id": "evt-repeated", "n": 1})
        ]
    );

    // A healthy webhook: each event once, signed.
    let got = eventually(
        "the webhook to get every event",
        Duration::from_secs(30),
        || async {
            let got = hook.accepted_ids();
            (counts(&got).len() >= 3).then_some(got)
        },
    )
    .await;
    assert_eq!(
        counts(&got),
        ids.iter().map(|i| (i.clone(), 1)).collect(),
        "each event delivered once"
    );
    assert!(
        hook.received().iter().all(|r| r.signature_valid),
        "every request carries a valid HMAC signature"
    );

    // A webhook that answers 500 three times, then recovers: every event exactly once.
    let got = eventually(
        "the flaky webhook to recover",
        Duration::from_secs(60),
        || async {
            let got = flaky.accepted_ids();
            (counts(&got).len() >= 3).then_some(got)
        },
    )
    .await;
    assert_eq!(
        flaky.received().iter().filter(|r| r.status == 500).count(),
        3,
        "FailFirst(3): exactly three failures"
    );
    assert_eq!(
        counts(&got),
        ids.iter().map(|i| (i.clone(), 1)).collect(),
        "nothing lost, nothing twice after recovery"
    );

    // Marketing consent: only evt-b may go to the ads destination.
    let got = eventually("the ads webhook", Duration::from_secs(30), || async {
        let got = marketing.accepted_ids();
        (!got.is_empty()).then_some(got)
    })
    .await;
    assert_eq!(got, ["evt-b"]);

    // ClickHouse: each event once.
    let ch_rows = eventually("ClickHouse rows", Duration::from_secs(30), || async {
        let text = clickhouse.query("SELECT message_id, count() FROM default.events GROUP BY message_id ORDER BY message_id FORMAT TSV");
        (text.lines().count() >= 3).then_some(text)
    })
    .await;
    assert_eq!(ch_rows.trim(), "evt-a\t1\nevt-b\t1\nevt-repeated\t1");

    // A destination that never recovers: its batches end in the dead-letter store, nothing lost.
    let lake = temp_dir("lake");
    let dead = eventually(
        "dead letters for `down`",
        Duration::from_secs(60),
        || async {
            let keys = stack.export_r2("sluice-lake", &lake);
            let letters: Vec<Value> = keys
                .iter()
                .filter(|k| k.starts_with("dead-letter/destination=down/"))
                .map(|k| serde_json::from_slice(&std::fs::read(lake.join(k)).unwrap()).unwrap())
                .collect();
            let ids: Vec<String> = letters
                .iter()
                .flat_map(|l| {
                    l["events"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|e| e["messageId"].as_str().unwrap().to_owned())
                })
                .collect();
            (counts(&ids).len() >= 3).then_some((letters, ids))
        },
    )
    .await;
    assert_eq!(counts(&dead.1).keys().cloned().collect::<Vec<_>>(), ids);
    assert!(
        dead.0.iter().all(
            |l| l["error"]["message"].as_str().unwrap().contains("HTTP 500") && l["attempts"] == 3
        ),
        "{:?}",
        dead.0
    );
    assert_eq!(
        down.received().len(),
        dead.0.len() * 3,
        "three attempts per batch"
    );

    // R2, read back with DuckDB over the exported objects: the right rows, once each.
    let keys = stack.export_r2("sluice-lake", &lake);
    assert!(
        keys.iter().any(|k| k.starts_with("events/source=demo/dt=")),
        "{keys:?}"
    );
    let glob = format!("{}/events/**/*.ndjson.gz", lake.display());
    let lake_rows = duckdb(&format!(
        "SELECT messageId, source, event, properties.price AS price, COUNT(*) OVER (PARTITION BY messageId) AS copies \
         FROM read_json_auto('{glob}', hive_partitioning = true) ORDER BY messageId"
    ));
    assert_eq!(lake_rows.len(), 3, "{lake_rows:?}");
    for (row, id) in lake_rows.iter().zip(&ids) {
        assert_eq!(row["messageId"], id.as_str());
        assert_eq!(row["source"], "demo", "the hive partition column");
        assert_eq!(row["event"], "Product Viewed");
        assert_eq!(row["price"], 12.5);
        assert_eq!(row["copies"], 1);
    }

    // The repeated event's three later copies are each dropped and counted
    // once (a copy that met the first in flight is retried first).
    eventually(
        "three second copies counted",
        Duration::from_secs(60),
        || async {
            (stack.counter("duplicates_in_batch") + stack.counter("duplicates_dropped") == 3)
                .then_some(())
        },
    )
    .await;
    // Counters record it all.
    let counters =
        stack.d1("SELECT name, SUM(count) AS n FROM counters GROUP BY name ORDER BY name");
    let counter = |name: &str| {
        counters
            .iter()
            .find(|c| c["name"] == name)
            .map(|c| c["n"].as_i64().unwrap())
    };
    assert_eq!(counter("withheld_ads"), Some(2), "{counters:?}");
    assert_eq!(
        counter("d1_written"),
        Some(3),
        "one D1 write per event: {counters:?}"
    );
    assert_eq!(
        counter("dead_lettered_down"),
        Some(dead.1.len() as i64),
        "each dead-lettered event counted once: {counters:?}"
    );
    assert_eq!(
        counter("retried_flaky"),
        Some(retried_flaky_events(&flaky)),
        "each retried event counted per retry: {counters:?}"
    );
}

/// Events in the requests the flaky receiver failed: each is one retry.
fn retried_flaky_events(flaky: &Receiver) -> i64 {
    flaky
        .received()
        .iter()
        .filter(|r| r.status == 500)
        .map(|r| r.body["batch"].as_array().map_or(0, Vec::len) as i64)
        .sum()
}
