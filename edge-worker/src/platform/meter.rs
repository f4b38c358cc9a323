//! The cost meter: what this isolate used of each billed unit
//! ([`sluice_shared::cost::Meter`]), counted where the platform answers
//! (D1's `meta`, the dedup shards' cursor counts, R2 and Queue calls), and
//! added to the `cost_*` counters once per invocation. Off unless
//! `SLUICE_COST_METER` is `on` (`cargo xtask bench cost` turns it on): the
//! flush is a D1 write of its own, which the meter does not count, so the
//! figures are those of a deployment with the meter off.
//!
//! The last D1 size seen (`meta.size_after`) is kept here too, always: the
//! hot window's capacity guard reads it.

use crate::db::{SqlValue, Statement};
use sluice_shared::cost::{Meter, METER_SOURCE};
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;

/// Var that turns the meter on (`on`).
pub const METER_VAR: &str = "SLUICE_COST_METER";

thread_local! {
    static ON: Cell<bool> = const { Cell::new(false) };
    static COUNTS: RefCell<BTreeMap<Meter, u64>> = const { RefCell::new(BTreeMap::new()) };
    static D1_SIZE: Cell<Option<u64>> = const { Cell::new(None) };
}

/// Read the var (each invocation: cheap, and a test's stack sets it).
pub fn configure(env: &worker::Env) {
    let on = env
        .var(METER_VAR)
        .ok()
        .is_some_and(|v| v.to_string() == "on");
    ON.with(|c| c.set(on));
}

/// Count `n` of a unit.
pub fn add(meter: Meter, n: u64) {
    if n > 0 && ON.with(Cell::get) {
        COUNTS.with(|c| *c.borrow_mut().entry(meter).or_default() += n);
    }
}

/// The D1 size a write or query reported.
pub fn saw_d1_size(bytes: Option<usize>) {
    if let Some(b) = bytes {
        D1_SIZE.with(|c| c.set(Some(b as u64)));
    }
}

/// The last D1 size this isolate saw.
pub fn d1_size() -> Option<u64> {
    D1_SIZE.with(Cell::get)
}

/// The counter statements for what was counted since the last flush (and
/// the counts are reset).
pub fn take(day: &str) -> Vec<Statement> {
    if !ON.with(Cell::get) {
        return Vec::new();
    }
    let counts = COUNTS.with(|c| std::mem::take(&mut *c.borrow_mut()));
    counts
        .into_iter()
        .map(|(meter, n)| {
            Statement::new(
                crate::sinks::d1::COUNT,
                vec![
                    SqlValue::Text(day.to_owned()),
                    SqlValue::Text(METER_SOURCE.to_owned()),
                    SqlValue::Text(meter.counter().to_owned()),
                    SqlValue::Int(i64::try_from(n).unwrap_or(i64::MAX)),
                ],
            )
        })
        .collect()
}
