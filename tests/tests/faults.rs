//! Faults through the real pipeline on workerd: the worker process killed
//! mid-delivery and restarted on its persisted state, D1 unavailable for
//! 30 s (its SQLite file locked by another process), a destination answering 429 with
//! `Retry-After`, and the dead-letter queue's consumer. Conditions are
//! polled; every "nothing more arrived" check waits for a sentinel sent
//! after it through the same path.
#![allow(clippy::unwrap_used)] // test code: a panic is a failed test

use serde_json::json;
use sluice_e2e::stores::{dead_letters, event, once, post, Copies, CLICKHOUSE_TABLE};
use sluice_e2e::{eventually, Behaviour, ClickHouse, Receiver, Stack};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const SECRET: &str = "faults-secret";

fn vars(destinations: &serde_json::Value, names: &[&str]) -> (String, String) {
    let sources = json!([{"name": "demo", "write_key": "demo-write-key", "allowed_origins": [],
                          "consent": {"regime": "opt_in"}, "destinations": names}]);
    (sources.to_string(), destinations.to_string())
}

async fn wait_for(stack: &Stack, hook: &Receiver, ch: Option<&ClickHouse>, ids: &[&str]) {
    eventually(
        &format!("{ids:?} in every store"),
        Duration::from_secs(180),
        || async {
            Copies::read(stack, Some(hook), ch)
                .has_all(ids, true, ch.is_some())
                .then_some(())
        },
    )
    .await;
}

/// A sentinel through the same path, then exactly one copy of each id (and
/// of the sentinel) in every store.
async fn exactly_once(stack: &Stack, hook: &Receiver, ch: Option<&ClickHouse>, ids: &[&str]) {
    post(stack, vec![event("sentinel", "visitor-sentinel")]);
    wait_for(stack, hook, ch, &["sentinel"]).await;
    let mut all = ids.to_vec();
    all.push("sentinel");
    let copies = Copies::read(stack, Some(hook), ch);
    assert_eq!(copies.d1, once(&all), "D1");
    assert_eq!(copies.lake, once(&all), "lake lines");
    assert_eq!(copies.hook, once(&all), "webhook requests");
    if ch.is_some() {
        assert_eq!(copies.clickhouse, once(&all), "ClickHouse rows");
    }
}

#[tokio::test]
async fn a_worker_killed_mid_delivery_and_restarted_loses_nothing_and_doubles_nothing() {
    let ch = ClickHouse::start();
    ch.query(CLICKHOUSE_TABLE);
    let hook = Receiver::start(SECRET, Behaviour::Healthy);
    let destinations = json!([
        {"name": "lake", "kind": "r2"},
        {"name": "hook", "kind": "webhook", "url": hook.url(), "secret_var": "HOOK_SECRET"},
        {"name": "ch", "kind": "clickhouse", "url": ch.url(), "table": "events"}
    ]);
    let (sources, destinations) = vars(&destinations, &["lake", "hook", "ch"]);
    let base = [
        ("SLUICE_SOURCES", sources.as_str()),
        ("SLUICE_DESTINATIONS", destinations.as_str()),
        ("HOOK_SECRET", SECRET),
    ];
    // Local-only fault: a batch that wins a `held-` id pauses after its D1
    // write, so the kill lands mid-delivery (claimed, written, not fanned out).
    let mut with_hold = base.to_vec();
    with_hold.push((
        "SLUICE_FAULTS",
        r#"{"marker": "held-", "hold_after_d1_write_ms": 120000}"#,
    ));
    let mut stack = Stack::start_with(&with_hold);

    let first = vec![event("done-1", "v1"), event("done-2", "v1")];
    let second = vec![event("held-3", "v2"), event("also-4", "v2")];
    post(&stack, first.clone());
    wait_for(&stack, &hook, Some(&ch), &["done-1", "done-2"]).await;
    post(&stack, second.clone());
    eventually(
        "the second batch written to D1 and still claimed",
        Duration::from_secs(30),
        || async {
            let seen = stack.dedup_seen();
            let claimed = ["held-3", "also-4"]
                .iter()
                .all(|id| !seen.iter().any(|r| r["id"] == *id)); // written, not committed
            let written = stack
                .d1("SELECT 1 FROM events WHERE message_id IN ('held-3', 'also-4')")
                .len()
                == 2;
            (claimed && written).then_some(())
        },
    )
    .await;

    // Crash: SIGKILL, then the same persisted state (D1, R2, Durable Objects).
    stack.restart_with(&base);
    // The local Queue held its messages in workerd's memory and lost them;
    // Cloudflare's Queue redelivers un-acknowledged messages. The test plays
    // that redelivery: everything is sent again.
    post(&stack, first);
    post(&stack, second);
    wait_for(&stack, &hook, Some(&ch), &["held-3", "also-4"]).await;
    exactly_once(
        &stack,
        &hook,
        Some(&ch),
        &["done-1", "done-2", "held-3", "also-4"],
    )
    .await;
    assert_eq!(
        stack.counter("duplicates_dropped"),
        2,
        "done-1 and done-2 were remembered across the restart"
    );
    assert_eq!(
        stack.counter("d1_written"),
        7,
        "done-1, done-2; held-3, also-4 before the kill and again after it (its claims \
         outlived the process until their lease ran out); the sentinel"
    );
    assert_eq!(dead_letters(&stack), vec![], "nothing dead-lettered");
}

/// Another process holding an exclusive lock on local D1's SQLite file:
/// every D1 statement of the worker fails until it is released.
struct D1Lock(Child);

const LOCK: &str = r#"
import glob, sqlite3, sys
files = [f for f in glob.glob(sys.argv[1] + "/v3/d1/miniflare-D1DatabaseObject/*.sqlite") if not f.endswith("metadata.sqlite")]
db = sqlite3.connect(files[0], timeout=30, isolation_level=None)
db.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
sys.stdin.read()
db.execute("ROLLBACK")
"#;

impl D1Lock {
    fn take(stack: &Stack) -> D1Lock {
        let mut child = Command::new("python3")
            .arg("-c")
            .arg(LOCK)
            .arg(&stack.state)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "locked");
        D1Lock(child)
    }

    fn release(mut self) {
        drop(self.0.stdin.take());
        assert!(self.0.wait().unwrap().success());
    }
}

#[tokio::test]
async fn while_d1_is_unavailable_events_wait_and_then_land_once_and_nothing_is_dead_lettered() {
    let hook = Receiver::start(SECRET, Behaviour::Healthy);
    let destinations = json!([
        {"name": "lake", "kind": "r2"},
        {"name": "hook", "kind": "webhook", "url": hook.url(), "secret_var": "HOOK_SECRET"}
    ]);
    let (sources, destinations) = vars(&destinations, &["lake", "hook"]);
    let stack = Stack::start_with(&[
        ("SLUICE_SOURCES", &sources),
        ("SLUICE_DESTINATIONS", &destinations),
        ("HOOK_SECRET", SECRET),
    ]);
    post(&stack, vec![event("before", "v1")]);
    wait_for(&stack, &hook, None, &["before"]).await;

    let failures = |log: &str| log.matches("will retry").count();
    let before = failures(&stack.log());
    let lock = D1Lock::take(&stack);
    post(
        &stack,
        vec![event("during-1", "v1"), event("during-2", "v2")],
    );
    // The outage lasts 30 s: longer than the Queue's 10 retries take when
    // they come back at once (about 1 s apart locally), so only backing off
    // keeps the events out of the dead-letter queue. 30 s is the fault's
    // length, not a wait for a condition; the consumer failing is polled.
    let outage = tokio::time::Instant::now() + Duration::from_secs(30);
    eventually(
        "the consumer to fail on D1 twice",
        Duration::from_secs(30),
        || async { (failures(&stack.log()) >= before + 2).then_some(()) },
    )
    .await;
    tokio::time::sleep_until(outage).await;
    assert!(
        !hook
            .accepted_ids()
            .iter()
            .any(|id| id.starts_with("during")),
        "nothing is delivered before it is in D1"
    );
    lock.release();

    wait_for(&stack, &hook, None, &["during-1", "during-2"]).await;
    exactly_once(&stack, &hook, None, &["before", "during-1", "during-2"]).await;
    assert_eq!(dead_letters(&stack), vec![], "nothing dead-lettered");
    assert_eq!(stack.counter("d1_written"), 4);
    assert_eq!(stack.counter("duplicates_dropped"), 0);
}

#[tokio::test]
async fn a_destination_answering_429_is_retried_no_sooner_than_its_retry_after() {
    let hook = Receiver::start(
        SECRET,
        Behaviour::Throttle {
            n: 1,
            retry_after_s: 6,
        },
    );
    // Its own backoff would retry after 1 s.
    let destinations = json!([
        {"name": "lake", "kind": "r2"},
        {"name": "hook", "kind": "webhook", "url": hook.url(), "secret_var": "HOOK_SECRET",
         "retry": {"initial_delay_s": 1, "max_delay_s": 1, "max_attempts": 5}}
    ]);
    let (sources, destinations) = vars(&destinations, &["lake", "hook"]);
    let stack = Stack::start_with(&[
        ("SLUICE_SOURCES", &sources),
        ("SLUICE_DESTINATIONS", &destinations),
        ("HOOK_SECRET", SECRET),
    ]);
    post(&stack, vec![event("t-1", "v1")]);
    wait_for(&stack, &hook, None, &["t-1"]).await;
    exactly_once(&stack, &hook, None, &["t-1"]).await;
    let got = hook.received();
    let statuses: Vec<u16> = got.iter().map(|r| r.status).collect();
    assert_eq!(
        statuses,
        [429, 200, 200],
        "t-1 throttled once, then t-1 and the sentinel"
    );
    assert_eq!(
        got[0].idempotency_key, got[1].idempotency_key,
        "the same batch"
    );
    let waited = got[1].at.duration_since(got[0].at);
    assert!(
        waited >= Duration::from_secs(6),
        "retried after {waited:?}, before the 6 s Retry-After"
    );
    assert_eq!(stack.counter("retried_hook"), 1);
}

#[tokio::test]
async fn the_dead_letter_consumer_writes_what_the_queue_gave_up_on_to_r2() {
    let hook = Receiver::start(SECRET, Behaviour::Healthy);
    let destinations = json!([
        {"name": "lake", "kind": "r2"},
        {"name": "hook", "kind": "webhook", "url": hook.url(), "secret_var": "HOOK_SECRET"}
    ]);
    let (sources, destinations) = vars(&destinations, &["lake", "hook"]);
    // Local-only fault: `poison-` events fail every attempt at once, so the
    // events Queue gives up on them after max_retries and moves them to its
    // dead-letter queue.
    let stack = Stack::start_with(&[
        ("SLUICE_SOURCES", &sources),
        ("SLUICE_DESTINATIONS", &destinations),
        ("HOOK_SECRET", SECRET),
        ("SLUICE_FAULTS", r#"{"marker": "poison-", "poison": true}"#),
    ]);
    let poison = event("poison-1", "v1");
    post(&stack, vec![poison.clone(), event("good-1", "v1")]);
    let letters = eventually(
        "the poison message in dead-letter/",
        Duration::from_secs(60),
        || async {
            let l = dead_letters(&stack);
            (!l.is_empty()).then_some(l)
        },
    )
    .await;
    exactly_once(&stack, &hook, None, &["good-1"]).await;
    let letters_after = dead_letters(&stack);
    assert_eq!(letters_after, letters, "one dead letter, and only one");
    let [(key, letter)] = letters_after.as_slice() else {
        panic!("{letters_after:?}")
    };
    assert!(
        key.starts_with("dead-letter/queue=sluice-events-dlq/dt="),
        "{key}"
    );
    assert_eq!(letter["queue"], "sluice-events-dlq");
    assert_eq!(letter["error"]["code"], "queue_retries_exhausted");
    // The message itself, as the collector queued it: the request's events
    // (one Queue message a request) with what the worker added (receivedAt,
    // context.sluice…). The good event travels in the same message; it was
    // stored once (above), and a replay of the dead letter would find it a
    // duplicate.
    let message = &letter["message"];
    assert_eq!(message["kind"], "events", "{message}");
    assert_eq!(message["source"], "demo", "{message}");
    let ids: Vec<&str> = message["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["messageId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["poison-1", "good-1"], "{message}");
    let stored = &message["events"][0];
    assert_eq!(stored["messageId"], "poison-1", "{message}");
    assert_eq!(stored["anonymousId"], poison["anonymousId"]);
    assert_eq!(stored["event"], poison["event"]);
    assert_eq!(stored["properties"], poison["properties"]);
    assert!(stored["receivedAt"].is_string(), "{message}");
    assert!(
        stack
            .d1("SELECT 1 FROM events WHERE message_id = 'poison-1'")
            .is_empty(),
        "the poison event was never stored"
    );
}
