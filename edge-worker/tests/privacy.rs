//! Privacy jobs against the shared fakes, with D1 as a real SQLite built by
//! the worker's migrations: people are stored through the real delivery path
//! (D1 and an R2 lake under a non-default prefix), then exported, deleted,
//! suppressed and expired.
#![cfg(not(target_arch = "wasm32"))] // SQLite is linked natively only
#![allow(clippy::unwrap_used)] // test code: a panic is a failed test

use serde_json::{json, Value};
use sluice_edge_worker::config::Config;
use sluice_edge_worker::db::text_value;
use sluice_edge_worker::delivery::config::{self, Destination};
use sluice_edge_worker::delivery::{consume_events, deliver, Outcome, Settings};
use sluice_edge_worker::privacy::{self, retention, JobError, Subject};
use sluice_edge_worker::sinks::{self, DeliveryBatch};
use sluice_shared::{Event, EventType, QueueMessage, QueuedEvent, Timestamp};
use std::io::Read;

mod common;
use common::{Fake, NOW};

const DAY_MS: i64 = 86_400_000;

fn sources() -> Config {
    Config::from_sources_json(
        &json!([{"name": "web", "write_key": "k", "allowed_origins": ["*"], "destinations": ["lake", "hook"],
                 "consent": {"regime": "opt_out"}, "retention_days": 30}])
        .to_string(),
    )
    .unwrap()
}

/// The lake writes under `warehouse/raw`, not the default `events`.
fn destinations() -> Vec<Destination> {
    config::parse(Some(
        &json!([
            {"name": "lake", "kind": "r2", "prefix": "warehouse/raw", "format": "ndjson"},
            {"name": "hook", "kind": "webhook", "url": "http://127.0.0.1:9/hook", "secret_var": "HOOK_SECRET"}
        ])
        .to_string(),
    ))
    .unwrap()
}

fn event(kind: EventType, id: &str, user: Option<&str>, anon: &str, at: Timestamp) -> Event {
    let mut e = Event::new(kind, id);
    e.user_id = user.map(str::to_owned);
    e.anonymous_id = Some(anon.to_owned());
    e.received_at = Some(at.to_rfc3339());
    e.timestamp = Some(at.to_rfc3339());
    if kind == EventType::Track {
        e.event = Some("Viewed".into());
    } else {
        e.traits = json!({"plan": "pro"}).as_object().cloned();
    }
    e
}

/// Store events through the delivery path: D1 (events, identity graph,
/// profiles), then the lake batches fanned out to R2.
fn store(fake: &Fake, events: Vec<Event>) {
    let config = sources();
    let dests = destinations();
    let messages: Vec<String> = events
        .into_iter()
        .map(|event| {
            serde_json::to_string(&QueueMessage::Event(Box::new(QueuedEvent {
                source: "web".into(),
                event,
            })))
            .unwrap()
        })
        .collect();
    let settings = Settings {
        config: &config,
        destinations: &dests,
        shards: 4,
        faults: Default::default(),
    };
    let out = pollster::block_on(consume_events(&messages, &settings, fake));
    assert!(out.iter().all(|o| *o == Outcome::Ack), "{out:?}");
    let batches: Vec<(String, u32)> = fake.deliveries.borrow_mut().drain(..).collect();
    for (body, _) in batches {
        let batch: DeliveryBatch = serde_json::from_str(&body).unwrap();
        if batch.destination == "lake" {
            assert_eq!(
                pollster::block_on(deliver(&body, &dests, fake)),
                Outcome::Ack
            );
        }
    }
}

/// u1 on two devices (a1, a2), and someone else (x) in the same batches.
fn two_people(fake: &Fake) {
    store(
        fake,
        vec![
            event(EventType::Identify, "id1", Some("u1"), "a1", NOW),
            event(EventType::Track, "t1", None, "a1", NOW),
            event(EventType::Identify, "id2", Some("u1"), "a2", NOW),
            event(EventType::Track, "t2", None, "a2", NOW),
            event(EventType::Track, "tx", None, "x", NOW),
        ],
    );
}

/// A data-subject request as the admin API stores it.
fn request(fake: &Fake, id: &str, kind: &str, subject: Value) {
    fake.exec(
        "INSERT INTO dsr_requests (id, type, subject, status, actor, created_at, updated_at) VALUES (?1, ?2, ?3, 'pending', 'dpo', ?4, ?4)",
        vec![text_value(id), text_value(kind), text_value(&subject.to_string()), text_value(&NOW.to_rfc3339())],
    );
}

fn run(fake: &Fake, id: &str) -> Result<(), JobError> {
    pollster::block_on(privacy::run_job(fake, id, &destinations()))
}

fn status(fake: &Fake, id: &str) -> Value {
    fake.select(&format!(
        "SELECT status, result, error FROM dsr_requests WHERE id = '{id}'"
    ))
    .remove(0)
}

fn audits(fake: &Fake) -> Vec<(String, String, String, i64)> {
    fake.select("SELECT action, target, outcome, records FROM audit_log ORDER BY id")
        .iter()
        .map(|r| {
            (
                r["action"].as_str().unwrap().to_owned(),
                r["target"].as_str().unwrap().to_owned(),
                r["outcome"].as_str().unwrap().to_owned(),
                r["records"].as_i64().unwrap(),
            )
        })
        .collect()
}

fn column(fake: &Fake, sql: &str) -> Vec<String> {
    fake.select(sql)
        .iter()
        .map(|r| r.as_object().unwrap().values().next().unwrap().to_string())
        .map(|v| v.trim_matches('"').to_owned())
        .collect()
}

fn lines(object: &[u8]) -> Vec<String> {
    let mut text = String::new();
    flate2::read::GzDecoder::new(object)
        .read_to_string(&mut text)
        .unwrap();
    text.lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["messageId"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}

fn lake_keys(fake: &Fake) -> Vec<String> {
    fake.objects
        .borrow()
        .keys()
        .filter(|k| k.starts_with("warehouse/raw/"))
        .cloned()
        .collect()
}

#[test]
fn an_access_export_holds_the_d1_and_lake_events_of_every_linked_id() {
    let fake = Fake::default();
    two_people(&fake);
    request(&fake, "r1", "access", json!({"anonymousId": "a2"}));
    run(&fake, "r1").unwrap();
    let done = status(&fake, "r1");
    assert_eq!(done["status"], "done", "{done}");
    let export: Value = serde_json::from_slice(&fake.objects.borrow()["exports/r1.json"]).unwrap();
    assert_eq!(
        export["subject"],
        json!({"userIds": ["u1"], "anonymousIds": ["a1", "a2"]})
    );
    let ids = |events: &Value| -> Vec<String> {
        let mut ids: Vec<String> = events
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["messageId"].as_str().unwrap().to_owned())
            .collect();
        ids.sort();
        ids
    };
    assert_eq!(ids(&export["events"]), ["id1", "id2", "t1", "t2"]);
    assert_eq!(export["events"][0]["source"], "web");
    let lake = export["lake"].as_array().unwrap();
    assert_eq!(lake.len(), 1, "one lake object holds the batch");
    assert!(lake[0]["key"]
        .as_str()
        .unwrap()
        .starts_with("warehouse/raw/source=web/dt=2024-05-01/"));
    assert_eq!(
        ids(&lake[0]["events"]),
        ["id1", "id2", "t1", "t2"],
        "not x's line"
    );
    assert_eq!(export["profile"]["traits"], json!({"plan": "pro"}));
    assert_eq!(
        audits(&fake),
        [("access".to_owned(), "r1".to_owned(), "done".to_owned(), 4)]
    );
}

#[test]
fn a_delete_removes_the_person_everywhere_signs_the_notice_and_suppresses() {
    let fake = Fake::default();
    fake.http_status.set(200);
    two_people(&fake);
    let key = lake_keys(&fake).remove(0);
    request(&fake, "r2", "delete", json!({"userId": "u1"}));
    run(&fake, "r2").unwrap();
    assert_eq!(status(&fake, "r2")["status"], "done");
    assert_eq!(column(&fake, "SELECT message_id FROM events"), ["tx"]);
    for table in [
        "identity_links",
        "profiles",
        "profile_traits",
        "consent_events",
    ] {
        assert!(
            fake.select(&format!("SELECT * FROM {table}")).is_empty(),
            "{table}"
        );
    }
    assert_eq!(
        column(
            &fake,
            "SELECT p.value AS person FROM lake_objects o, json_each(o.people) p"
        ),
        ["x"],
        "only x still indexed"
    );
    assert_eq!(
        lines(&fake.objects.borrow()[&key]),
        ["tx"],
        "their lines are cut"
    );
    assert_eq!(
        column(
            &fake,
            "SELECT id || ':' || kind FROM suppressions ORDER BY id"
        ),
        ["a1:suppress", "a2:suppress", "u1:suppress"]
    );
    let calls = fake.http_calls.borrow();
    assert_eq!(calls.len(), 1, "one notice to the one webhook");
    let (url, headers, body) = &calls[0];
    assert_eq!(url, "http://127.0.0.1:9/hook");
    let header = |n: &str| headers.iter().find(|(k, _)| k == n).unwrap().1.clone();
    assert_eq!(header("x-sluice-event"), "deletion");
    let ts: i64 = header("x-sluice-timestamp").parse().unwrap();
    assert!(sinks::webhook::verify(
        b"s3cret",
        ts,
        body,
        &header("x-sluice-signature"),
        ts
    ));
    let notice: Value = serde_json::from_slice(body).unwrap();
    assert_eq!(notice["userIds"], json!(["u1"]));
    assert_eq!(notice["anonymousIds"], json!(["a1", "a2"]));
    let result: Value =
        serde_json::from_str(status(&fake, "r2")["result"].as_str().unwrap()).unwrap();
    assert_eq!(result["events"], 4);
    assert_eq!(result["lakeEvents"], 4);
    assert_eq!(
        result["notified"],
        json!([{"destination": "hook", "ok": true}])
    );
    // Their next event is dropped on the way in.
    store(&fake, vec![event(EventType::Track, "t3", None, "a1", NOW)]);
    assert_eq!(column(&fake, "SELECT message_id FROM events"), ["tx"]);
}

#[test]
fn a_deletion_notice_answered_5xx_retries_the_job_and_the_retry_notifies_again() {
    let fake = Fake::default();
    two_people(&fake);
    request(&fake, "r3", "delete", json!({"anonymousId": "a1"}));
    fake.http_status.set(503);
    let e = run(&fake, "r3").unwrap_err();
    assert!(matches!(e, JobError::Retry(_)), "{e:?}");
    assert_eq!(e.code(), "job_retry");
    assert_eq!(status(&fake, "r3")["status"], "running");
    assert!(
        audits(&fake).is_empty(),
        "nothing is audited before the end"
    );
    fake.http_status.set(200);
    run(&fake, "r3").unwrap();
    assert_eq!(status(&fake, "r3")["status"], "done");
    let calls = fake.http_calls.borrow();
    assert_eq!(calls.len(), 2, "the retry notified again");
    let notice: Value = serde_json::from_slice(&calls[1].2).unwrap();
    assert_eq!(
        notice["userIds"],
        json!(["u1"]),
        "the retry still knew every linked id"
    );
    assert_eq!(notice["anonymousIds"], json!(["a1", "a2"]));
    assert_eq!(column(&fake, "SELECT message_id FROM events"), ["tx"]);
}

#[test]
fn suppress_and_opt_out_are_recorded_with_their_kind_and_suppress_is_never_downgraded() {
    let fake = Fake::default();
    two_people(&fake);
    request(&fake, "s1", "suppress", json!({"userId": "u1"}));
    request(&fake, "o1", "opt_out", json!({"anonymousId": "a2"}));
    request(&fake, "o2", "opt_out", json!({"userId": "never-seen"}));
    for id in ["s1", "o1", "o2"] {
        run(&fake, id).unwrap();
        assert_eq!(status(&fake, id)["status"], "done");
    }
    assert_eq!(
        column(
            &fake,
            "SELECT id || ':' || kind FROM suppressions ORDER BY id"
        ),
        [
            "a1:suppress",
            "a2:suppress",
            "never-seen:opt_out",
            "u1:suppress"
        ]
    );
    assert_eq!(
        audits(&fake),
        [
            ("suppress".to_owned(), "s1".to_owned(), "done".to_owned(), 3),
            ("opt_out".to_owned(), "o1".to_owned(), "done".to_owned(), 3),
            ("opt_out".to_owned(), "o2".to_owned(), "done".to_owned(), 1),
        ]
    );
}

#[test]
fn retention_expires_old_lake_objects_under_the_destinations_own_prefix() {
    let fake = Fake::default();
    let old = Timestamp(NOW.0 - 40 * DAY_MS);
    store(&fake, vec![event(EventType::Track, "old", None, "a1", old)]);
    store(&fake, vec![event(EventType::Track, "new", None, "a1", NOW)]);
    let keys = lake_keys(&fake);
    assert_eq!(keys.len(), 2, "{keys:?}");
    let config = sources();
    let dests = destinations();
    let source = &config.sources[0];
    let prefixes = privacy::lake_prefixes(&source.destinations, &dests);
    assert_eq!(prefixes, ["warehouse/raw"]);
    let removed =
        pollster::block_on(retention::run_audited(&fake, "web", 30, &prefixes, NOW)).unwrap();
    assert_eq!(removed, 2, "one D1 event and one lake object");
    assert_eq!(column(&fake, "SELECT message_id FROM events"), ["new"]);
    let left = lake_keys(&fake);
    assert_eq!(left.len(), 1);
    assert!(left[0].contains("/dt=2024-05-01/"), "{left:?}");
    assert_eq!(column(&fake, "SELECT key FROM lake_objects"), left);
    assert_eq!(
        audits(&fake),
        [(
            "retention".to_owned(),
            "web".to_owned(),
            "done".to_owned(),
            2
        )]
    );
}

#[test]
fn a_job_redelivered_after_completion_does_nothing() {
    let fake = Fake::default();
    fake.http_status.set(200);
    two_people(&fake);
    request(&fake, "r4", "delete", json!({"userId": "u1"}));
    run(&fake, "r4").unwrap();
    let statements = fake.statements.borrow().len();
    run(&fake, "r4").unwrap();
    assert_eq!(
        fake.statements.borrow().len(),
        statements,
        "nothing written again"
    );
    assert_eq!(fake.http_calls.borrow().len(), 1, "no second notice");
    assert_eq!(audits(&fake).len(), 1);
}

#[test]
fn a_retryable_port_failure_leaves_the_job_for_retry() {
    let fake = Fake::default();
    two_people(&fake);
    request(&fake, "r5", "access", json!({"userId": "u1"}));
    fake.lake_down.set(true);
    assert!(matches!(run(&fake, "r5"), Err(JobError::Retry(_))));
    assert_eq!(status(&fake, "r5")["status"], "running");
    assert!(audits(&fake).is_empty());
    fake.lake_down.set(false);
    run(&fake, "r5").unwrap();
    assert_eq!(status(&fake, "r5")["status"], "done");
    assert_eq!(audits(&fake).len(), 1);
}

#[test]
fn a_permanent_port_failure_marks_the_job_failed_with_an_audit_entry() {
    let fake = Fake::default();
    two_people(&fake);
    request(&fake, "r6", "access", json!({"userId": "u1"}));
    fake.lake_missing.set(true);
    let e = run(&fake, "r6").unwrap_err();
    assert!(matches!(e, JobError::Fail(_)), "{e:?}");
    let failed = status(&fake, "r6");
    assert_eq!(failed["status"], "failed");
    assert!(
        failed["error"]
            .as_str()
            .unwrap()
            .contains("missing_binding"),
        "{failed}"
    );
    assert_eq!(
        audits(&fake),
        [("access".to_owned(), "r6".to_owned(), "failed".to_owned(), 0)]
    );
    fake.lake_missing.set(false);
    run(&fake, "r6").unwrap();
    assert_eq!(
        status(&fake, "r6")["status"],
        "failed",
        "a failed job stays failed"
    );
}

#[test]
fn a_person_with_many_devices_stays_within_d1s_parameter_limit_and_events_keep_their_order() {
    let fake = Fake::default();
    // u1 on 120 devices, each linked by an identify call; the later a
    // device, the older its track event, so the oldest events are matched
    // only by the last chunk of ids.
    let events: Vec<Event> = (0..120)
        .flat_map(|i| {
            let device = format!("d{i:03}");
            let at = Timestamp(NOW.0 - (i64::from(i) + 1) * 60_000);
            [
                event(
                    EventType::Identify,
                    &format!("i{i:03}"),
                    Some("u1"),
                    &device,
                    NOW,
                ),
                event(EventType::Track, &format!("t{i:03}"), None, &device, at),
            ]
        })
        .collect();
    store(&fake, events);
    let ids = pollster::block_on(privacy::resolve(
        &fake,
        &Subject {
            user_id: Some("u1".into()),
            anonymous_id: None,
        },
    ))
    .unwrap();
    assert_eq!(ids.anonymous_ids.len(), 120);
    let oldest = pollster::block_on(privacy::events(&fake, &ids, 3)).unwrap();
    let oldest: Vec<&str> = oldest
        .iter()
        .map(|e| e["messageId"].as_str().unwrap())
        .collect();
    assert_eq!(
        oldest,
        ["t119", "t118", "t117"],
        "sorted and cut after the chunks"
    );
    let all = pollster::block_on(privacy::events(&fake, &ids, 1000)).unwrap();
    assert_eq!(
        all.len(),
        240,
        "an event matched by two chunks is listed once"
    );
    fake.http_status.set(200);
    request(&fake, "r7", "delete", json!({"userId": "u1"}));
    run(&fake, "r7").unwrap();
    assert!(fake.select("SELECT * FROM events").is_empty());
    assert!(fake.select("SELECT * FROM identity_links").is_empty());
    let result: Value =
        serde_json::from_str(status(&fake, "r7")["result"].as_str().unwrap()).unwrap();
    assert_eq!(result["events"], 240);
}

#[test]
fn a_request_the_table_cannot_describe_fails_instead_of_retrying_forever() {
    let fake = Fake::default();
    request(&fake, "r8", "forget", json!({"userId": "u1"}));
    let e = run(&fake, "r8").unwrap_err();
    assert_eq!(e.code(), "job_failed");
    assert_eq!(status(&fake, "r8")["status"], "failed");
    assert_eq!(
        audits(&fake),
        [("forget".to_owned(), "r8".to_owned(), "failed".to_owned(), 0)]
    );
}

#[test]
fn a_delete_asks_every_vendor_with_a_deletion_api_to_delete_the_user_and_records_it() {
    let fake = Fake::default();
    fake.http_status.set(200);
    two_people(&fake);
    let mut dests = destinations();
    dests.extend(
        config::parse(Some(
            &json!([{"name": "mp", "kind": "mixpanel",
                     "settings": {"project_token": "tok", "gdpr_oauth_token_var": "HOOK_SECRET"}}])
            .to_string(),
        ))
        .unwrap(),
    );
    request(&fake, "r9", "delete", json!({"anonymousId": "a1"}));
    pollster::block_on(privacy::run_job(&fake, "r9", &dests)).unwrap();
    let calls = fake.http_calls.borrow();
    let deletion: Vec<&common::Call> = calls
        .iter()
        .filter(|(url, _, _)| url.contains("/api/app/data-deletions/v3.0/"))
        .collect();
    assert_eq!(deletion.len(), 1, "one call for the one user id: {calls:?}");
    let (url, headers, body) = deletion[0];
    assert!(url.ends_with("?token=tok"), "{url}");
    assert!(headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("authorization") && v == "Bearer s3cret"));
    let body: Value = serde_json::from_slice(body).unwrap();
    assert_eq!(body["distinct_ids"], json!(["u1"]), "{body}");
    let result: Value =
        serde_json::from_str(status(&fake, "r9")["result"].as_str().unwrap()).unwrap();
    assert_eq!(
        result["notified"][1],
        json!({"destination": "mp", "userId": "u1", "ok": true, "reason": null})
    );
    drop(calls);
    // A vendor that is down retries the whole (idempotent) job.
    fake.http_status.set(503);
    request(&fake, "r10", "delete", json!({"userId": "u1"}));
    let only_mixpanel: Vec<Destination> = dests.into_iter().filter(|d| d.name == "mp").collect();
    let e = pollster::block_on(privacy::run_job(&fake, "r10", &only_mixpanel)).unwrap_err();
    assert!(
        matches!(&e, JobError::Retry(why) if why.contains("deletion at mp")),
        "{e:?}"
    );
}

// Audience backfill jobs (the jobs Queue's other kind): stored events
// computed into people's states from the lake, in bounded steps.

mod backfill {
    use super::*;
    use sluice_edge_worker::audience::backfill::{self, StepMessage};
    use sluice_shared::audience::Catalog;

    const HOUR_MS: i64 = 3_600_000;

    fn catalog() -> Catalog {
        Catalog::parse(Some(
            &json!({"traits": [
                {"name": "views", "kind": "count", "event": "Viewed", "purposes": ["personalization"]},
                {"name": "plans", "kind": "unique_count", "property": "plan", "event": "Bought", "purposes": ["personalization"]}
            ]})
            .to_string(),
        ))
        .unwrap()
    }

    fn fake() -> Fake {
        Fake {
            audiences: catalog(),
            ..Fake::default()
        }
    }

    fn config() -> Config {
        let mut c = sources();
        c.audiences = catalog();
        c
    }

    /// Seven lake objects, an hour apart (the identify linking device a1 to
    /// u1 in the oldest), then six hours of views by u1 from a1 and by x,
    /// anonymous.
    fn history(fake: &Fake) {
        let mut first = vec![event(
            EventType::Identify,
            "id1",
            Some("u1"),
            "a1",
            NOW.plus_millis(-10 * HOUR_MS),
        )];
        for hour in 0..6_i64 {
            let at = NOW.plus_millis((hour - 9) * HOUR_MS);
            first.push(event(EventType::Track, &format!("a{hour}"), None, "a1", at));
            first.push(event(
                EventType::Track,
                &format!("b{hour}"),
                None,
                "a1",
                at.plus_millis(1),
            ));
            first.push(event(EventType::Track, &format!("x{hour}"), None, "x", at));
            store(fake, std::mem::take(&mut first));
        }
    }

    fn create(fake: &Fake, body: Value) -> Result<Value, String> {
        pollster::block_on(backfill::create(
            fake,
            &config(),
            &destinations(),
            body.to_string().as_bytes(),
            "root",
        ))
        .map_err(|e| e.code().to_owned())
    }

    /// Run the queued step messages until none is left; returns how many ran.
    fn drain(fake: &Fake, config: &Config) -> usize {
        let mut ran = 0;
        loop {
            let next: Vec<String> = fake.jobs.borrow_mut().drain(..).collect();
            if next.is_empty() {
                return ran;
            }
            for m in next {
                let step: StepMessage = serde_json::from_str(&m).unwrap();
                let _ = pollster::block_on(backfill::run_step(fake, config, &step));
                ran += 1;
            }
        }
    }

    fn job(fake: &Fake, id: &str) -> Value {
        pollster::block_on(backfill::status(fake, id))
            .unwrap()
            .unwrap()
    }

    fn views(fake: &Fake, key: &str) -> Value {
        fake.people.borrow()[key].state.traits["views"].v.clone()
    }

    #[test]
    fn a_backfill_walks_the_lake_in_bounded_steps_and_computes_each_person_once() {
        let fake = fake();
        history(&fake);
        assert!(
            fake.people.borrow().is_empty(),
            "no definition fed them live"
        );
        let created = create(&fake, json!({"definitions": ["views"]})).unwrap();
        assert_eq!(created["status"], "queued");
        assert_eq!(created["objects"]["total"], 7, "{:?}", lake_keys(&fake));
        let id = created["id"].as_str().unwrap().to_owned();
        // 7 objects, 4 a step: two steps, then the one that finds none left.
        assert_eq!(drain(&fake, &config()), 3);
        let done = job(&fake, &id);
        assert_eq!(done["status"], "done", "{done}");
        assert_eq!(done["objects"], json!({"total": 7, "done": 7}));
        assert_eq!(done["events"], json!({"read": 19, "fed": 19}));
        assert_eq!(done["errors"], 0);
        assert_eq!(
            views(&fake, "u:u1"),
            12,
            "the device's views are the linked user's"
        );
        assert_eq!(views(&fake, "a:x"), 6);
        assert!(!fake.people.borrow().contains_key("a:a1"));
    }

    #[test]
    fn a_step_run_again_after_its_commit_was_lost_counts_nothing_twice() {
        let fake = fake();
        history(&fake);
        let id = create(&fake, json!({"all": true})).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let first: Vec<String> = fake.jobs.borrow_mut().drain(..).collect();
        let step: StepMessage = serde_json::from_str(&first[0]).unwrap();
        pollster::block_on(backfill::run_step(&fake, &config(), &step)).unwrap();
        let fed = views(&fake, "u:u1");
        // The people were fed, the commit is lost: the Queue redelivers step 0.
        fake.exec(
            "UPDATE audience_backfills SET step = 0, cursor = '~', objects_done = 0, events_read = 0, events_fed = 0 WHERE id = ?1",
            vec![text_value(&id)],
        );
        fake.jobs.borrow_mut().clear();
        fake.jobs.borrow_mut().push(first[0].clone());
        drain(&fake, &config());
        assert_eq!(job(&fake, &id)["status"], "done");
        assert_eq!(fed, 8, "the first step's four objects");
        assert_eq!(views(&fake, "u:u1"), 12);
        assert_eq!(views(&fake, "a:x"), 6);
        // A message delivered again after the job is done does nothing.
        fake.jobs.borrow_mut().push(first[0].clone());
        drain(&fake, &config());
        assert_eq!(views(&fake, "u:u1"), 12);
        assert_eq!(job(&fake, &id)["events"], json!({"read": 19, "fed": 19}));
    }

    #[test]
    fn an_unreadable_object_is_counted_and_named_and_the_others_are_fed() {
        let fake = fake();
        history(&fake);
        let key = "warehouse/raw/source=web/dt=2024-05-01/hour=09/broken.ndjson.gz";
        fake.objects
            .borrow_mut()
            .insert(key.into(), b"not gzip".to_vec());
        fake.exec(
            "INSERT INTO lake_objects (key, dt, people) VALUES (?1, '2024-05-01', '[]')",
            vec![text_value(key)],
        );
        let id = create(&fake, json!({"definitions": ["views"]})).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        drain(&fake, &config());
        let done = job(&fake, &id);
        assert_eq!(done["status"], "done");
        assert_eq!(done["errors"], 1);
        assert_eq!(done["lastErrors"][0]["key"], key);
        assert_eq!(done["objects"]["done"], 8);
        assert_eq!(views(&fake, "u:u1"), 12);
    }

    #[test]
    fn a_suppressed_person_is_not_fed() {
        let fake = fake();
        history(&fake);
        fake.suppressed
            .borrow_mut()
            .push(("x".into(), "suppress".into()));
        create(&fake, json!({"definitions": ["views"]})).unwrap();
        drain(&fake, &config());
        assert_eq!(views(&fake, "u:u1"), 12);
        assert!(!fake.people.borrow().contains_key("a:x"));
    }

    #[test]
    fn a_definition_changed_during_the_job_fails_it() {
        let fake = fake();
        history(&fake);
        let id = create(&fake, json!({"definitions": ["views"]})).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let mut changed = config();
        changed.audiences.feeds[0].fingerprint ^= 1;
        drain(&fake, &changed);
        let failed = job(&fake, &id);
        assert_eq!(failed["status"], "failed");
        assert!(
            failed["error"]
                .as_str()
                .unwrap()
                .contains("definition_changed"),
            "{failed}"
        );
        assert!(fake.people.borrow().is_empty());
    }

    #[test]
    fn a_backfilled_window_arms_the_alarm_at_its_exit_and_the_alarm_fires_it() {
        use sluice_edge_worker::audience::person::{self, Fed, PersonRequest};
        use sluice_shared::audience::backfill::{Plan, Step};
        use sluice_shared::consent::Regime;
        let c = Catalog::parse(Some(
            &json!({"audiences": [{"name": "recent", "purposes": ["personalization"],
                "when": {"did": {"event": "Viewed", "within_s": 3600}}}]})
            .to_string(),
        ))
        .unwrap();
        let plan = Plan::parse(br#"{"all": true}"#, &c, NOW.0).unwrap();
        let viewed = NOW.plus_millis(-HOUR_MS / 2);
        let request = PersonRequest::Backfill {
            step: Box::new(Step {
                job: "j".into(),
                step: 0,
                plan,
            }),
            events: vec![Fed {
                source: "web".into(),
                regime: Regime::OptOut,
                event: event(EventType::Track, "w1", None, "a1", viewed),
            }],
        };
        let fed = person::step("a:a1", None, request, &c, NOW.0);
        assert_eq!(
            fed.alarm_at,
            Some(viewed.0 + HOUR_MS),
            "the view leaves the window then"
        );
        let names = |s: &person::Step| {
            s.emit
                .iter()
                .map(|(_, e)| e.event.clone().unwrap())
                .collect::<Vec<_>>()
        };
        assert_eq!(names(&fed), ["Audience Entered"]);
        let early = person::tick("a:a1", fed.record.clone(), &c, viewed.0 + HOUR_MS - 1);
        assert!(early.emit.is_empty());
        let exit = person::tick("a:a1", fed.record, &c, viewed.0 + HOUR_MS);
        assert_eq!(names(&exit), ["Audience Exited"]);
    }

    #[test]
    fn bad_requests_get_typed_errors() {
        let fake = fake();
        assert_eq!(
            create(&fake, json!({"definitions": ["nope"]})),
            Err("unknown_definition".into())
        );
        assert_eq!(
            create(&fake, json!({})),
            Err("backfill_without_definitions".into())
        );
        assert_eq!(
            create(&fake, json!({"all": true, "from": "soon"})),
            Err("invalid_time".into())
        );
        let no_lake = pollster::block_on(backfill::create(
            &fake,
            &config(),
            &[],
            br#"{"all": true}"#,
            "root",
        ));
        assert_eq!(
            no_lake.map_err(|e| (e.code(), e.status())),
            Err(("no_lake", 409))
        );
    }
}

#[test]
fn the_consent_history_keeps_each_change_not_every_identify() {
    let fake = Fake::default();
    let granted = json!({"categories": {"analytics": "granted"}});
    let denied = json!({"categories": {"analytics": "denied"}});
    let with_consent = |mut e: Event, consent: &Value| {
        e.context = json!({ "consent": consent }).as_object().cloned();
        e
    };
    let at = |minutes: i64| NOW.plus_millis(minutes * 60_000);
    let identify = |id: &str, minutes: i64, consent: &Value| {
        with_consent(
            event(EventType::Identify, id, Some("u1"), "a1", at(minutes)),
            consent,
        )
    };
    let mut change = with_consent(
        event(EventType::Track, "c1", Some("u1"), "a1", at(3)),
        &denied,
    );
    change.event = Some("Consent Updated".into());
    // Identifies on every page load, a change, pages after it, and the same
    // identify delivered again.
    store(
        &fake,
        vec![
            identify("i1", 0, &granted),
            identify("i2", 1, &granted),
            identify("i3", 2, &granted),
            change,
            identify("i4", 4, &denied),
            identify("i5", 5, &granted),
            identify("i6", 6, &granted),
        ],
    );
    store(&fake, vec![identify("i6", 6, &granted)]);
    assert_eq!(
        column(
            &fake,
            "SELECT message_id || ' ' || json_extract(consent, '$.categories.analytics') FROM consent_events ORDER BY at"
        ),
        ["i1 granted", "c1 denied", "i5 granted"],
        "the first record, the explicit change, and the identify that changed it back"
    );
    // An identify arriving late, before the latest records, is judged
    // against the record before it.
    store(&fake, vec![identify("late", 1, &denied)]);
    assert_eq!(
        column(&fake, "SELECT message_id FROM consent_events ORDER BY at"),
        ["i1", "late", "c1", "i5"]
    );
}

#[test]
fn a_profile_is_first_and_last_seen_over_every_device_and_server_side_event() {
    let fake = Fake::default();
    let hours = |h: i64| NOW.plus_millis(h * 3_600_000);
    let mut server_side = event(EventType::Track, "s1", Some("u1"), "-", hours(-24));
    server_side.anonymous_id = None;
    store(
        &fake,
        vec![
            event(EventType::Identify, "id1", Some("u1"), "a1", NOW),
            event(EventType::Track, "t2", Some("u1"), "a2", hours(2)),
            server_side,
            event(EventType::Track, "t1", Some("u1"), "a1", hours(-1)),
        ],
    );
    assert_eq!(
        column(&fake, "SELECT user_id FROM profiles"),
        ["u1"],
        "only the event without an anonymousId wrote a profile row"
    );
    request(&fake, "r1", "access", json!({"userId": "u1"}));
    run(&fake, "r1").unwrap();
    let export: Value = serde_json::from_slice(&fake.objects.borrow()["exports/r1.json"]).unwrap();
    let profile = &export["profile"];
    assert_eq!(
        profile["firstSeen"],
        hours(-24).to_rfc3339(),
        "the server-side event"
    );
    assert_eq!(profile["lastSeen"], hours(2).to_rfc3339(), "device a2");
    assert_eq!(profile["userId"], "u1");
}
