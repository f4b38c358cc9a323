//! Reading back every copy the pipeline stored, in ways that cannot hide a
//! duplicate: every line of every lake object, every request a webhook
//! receiver answered 200, every ClickHouse row of a plain `MergeTree` (no
//! merge collapses rows), and the worker's own counters (`d1_written` is
//! counted in the same atomic D1 batch as the rows, so a repeated write that
//! the primary key ignores is still counted).

use crate::{temp_dir, ClickHouse, Receiver, Stack};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// `CREATE TABLE` for the ClickHouse destination: a plain `MergeTree`, so
/// a double insert stays two rows.
pub const CLICKHOUSE_TABLE: &str = "CREATE TABLE default.events (message_id String, source String, type String, \
     event String, name String, anonymous_id String, user_id String, timestamp String, received_at String, \
     properties String, traits String, context String) ENGINE = MergeTree ORDER BY message_id";

/// How many times each id occurs.
pub fn tally<I: IntoIterator<Item = String>>(ids: I) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for id in ids {
        *m.entry(id).or_default() += 1;
    }
    m
}

/// Each of `ids` once.
pub fn once(ids: &[&str]) -> BTreeMap<String, usize> {
    ids.iter().map(|i| ((*i).to_owned(), 1)).collect()
}

/// Every event (every row of a Parquet object, every line of a gzip NDJSON
/// one) of every object under `events/` in the lake, as wire JSON.
pub fn lake_lines(stack: &Stack) -> Vec<Value> {
    let dir = temp_dir("lake");
    let keys = stack.export_r2("sluice-lake", &dir);
    keys.iter()
        .filter(|k| k.starts_with("events/"))
        .flat_map(|k| {
            let bytes = std::fs::read(dir.join(k)).expect("read lake object");
            if bytes.starts_with(b"PAR1") {
                return sluice_shared::lake::parquet_to_events(&bytes)
                    .expect("a Parquet lake object")
                    .into_iter()
                    .map(|r| serde_json::to_value(r.event).expect("an event"))
                    .collect::<Vec<_>>();
            }
            let mut text = String::new();
            std::io::Read::read_to_string(
                &mut flate2::read::GzDecoder::new(bytes.as_slice()),
                &mut text,
            )
            .expect("gzip NDJSON");
            text.lines()
                .map(|l| serde_json::from_str::<Value>(l).expect("an NDJSON line"))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Every object under `dead-letter/`, with its key.
pub fn dead_letters(stack: &Stack) -> Vec<(String, Value)> {
    let dir = temp_dir("dead");
    let keys = stack.export_r2("sluice-lake", &dir);
    keys.into_iter()
        .filter(|k| k.starts_with("dead-letter/"))
        .map(|k| {
            let bytes = std::fs::read(dir.join(&k)).expect("read dead letter");
            let letter = serde_json::from_slice(&bytes).expect("a JSON dead letter");
            (k, letter)
        })
        .collect()
}

/// The copies of every event in each store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copies {
    /// D1 rows (the primary key makes these 0 or 1: presence only).
    pub d1: BTreeMap<String, usize>,
    pub lake: BTreeMap<String, usize>,
    pub hook: BTreeMap<String, usize>,
    pub clickhouse: BTreeMap<String, usize>,
}

impl Copies {
    /// Read every store now (`hook` / `clickhouse` if the test has them).
    pub fn read(stack: &Stack, hook: Option<&Receiver>, ch: Option<&ClickHouse>) -> Copies {
        let ids = |rows: Vec<Value>, key: &str| {
            tally(
                rows.iter()
                    .filter_map(|r| r[key].as_str().map(str::to_owned))
                    .collect::<Vec<_>>(),
            )
        };
        Copies {
            d1: ids(stack.d1("SELECT message_id FROM events"), "message_id"),
            lake: ids(lake_lines(stack), "messageId"),
            hook: hook.map_or_else(BTreeMap::new, |h| tally(h.accepted_ids())),
            clickhouse: ch.map_or_else(BTreeMap::new, |c| {
                tally(
                    c.query("SELECT message_id FROM default.events FORMAT TSV")
                        .lines()
                        .map(str::to_owned)
                        .collect::<Vec<_>>(),
                )
            }),
        }
    }

    /// Whether every id is in every store that is read.
    pub fn has_all(&self, ids: &[&str], hook: bool, ch: bool) -> bool {
        ids.iter().all(|id| {
            self.d1.contains_key(*id)
                && self.lake.contains_key(*id)
                && (!hook || self.hook.contains_key(*id))
                && (!ch || self.clickhouse.contains_key(*id))
        })
    }
}

/// A track event with analytics consent.
pub fn event(id: &str, anonymous_id: &str) -> Value {
    json!({"type": "track", "messageId": id, "anonymousId": anonymous_id, "event": "Product Viewed",
           "properties": {"product_id": id, "price": 12.5},
           "context": {"consent": {"categories": {"analytics": "granted"}, "source": "explicit"}}})
}

/// POST a batch with the demo key; every event must be accepted.
pub fn post(stack: &Stack, events: Vec<Value>) {
    let n = events.len();
    let (status, body) = stack.post_json(
        "/v1/batch?writeKey=demo-write-key",
        &[],
        &json!({ "batch": events }),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["accepted"], n, "{body}");
}
