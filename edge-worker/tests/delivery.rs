//! Delivery logic against in-memory stand-ins of D1, the dedup shards, the
//! deliveries Queue, R2 and HTTP destinations.
#![allow(clippy::unwrap_used)] // test code: a panic is a failed test

use serde_json::json;
use sluice_edge_worker::config::Config;
use sluice_edge_worker::delivery::config::{self, Destination};
use sluice_edge_worker::delivery::dedup::Seen;
use sluice_edge_worker::delivery::{consume_events, deliver, deliver_all, wire, Outcome, Settings};
use sluice_edge_worker::sinks::DeliveryBatch;
use sluice_shared::{Event, EventType, QueueMessage, QueuedEvent};

mod common;
use common::{Fake, NOW};

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
            {"name": "lake", "kind": "r2", "format": "ndjson", "purposes": ["analytics"]},
            {"name": "hook", "kind": "webhook", "url": "http://127.0.0.1:9/hook", "secret_var": "HOOK_SECRET",
             "purposes": ["marketing"], "retry": {"initial_delay_s": 1, "max_delay_s": 8, "max_attempts": 3}},
            {"name": "meta", "kind": "meta_capi", "settings": {"pixel_id": "123", "access_token_var": "META_TOKEN"}},
            {"name": "cold", "kind": "r2", "prefix": "cold", "format": "parquet"}
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
    run_with(fake, messages, sources())
}

fn run_with(fake: &Fake, messages: &[String], config: Config) -> Vec<Outcome> {
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
    let messages: Vec<String> = (0..1_200)
        .map(|i| message(&format!("m{i}"), &["analytics"]))
        .collect();
    run(&fake, &messages);
    let sent: Vec<String> = fake
        .deliveries
        .borrow()
        .iter()
        .map(|(b, _)| b.clone())
        .collect();
    assert!(sent.iter().all(|s| s.len() < 128 * 1024));
    let batches: Vec<DeliveryBatch> = sent
        .iter()
        .map(|m| serde_json::from_str(&wire::open(m).unwrap()).unwrap())
        .collect();
    let sizes: Vec<usize> = batches.iter().map(|b| b.events.len()).collect();
    // The lake takes batches of up to 500 events (other destinations 100).
    assert_eq!(sizes, [500, 500, 200], "{sizes:?}");
    assert!(batches.iter().all(|b| b.destination == "lake"));
}

#[test]
fn a_fan_out_over_one_queue_operation_goes_sealed_and_is_delivered_unchanged() {
    let fake = Fake::default();
    // 100 events with ~1.5 KB of properties each: ~170 KB of batch JSON.
    let messages: Vec<String> = (0..100)
        .map(|i| {
            let mut m: serde_json::Value =
                serde_json::from_str(&message(&format!("m{i}"), &["analytics"])).unwrap();
            m["event"]["properties"] = json!({"note": "x".repeat(1500), "i": i});
            m.to_string()
        })
        .collect();
    run(&fake, &messages);
    let sent: Vec<String> = fake
        .deliveries
        .borrow()
        .iter()
        .map(|(b, _)| b.clone())
        .collect();
    assert_eq!(sent.len(), 1, "one message for the hundred events");
    assert!(sent[0].starts_with("{\"gz\":"), "sealed");
    assert!(sent[0].len() <= wire::SEAL_ABOVE, "{}", sent[0].len());
    let batch: DeliveryBatch = serde_json::from_str(&wire::open(&sent[0]).unwrap()).unwrap();
    assert_eq!(batch.events.len(), 100);
    let m7 = batch.events.iter().find(|e| e.message_id == "m7").unwrap();
    assert_eq!(m7.properties.as_ref().unwrap()["i"], 7);
    assert_eq!(m7.properties.as_ref().unwrap()["note"], "x".repeat(1500));
    assert_eq!(
        pollster::block_on(deliver(&sent[0], &destinations(), &fake)),
        Outcome::Ack
    );
    assert_eq!(fake.counters.borrow().get("web/delivered_lake"), Some(&100));
}

#[test]
fn a_consumer_batch_of_deliveries_adds_each_counter_once() {
    let fake = Fake::default();
    let batch = |dest: &str, id: &str| {
        let mut e = Event::new(EventType::Track, id);
        e.received_at = Some(NOW.to_rfc3339());
        serde_json::to_string(&DeliveryBatch {
            destination: dest.into(),
            source: "web".into(),
            batch_id: id.into(),
            attempt: 1,
            events: vec![e],
        })
        .unwrap()
    };
    let raws = [
        batch("lake", "m1"),
        batch("lake", "m2"),
        batch("cold", "m3"),
    ];
    assert_eq!(
        pollster::block_on(deliver_all(&raws, &destinations(), &fake)),
        [Outcome::Ack, Outcome::Ack, Outcome::Ack]
    );
    let counts = |prefix: &str| {
        fake.statements
            .borrow()
            .iter()
            .filter(|s| s.sql.starts_with(prefix))
            .count()
    };
    assert_eq!(
        counts("INSERT INTO counters"),
        2,
        "delivered_lake, delivered_cold"
    );
    assert_eq!(counts("INSERT INTO delivery_overview"), 2, "lake, cold");
    assert_eq!(fake.counters.borrow().get("web/delivered_lake"), Some(&2));
    assert_eq!(fake.counters.borrow().get("web/delivered_cold"), Some(&1));
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
fn a_missing_lake_binding_fails_for_good_instead_of_being_retried() {
    let fake = Fake::default();
    fake.lake_missing.set(true);
    let outcome = pollster::block_on(deliver(&batch_for("lake", 1), &destinations(), &fake));
    assert!(
        fake.deliveries.borrow().is_empty(),
        "not re-enqueued through the destination's backoff"
    );
    assert_eq!(
        fake.counters.borrow().get("web/retried_lake"),
        None,
        "{:?}",
        fake.counters.borrow()
    );
    // The dead letters live in the same missing bucket: the platform's own
    // dead-letter queue is the one place left to keep the message.
    assert_eq!(outcome, Outcome::Retry(None));
}

#[test]
fn a_destination_retry_after_longer_than_the_backoff_is_honoured() {
    let fake = Fake::default();
    fake.http_status.set(429);
    fake.http_retry_after_ms.set(Some(30_500));
    let outcome = pollster::block_on(deliver(&batch_for("hook", 1), &destinations(), &fake));
    assert_eq!(outcome, Outcome::Ack);
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
        [(2, 31)],
        "31 s (Retry-After, rounded up), not the 1 s backoff"
    );
    assert_eq!(fake.counters.borrow().get("web/retried_hook"), Some(&1));
}

#[test]
fn duplicates_are_counted_in_batch_and_across_batches() {
    let fake = Fake::default();
    let m = message("m1", &["analytics"]);
    run(&fake, &[m.clone(), m.clone(), m.clone()]);
    run(&fake, &[m]);
    assert_eq!(fake.rows.borrow().len(), 1);
    let counters = fake.counters.borrow();
    assert_eq!(
        counters.get("web/duplicates_in_batch"),
        Some(&2),
        "two copies in the first batch"
    );
    assert_eq!(
        counters.get("web/duplicates_dropped"),
        Some(&1),
        "one replayed later"
    );
    assert_eq!(counters.get("web/d1_written"), Some(&1), "written once");
}

fn batch_of(dest: &str, ids: &[&str]) -> String {
    let events = ids
        .iter()
        .map(|id| {
            let mut e = Event::new(EventType::Track, *id);
            e.event = Some("Order Completed".into());
            e.properties = json!({"order_id": *id, "revenue": 42.5, "currency": "EUR"})
                .as_object()
                .cloned();
            e.user_id = Some("u1".into());
            e.received_at = Some(NOW.to_rfc3339());
            e.timestamp = Some(NOW.to_rfc3339());
            e.context = json!({"userAgent": "Mozilla/5.0", "ip": "203.0.113.9",
                               "page": {"url": "https://shop.example.com/checkout"}})
            .as_object()
            .cloned();
            e
        })
        .collect();
    serde_json::to_string(&DeliveryBatch {
        destination: dest.into(),
        source: "web".into(),
        batch_id: "b9".into(),
        attempt: 1,
        events,
    })
    .unwrap()
}

#[test]
fn a_catalogue_vendor_is_delivered_through_the_same_sink_shape_with_its_secret() {
    let dests = destinations();
    let meta = dests.iter().find(|d| d.name == "meta").unwrap();
    assert_eq!(
        meta.purposes,
        [sluice_shared::consent::Purpose::Marketing],
        "an advertising vendor needs marketing consent by default"
    );
    let fake = Fake::default();
    fake.http_status.set(200);
    let out = pollster::block_on(deliver(&batch_of("meta", &["m1", "m2"]), &dests, &fake));
    assert_eq!(out, Outcome::Ack);
    let calls = fake.http_calls.borrow();
    assert_eq!(calls.len(), 1, "both events in one request");
    let (url, _, body) = &calls[0];
    assert!(url.starts_with("https://graph.facebook.com/"), "{url}");
    assert!(
        url.contains("/123/events") && url.contains("access_token=meta-t0ken"),
        "{url}"
    );
    let body: serde_json::Value = serde_json::from_slice(body).unwrap();
    assert_eq!(body["data"][0]["event_id"], "m1");
    assert_eq!(body["data"][0]["event_name"], "Purchase");
    assert_eq!(fake.counters.borrow().get("web/delivered_meta"), Some(&2));
}

#[test]
fn a_request_refused_for_one_unnamed_event_is_retried_one_event_per_request() {
    let fake = Fake::default();
    fake.http_status.set(400);
    *fake.http_body.borrow_mut() = Some(
        json!({"error": {"message": "Invalid parameter", "type": "OAuthException", "code": 100}})
            .to_string(),
    );
    let out = pollster::block_on(deliver(
        &batch_of("meta", &["m1", "m2"]),
        &destinations(),
        &fake,
    ));
    assert_eq!(out, Outcome::Ack);
    let again: Vec<Vec<String>> = delivered(&fake)
        .iter()
        .map(|b| b.events.iter().map(|e| e.message_id.clone()).collect())
        .collect();
    assert_eq!(again, [vec!["m1".to_owned()], vec!["m2".to_owned()]]);
    assert!(delivered(&fake).iter().all(|b| b.attempt == 2));
}

#[test]
fn vendor_settings_are_checked_when_the_configuration_is_read() {
    let bad = config::parse(Some(
        &json!([{"name": "meta", "kind": "meta_capi", "settings": {"access_token_var": "T"}}])
            .to_string(),
    ))
    .unwrap_err();
    assert_eq!(bad.code(), "destinations_invalid");
    assert!(bad.to_string().contains("pixel_id"), "{bad}");
    let unknown = config::parse(Some(
        &json!([{"name": "ga", "kind": "ga4", "measurement_id": "G-1"}]).to_string(),
    ))
    .unwrap_err();
    assert!(
        unknown.to_string().contains("measurement_id"),
        "settings go under `settings`: {unknown}"
    );
}

#[test]
fn a_message_of_many_events_is_acknowledged_only_when_all_are_stored() {
    let fake = Fake::default();
    let events: Vec<String> = ["p1", "p2"]
        .iter()
        .map(|id| {
            let v: serde_json::Value = serde_json::from_str(&message(id, &["analytics"])).unwrap();
            v["event"].to_string()
        })
        .collect();
    let packed = sluice_shared::pipeline::pack_events("web", &events);
    assert_eq!(packed.len(), 1);
    // p2 is being written by another consumer: the message must come back.
    fake.shards.borrow_mut().insert(
        "p2".into(),
        Seen::Claimed {
            at_ms: NOW.0 - 1_000,
        },
    );
    assert_eq!(
        run(&fake, &packed),
        [Outcome::Retry(Some(
            sluice_edge_worker::delivery::IN_FLIGHT_RETRY_S
        ))]
    );
    assert_eq!(fake.rows.borrow().len(), 1, "p1 is stored meanwhile");
    // The other consumer gave up; the redelivered message stores p2 and p1 is a duplicate.
    fake.shards.borrow_mut().remove("p2");
    assert_eq!(run(&fake, &packed), [Outcome::Ack]);
    assert_eq!(fake.rows.borrow().len(), 2);
    assert_eq!(
        fake.counters.borrow().get("web/duplicates_dropped"),
        Some(&1)
    );
    assert_eq!(
        delivered(&fake)
            .iter()
            .flat_map(|b| b.events.iter().map(|e| e.message_id.clone()))
            .filter(|id| id == "p1")
            .count(),
        1,
        "p1 fanned out once"
    );
}

#[test]
fn a_parquet_lake_writes_columnar_objects_that_read_back_as_the_events() {
    let fake = Fake::default();
    let out = pollster::block_on(deliver(
        &batch_of("cold", &["m1", "m2"]),
        &destinations(),
        &fake,
    ));
    assert_eq!(out, Outcome::Ack);
    let objects = fake.objects.borrow();
    let (key, body) = objects.iter().next().unwrap();
    assert_eq!(key, "cold/source=web/dt=2024-05-01/hour=10/b9.parquet");
    let back = sluice_shared::lake::parquet_to_events(body).unwrap();
    let ids: Vec<&str> = back.iter().map(|e| e.event.message_id.as_str()).collect();
    assert_eq!(ids, ["m1", "m2"]);
    assert_eq!(
        back[0].event.properties.as_ref().unwrap()["revenue"],
        json!(42.5)
    );
    assert_eq!(
        fake.indexed.borrow().len(),
        1,
        "indexed by person like NDJSON objects"
    );
}

#[test]
fn google_ads_exchanges_its_refresh_token_for_an_access_token_before_uploading() {
    let dests = config::parse(Some(
        &json!([{"name": "gads", "kind": "google_ads", "settings": {
            "customer_id": "123-456-7890", "developer_token_var": "HOOK_SECRET",
            "client_id": "cid", "client_secret_var": "HOOK_SECRET", "refresh_token_var": "META_TOKEN",
            "conversion_actions": {"Order Completed": "987654"}}}])
        .to_string(),
    ))
    .unwrap();
    let fake = Fake::default();
    fake.http_status.set(200);
    *fake.http_body.borrow_mut() =
        Some(json!({"access_token": "ya29.fresh", "expires_in": 3599}).to_string());
    let mut batch: serde_json::Value = serde_json::from_str(&batch_of("gads", &["m1"])).unwrap();
    batch["events"][0]["context"]["campaign"] = json!({"clickIds": {"gclid": "Cj0KCQ"}});
    pollster::block_on(deliver(&batch.to_string(), &dests, &fake));
    let calls = fake.http_calls.borrow();
    assert_eq!(calls[0].0, "https://oauth2.googleapis.com/token");
    assert!(String::from_utf8_lossy(&calls[0].2).contains("refresh_token=meta-t0ken"));
    assert_eq!(calls.len(), 2, "the token, then the upload: {calls:?}");
    let auth = calls[1]
        .1
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("authorization"))
        .map(|(_, v)| v.as_str());
    assert_eq!(auth, Some("Bearer ya29.fresh"));
    assert!(
        calls[1].0.contains("1234567890:uploadClickConversions"),
        "{}",
        calls[1].0
    );
    drop(calls);
    // The next delivery in this isolate reuses the token.
    pollster::block_on(deliver(&batch.to_string(), &dests, &fake));
    let calls = fake.http_calls.borrow();
    assert_eq!(calls.len(), 3, "no second token exchange: {calls:?}");
    assert!(calls[2].0.contains("uploadClickConversions"));
}

#[test]
fn a_dead_consumers_lease_runs_out_before_the_queue_gives_up_on_its_batch() {
    // The events consumer's max_retries, from backend.toml.
    let toml = include_str!("../backend.toml");
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
        waited_ms > sluice_edge_worker::delivery::dedup::LEASE_MS,
        "{max_retries} retries of an in-flight id span {waited_ms} ms, less than the {} ms lease",
        sluice_edge_worker::delivery::dedup::LEASE_MS
    );
}

#[test]
fn transient_failures_back_off_by_the_messages_age() {
    use sluice_edge_worker::delivery::backoff_s;
    assert_eq!(backoff_s(0), 5);
    assert_eq!(backoff_s(40_000), 40);
    assert_eq!(backoff_s(10_000_000), 300);
}

/// An identified visitor's event (so the identity graph has work too).
fn identified(id: &str) -> String {
    let mut m: serde_json::Value = serde_json::from_str(&message(id, &["analytics"])).unwrap();
    m["event"]["userId"] = json!("u1");
    m.to_string()
}

#[test]
fn a_full_d1_takes_no_event_rows_and_the_lake_still_gets_every_event() {
    use sluice_edge_worker::sinks::window::HotWindow;
    let fake = Fake::default();
    let mut config = sources();
    config.d1 = HotWindow::from_vars(None, None, Some("1000")).unwrap();
    fake.d1_size.set(Some(999));
    assert_eq!(
        run_with(&fake, &[identified("m1")], config.clone()),
        [Outcome::Ack]
    );
    assert_eq!(fake.rows.borrow().len(), 1, "below the capacity: written");
    fake.d1_size.set(Some(1000));
    assert_eq!(
        run_with(&fake, &[identified("m2"), identified("m3")], config),
        [Outcome::Ack, Outcome::Ack],
        "acknowledged: nothing waits for a full D1"
    );
    assert_eq!(fake.rows.borrow().len(), 1, "no event row once full");
    assert_eq!(fake.counters.borrow().get("web/d1_full"), Some(&2));
    assert_eq!(fake.counters.borrow().get("web/d1_written"), Some(&1));
    let mut lake: Vec<String> = delivered(&fake)
        .iter()
        .filter(|b| b.destination == "lake")
        .flat_map(|b| b.events.iter().map(|e| e.message_id.clone()))
        .collect();
    lake.sort();
    assert_eq!(lake, ["m1", "m2", "m3"], "the lake gets every event");
    assert_eq!(
        fake.select("SELECT anonymous_id, user_id FROM identity_links")
            .len(),
        1,
        "the identity graph is still kept"
    );
}

#[test]
fn lake_only_keeps_the_identity_graph_and_no_event_rows() {
    use sluice_edge_worker::sinks::window::HotWindow;
    let fake = Fake::default();
    let mut config = sources();
    config.d1 = HotWindow::from_vars(Some("off"), None, None).unwrap();
    assert_eq!(run_with(&fake, &[identified("m1")], config), [Outcome::Ack]);
    assert!(fake.rows.borrow().is_empty());
    assert!(fake.select("SELECT 1 FROM events").is_empty());
    assert_eq!(
        fake.select("SELECT user_id FROM identity_links").len(),
        1,
        "the identity graph (the profile's sightings) is kept"
    );
    assert_eq!(delivered(&fake).len(), 1, "the lake's batch");
    assert_eq!(fake.counters.borrow().get("web/d1_full"), None);
}
