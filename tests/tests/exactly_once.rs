//! Exactly once across consumer batches, on workerd: copies of an event that
//! reach the events consumer in *different* batches (so the in-batch dedup
//! cannot remove them) are dropped by the dedup shards (Durable Objects), and
//! every store holds one copy. Counted without anything that can hide a
//! duplicate (see `sluice_e2e::stores`): lake lines, webhook requests,
//! ClickHouse `MergeTree` rows, and the worker's counters — `d1_written`
//! (events in D1 writes that took effect, counted in the same atomic batch),
//! `duplicates_dropped` (copies the dedup shards answered "duplicate"),
//! `duplicates_in_batch`, `claims_in_flight` (copies retried because another
//! consumer was writing the id).
#![allow(clippy::unwrap_used)] // test code: a panic is a failed test

use serde_json::json;
use sluice_e2e::stores::{event, once, post, Copies, CLICKHOUSE_TABLE};
use sluice_e2e::{eventually, Behaviour, ClickHouse, Receiver, Stack};
use std::time::Duration;

const SECRET: &str = "exactly-once-secret";

/// ClickHouse, a webhook receiver and the worker, every event to the lake,
/// the webhook and ClickHouse.
fn pipeline(extra: &[(&str, &str)]) -> (ClickHouse, Receiver, Stack) {
    let ch = ClickHouse::start();
    ch.query(CLICKHOUSE_TABLE);
    let hook = Receiver::start(SECRET, Behaviour::Healthy);
    let fast = json!({"initial_delay_s": 1, "max_delay_s": 2, "max_attempts": 6});
    let destinations = json!([
        {"name": "lake", "kind": "r2"},
        {"name": "hook", "kind": "webhook", "url": hook.url(), "secret_var": "HOOK_SECRET", "retry": fast},
        {"name": "ch", "kind": "clickhouse", "url": ch.url(), "table": "events", "retry": fast}
    ]);
    let sources = json!([{"name": "demo", "write_key": "demo-write-key", "allowed_origins": [],
                          "consent": {"regime": "opt_in"}, "destinations": ["lake", "hook", "ch"]}]);
    let (sources, destinations) = (sources.to_string(), destinations.to_string());
    let mut vars = vec![
        ("SLUICE_SOURCES", sources.as_str()),
        ("SLUICE_DESTINATIONS", destinations.as_str()),
        ("HOOK_SECRET", SECRET),
    ];
    vars.extend_from_slice(extra);
    let stack = Stack::start_with(&vars);
    (ch, hook, stack)
}

/// Wait until every id is in D1, the lake, the webhook and ClickHouse.
async fn everywhere(stack: &Stack, hook: &Receiver, ch: &ClickHouse, ids: &[&str], secs: u64) {
    eventually(
        &format!("{ids:?} in every store"),
        Duration::from_secs(secs),
        || async {
            Copies::read(stack, Some(hook), Some(ch))
                .has_all(ids, true, true)
                .then_some(())
        },
    )
    .await;
}

/// Send a sentinel through the same path, wait for it everywhere, then
/// assert each store holds exactly one copy of every id (the sentinel's
/// included): anything late would have arrived before it.
async fn exactly_once_everywhere(stack: &Stack, hook: &Receiver, ch: &ClickHouse, ids: &[&str]) {
    post(stack, vec![event("sentinel", "visitor-sentinel")]);
    everywhere(stack, hook, ch, &["sentinel"], 60).await;
    let mut all = ids.to_vec();
    all.push("sentinel");
    let copies = Copies::read(stack, Some(hook), Some(ch));
    assert_eq!(copies.d1, once(&all), "D1");
    assert_eq!(copies.lake, once(&all), "lake lines");
    assert_eq!(copies.hook, once(&all), "webhook requests");
    assert_eq!(copies.clickhouse, once(&all), "ClickHouse rows");
}

#[tokio::test]
async fn a_copy_resent_after_the_first_is_stored_is_dropped_by_its_dedup_shard() {
    let (ch, hook, stack) = pipeline(&[]);
    post(&stack, vec![event("x", "v1"), event("a", "v1")]);
    everywhere(&stack, &hook, &ch, &["x", "a"], 60).await;

    // The same event again, in another request with another companion (so a
    // second lake object would be written for it if it got through).
    post(&stack, vec![event("x", "v1"), event("b", "v1")]);
    everywhere(&stack, &hook, &ch, &["b"], 60).await;
    eventually(
        "the resent copy to be dropped",
        Duration::from_secs(30),
        || async { (stack.counter("duplicates_dropped") == 1).then_some(()) },
    )
    .await;

    exactly_once_everywhere(&stack, &hook, &ch, &["x", "a", "b"]).await;
    assert_eq!(
        stack.counter("d1_written"),
        4,
        "x, a, b, sentinel: one write each"
    );
    assert_eq!(stack.counter("duplicates_dropped"), 1);
    assert_eq!(
        stack.counter("duplicates_in_batch"),
        0,
        "the copies were in different batches"
    );
    assert_eq!(stack.counter("claims_in_flight"), 0);
}

#[tokio::test]
async fn a_copy_resent_while_the_first_is_being_written_waits_then_is_dropped() {
    // Local-only fault: a batch that wins `held-x` pauses 10 s after its D1
    // write, claimed and unacknowledged.
    let (ch, hook, stack) = pipeline(&[(
        "SLUICE_FAULTS",
        r#"{"marker": "held-", "hold_after_d1_write_ms": 10000}"#,
    )]);
    post(&stack, vec![event("held-x", "v1")]);
    eventually(
        "held-x written and still claimed",
        Duration::from_secs(30),
        || async {
            // Claimed (claims live in the shard's memory): written, not committed.
            let claimed = !stack.dedup_seen().iter().any(|r| r["id"] == "held-x");
            let written = !stack
                .d1("SELECT 1 FROM events WHERE message_id = 'held-x'")
                .is_empty();
            (claimed && written).then_some(())
        },
    )
    .await;
    // A hundred Queue messages fill a consumer batch (`max_batch_size =
    // 100`), so the local Queue dispatches it at once, while the first batch
    // is still in flight. A request's events travel in one message: the copy
    // goes alone, the 99 fillers in 99 more requests.
    post(&stack, vec![event("held-x", "v1")]);
    let fillers: Vec<String> = (1..100).map(|i| format!("f{i:02}")).collect();
    for filler in &fillers {
        post(&stack, vec![event(filler, "v2")]);
    }

    eventually(
        "the copy to be dropped after the first commit",
        Duration::from_secs(60),
        || async { (stack.counter("duplicates_dropped") == 1).then_some(()) },
    )
    .await;
    let mut ids: Vec<&str> = fillers.iter().map(String::as_str).collect();
    ids.push("held-x");
    everywhere(&stack, &hook, &ch, &ids, 60).await;
    exactly_once_everywhere(&stack, &hook, &ch, &ids).await;
    assert_eq!(
        stack.counter("claims_in_flight"),
        1,
        "the copy found the id being written, and was retried once"
    );
    assert_eq!(stack.counter("duplicates_dropped"), 1);
    assert_eq!(stack.counter("duplicates_in_batch"), 0);
    assert_eq!(
        stack.counter("d1_written"),
        101,
        "held-x, 99 fillers, sentinel"
    );
}

#[tokio::test]
async fn a_consumer_that_dies_after_its_d1_write_is_redelivered_and_nothing_is_stored_twice() {
    // Local-only fault: the first batch holding `dies-x` stops right after its
    // D1 write — nothing fanned out, committed, released or acknowledged.
    let (ch, hook, stack) = pipeline(&[(
        "SLUICE_FAULTS",
        r#"{"marker": "dies-", "die_after_d1_write": true}"#,
    )]);
    post(&stack, vec![event("dies-x", "v1"), event("y", "v1")]);
    // The redelivered batch finds both ids claimed by the dead consumer; once
    // its lease (60 s) runs out, it writes them and delivers them.
    everywhere(&stack, &hook, &ch, &["dies-x", "y"], 300).await;
    exactly_once_everywhere(&stack, &hook, &ch, &["dies-x", "y"]).await;
    assert_eq!(
        stack.counter("d1_written"),
        5,
        "dies-x and y written by the dead consumer and again by the redelivery, then the sentinel"
    );
    assert_eq!(stack.counter("duplicates_dropped"), 0);
    assert!(
        stack.counter("claims_in_flight") > 0,
        "the redelivery waited for the dead consumer's lease"
    );
    assert_eq!(
        sluice_e2e::stores::dead_letters(&stack),
        vec![],
        "nothing was dead-lettered"
    );
}

#[tokio::test]
async fn an_id_is_remembered_for_the_dedup_window_and_forgotten_after_it() {
    // A 10 s window (the default is 7 days); the shard's sweep runs as often.
    let (ch, hook, stack) = pipeline(&[("SLUICE_DEDUP_WINDOW_S", "10")]);
    post(&stack, vec![event("w", "v1"), event("a", "v1")]);
    everywhere(&stack, &hook, &ch, &["w", "a"], 60).await;
    post(&stack, vec![event("w", "v1"), event("b", "v1")]);
    eventually(
        "the copy inside the window to be dropped",
        Duration::from_secs(30),
        || async { (stack.counter("duplicates_dropped") == 1).then_some(()) },
    )
    .await;
    everywhere(&stack, &hook, &ch, &["b"], 60).await;

    // The shard's alarm forgets `w` once the window has passed.
    eventually(
        "the dedup shard to forget w",
        Duration::from_secs(90),
        || async { (!stack.dedup_seen().iter().any(|r| r["id"] == "w")).then_some(()) },
    )
    .await;
    // A copy after the window is new again: stored and delivered a second time
    // (the guarantee is exactly once *within* the window).
    post(&stack, vec![event("w", "v1"), event("c", "v1")]);
    everywhere(&stack, &hook, &ch, &["c"], 60).await;
    post(&stack, vec![event("sentinel", "v9")]);
    everywhere(&stack, &hook, &ch, &["sentinel"], 60).await;
    let copies = Copies::read(&stack, Some(&hook), Some(&ch));
    let expected: std::collections::BTreeMap<String, usize> =
        [("a", 1), ("b", 1), ("c", 1), ("sentinel", 1), ("w", 2)]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
    assert_eq!(copies.lake, expected, "lake lines");
    assert_eq!(copies.hook, expected, "webhook requests");
    assert_eq!(copies.clickhouse, expected, "ClickHouse rows");
    assert_eq!(
        copies.d1,
        once(&["a", "b", "c", "sentinel", "w"]),
        "D1 keeps one row"
    );
    assert_eq!(
        stack.counter("duplicates_dropped"),
        1,
        "only the copy inside the window"
    );
    assert_eq!(
        stack.counter("d1_written"),
        6,
        "w, a, b, w again, c, sentinel"
    );
}
