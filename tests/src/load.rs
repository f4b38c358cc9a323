//! `cargo xtask bench load`: a sustained rate through the whole local
//! pipeline, bounded (60 s of sending, then a drain), on loopback.
//!
//! The same stack and mix as `bench cost` ([`crate::cost`]): requests of 20
//! events (the SDK's `flushAt`) on an open-loop schedule at a fixed rate →
//! collector → events Queue → dedup shards → D1 → the Parquet lake and a
//! webhook on a loopback receiver, through the deliveries Queue. What is
//! reported, per rate:
//!
//! - **accepted**: events in requests answered `200` with `accepted == n`;
//!   refused ones (any other answer) are counted apart (a client retries them);
//! - **stored**, read back from real storage and counted two ways so a
//!   duplicate would show: D1 by distinct `message_id` (its rows) and by
//!   writes (`d1_written`, counted in the same atomic batch as the rows, so a
//!   repeated write the primary key ignores is still counted); the lake by
//!   distinct `message_id` and by total rows over every Parquet object (read
//!   with DuckDB); the webhook by distinct ids and total ids it answered 200;
//! - **lost**: accepted ids missing from a store after the drain (must be 0);
//! - **latency** from accept (the moment the client has the `200`) to D1 and
//!   to the lake. D1 keeps no write time, so a poller reads its SQLite file
//!   every [`POLL_MS`] ms and notes when each id first appears (resolution:
//!   the poll interval, plus the read itself); the lake's time is each
//!   object's own `uploaded` time in the local R2 store (the time the object
//!   was written, same machine clock), taken for every id in the object.

use crate::cost::{mix_event, pipeline};
use crate::{temp_dir, Stack};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Events per request: the SDK's `flushAt`.
pub const PER_REQUEST: usize = 20;
/// How often the poller reads D1 and the lake's object list.
pub const POLL_MS: u64 = 100;
/// Concurrent client connections (enough that a slow answer does not hold
/// back the schedule at these rates).
const CLIENTS: usize = 8;
/// How long to wait after the last send for every accepted event to be stored.
const DRAIN: Duration = Duration::from_secs(240);

/// Rates (events/s) to run, from `SLUICE_LOAD_RATES` (comma-separated),
/// else the one the local pipeline sustains here.
pub fn rates() -> Vec<usize> {
    std::env::var("SLUICE_LOAD_RATES")
        .ok()
        .map(|v| {
            v.split(',')
                .filter_map(|r| r.trim().parse().ok())
                .filter(|r| *r > 0)
                .collect::<Vec<usize>>()
        })
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| vec![DEFAULT_RATE])
}

/// The rate the local pipeline on `wrangler dev` sustains on the 2-core
/// development machine (README "Size and speed").
pub const DEFAULT_RATE: usize = 200;

/// Seconds of sending, from `SLUICE_LOAD_SECS` (default 60).
pub fn seconds() -> u64 {
    std::env::var("SLUICE_LOAD_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|s| *s > 0)
        .unwrap_or(60)
}

fn now_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

/// Polls the local D1 file and the lake's object list until `<out>/stop`
/// exists, then writes `<out>/seen.json`: `{"d1": {id: first_seen_ms},
/// "lake": {key: first_uploaded_ms}}`. argv = state dir, id prefix, out dir, poll ms.
const POLLER: &str = r#"
import glob, json, os, sqlite3, sys, time
state, prefix, out, poll = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]) / 1000
def db(kind):
    files = [f for f in glob.glob(state + "/v3/%s/*.sqlite" % kind) if not f.endswith("metadata.sqlite")]
    return sqlite3.connect(files[0], timeout=30) if files else None
d1, r2 = None, None
seen_d1, seen_lake = {}, {}
while True:
    stop = os.path.exists(out + "/stop")
    d1 = d1 or db("d1/miniflare-D1DatabaseObject")
    r2 = r2 or db("r2/miniflare-R2BucketObject")
    now = time.time() * 1000
    if d1:
        for (mid,) in d1.execute("SELECT message_id FROM events WHERE message_id LIKE ?", (prefix + "%",)):
            seen_d1.setdefault(mid, now)
    if r2:
        try:
            for key, uploaded in r2.execute("SELECT key, uploaded FROM _mf_objects WHERE key LIKE 'events/%'"):
                seen_lake[key] = min(seen_lake.get(key, uploaded), uploaded)
        except sqlite3.OperationalError:
            r2 = None  # the bucket's file exists before its table
    if stop:
        break
    time.sleep(max(0.0, poll - (time.time() * 1000 - now) / 1000))
json.dump({"d1": seen_d1, "lake": seen_lake}, open(out + "/seen.json", "w"))
"#;

/// What one rate's run measured.
pub struct Run {
    pub rate: usize,
    pub secs: u64,
    /// Requests sent, and how far behind the schedule the last one went out.
    pub requests: usize,
    pub max_lag_ms: f64,
    pub accepted: usize,
    pub refused: usize,
    pub d1_distinct: usize,
    pub d1_writes: i64,
    pub lake_distinct: usize,
    pub lake_rows: usize,
    pub lake_objects: usize,
    pub hook_distinct: usize,
    pub hook_rows: usize,
    pub lost_d1: usize,
    pub lost_lake: usize,
    pub lost_hook: usize,
    /// Sorted latencies (ms) of the stored events, accept → D1 / lake.
    pub to_d1: Vec<f64>,
    pub to_lake: Vec<f64>,
    /// Seconds after the last accept until every accepted event was in D1 / the lake.
    pub drain_d1_s: f64,
    pub drain_lake_s: f64,
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

/// Send `rate` events/s for `secs` through a fresh stack, drain, read back.
pub fn run(rate: usize, secs: u64) -> Run {
    let (hook, vars) = pipeline();
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let stack = Stack::start_with(&vars);
    let (status, _) = stack.request("GET", "/v1/batch", &[], b"");
    assert_eq!(status, 405, "the worker is up");
    let prefix = format!("load{}r{rate}-", std::process::id());
    let out = temp_dir("load");
    let mut poller = std::process::Command::new("python3")
        .arg("-c")
        .arg(POLLER)
        .arg(&stack.state)
        .arg(&prefix)
        .arg(&out)
        .arg(POLL_MS.to_string())
        .spawn()
        .expect("start the poller");

    // Open loop: request k goes at start + k × interval, whatever the answers.
    let requests = (rate * secs as usize).div_ceil(PER_REQUEST);
    let interval = Duration::from_secs_f64(PER_REQUEST as f64 / rate as f64);
    let next = AtomicUsize::new(0);
    let accepted_at: Mutex<HashMap<String, f64>> = Mutex::new(HashMap::new());
    let refused = AtomicUsize::new(0);
    let lag = Mutex::new(0.0f64);
    let start = Instant::now() + Duration::from_millis(200);
    std::thread::scope(|scope| {
        for _ in 0..CLIENTS {
            scope.spawn(|| loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                if k >= requests {
                    break;
                }
                let due = start + interval * u32::try_from(k).unwrap_or(u32::MAX);
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                let late = Instant::now().duration_since(due).as_secs_f64() * 1000.0;
                {
                    let mut l = lag.lock().expect("lag");
                    *l = l.max(late);
                }
                let ids: Vec<usize> = (k * PER_REQUEST..(k + 1) * PER_REQUEST).collect();
                let events: Vec<Value> = ids
                    .iter()
                    .map(|i| mix_event(prefix.trim_end_matches('-'), *i)) // id `{prefix}{i}`
                    .collect();
                let body = json!({"batch": events, "sentAt": "2024-05-01T10:00:01.000Z"});
                let (status, answer) = stack.request(
                    "POST",
                    "/v1/batch?writeKey=demo-write-key",
                    &[],
                    body.to_string().as_bytes(),
                );
                let at = now_ms();
                let answer: Value = serde_json::from_slice(&answer).unwrap_or(Value::Null);
                if status == 200 && answer["accepted"] == PER_REQUEST {
                    let mut m = accepted_at.lock().expect("accepted");
                    for i in ids {
                        m.insert(format!("{prefix}{i}"), at);
                    }
                } else {
                    refused.fetch_add(PER_REQUEST, Ordering::Relaxed);
                    eprintln!("load: request {k} refused: {status} {answer}");
                }
            });
        }
    });
    let last_accept = now_ms();
    let accepted_at = accepted_at.into_inner().expect("accepted");
    let n = accepted_at.len() as i64;

    // Drain: until every accepted event is in D1, the lake and at the webhook
    // (by the worker's counters), or the drain time is up (then what is
    // missing is reported as lost).
    let deadline = Instant::now() + DRAIN;
    while Instant::now() < deadline {
        let done = stack.counter("d1_written") >= n
            && stack.counter("delivered_lake") >= n
            && stack.counter("delivered_hook") >= n;
        if done {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    // Let late copies (a retried batch) land before counting: until the
    // counters stand still across two polls a second apart.
    let counts = || {
        stack.d1(
            "SELECT name, SUM(count) AS n FROM counters WHERE name IN ('d1_written', 'delivered_lake', 'delivered_hook') GROUP BY name",
        )
    };
    let settle = Instant::now() + Duration::from_secs(30);
    loop {
        let a = counts();
        std::thread::sleep(Duration::from_millis(1000));
        if counts() == a || Instant::now() > settle {
            break;
        }
    }
    std::fs::write(out.join("stop"), b"").expect("stop the poller");
    let _ = poller.wait();
    let seen: Value = serde_json::from_slice(
        &std::fs::read(out.join("seen.json")).expect("the poller's seen.json"),
    )
    .expect("seen.json is JSON");

    // D1: its rows (distinct by key) and its writes.
    let d1_ids: Vec<String> = stack
        .d1(&format!(
            "SELECT message_id FROM events WHERE message_id LIKE '{prefix}%'"
        ))
        .iter()
        .filter_map(|r| r["message_id"].as_str().map(str::to_owned))
        .collect();
    let d1_writes = stack.counter("d1_written");
    // The lake: every row of every Parquet object, with the object it is in.
    let lake_dir = temp_dir("load-lake");
    let keys = stack.export_r2("sluice-lake", &lake_dir);
    let lake_objects = keys.iter().filter(|k| k.starts_with("events/")).count();
    let lake_rows: Vec<(String, String)> = if lake_objects == 0 {
        Vec::new()
    } else {
        crate::duckdb(&format!(
            "SELECT message_id, filename FROM read_parquet('{}/events/**/*.parquet', filename = true)",
            lake_dir.display()
        ))
        .iter()
        .filter_map(|r| {
            let file = r["filename"].as_str()?;
            let key = file
                .strip_prefix(&format!("{}/", lake_dir.display()))
                .unwrap_or(file);
            Some((r["message_id"].as_str()?.to_owned(), key.to_owned()))
        })
        .collect()
    };
    let hook_ids = hook.accepted_ids();

    let tally = |ids: &mut dyn Iterator<Item = String>| crate::stores::tally(ids);
    let d1_tally = tally(&mut d1_ids.iter().cloned());
    let lake_tally = tally(&mut lake_rows.iter().map(|(id, _)| id.clone()));
    let hook_tally = tally(&mut hook_ids.iter().cloned());
    let lost =
        |t: &BTreeMap<String, usize>| accepted_at.keys().filter(|id| !t.contains_key(*id)).count();

    let d1_seen = times(&seen["d1"]);
    let uploaded = times(&seen["lake"]);
    let mut lake_first: HashMap<&str, f64> = HashMap::new();
    for (id, key) in &lake_rows {
        if let Some(t) = uploaded.get(key.as_str()) {
            let e = lake_first.entry(id.as_str()).or_insert(*t);
            *e = e.min(*t);
        }
    }
    let latencies = |first: &dyn Fn(&str) -> Option<f64>| {
        let mut v: Vec<f64> = accepted_at
            .iter()
            .filter_map(|(id, at)| Some(first(id)? - at))
            .collect();
        v.sort_by(f64::total_cmp);
        v
    };
    let to_d1 = latencies(&|id| d1_seen.get(id).copied());
    let to_lake = latencies(&|id| lake_first.get(id).copied());
    let drain = |first: &dyn Fn(&str) -> Option<f64>| {
        accepted_at
            .keys()
            .filter_map(|id| first(id))
            .fold(f64::NAN, f64::max)
            .max(last_accept)
            - last_accept
    };
    let drain_d1_s = drain(&|id| d1_seen.get(id).copied()) / 1000.0;
    let drain_lake_s = drain(&|id| lake_first.get(id).copied()) / 1000.0;
    Run {
        rate,
        secs,
        requests,
        max_lag_ms: lag.into_inner().expect("lag"),
        accepted: accepted_at.len(),
        refused: refused.load(Ordering::Relaxed),
        d1_distinct: d1_tally.len(),
        d1_writes,
        lake_distinct: lake_tally.len(),
        lake_rows: lake_rows.len(),
        lake_objects,
        hook_distinct: hook_tally.len(),
        hook_rows: hook_ids.len(),
        lost_d1: lost(&d1_tally),
        lost_lake: lost(&lake_tally),
        lost_hook: lost(&hook_tally),
        to_d1,
        to_lake,
        drain_d1_s,
        drain_lake_s,
    }
}

/// Print the runs as a table, and any loss loudly.
pub fn report(runs: &[Run]) {
    println!(
        "`wrangler dev` (workerd behind its Node proxy), requests of {PER_REQUEST} events (the `bench cost` mix) on an open-loop schedule from {CLIENTS} connections, then a drain of up to {} s; D1 hot window on, Parquet lake + one webhook on a loopback receiver; events Queue batches of up to 100 messages (backend.toml), deliveries of up to 10. Latency from the client's `200` to the event's first appearance in D1 (polled every {POLL_MS} ms) and to the R2 `uploaded` time of the lake object holding it.\n",
        DRAIN.as_secs()
    );
    println!("| rate (events/s) × s | requests (max lag behind schedule) | accepted / refused | D1 rows / writes | lake distinct / rows (objects) | webhook distinct / rows | lost D1 / lake / webhook | accept → D1 p50 / p99 | accept → lake p50 / p99 | all stored after the last accept (D1 / lake) |");
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for r in runs {
        println!(
            "| {} × {} | {} ({:.0} ms) | {} / {} | {} / {} | {} / {} ({}) | {} / {} | {} / {} / {} | {:.0} / {:.0} ms | {:.0} / {:.0} ms | {:.1} / {:.1} s |",
            r.rate,
            r.secs,
            r.requests,
            r.max_lag_ms,
            r.accepted,
            r.refused,
            r.d1_distinct,
            r.d1_writes,
            r.lake_distinct,
            r.lake_rows,
            r.lake_objects,
            r.hook_distinct,
            r.hook_rows,
            r.lost_d1,
            r.lost_lake,
            r.lost_hook,
            pct(&r.to_d1, 0.5),
            pct(&r.to_d1, 0.99),
            pct(&r.to_lake, 0.5),
            pct(&r.to_lake, 0.99),
            r.drain_d1_s,
            r.drain_lake_s,
        );
    }
    for r in runs {
        let lost = r.lost_d1 + r.lost_lake + r.lost_hook;
        let dups =
            (r.d1_writes - r.d1_distinct as i64).max(0) as usize + (r.lake_rows - r.lake_distinct);
        if lost > 0 {
            println!(
                "\n**LOST at {} events/s: {} accepted events missing from D1, {} from the lake, {} at the webhook after the drain.**",
                r.rate, r.lost_d1, r.lost_lake, r.lost_hook
            );
        }
        if r.refused > 0 {
            println!(
                "\nAt {} events/s the collector refused {} events (not accepted: a client retries them).",
                r.rate, r.refused
            );
        }
        println!(
            "\n{} events/s: lost {lost}, duplicates in storage {dups} (D1 writes beyond its rows, lake rows beyond distinct ids); the webhook is at-least-once: {} repeats.",
            r.rate,
            r.hook_rows - r.hook_distinct
        );
    }
}

/// Every rate of [`rates`], each on a fresh stack, for [`seconds`] each.
pub fn bench() {
    let secs = seconds();
    let runs: Vec<Run> = rates().into_iter().map(|rate| run(rate, secs)).collect();
    report(&runs);
}

/// The poller's `{name: time}` object as a map (non-numbers left out).
fn times(v: &Value) -> HashMap<&str, f64> {
    v.as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.as_str(), v.as_f64()?)))
                .collect()
        })
        .unwrap_or_default()
}
