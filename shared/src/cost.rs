//! What running Sluice costs at Cloudflare's list prices, from the usage the
//! worker counts (`cost_*` counters, see [`Meter`]): the price table with its
//! date, how Queues bill a message, and the price of a usage per million
//! events. `cargo xtask bench cost` measures the usage; this prices it.
//!
//! Prices are the marginal list prices of the Workers Paid plan (what each
//! unit costs past the monthly allowance the plan includes; the $5 monthly
//! minimum and the allowances are left out, so the figures are what each
//! further million events costs).

use alloc::vec::Vec;

/// The date of [`LIST_PRICES`]: Cloudflare's published pricing pages for
/// Workers, Queues, Durable Objects (SQLite storage backend), D1 and R2
/// (Standard storage), as they read on that date.
pub const PRICES_AS_OF: &str = "2025-06-01";

/// Queues bill one operation per 64 KB of a message written, read and deleted.
pub const QUEUE_OP_BYTES: usize = 64 * 1024;

/// Operations a message of `bytes` costs on one of write, read or delete.
pub fn queue_ops(bytes: usize) -> u64 {
    bytes.div_ceil(QUEUE_OP_BYTES).max(1) as u64
}

/// A usage the worker counts. The counter's name is `cost_<name>`, per day,
/// under the source [`METER_SOURCE`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Meter {
    /// Worker invocations: HTTP requests, Queue consumer batches, cron runs.
    WorkerRequests,
    /// Queue operations: per 64 KB, a write at send, a read at each delivery
    /// to a consumer, a delete at the acknowledgement.
    QueueOps,
    /// Requests to Durable Objects (dedup shards, the live debugger).
    DoRequests,
    /// Wall-clock milliseconds of Durable Object calls, as the caller saw them
    /// (an upper bound of the billed duration).
    DoWallMs,
    /// Rows the dedup shards' SQL cursors read (`rowsRead`).
    DoRowsRead,
    /// Rows the dedup shards' SQL cursors wrote (`rowsWritten`; a `setAlarm` counts one).
    DoRowsWritten,
    /// D1's `meta.rows_read` over every statement.
    D1RowsRead,
    /// D1's `meta.rows_written` over every statement.
    D1RowsWritten,
    /// R2 Class A operations (put, list).
    R2ClassA,
    /// R2 Class B operations (get).
    R2ClassB,
    /// Bytes put to R2.
    R2BytesPut,
}

/// The source the `cost_*` counters are kept under.
pub const METER_SOURCE: &str = "_cost";

impl Meter {
    pub const ALL: [Meter; 11] = [
        Meter::WorkerRequests,
        Meter::QueueOps,
        Meter::DoRequests,
        Meter::DoWallMs,
        Meter::DoRowsRead,
        Meter::DoRowsWritten,
        Meter::D1RowsRead,
        Meter::D1RowsWritten,
        Meter::R2ClassA,
        Meter::R2ClassB,
        Meter::R2BytesPut,
    ];

    /// The counter's name.
    pub fn counter(self) -> &'static str {
        match self {
            Meter::WorkerRequests => "cost_worker_requests",
            Meter::QueueOps => "cost_queue_ops",
            Meter::DoRequests => "cost_do_requests",
            Meter::DoWallMs => "cost_do_wall_ms",
            Meter::DoRowsRead => "cost_do_rows_read",
            Meter::DoRowsWritten => "cost_do_rows_written",
            Meter::D1RowsRead => "cost_d1_rows_read",
            Meter::D1RowsWritten => "cost_d1_rows_written",
            Meter::R2ClassA => "cost_r2_class_a",
            Meter::R2ClassB => "cost_r2_class_b",
            Meter::R2BytesPut => "cost_r2_bytes_put",
        }
    }
}

/// USD per unit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prices {
    pub worker_request: f64,
    pub worker_cpu_ms: f64,
    pub queue_op: f64,
    pub do_request: f64,
    /// Per GB-second (a Durable Object is billed at 128 MB while active).
    pub do_gb_s: f64,
    pub do_row_read: f64,
    pub do_row_written: f64,
    pub do_storage_gb_month: f64,
    pub d1_row_read: f64,
    pub d1_row_written: f64,
    pub d1_storage_gb_month: f64,
    pub r2_class_a: f64,
    pub r2_class_b: f64,
    pub r2_storage_gb_month: f64,
}

const M: f64 = 1_000_000.0;

/// Workers Paid list prices as of [`PRICES_AS_OF`].
pub const LIST_PRICES: Prices = Prices {
    worker_request: 0.30 / M,
    worker_cpu_ms: 0.02 / M,
    queue_op: 0.40 / M,
    do_request: 0.15 / M,
    do_gb_s: 12.50 / M,
    do_row_read: 0.001 / M,
    do_row_written: 1.00 / M,
    do_storage_gb_month: 0.20,
    d1_row_read: 0.001 / M,
    d1_row_written: 1.00 / M,
    d1_storage_gb_month: 0.75,
    r2_class_a: 4.50 / M,
    r2_class_b: 0.36 / M,
    r2_storage_gb_month: 0.015,
};

/// Usage per event (averages over a measured run).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Usage {
    pub worker_requests: f64,
    pub cpu_ms: f64,
    pub queue_ops: f64,
    pub do_requests: f64,
    pub do_wall_ms: f64,
    pub do_rows_read: f64,
    pub do_rows_written: f64,
    pub d1_rows_read: f64,
    pub d1_rows_written: f64,
    pub r2_class_a: f64,
    pub r2_class_b: f64,
    /// Bytes each event leaves stored, per store.
    pub d1_bytes: f64,
    pub r2_bytes: f64,
    pub do_bytes: f64,
}

/// A Durable Object's billed memory, in GB.
const DO_GB: f64 = 0.128;
const GB: f64 = 1e9;

/// The price of a million events, line by line (name, USD), storage excluded.
pub fn per_million(u: &Usage, p: &Prices) -> Vec<(&'static str, f64)> {
    alloc::vec![
        ("Worker requests", u.worker_requests * p.worker_request * M),
        ("Worker CPU", u.cpu_ms * p.worker_cpu_ms * M),
        ("Queue operations", u.queue_ops * p.queue_op * M),
        ("Durable Object requests", u.do_requests * p.do_request * M),
        (
            "Durable Object duration",
            u.do_wall_ms / 1000.0 * DO_GB * p.do_gb_s * M
        ),
        (
            "Durable Object rows",
            (u.do_rows_read * p.do_row_read + u.do_rows_written * p.do_row_written) * M
        ),
        (
            "D1 rows",
            (u.d1_rows_read * p.d1_row_read + u.d1_rows_written * p.d1_row_written) * M
        ),
        (
            "R2 operations",
            (u.r2_class_a * p.r2_class_a + u.r2_class_b * p.r2_class_b) * M
        ),
    ]
}

/// What a million events' storage costs per month they stay: (D1, R2, Durable Objects).
pub fn storage_per_million_month(u: &Usage, p: &Prices) -> (f64, f64, f64) {
    (
        u.d1_bytes * M / GB * p.d1_storage_gb_month,
        u.r2_bytes * M / GB * p.r2_storage_gb_month,
        u.do_bytes * M / GB * p.do_storage_gb_month,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_queue_message_costs_an_operation_per_64_kb() {
        assert_eq!(queue_ops(0), 1);
        assert_eq!(queue_ops(64 * 1024), 1);
        assert_eq!(queue_ops(64 * 1024 + 1), 2);
        assert_eq!(queue_ops(120 * 1024), 2);
    }

    #[test]
    fn one_row_written_per_event_is_a_dollar_per_million() {
        let u = Usage {
            d1_rows_written: 1.0,
            ..Usage::default()
        };
        let lines = per_million(&u, &LIST_PRICES);
        let total: f64 = lines.iter().map(|(_, usd)| usd).sum();
        assert!((total - 1.0).abs() < 1e-9, "{lines:?}");
        let u = Usage {
            worker_requests: 0.01,
            queue_ops: 0.03,
            ..Usage::default()
        };
        let total: f64 = per_million(&u, &LIST_PRICES)
            .iter()
            .map(|(_, usd)| usd)
            .sum();
        assert!((total - (0.003 + 0.012)).abs() < 1e-9, "{total}");
    }

    #[test]
    fn storage_is_priced_per_gb_month() {
        let u = Usage {
            d1_bytes: 1000.0,
            r2_bytes: 200.0,
            ..Usage::default()
        };
        let (d1, r2, dobj) = storage_per_million_month(&u, &LIST_PRICES);
        assert!((d1 - 0.75).abs() < 1e-9, "1 GB of D1: {d1}");
        assert!((r2 - 0.003).abs() < 1e-9, "0.2 GB of R2: {r2}");
        assert_eq!(dobj, 0.0);
        assert_eq!(Meter::ALL.len(), 11);
        assert!(Meter::ALL.iter().all(|m| m.counter().starts_with("cost_")));
    }
}
