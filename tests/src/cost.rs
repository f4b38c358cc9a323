//! `cargo xtask bench cost`: what a million events cost to run, measured.
//!
//! A realistic mix (page views with campaign context, e-commerce `track`
//! calls with products, `identify` with traits), 20 events per request (the
//! SDK's `flushAt`; `SLUICE_BENCH_PER_REQUEST` changes it), through the whole local pipeline on workerd: accept →
//! Queue → dedup shards → D1 → the Parquet lake and a webhook on a loopback
//! receiver. The worker's cost meter (`SLUICE_COST_METER=on`) counts what
//! the platform answered (D1's `meta.rows_read` / `rows_written`, the shards'
//! cursor `rowsRead` / `rowsWritten`, each Queue message's 64 KB chunks, each
//! R2 call, each invocation) into `cost_*` counters; CPU is workerd's own
//! CPU time over the run (an upper bound: it includes the local D1, R2 and
//! Queue simulators); bytes stored are read from the local stores. Then
//! [`sluice_shared::cost`] prices them, for two configurations: the D1 hot
//! window on, and lake-only.

use crate::{eventually, temp_dir, Behaviour, Receiver, Stack};
use serde_json::{json, Value};
use sluice_shared::cost::{self, Meter, Usage, LIST_PRICES, PRICES_AS_OF};
use std::collections::BTreeMap;
use std::time::Duration;

const SECRET: &str = "bench-secret";
/// Events per request: the SDK's `flushAt` (20), unless
/// `SLUICE_BENCH_PER_REQUEST` says otherwise (server-side sources batch more).
pub fn per_request() -> usize {
    std::env::var("SLUICE_BENCH_PER_REQUEST")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| (1..=100).contains(n))
        .unwrap_or(20)
}

/// Event `i` of the mix: of every 10, 3 page views, 5 e-commerce tracks, 1
/// identify and 1 `Order Completed`; 250 visitors, a third of them signed in.
pub fn mix_event(run: &str, i: usize) -> Value {
    let visitor = i % 250;
    let anon = format!("8f1c{visitor:04}-5c3e-4b8a-9d2c-4b6f3f7e4a8b");
    let user = visitor.is_multiple_of(3).then(|| format!("user-{visitor}"));
    let product = json!({"product_id": format!("sku-{}", i % 40), "sku": format!("MUG-{:03}", i % 40),
                         "name": "Blue Mug", "category": "Kitchen", "brand": "Sluice", "variant": "blue",
                         "price": 12.5, "quantity": 1, "currency": "EUR", "position": i % 10,
                         "url": "https://shop.example.com/product.html?id=mug-blue",
                         "image_url": "https://shop.example.com/img/mug-blue.jpg"});
    let page = json!({"path": "/product.html", "referrer": "https://www.google.com/search?q=mug",
                      "search": "?id=mug-blue&utm_source=newsletter&utm_medium=email&utm_campaign=spring",
                      "title": "Blue Mug – Sluice Shop", "url": "https://shop.example.com/product.html?id=mug-blue&utm_source=newsletter&utm_medium=email&utm_campaign=spring"});
    let mut context = json!({
        "page": page,
        "userAgent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
        "locale": "en-US", "timezone": "Europe/Berlin",
        "screen": {"width": 1920, "height": 1080, "density": 1},
        "library": {"name": "@sluice/sdk", "version": "0.1.0"},
        "sessionId": 1_714_557_600_000_u64 + (visitor as u64),
        "consent": {"categories": {"analytics": "granted", "marketing": "granted"}, "source": "banner", "policyVersion": "2024-04"},
        "campaign": {"source": "newsletter", "medium": "email", "name": "spring"}
    });
    let id = format!("{run}-{i}");
    let mut e = match i % 10 {
        0..=2 => {
            json!({"type": "page", "name": "Product", "properties": {"path": "/product.html", "title": "Blue Mug – Sluice Shop", "url": page["url"], "referrer": page["referrer"]}})
        }
        3 => {
            json!({"type": "track", "event": "Products Searched", "properties": {"query": "blue mug"}})
        }
        4 | 5 => json!({"type": "track", "event": "Product Viewed", "properties": product}),
        6 => json!({"type": "track", "event": "Product Added", "properties": product}),
        7 => {
            json!({"type": "track", "event": "Checkout Started", "properties": {"order_id": format!("ord_{i}"), "value": 25.0, "revenue": 25.0, "currency": "EUR", "products": [product, product]}})
        }
        8 => {
            json!({"type": "identify", "traits": {"email": format!("visitor{visitor}@example.com"), "name": "Ada Lovelace", "plan": "pro", "createdAt": "2024-01-15T10:00:00.000Z"}})
        }
        _ => {
            json!({"type": "track", "event": "Order Completed", "properties": {"order_id": format!("ord_{i}"), "total": 27.5, "revenue": 25.0, "shipping": 2.5, "tax": 4.0, "currency": "EUR", "coupon": "SPRING", "products": [product, product]}})
        }
    };
    if e["type"] == "identify" {
        context["traits"] = e["traits"].clone();
        e["userId"] = json!(user.clone().unwrap_or_else(|| format!("user-{visitor}")));
    } else if let Some(u) = user {
        e["userId"] = json!(u);
    }
    e["messageId"] = json!(id);
    e["anonymousId"] = json!(anon);
    e["timestamp"] = json!("2024-05-01T10:00:00.000Z");
    e["context"] = context;
    e
}

/// One configuration's measurement.
pub struct Measured {
    pub label: &'static str,
    pub events: usize,
    pub requests: usize,
    /// Requests sent again after a transient refusal.
    pub resent: usize,
    /// Events the worker emitted itself and delivered (audience changes).
    pub emitted: usize,
    pub people: PersonStorage,
    pub counters: BTreeMap<String, f64>,
    pub cpu_ms: f64,
    pub usage: Usage,
}

/// Sum of `utime + stime` (ms) of every `workerd` process under `pid`.
fn workerd_cpu_ms(root_pid: u32) -> f64 {
    let ticks = 100.0; // USER_HZ on Linux
    let mut children: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
    let mut stats: BTreeMap<u32, (String, f64)> = BTreeMap::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let comm = stat[open + 1..close].to_owned();
        let rest: Vec<&str> = stat[close + 2..].split_whitespace().collect();
        let ppid = rest.get(1).and_then(|p| p.parse().ok()).unwrap_or(0);
        let cpu: f64 = [11, 12]
            .iter()
            .filter_map(|i| rest.get(*i).and_then(|v| v.parse::<f64>().ok()))
            .sum();
        children.entry(ppid).or_default().push(pid);
        stats.insert(pid, (comm, cpu / ticks * 1000.0));
    }
    let mut total = 0.0;
    let mut todo = vec![root_pid];
    while let Some(p) = todo.pop() {
        if let Some((comm, ms)) = stats.get(&p) {
            if comm.starts_with("workerd") {
                total += ms;
            }
        }
        todo.extend(children.get(&p).into_iter().flatten());
    }
    total
}

fn cost_counters(stack: &Stack) -> BTreeMap<String, f64> {
    stack
        .d1("SELECT name, SUM(count) AS n FROM counters WHERE source = '_cost' GROUP BY name")
        .iter()
        .filter_map(|r| Some((r["name"].as_str()?.to_owned(), r["n"].as_f64()?)))
        .collect()
}

fn d1_bytes(stack: &Stack) -> f64 {
    stack.d1("SELECT page_count * page_size AS b FROM pragma_page_count(), pragma_page_size()")[0]
        ["b"]
        .as_f64()
        .unwrap_or(0.0)
}

/// Bytes of the Dedup shards' and the people's (audiences) SQLite files.
fn do_bytes(stack: &Stack) -> f64 {
    let pattern = stack.state.join("v3/do");
    let mut total = 0.0;
    for dir in std::fs::read_dir(pattern).into_iter().flatten().flatten() {
        let name = dir.file_name().to_string_lossy().into_owned();
        if !name.contains("Dedup") && !name.contains("Person") {
            continue;
        }
        for f in std::fs::read_dir(dir.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = f.file_name().to_string_lossy().into_owned();
            if name.ends_with(".sqlite") && !name.ends_with("metadata.sqlite") {
                total += f.metadata().map(|m| m.len() as f64).unwrap_or(0.0);
            }
        }
    }
    total
}

fn lake_bytes(stack: &Stack) -> f64 {
    let dir = temp_dir("cost-lake");
    stack
        .export_r2("sluice-lake", &dir)
        .iter()
        .filter(|k| k.starts_with("events/"))
        .map(|k| {
            std::fs::metadata(dir.join(k))
                .map(|m| m.len() as f64)
                .unwrap_or(0.0)
        })
        .sum()
}

/// What the people's Durable Objects (audiences) store, read from their
/// own SQLite files: how many hold a record, the record's mean bytes as
/// stored, and the mean file bytes per object.
#[derive(Debug, Clone, Copy, Default)]
pub struct PersonStorage {
    pub people: usize,
    pub record_bytes: f64,
    pub file_bytes: f64,
}

const PERSON_STORAGE: &str = r#"
import glob, json, os, sqlite3, sys
n, record, files = 0, 0, 0
for f in glob.glob(sys.argv[1] + "/v3/do/*Person*/*.sqlite"):
    if f.endswith("metadata.sqlite"):
        continue
    db = sqlite3.connect(f, timeout=30)
    try:
        row = db.execute("SELECT length(CAST(value AS BLOB)) FROM _cf_KV WHERE key = 'record'").fetchone()
    except sqlite3.OperationalError:
        row = None
    if row:
        n += 1
        record += row[0]
        files += os.path.getsize(f)
print(json.dumps([{"n": n, "record": record, "files": files}]))
"#;

/// The people's stored states in this stack.
pub fn person_storage(stack: &Stack) -> PersonStorage {
    let rows = crate::stack::python_json(PERSON_STORAGE, &[&stack.state.display().to_string()]);
    let n = rows[0]["n"].as_u64().unwrap_or(0) as usize;
    let per = |k: &str| rows[0][k].as_f64().unwrap_or(0.0) / n.max(1) as f64;
    PersonStorage {
        people: n,
        record_bytes: per("record"),
        file_bytes: per("files"),
    }
}

/// Run `events` events through a fresh stack with the D1 hot window on or off.
pub async fn measure(label: &'static str, d1_events: bool, events: usize) -> Measured {
    measure_with(label, d1_events, events, &[]).await
}

/// The whole pipeline the benches run (`bench cost`, `bench load`): one
/// source without a rate limit → D1, a Parquet lake and a webhook on a
/// loopback receiver (returned, to keep it answering). The vars to start
/// the stack with.
pub fn pipeline() -> (Receiver, [(&'static str, String); 3]) {
    let hook = Receiver::start(SECRET, Behaviour::Healthy);
    let sources = json!([{"name": "demo", "write_key": "demo-write-key", "allowed_origins": [],
                          "consent": {"regime": "opt_out"}, "destinations": ["lake", "hook"],
                          "rate_limit": {"requests_per_second": 1e9, "burst": 1_000_000_000}}])
    .to_string();
    let destinations = json!([
        {"name": "lake", "kind": "r2", "format": "parquet"},
        {"name": "hook", "kind": "webhook", "url": hook.url(), "secret_var": "HOOK_SECRET"}
    ])
    .to_string();
    let vars = [
        ("SLUICE_SOURCES", sources),
        ("SLUICE_DESTINATIONS", destinations),
        ("HOOK_SECRET", SECRET.to_owned()),
    ];
    (hook, vars)
}

/// [`measure`], with more vars (e.g. `SLUICE_AUDIENCES`). Events the worker
/// emits itself (`Audience Entered` / `Audience Exited`) are delivered and
/// counted too, and priced per event *sent*.
pub async fn measure_with(
    label: &'static str,
    d1_events: bool,
    events: usize,
    vars: &[(&str, &str)],
) -> Measured {
    // `_hook` (not `_`): the receiver answers until the end of the run.
    let (_hook, pipeline) = pipeline();
    let mut all: Vec<(&str, &str)> = pipeline.iter().map(|(k, v)| (*k, v.as_str())).collect();
    all.extend([
        ("SLUICE_COST_METER", "on"),
        ("SLUICE_D1_EVENTS", if d1_events { "on" } else { "off" }),
        // The hourly lake compaction runs at the end, on this run's hour.
        ("SLUICE_COMPACT_AFTER_S", "0"),
    ]);
    all.extend_from_slice(vars);
    let stack = Stack::start_with(&all);
    // Warm the isolate (its first request builds the configuration), then
    // take the baselines: nothing of the warm-up is counted.
    let (status, _) = stack.request("GET", "/v1/batch", &[], b"");
    assert_eq!(status, 405);
    let base_counters = cost_counters(&stack);
    let (base_d1, base_do) = (d1_bytes(&stack), do_bytes(&stack));
    let cpu_before = workerd_cpu_ms(stack.pid());
    let run = format!("cost{}", std::process::id());
    let (mut requests, mut resent) = (0, 0);
    for chunk in (0..events).collect::<Vec<_>>().chunks(per_request()) {
        let body = json!({"batch": chunk.iter().map(|i| mix_event(&run, *i)).collect::<Vec<_>>(),
                          "sentAt": "2024-05-01T10:00:01.000Z"});
        // As a client would, a request refused for a transient reason (a
        // 503: `wrangler dev` restarting the worker mid-request) is sent
        // again; the copy is deduplicated.
        let mut attempts = 0;
        let answer = loop {
            attempts += 1;
            let (status, bytes) = stack.request(
                "POST",
                "/v1/batch?writeKey=demo-write-key",
                &[],
                body.to_string().as_bytes(),
            );
            if status == 200 || attempts == 3 {
                assert_eq!(status, 200, "{}", String::from_utf8_lossy(&bytes));
                break serde_json::from_slice::<Value>(&bytes).expect("a JSON answer");
            }
            resent += 1;
        };
        assert_eq!(answer["accepted"], chunk.len(), "{answer}");
        requests += 1;
    }
    let n = events as i64;
    eventually(
        "every event in the lake and at the webhook",
        Duration::from_secs(600),
        || async {
            // At least: the audiences' own events come on top.
            let done = stack.counter("delivered_lake") >= n
                && stack.counter("delivered_hook") >= n
                && (!d1_events || stack.counter("d1_written") >= n);
            done.then_some(())
        },
    )
    .await;
    // The hourly compaction of the lake is a stage of the pipeline too.
    assert_eq!(stack.run_cron("7 * * * *"), 200);
    eventually(
        "the lake's hour compacted",
        Duration::from_secs(300),
        || async {
            // No hour left with two objects to merge (a run across an hour
            // boundary may leave one object alone in an hour), none half done.
            let left = stack.d1(
                "SELECT (SELECT COUNT(*) FROM (SELECT substr(key, 1, instr(key, '/hour=') + 8) AS hour \
                 FROM lake_objects WHERE key NOT LIKE '%/compacted-%' GROUP BY hour HAVING COUNT(*) >= 2)) \
                 + (SELECT COUNT(*) FROM lake_compactions) AS n",
            );
            (left[0]["n"] == 0).then_some(())
        },
    )
    .await;
    // The meter flushes as each invocation ends: wait until the counts
    // stand still across a second of polls.
    let counters = eventually(
        "the cost counters to settle",
        Duration::from_secs(60),
        || async {
            let a = cost_counters(&stack);
            tokio::time::sleep(Duration::from_millis(1500)).await;
            let b = cost_counters(&stack);
            (a == b).then_some(b)
        },
    )
    .await;
    let cpu_ms = workerd_cpu_ms(stack.pid()) - cpu_before;
    let counters: BTreeMap<String, f64> = counters
        .into_iter()
        .map(|(k, v)| {
            let base = base_counters.get(&k).copied().unwrap_or(0.0);
            (k, v - base)
        })
        .collect();
    let per = |m: Meter| counters.get(m.counter()).copied().unwrap_or(0.0) / events as f64;
    let usage = Usage {
        worker_requests: per(Meter::WorkerRequests),
        cpu_ms: cpu_ms / events as f64,
        queue_ops: per(Meter::QueueOps),
        do_requests: per(Meter::DoRequests),
        do_wall_ms: per(Meter::DoWallMs),
        do_rows_read: per(Meter::DoRowsRead),
        do_rows_written: per(Meter::DoRowsWritten),
        d1_rows_read: per(Meter::D1RowsRead),
        d1_rows_written: per(Meter::D1RowsWritten),
        r2_class_a: per(Meter::R2ClassA),
        r2_class_b: per(Meter::R2ClassB),
        d1_bytes: (d1_bytes(&stack) - base_d1).max(0.0) / events as f64,
        r2_bytes: lake_bytes(&stack) / events as f64,
        do_bytes: (do_bytes(&stack) - base_do).max(0.0) / events as f64,
    };
    Measured {
        label,
        events,
        requests,
        resent,
        emitted: (stack.counter("delivered_hook") - n).max(0) as usize,
        people: person_storage(&stack),
        counters,
        cpu_ms,
        usage,
    }
}

/// The price per million events of one measurement, at list prices (storage not included).
pub fn per_million_total(usage: &Usage) -> f64 {
    cost::per_million(usage, &LIST_PRICES)
        .iter()
        .map(|(_, usd)| usd)
        .sum()
}

/// Print the usage per event and the price per million of each configuration.
pub fn report(runs: &[Measured]) {
    println!(
        "{} events per configuration in requests of {} (3 page, 6 track with e-commerce properties, 1 identify per 10; 250 visitors, a third signed in); Parquet lake (compacted by its hourly job at the end) + one webhook on a loopback receiver; events Queue batches of up to 100 messages (backend.toml), deliveries of up to 10.\n",
        runs.first().map_or(0, |r| r.events),
        per_request()
    );
    let head: Vec<&str> = runs.iter().map(|r| r.label).collect();
    println!("| per event | {} |", head.join(" | "));
    println!("| --- |{}", " --- |".repeat(runs.len()));
    let row = |name: &str, f: &dyn Fn(&Usage) -> f64, digits: usize| {
        let cells: Vec<String> = runs
            .iter()
            .map(|r| format!("{:.*}", digits, f(&r.usage)))
            .collect();
        println!("| {name} | {} |", cells.join(" | "));
    };
    row(
        "Worker requests (HTTP, Queue batches)",
        &|u| u.worker_requests,
        4,
    );
    row("CPU ms (workerd, upper bound)", &|u| u.cpu_ms, 3);
    row("Queue operations (64 KB each)", &|u| u.queue_ops, 4);
    row("Durable Object requests", &|u| u.do_requests, 4);
    row("Durable Object wall ms", &|u| u.do_wall_ms, 3);
    row("Durable Object rows written", &|u| u.do_rows_written, 4);
    row("Durable Object rows read", &|u| u.do_rows_read, 2);
    row("D1 rows written", &|u| u.d1_rows_written, 4);
    row("D1 rows read", &|u| u.d1_rows_read, 2);
    row("R2 Class A (put, list)", &|u| u.r2_class_a, 4);
    row("R2 Class B (get)", &|u| u.r2_class_b, 4);
    row("D1 bytes stored", &|u| u.d1_bytes, 0);
    row("R2 bytes stored", &|u| u.r2_bytes, 0);
    row("Durable Object bytes stored", &|u| u.do_bytes, 0);
    println!("\nPrice per million events at Cloudflare's list prices of {PRICES_AS_OF} (Workers Paid, beyond the included usage; storage not included):\n");
    println!("| USD per million events | {} |", head.join(" | "));
    println!("| --- |{}", " --- |".repeat(runs.len()));
    let priced: Vec<Vec<(&str, f64)>> = runs
        .iter()
        .map(|r| cost::per_million(&r.usage, &LIST_PRICES))
        .collect();
    for (i, (name, _)) in priced[0].iter().enumerate() {
        let cells: Vec<String> = priced.iter().map(|p| format!("${:.4}", p[i].1)).collect();
        println!("| {name} | {} |", cells.join(" | "));
    }
    let totals: Vec<String> = priced
        .iter()
        .map(|p| format!("**${:.3}**", p.iter().map(|(_, usd)| usd).sum::<f64>()))
        .collect();
    println!("| **total** | {} |", totals.join(" | "));
    let storage: Vec<String> = runs
        .iter()
        .map(|r| {
            let (d1, r2, dobj) = cost::storage_per_million_month(&r.usage, &LIST_PRICES);
            format!("D1 ${d1:.3} + R2 ${r2:.4} + DO ${dobj:.4}")
        })
        .collect();
    println!(
        "| storage, per million events per month kept | {} |",
        storage.join(" | ")
    );
    println!("\nBars: ≤ $0.10 per million lake-only, ≤ $1.25 with the D1 hot window.");
    for r in runs {
        println!(
            "Raw counters ({}; {} requests, {} sent again, workerd CPU {:.0} ms): {:?}",
            r.label, r.requests, r.resent, r.cpu_ms, r.counters
        );
    }
}

/// Both configurations, measured and reported.
pub async fn bench(events: usize) {
    let hot = measure("D1 hot window", true, events).await;
    let lake = measure("lake-only", false, events).await;
    report(&[hot, lake]);
}
