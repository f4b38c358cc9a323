//! The delivery overview per destination, as the debugger shows it: how many
//! events were delivered, retried, withheld by consent, dead-lettered and
//! skipped, the delivery latency (from the collector's `receivedAt` to the
//! vendor's answer) and the last error, over the last hour and day.
//!
//! Kept in the D1 table `delivery_overview`: one row per destination and
//! ten-minute bucket (`2026-12-01T11:50`), added to by the deliveries
//! consumer ([`super::deliver`]) and, for consent withholdings, by the
//! events consumer's [`super::ledger::Ledger`], in the same D1 batch as
//! their counters. Like the counters it is approximate under Queue
//! redeliveries (a re-delivered batch adds again). "The last hour" is the
//! current bucket and the five before it (50 to 60 minutes), "the last day"
//! the current one and the 143 before it. Older rows are removed by the
//! daily retention run.

use crate::db::{text_value, SqlValue, Statement};
use crate::sinks::d1::Counter;
use serde_json::{json, Map, Value};
use sluice_shared::Timestamp;

/// Length of a bucket.
pub const BUCKET_MS: i64 = 600_000;
/// Buckets in "the last hour" and "the last day" (the current one included).
pub const HOUR_BUCKETS: i64 = 6;
pub const DAY_BUCKETS: i64 = 144;

/// The bucket of a time: its start, to the minute (`2026-12-01T11:50`).
pub fn bucket(t: Timestamp) -> String {
    let start = t.0.div_euclid(BUCKET_MS) * BUCKET_MS;
    Timestamp(start).to_rfc3339()[..16].to_owned()
}

/// The first bucket of the window of `buckets` buckets that ends at `now`.
pub fn since(now: Timestamp, buckets: i64) -> String {
    bucket(Timestamp(now.0 - (buckets - 1) * BUCKET_MS))
}

/// What happened to one destination's events in one go.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    pub delivered: u32,
    /// Events put back on the Queue for another attempt.
    pub retrying: u32,
    pub withheld: u32,
    pub dead_lettered: u32,
    pub skipped: u32,
    /// Latency of the delivered events, summed and the largest (ms).
    pub latency_ms_sum: i64,
    pub latency_ms_max: i64,
    /// The error of a failed attempt (retried or dead-lettered).
    pub last_error: Option<String>,
}

impl Tally {
    /// Count a delivered event that the collector received at `received_at`.
    pub fn delivered_at(&mut self, received_at: Option<&str>, now: Timestamp) {
        self.delivered += 1;
        if let Some(t) = received_at.and_then(|t| Timestamp::parse(t).ok()) {
            let ms = (now.0 - t.0).max(0);
            self.latency_ms_sum += ms;
            self.latency_ms_max = self.latency_ms_max.max(ms);
        }
    }

    /// Add another tally of the same destination (its error is the later one).
    pub fn add(&mut self, other: Tally) {
        self.delivered = self.delivered.saturating_add(other.delivered);
        self.retrying = self.retrying.saturating_add(other.retrying);
        self.withheld = self.withheld.saturating_add(other.withheld);
        self.dead_lettered = self.dead_lettered.saturating_add(other.dead_lettered);
        self.skipped = self.skipped.saturating_add(other.skipped);
        self.latency_ms_sum = self.latency_ms_sum.saturating_add(other.latency_ms_sum);
        self.latency_ms_max = self.latency_ms_max.max(other.latency_ms_max);
        if other.last_error.is_some() {
            self.last_error = other.last_error;
        }
    }

    fn is_empty(&self) -> bool {
        *self == Tally::default()
    }
}

/// Add a tally to its destination's current bucket.
pub const ADD: &str =
    "INSERT INTO delivery_overview (bucket, destination, delivered, retrying, withheld, \
     dead_lettered, skipped, latency_ms_sum, latency_ms_max, last_error, last_error_at) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) \
     ON CONFLICT (bucket, destination) DO UPDATE SET delivered = delivered + excluded.delivered, \
     retrying = retrying + excluded.retrying, withheld = withheld + excluded.withheld, \
     dead_lettered = dead_lettered + excluded.dead_lettered, skipped = skipped + excluded.skipped, \
     latency_ms_sum = latency_ms_sum + excluded.latency_ms_sum, \
     latency_ms_max = MAX(latency_ms_max, excluded.latency_ms_max), \
     last_error = COALESCE(excluded.last_error, last_error), \
     last_error_at = COALESCE(excluded.last_error_at, last_error_at)";

/// Remove the buckets older than a day (the daily retention run).
pub fn prune(now: Timestamp) -> Statement {
    Statement::new(
        "DELETE FROM delivery_overview WHERE bucket < ?1",
        vec![text_value(&since(now, DAY_BUCKETS))],
    )
}

/// The statement that adds `tally` for `destination` at `now` (none if it is empty).
pub fn statement(destination: &str, tally: &Tally, now: Timestamp) -> Option<Statement> {
    if tally.is_empty() {
        return None;
    }
    let int = |n: u32| SqlValue::Int(i64::from(n));
    let error_at = tally.last_error.as_ref().map(|_| now.to_rfc3339());
    Some(Statement::new(
        ADD,
        vec![
            text_value(&bucket(now)),
            text_value(destination),
            int(tally.delivered),
            int(tally.retrying),
            int(tally.withheld),
            int(tally.dead_lettered),
            int(tally.skipped),
            SqlValue::Int(tally.latency_ms_sum),
            SqlValue::Int(tally.latency_ms_max),
            crate::db::opt_text(tally.last_error.as_deref()),
            crate::db::opt_text(error_at.as_deref()),
        ],
    ))
}

/// The consent withholdings among a consumer's counters (`withheld_<destination>`).
pub fn withheld(counters: &[Counter], now: Timestamp) -> Vec<Statement> {
    let mut by_destination: Vec<(&str, u32)> = Vec::new();
    for c in counters {
        let Some(name) = c.name.strip_prefix("withheld_") else {
            continue;
        };
        match by_destination.iter_mut().find(|(n, _)| *n == name) {
            Some((_, n)) => *n += c.count,
            None => by_destination.push((name, c.count)),
        }
    }
    by_destination
        .into_iter()
        .filter_map(|(name, n)| {
            let tally = Tally {
                withheld: n,
                ..Tally::default()
            };
            statement(name, &tally, now)
        })
        .collect()
}

/// Read the rows of the last day.
pub const READ: &str = "SELECT bucket, destination, delivered, retrying, withheld, dead_lettered, skipped, \
     latency_ms_sum, latency_ms_max, last_error, last_error_at FROM delivery_overview WHERE bucket >= ?1";

/// The overview of `destinations` (name, kind) from the rows of the last
/// day ([`READ`] with [`since`]`(now, DAY_BUCKETS)`): per destination its
/// `hour` and `day` sums, average and largest latency, and its last error.
pub fn summarise(rows: &[Value], destinations: &[(&str, &str)], now: Timestamp) -> Value {
    let hour_from = since(now, HOUR_BUCKETS);
    let list: Vec<Value> = destinations
        .iter()
        .map(|(name, kind)| {
            let mine: Vec<&Value> = rows.iter().filter(|r| r["destination"] == *name).collect();
            let in_hour: Vec<&Value> = mine
                .iter()
                .copied()
                .filter(|r| {
                    r["bucket"]
                        .as_str()
                        .is_some_and(|b| b >= hour_from.as_str())
                })
                .collect();
            let last_error = mine
                .iter()
                .filter(|r| r["last_error_at"].is_string())
                .max_by(|a, b| {
                    a["last_error_at"]
                        .as_str()
                        .cmp(&b["last_error_at"].as_str())
                })
                .map(|r| json!({"at": r["last_error_at"], "message": r["last_error"]}));
            json!({"name": name, "kind": kind, "hour": window(&in_hour), "day": window(&mine),
                   "lastError": last_error})
        })
        .collect();
    json!({"now": now.to_rfc3339(), "hourSince": hour_from, "daySince": since(now, DAY_BUCKETS),
           "bucketMinutes": BUCKET_MS / 60_000, "destinations": list})
}

fn window(rows: &[&Value]) -> Value {
    let sum = |key: &str| rows.iter().filter_map(|r| r[key].as_i64()).sum::<i64>();
    let delivered = sum("delivered");
    let latency_sum = sum("latency_ms_sum");
    let mut w = Map::new();
    for (out, key) in [
        ("delivered", "delivered"),
        ("retrying", "retrying"),
        ("withheld", "withheld"),
        ("deadLettered", "dead_lettered"),
        ("skipped", "skipped"),
    ] {
        w.insert(out.into(), sum(key).into());
    }
    w.insert(
        "latencyMsAvg".into(),
        if delivered > 0 {
            Value::from(latency_sum / delivered)
        } else {
            Value::Null
        },
    );
    let max = rows
        .iter()
        .filter_map(|r| r["latency_ms_max"].as_i64())
        .max();
    w.insert(
        "latencyMsMax".into(),
        max.filter(|_| delivered > 0)
            .map_or(Value::Null, Value::from),
    );
    Value::Object(w)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        Timestamp::parse(s).unwrap()
    }

    #[test]
    fn buckets_are_ten_minutes_and_windows_count_back_from_now() {
        let now = at("2026-12-01T11:57:30Z");
        assert_eq!(bucket(now), "2026-12-01T11:50");
        assert_eq!(since(now, HOUR_BUCKETS), "2026-12-01T11:00");
        assert_eq!(since(now, DAY_BUCKETS), "2026-11-30T12:00");
        assert_eq!(bucket(at("2026-12-01T00:00:00Z")), "2026-12-01T00:00");
    }

    #[test]
    fn a_tally_is_one_upsert_and_an_empty_one_none() {
        let now = at("2026-12-01T11:57:30Z");
        let mut t = Tally::default();
        assert_eq!(statement("meta", &t, now), None);
        t.delivered_at(Some("2026-12-01T11:57:28.500Z"), now);
        t.delivered_at(Some("2026-12-01T11:57:29.500Z"), now);
        t.delivered_at(None, now);
        assert_eq!(
            (t.delivered, t.latency_ms_sum, t.latency_ms_max),
            (3, 2000, 1500)
        );
        t.last_error = Some("meta_rate_limited: Meta error 613".into());
        let s = statement("meta", &t, now).unwrap();
        assert_eq!(s.params[0], text_value("2026-12-01T11:50"));
        assert_eq!(s.params[1], text_value("meta"));
        assert_eq!(s.params[2], SqlValue::Int(3));
        assert_eq!(s.params[10], text_value("2026-12-01T11:57:30.000Z"));
    }

    #[test]
    fn withholdings_come_from_the_consumers_counters() {
        let c = |name: &str, count| Counter {
            day: "2026-12-01".into(),
            source: "web".into(),
            name: name.into(),
            count,
        };
        let now = at("2026-12-01T11:57:30Z");
        let s = withheld(
            &[
                c("withheld_meta", 2),
                c("duplicates_dropped", 5),
                c("withheld_meta", 1),
            ],
            now,
        );
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].params[1], text_value("meta"));
        assert_eq!(s[0].params[4], SqlValue::Int(3));
    }

    #[test]
    fn the_overview_sums_the_hour_and_the_day_and_keeps_the_latest_error() {
        let now = at("2026-12-01T11:57:30Z");
        let row = |bucket: &str, delivered: i64, latency: i64, error: Option<(&str, &str)>| {
            json!({"bucket": bucket, "destination": "meta", "delivered": delivered, "retrying": 1,
                   "withheld": 0, "dead_lettered": 0, "skipped": 0, "latency_ms_sum": latency * delivered,
                   "latency_ms_max": latency, "last_error": error.map(|e| e.1),
                   "last_error_at": error.map(|e| e.0)})
        };
        let rows = [
            row(
                "2026-12-01T11:50",
                2,
                100,
                Some(("2026-12-01T11:51:00.000Z", "newest")),
            ),
            row(
                "2026-12-01T10:50",
                4,
                400,
                Some(("2026-12-01T10:51:00.000Z", "older")),
            ),
        ];
        let o = summarise(&rows, &[("meta", "meta_capi"), ("ga4", "ga4")], now);
        let meta = &o["destinations"][0];
        assert_eq!(meta["hour"]["delivered"], 2);
        assert_eq!(meta["hour"]["retrying"], 1);
        assert_eq!(meta["hour"]["latencyMsAvg"], 100);
        assert_eq!(meta["day"]["delivered"], 6);
        assert_eq!(meta["day"]["retrying"], 2);
        assert_eq!(meta["day"]["latencyMsAvg"], 300);
        assert_eq!(meta["day"]["latencyMsMax"], 400);
        assert_eq!(meta["lastError"]["message"], "newest");
        let ga4 = &o["destinations"][1];
        assert_eq!(ga4["day"]["delivered"], 0);
        assert_eq!(ga4["day"]["latencyMsAvg"], Value::Null);
        assert_eq!(ga4["lastError"], Value::Null);
    }
}
