//! Native micro-measure of the collector's accept path, per event: what the
//! worker does to each event of a batch of 100 between the body and the
//! Queue message (parse, validate, clock skew, enrich, consent, encode).
//!
//! `cargo bench -p sluice-shared --features enrich --bench accept`
//!
//! The events are the ones `cargo xtask bench worker` posts to the worker
//! (analytics.js-shaped `track` calls, ~700 bytes each). Nothing is
//! asserted: figures are printed, CPU time per event (median of rounds).
#![allow(clippy::unwrap_used)] // a bench binary: a panic is a failed run

use serde_json::{json, Value};
use std::time::Instant;

#[path = "support/accept_path.rs"]
mod accept_path;
use accept_path::Stage;

/// The worker bench's event (`shared/tests/fixtures/bench_event.json`).
fn event(i: usize) -> Value {
    let mut e: Value = serde_json::from_str(include_str!("../tests/fixtures/bench_event.json"))
        .expect("the bench event fixture is JSON");
    e["messageId"] = json!(format!("bench-{i}-1"));
    e
}

/// This thread's CPU time in ns (Linux's scheduler statistics), so machines
/// shared with other builds still measure the work; wall time elsewhere.
fn cpu_ns(wall: Instant) -> u128 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split(' ').next()?.parse().ok())
        .unwrap_or_else(|| wall.elapsed().as_nanos())
}

fn main() {
    let body = json!({"batch": (0..100).map(event).collect::<Vec<_>>(), "sentAt": "2024-05-01T10:00:01.000Z"})
        .to_string();
    // `accept BLOCKS N` stops after stage N (1 decode, 2 validate, 3 skew +
    // enrich + consent, 4 encode, 5 pack): the stages' costs by difference.
    // `accept BLOCKS N full` decodes every event whole (no fast lane).
    let until = std::env::args()
        .nth(2)
        .and_then(|a| a.parse().ok())
        .and_then(Stage::from_number)
        .unwrap_or(Stage::Pack);
    let lane = std::env::args().nth(3).as_deref() != Some("full");
    let run = || accept_path::run(body.as_bytes(), lane, until);
    // Blocks of batches: the scheduler's CPU clock moves in ticks, so a
    // block runs long enough (~0.1 s) to measure.
    let blocks: usize = std::env::args()
        .nth(1)
        .filter(|a| !a.starts_with('-'))
        .and_then(|a| a.parse().ok())
        .unwrap_or(15);
    let per_block = 100;
    for _ in 0..20 {
        run();
    }
    let epoch = Instant::now();
    let mut per: Vec<f64> = (0..blocks)
        .map(|_| {
            let start = cpu_ns(epoch);
            for _ in 0..per_block {
                run();
            }
            (cpu_ns(epoch) - start) as f64 / (per_block * 100) as f64
        })
        .collect();
    per.sort_by(f64::total_cmp);
    println!(
        "accept path ({}), batch of 100: {:.2} µs CPU per event (median of {blocks} blocks of {per_block} batches; min {:.2}, max {:.2})",
        if lane { "fast lane" } else { "every event decoded whole" },
        per[per.len() / 2] / 1000.0,
        per[0] / 1000.0,
        per[per.len() - 1] / 1000.0
    );
}
