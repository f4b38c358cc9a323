//! Delivery logic against in-memory stand-ins of D1, the dedup shards, the
//! deliveries Queue, R2 and HTTP destinations.
#![allow(clippy::unwrap_used)] // test code: a panic is a failed test

use serde_json::json;
use sluice_edge_worker::config::Config;
use sluice_edge_worker::delivery::config::{self, Destination};
use sluice_edge_worker::delivery::dedup::{self, Claim, ClaimResponse, Seen, ShardRequest};
use sluice_edge_worker::delivery::{consume_events, deliver, Deps, Outcome, Settings};
use sluice_edge_worker::sinks::d1::{Sql, SqlValue, Statement};
use sluice_edge_worker::sinks::{DeliveryBatch, HttpClient, ObjectStore, Reply};
use sluice_shared::{Event, EventType, QueueMessage, QueuedEvent, Timestamp};
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};

const NOW: Timestamp = Timestamp(1_714_557_900_000);

/// URL, headers and body of an outbound POST.
type Call = (String, Vec<(String, String)>, Vec<u8>);

#[derive(Default)]
struct Fake {
    rows: RefCell<BTreeMap<String, Vec<SqlValue>>>,
    counters: RefCell<BTreeMap<String, i64>>,
    d1_down: Cell<bool>,
    shards: RefCell<HashMap<String, Seen>>,
    deliveries: RefCell<Vec<(String, u32)>>,
    objects: RefCell<BTreeMap<String, Vec<u8>>>,
    http_calls: RefCell<Vec<Call>>,
    http_status: Cell<u16>,
    http_retry_after: Cell<Option<u32>>,
    suppressed: RefCell<Vec<(String, String)>>,
    indexed: RefCell<Vec<String>>,
}

impl Sql for Fake {
    async fn run(&self, statements: Vec<Statement>) -> Result<(), String> {
        if self.d1_down.get() {
            return Err("D1 unavailable".into());
        }
        for Statement { sql, params: row } in statements {
            if sql.starts_with("INSERT INTO events") {
                let SqlValue::Text(id) = &row[0] else {
                    panic!("id")
                };
                self.rows.borrow_mut().entry(id.clone()).or_insert(row);
            } else if sql.starts_with("INSERT INTO counters") {
                let (SqlValue::Text(src), SqlValue::Text(name), SqlValue::Int(n)) =
                    (&row[1], &row[2], &row[3])
                else {
                    panic!("counter")
                };
                *self
                    .counters
                    .borrow_mut()
                    .entry(format!("{src}/{name}"))
                    .or_default() += n;
            } else if sql.starts_with("INSERT INTO lake_index") {
                self.indexed.borrow_mut().push(format!("{:?}", row[1]));
            }
        }
        Ok(())
    }
    async fn query(
        &self,
        sql: &str,
        params: Vec<SqlValue>,
    ) -> Result<Vec<serde_json::Value>, String> {
        if sql.contains("FROM suppressions") {
            let list = self.suppressed.borrow();
            return Ok(params
                .iter()
                .filter_map(|p| match p {
                    SqlValue::Text(id) => list
                        .iter()
                        .find(|(s, _)| s == id)
                        .map(|(s, k)| json!({"id": s, "kind": k})),
                    _ => None,
                })
                .collect());
        }
        Ok(vec![])
    }
}

impl HttpClient for Fake {
    async fn post(
        &self,
        url: &str,
        headers: &[(String, String)],
        body: Vec<u8>,
        _timeout_ms: u32,
    ) -> Result<Reply, String> {
        self.http_calls
            .borrow_mut()
            .push((url.to_owned(), headers.to_vec(), body));
        Ok(Reply {
            retry_after_s: self.http_retry_after.get(),
            ..Reply::new(self.http_status.get(), "body")
        })
    }
}

impl ObjectStore for Fake {
    async fn put(&self, key: &str, body: Vec<u8>, _content_type: &str) -> Result<(), String> {
        self.objects.borrow_mut().insert(key.to_owned(), body);
        Ok(())
    }
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, String> {
        Ok(self.objects.borrow().get(key).cloned())
    }
    async fn delete(&self, key: &str) -> Result<(), String> {
        self.objects.borrow_mut().remove(key);
        Ok(())
    }
    async fn list(&self, prefix: &str) -> Result<Vec<String>, String> {
        Ok(self
            .objects
            .borrow()
            .keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect())
    }
}

impl Deps for Fake {
    async fn shard(&self, _shard: u32, request: &ShardRequest) -> Result<ClaimResponse, String> {
        let mut seen = self.shards.borrow_mut();
        let now = NOW.0;
        Ok(match request {
            ShardRequest::Claim { ids } => ClaimResponse {
                claims: ids
                    .iter()
                    .map(|id| {
                        let c = dedup::decide(seen.get(id).copied(), now);
                        if c == Claim::Won {
                            seen.insert(id.clone(), Seen::Claimed { at_ms: now });
                        }
                        c
                    })
                    .collect(),
            },
            ShardRequest::Commit { ids } => {
                for id in ids {
                    seen.insert(id.clone(), Seen::Done { at_ms: now });
                }
                ClaimResponse { claims: vec![] }
            }
            ShardRequest::Release { ids } => {
                for id in ids {
                    if matches!(seen.get(id), Some(Seen::Claimed { .. })) {
                        seen.remove(id);
                    }
                }
                ClaimResponse { claims: vec![] }
            }
        })
    }
    async fn enqueue_deliveries(&self, batches: Vec<String>, delay_s: u32) -> Result<(), String> {
        self.deliveries
            .borrow_mut()
            .extend(batches.into_iter().map(|b| (b, delay_s)));
        Ok(())
    }
    fn secret(&self, name: &str) -> Option<String> {
        (name == "HOOK_SECRET").then(|| "s3cret".to_owned())
    }
    fn now(&self) -> Timestamp {
        NOW
    }
}

fn sources() -> Config {
    Config::from_sources_json(
        &json!([{"name": "web", "write_key": "k", "allowed_origins": ["*"], "destinations": ["lake", "hook"],
                 "consent": {"regime": "opt_in"}}])
        .to_string(),
    )
    .unwrap()
}

fn destinations() -> Vec<Destination> {
    config::parse(Some(
        &json!([
            {"name": "lake", "kind": "r2", "purposes": ["analytics"]},
            {"name": "hook", "kind": "webhook", "url": "http://127.0.0.1:9/hook", "secret_var": "HOOK_SECRET",
             "purposes": ["marketing"], "retry": {"initial_delay_s": 1, "max_delay_s": 8, "max_attempts": 3}}
        ])
        .to_string(),
    ))
    .unwrap()
}

fn message(id: &str, purposes: &[&str]) -> String {
    let mut e = Event::new(EventType::Track, id);
    e.anonymous_id = Some("a".into());
    e.event = Some("E".into());
    e.received_at = Some(NOW.to_rfc3339());
    let categories: serde_json::Map<String, serde_json::Value> = purposes
        .iter()
        .map(|p| ((*p).to_owned(), json!("granted")))
        .collect();
    e.context = Some(
        json!({"consent": {"categories": categories}})
            .as_object()
            .cloned()
            .unwrap(),
    );
    serde_json::to_string(&QueueMessage::Event(Box::new(QueuedEvent {
        source: "web".into(),
        event: e,
    })))
    .unwrap()
}

fn run(fake: &Fake, messages: &[String]) -> Vec<Outcome> {
    let config = sources();
    let dests = destinations();
    let settings = Settings {
        config: &config,
        destinations: &dests,
        shards: 4,
        faults: Default::default(),
    };
    pollster::block_on(consume_events(messages, &settings, fake))
}

fn delivered(fake: &Fake) -> Vec<DeliveryBatch> {
    fake.deliveries
        .borrow()
        .iter()
        .map(|(b, _)| serde_json::from_str(b).unwrap())
        .collect()
}

#[test]
fn the_same_event_sent_three_times_is_written_and_fanned_out_once() {
    let fake = Fake::default();
    let m = message("m1", &["analytics"]);
    assert_eq!(
        run(&fake, &[m.clone(), m.clone()]),
        [Outcome::Ack, Outcome::Ack],
        "in-batch duplicate"
    );
    assert_eq!(run(&fake, &[m]), [Outcome::Ack], "replayed later");
    assert_eq!(fake.rows.borrow().len(), 1);
    let batches = delivered(&fake);
    assert_eq!(batches.len(), 1, "one delivery batch: {batches:?}");
    assert_eq!(batches[0].destination, "lake");
}

#[test]
fn a_failed_write_is_retried_and_not_mistaken_for_a_duplicate() {
    let fake = Fake::default();
    fake.d1_down.set(true);
    assert_eq!(
        run(&fake, &[message("m1", &["analytics"])]),
        [Outcome::Retry(None)]
    );
    assert!(
        fake.deliveries.borrow().is_empty(),
        "nothing fanned out before the write"
    );
    fake.d1_down.set(false);
    assert_eq!(run(&fake, &[message("m1", &["analytics"])]), [Outcome::Ack]);
    assert_eq!(fake.rows.borrow().len(), 1);
    assert_eq!(delivered(&fake).len(), 1);
}

#[test]
fn an_id_being_written_elsewhere_is_retried_later() {
    let fake = Fake::default();
    fake.shards.borrow_mut().insert(
        "m1".into(),
        Seen::Claimed {
            at_ms: NOW.0 - 1_000,
        },
    );
    assert_eq!(
        run(&fake, &[message("m1", &["analytics"])]),
        [Outcome::Retry(Some(
            sluice_edge_worker::delivery::IN_FLIGHT_RETRY_S
        ))]
    );
    assert!(fake.rows.borrow().is_empty());
}

#[test]
fn each_destination_gets_only_events_whose_consent_allows_its_purposes() {
    let fake = Fake::default();
    run(
        &fake,
        &[
            message("a-only", &["analytics"]),
            message("both", &["analytics", "marketing"]),
        ],
    );
    let batches = delivered(&fake);
    let ids = |dest: &str| -> Vec<String> {
        batches
            .iter()
            .filter(|b| b.destination == dest)
            .flat_map(|b| b.events.iter().map(|e| e.message_id.clone()))
            .collect()
    };
    assert_eq!(ids("lake"), ["a-only", "both"]);
    assert_eq!(ids("hook"), ["both"]);
    assert_eq!(fake.counters.borrow().get("web/withheld_hook"), Some(&1));
}

fn batch_for(dest: &str, attempt: u16) -> String {
    let mut e = Event::new(EventType::Track, "m1");
    e.received_at = Some(NOW.to_rfc3339());
    serde_json::to_string(&DeliveryBatch {
        destination: dest.into(),
        source: "web".into(),
        batch_id: "b1".into(),
        attempt,
        events: vec![e],
    })
    .unwrap()
}

#[test]
fn a_failing_destination_is_retried_with_backoff_then_dead_lettered_with_its_error() {
    let fake = Fake::default();
    fake.http_status.set(500);
    let dests = destinations();
    assert_eq!(
        pollster::block_on(deliver(&batch_for("hook", 1), &dests, &fake)),
        Outcome::Ack
    );
    assert_eq!(
        pollster::block_on(deliver(&batch_for("hook", 2), &dests, &fake)),
        Outcome::Ack
    );
    let requeued: Vec<(u16, u32)> = fake
        .deliveries
        .borrow()
        .iter()
        .map(|(b, d)| {
            (
                serde_json::from_str::<DeliveryBatch>(b).unwrap().attempt,
                *d,
            )
        })
        .collect();
    assert_eq!(
        requeued,
        [(2, 1), (3, 2)],
        "attempt numbers and doubling delays"
    );
    assert_eq!(
        pollster::block_on(deliver(&batch_for("hook", 3), &dests, &fake)),
        Outcome::Ack
    );
    let objects = fake.objects.borrow();
    let (key, body) = objects.iter().next().unwrap();
    assert!(
        key.starts_with("dead-letter/destination=hook/dt=2024-05-01/"),
        "{key}"
    );
    let letter: serde_json::Value = serde_json::from_slice(body).unwrap();
    assert_eq!(letter["error"]["code"], "sink_retryable");
    assert!(letter["error"]["message"]
        .as_str()
        .unwrap()
        .contains("HTTP 500"));
    assert_eq!(letter["events"][0]["messageId"], "m1", "nothing lost");
    assert_eq!(
        fake.counters.borrow().get("web/dead_lettered_hook"),
        Some(&1)
    );
}

#[test]
fn a_permanent_failure_is_dead_lettered_at_once_and_success_is_counted() {
    let fake = Fake::default();
    fake.http_status.set(400);
    let dests = destinations();
    pollster::block_on(deliver(&batch_for("hook", 1), &dests, &fake));
    assert!(fake.deliveries.borrow().is_empty(), "a 400 is not retried");
    assert_eq!(fake.objects.borrow().len(), 1);
    fake.http_status.set(200);
    pollster::block_on(deliver(&batch_for("hook", 1), &dests, &fake));
    assert_eq!(fake.counters.borrow().get("web/delivered_hook"), Some(&1));
    let calls = fake.http_calls.borrow();
    let (_, headers, body) = calls.last().unwrap();
    let header = |n: &str| {
        headers
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    let ts: i64 = header("x-sluice-timestamp").parse().unwrap();
    assert!(sluice_edge_worker::sinks::webhook::verify(
        b"s3cret",
        ts,
        body,
        &header("x-sluice-signature"),
        ts
    ));
    assert_eq!(header("idempotency-key"), "b1");
}

#[test]
fn r2_batches_are_written_under_their_partition() {
    let fake = Fake::default();
    assert_eq!(
        pollster::block_on(deliver(&batch_for("lake", 1), &destinations(), &fake)),
        Outcome::Ack
    );
    let keys: Vec<String> = fake.objects.borrow().keys().cloned().collect();
    assert_eq!(
        keys,
        ["events/source=web/dt=2024-05-01/hour=10/b1.ndjson.gz"]
    );
}

#[test]
fn large_fan_outs_are_split_below_the_queue_message_limit() {
    let fake = Fake::default();
    let messages: Vec<String> = (0..250)
        .map(|i| message(&format!("m{i}"), &["analytics"]))
        .collect();
    run(&fake, &messages);
    let sizes: Vec<usize> = fake
        .deliveries
        .borrow()
        .iter()
        .map(|(b, _)| b.len())
        .collect();
    assert!(sizes.len() >= 3, "{sizes:?}");
    assert!(sizes.iter().all(|s| *s < 128 * 1024));
    assert_eq!(
        delivered(&fake)
            .iter()
            .map(|b| b.events.len())
            .sum::<usize>(),
        250
    );
}

#[test]
fn suppressed_people_are_dropped_and_opted_out_people_kept_from_sale_and_marketing() {
    let fake = Fake::default();
    fake.suppressed
        .borrow_mut()
        .push(("gone".into(), "suppress".into()));
    fake.suppressed
        .borrow_mut()
        .push(("no-sale".into(), "opt_out".into()));
    let with_anon = |id: &str, anon: &str| {
        let mut v: serde_json::Value =
            serde_json::from_str(&message(id, &["analytics", "marketing"])).unwrap();
        v["event"]["anonymousId"] = json!(anon);
        v.to_string()
    };
    let out = run(
        &fake,
        &[
            with_anon("s1", "gone"),
            with_anon("o1", "no-sale"),
            with_anon("k1", "kept"),
        ],
    );
    assert_eq!(out, [Outcome::Ack, Outcome::Ack, Outcome::Ack]);
    assert!(
        !fake.rows.borrow().contains_key("s1"),
        "a suppressed person's event is not stored"
    );
    assert_eq!(
        fake.counters.borrow().get("web/dropped_suppressed"),
        Some(&1)
    );
    let batches = delivered(&fake);
    let to = |dest: &str| -> Vec<String> {
        batches
            .iter()
            .filter(|b| b.destination == dest)
            .flat_map(|b| b.events.iter().map(|e| e.message_id.clone()))
            .collect()
    };
    assert_eq!(
        to("hook"),
        ["k1"],
        "the marketing destination does not get the opted-out person"
    );
    assert_eq!(
        to("lake"),
        ["o1", "k1"],
        "the analytics lake still gets both"
    );
}

#[test]
fn r2_writes_are_indexed_by_person() {
    let fake = Fake::default();
    let mut e = Event::new(EventType::Track, "m1");
    e.received_at = Some(NOW.to_rfc3339());
    e.anonymous_id = Some("a1".into());
    e.user_id = Some("u1".into());
    let batch = serde_json::to_string(&DeliveryBatch {
        destination: "lake".into(),
        source: "web".into(),
        batch_id: "b2".into(),
        attempt: 1,
        events: vec![e],
    })
    .unwrap();
    pollster::block_on(deliver(&batch, &destinations(), &fake));
    assert_eq!(fake.indexed.borrow().len(), 2);
}

#[test]
fn a_destinations_retry_after_is_honoured_when_longer_than_its_backoff() {
    let fake = Fake::default();
    fake.http_status.set(429);
    fake.http_retry_after.set(Some(40));
    let dests = destinations();
    assert_eq!(
        pollster::block_on(deliver(&batch_for("hook", 1), &dests, &fake)),
        Outcome::Ack
    );
    fake.http_retry_after.set(None);
    assert_eq!(
        pollster::block_on(deliver(&batch_for("hook", 2), &dests, &fake)),
        Outcome::Ack
    );
    let delays: Vec<u32> = fake.deliveries.borrow().iter().map(|(_, d)| *d).collect();
    assert_eq!(delays, [40, 2], "Retry-After 40 s, then the backoff's 2 s");
}

#[test]
fn a_dead_consumers_lease_runs_out_before_the_queue_gives_up_on_its_batch() {
    // The events consumer's max_retries, from wrangler.toml.
    let toml = include_str!("../wrangler.toml");
    let section = toml
        .split("[[queues.consumers]]")
        .skip(1)
        .find(|s| s.trim_start().starts_with("queue = \"sluice-events\""))
        .unwrap();
    let max_retries: i64 = section
        .lines()
        .find_map(|l| l.strip_prefix("max_retries = "))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let waited_ms = max_retries * i64::from(sluice_edge_worker::delivery::IN_FLIGHT_RETRY_S) * 1000;
    assert!(
        waited_ms > dedup::LEASE_MS,
        "{max_retries} retries of an in-flight id span {waited_ms} ms, less than the {} ms lease",
        dedup::LEASE_MS
    );
}

#[test]
fn transient_failures_back_off_by_the_messages_age() {
    use sluice_edge_worker::delivery::backoff_s;
    assert_eq!(backoff_s(0), 5);
    assert_eq!(backoff_s(40_000), 40);
    assert_eq!(backoff_s(10_000_000), 300);
}
