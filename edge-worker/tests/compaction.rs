//! Lake compaction against the shared fakes (D1 a real SQLite built by the
//! worker's migrations, R2 in memory): small Parquet objects written by the
//! real lake sink are merged into one output with every row, the index
//! points at the output, and a run interrupted at any step ends the same
//! way when it runs again.
#![cfg(not(target_arch = "wasm32"))] // SQLite is linked natively only
#![allow(clippy::unwrap_used)] // test code: a panic is a failed test

use serde_json::json;
use sluice_edge_worker::compact::{self, CompactMessage};
use sluice_edge_worker::delivery::config::LakeFormat;
use sluice_edge_worker::sinks::r2::Lake;
use sluice_edge_worker::sinks::{DeliveryBatch, Sink};
use sluice_shared::lake::parquet_to_events;
use sluice_shared::{Event, EventType, Timestamp};

mod common;
use common::{Fake, NOW};

const DIR: &str = "events/source=web/dt=2024-05-01/hour=10/";
/// Two hours after 10:05, so hour 10 is due at the default delay.
const LATER: Timestamp = Timestamp(NOW.0 + 7_200_000);

fn batch(n: usize, first: usize, person: &str) -> DeliveryBatch {
    let events = (first..first + n)
        .map(|i| {
            let mut e = Event::new(EventType::Track, format!("m{i:04}"));
            e.event = Some("Viewed".into());
            e.anonymous_id = Some(person.to_owned());
            e.received_at = Some(NOW.plus_millis(i as i64).to_rfc3339());
            e.properties = json!({"i": i}).as_object().cloned();
            e
        })
        .collect();
    DeliveryBatch {
        destination: "lake".into(),
        source: "web".into(),
        batch_id: format!("b{first:04}"),
        attempt: 1,
        events,
    }
}

/// Write batches through the real lake sink (object, then its index row).
fn write(fake: &Fake, batches: &[DeliveryBatch]) {
    let lake = Lake {
        store: fake,
        db: fake,
        prefix: "events",
        format: LakeFormat::Parquet,
    };
    for b in batches {
        for part in lake.encode(b, NOW).unwrap().parts {
            pollster::block_on(lake.send(&part.request)).unwrap();
        }
    }
}

fn keys(fake: &Fake) -> Vec<String> {
    fake.objects.borrow().keys().cloned().collect()
}

/// Every row of every object in the lake, by message id, sorted.
fn rows(fake: &Fake) -> Vec<String> {
    let mut ids: Vec<String> = fake
        .objects
        .borrow()
        .values()
        .flat_map(|o| parquet_to_events(o).unwrap())
        .map(|r| r.event.message_id)
        .collect();
    ids.sort();
    ids
}

fn indexed(fake: &Fake) -> Vec<(String, String)> {
    fake.select("SELECT key, people FROM lake_objects ORDER BY key")
        .iter()
        .map(|r| {
            (
                r["key"].as_str().unwrap().to_owned(),
                r["people"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn run(fake: &Fake) -> Result<compact::Report, compact::CompactError> {
    pollster::block_on(compact::run(fake, DIR))
}

fn three_batches(fake: &Fake) -> Vec<String> {
    write(
        fake,
        &[
            batch(100, 0, "a"),
            batch(100, 100, "b"),
            batch(50, 200, "a"),
        ],
    );
    (0..250).map(|i| format!("m{i:04}")).collect()
}

#[test]
fn the_cron_queues_each_due_hour_and_the_job_merges_it_into_one_output() {
    let fake = Fake::default();
    let ids = three_batches(&fake);
    assert_eq!(keys(&fake).len(), 3);
    // Not due yet at 10:05; due two hours on.
    assert_eq!(
        pollster::block_on(compact::enqueue_due(&fake, NOW, 7_200_000)).unwrap(),
        0
    );
    assert_eq!(
        pollster::block_on(compact::enqueue_due(&fake, LATER, 7_200_000)).unwrap(),
        1
    );
    let job: CompactMessage = serde_json::from_str(&fake.jobs.borrow()[0]).unwrap();
    assert_eq!(job.compact, DIR);

    let report = run(&fake).unwrap();
    let output = format!("{DIR}compacted-0001.parquet");
    assert_eq!(report.output.as_deref(), Some(output.as_str()));
    assert_eq!(report.inputs, 3);
    assert!(!report.more);
    assert_eq!(
        keys(&fake),
        std::slice::from_ref(&output),
        "the inputs are deleted"
    );
    assert_eq!(rows(&fake), ids, "every row once, in the one output");
    assert_eq!(
        indexed(&fake),
        [(output, r#"["a","b"]"#.to_owned())],
        "one index row, for everyone in it"
    );
    assert!(fake.select("SELECT * FROM lake_compactions").is_empty());
    // The hour is no longer due (its only object is an output).
    assert_eq!(
        pollster::block_on(compact::enqueue_due(&fake, LATER, 7_200_000)).unwrap(),
        0
    );
}

#[test]
fn a_late_batch_gets_a_second_output_and_is_never_merged_twice() {
    let fake = Fake::default();
    let mut ids = three_batches(&fake);
    run(&fake).unwrap();
    write(&fake, &[batch(10, 300, "c"), batch(10, 310, "c")]);
    ids.extend((300..320).map(|i| format!("m{i:04}")));
    let report = run(&fake).unwrap();
    assert_eq!(report.inputs, 2, "only the late batches");
    assert_eq!(
        keys(&fake),
        [
            format!("{DIR}compacted-0001.parquet"),
            format!("{DIR}compacted-0002.parquet")
        ]
    );
    assert_eq!(rows(&fake), ids);
}

#[test]
fn a_run_that_fails_before_the_index_swap_is_overwritten_by_the_rerun() {
    let fake = Fake::default();
    let ids = three_batches(&fake);
    // An earlier run put its output (of two of the inputs, a third came
    // later) and stopped before the index swap: the inputs stay indexed.
    let output = format!("{DIR}compacted-0001.parquet");
    let inputs: Vec<Vec<u8>> = fake.objects.borrow().values().take(2).cloned().collect();
    let partial = sluice_shared::lake::compact(&inputs, sluice_shared::lake::Codec::Gzip).unwrap();
    fake.objects.borrow_mut().insert(output.clone(), partial);
    let report = run(&fake).unwrap();
    assert_eq!(
        report.output.as_deref(),
        Some(output.as_str()),
        "the same key"
    );
    assert_eq!(keys(&fake), [output]);
    assert_eq!(
        rows(&fake),
        ids,
        "no row twice: the partial output was overwritten"
    );
}

#[test]
fn a_run_that_stopped_after_the_swap_deletes_the_recorded_inputs_first() {
    let fake = Fake::default();
    let ids = three_batches(&fake);
    let inputs = keys(&fake);
    run(&fake).unwrap();
    // As if the R2 deletes had not happened: the inputs are back in R2 and
    // their deletion is still recorded.
    let copies: Vec<(String, Vec<u8>)> = {
        let f = Fake::default();
        three_batches(&f);
        let objects = f.objects.borrow().clone();
        objects.into_iter().collect()
    };
    fake.objects.borrow_mut().extend(copies);
    fake.exec(
        "INSERT INTO lake_compactions (dir, output, inputs) VALUES (?1, ?2, ?3)",
        vec![
            sluice_edge_worker::db::text_value(DIR),
            sluice_edge_worker::db::text_value(&format!("{DIR}compacted-0001.parquet")),
            sluice_edge_worker::db::SqlValue::Text(json!(inputs).to_string()),
        ],
    );
    let report = run(&fake).unwrap();
    assert_eq!(report.output, None, "nothing left to merge");
    assert_eq!(keys(&fake), [format!("{DIR}compacted-0001.parquet")]);
    assert_eq!(rows(&fake), ids);
    assert!(fake.select("SELECT * FROM lake_compactions").is_empty());
}

#[test]
fn an_hour_is_left_alone_while_an_audience_backfill_walks_the_index() {
    let fake = Fake::default();
    three_batches(&fake);
    fake.exec(
        "INSERT INTO audience_backfills (id, spec, status, cursor, top, actor, created_at, updated_at) \
         VALUES ('bf1', '{}', 'running', '', '', 'dpo', '', '')",
        vec![],
    );
    let report = run(&fake).unwrap();
    assert!(report.deferred);
    assert_eq!(keys(&fake).len(), 3, "nothing merged");
}
