//! `cargo xtask bench`: Sluice's performance figures, measured here, printed
//! as a report. Nothing in it is asserted: machines are shared and noisy.
//!
//! - SDK: bytes up front (gzip), main-thread time per `track()`, time to
//!   ready, a 10,000-call burst (all delivered? main-thread busy in total);
//! - collector: events/s and CPU per event on raw workerd, batches of 1, 20
//!   and 100, beside a no-op JS worker that only parses the JSON; native cost
//!   of validate + enrich per event; the worker's wasm size;
//! - delivery: events/s through Queue → dedup → D1 / R2 (wrangler dev), and
//!   latency from POST to visible in D1;
//! - cost: usage per event and the price per million events, D1 hot window
//!   on and lake-only (`sluice_e2e::cost`);
//! - load: a sustained rate for 60 s through the whole local pipeline:
//!   accepted, stored, lost, duplicates, latency to D1 and the lake
//!   (`sluice_e2e::load`).
//! - audiences: from the event that makes a person enter an audience to the
//!   audience in the collector's answer, in the profile API and as `Audience
//!   Entered` at a webhook; the state a person's object stores; what
//!   audiences add to the cost per million events.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark: a panic is a failed run

#[path = "../../../shared/benches/support/accept_path.rs"]
#[allow(dead_code)] // the accept bench's choice of stage is not used here
mod accept_path;

use serde_json::{json, Value};
use sluice_e2e::{eventually, free_port, root, temp_dir, Browser, Process, Stack};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

fn kb(n: usize) -> String {
    format!("{:.1} KB", n as f64 / 1024.0)
}

fn section(title: &str) {
    println!("\n## {title}\n");
}

/// An analytics.js-shaped event (`shared/tests/fixtures/bench_event.json`).
fn event(i: usize) -> Value {
    let mut e: Value = serde_json::from_str(include_str!(
        "../../../shared/tests/fixtures/bench_event.json"
    ))
    .expect("the bench event fixture is JSON");
    e["messageId"] = json!(format!("bench-{i}-{}", std::process::id()));
    e
}

fn batch_body(n: usize) -> String {
    json!({"batch": (0..n).map(event).collect::<Vec<_>>(), "sentAt": "2024-05-01T10:00:01.000Z"})
        .to_string()
}

// ---------------------------------------------------------------- SDK

/// Length of `bytes` compressed by brotli at quality 11 (what Cloudflare
/// serves to browsers that accept it), by Node's zlib: no Rust brotli crate
/// is needed for a figure only the bench reports.
fn brotli_len(bytes: &[u8]) -> usize {
    let file = temp_dir("brotli").join("part");
    std::fs::write(&file, bytes).unwrap();
    let out = Command::new("node")
        .arg("-e")
        .arg("const z = require('zlib'); process.stdout.write(String(z.brotliCompressSync(require('fs').readFileSync(process.argv[1]), { params: { [z.constants.BROTLI_PARAM_QUALITY]: 11 } }).length))")
        .arg(&file)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).parse().unwrap_or(0)
}

/// Every part a page loads, gzip -9 and brotli 11 beside the raw size.
fn sdk_sizes() -> usize {
    println!("| part | raw | gzip -9 | brotli 11 |\n| --- | --- | --- | --- |");
    let (mut total, mut total_br) = (0, 0);
    for (name, bytes) in sluice_e2e::size::sdk_parts() {
        let (gz, br) = (sluice_e2e::size::gzip_len(&bytes), brotli_len(&bytes));
        total += gz;
        total_br += br;
        println!("| {name} | {} | {} | {} |", kb(bytes.len()), kb(gz), kb(br));
    }
    // The glue and the host are bundled into the loader (one request); the host measured alone here.
    let host = Command::new(root().join("node_modules/.bin/esbuild"))
        .arg(root().join("sdk/js/host.js"))
        .args(["--minify", "--format=esm", "--log-level=warning"])
        .output()
        .unwrap()
        .stdout;
    println!(
        "| of which the host (`sdk/js/host.js`, minified, alone) | {} | {} | {} |",
        kb(host.len()),
        kb(sluice_e2e::size::gzip_len(&host)),
        kb(brotli_len(&host))
    );
    println!("| lazy modules | — | — | — (none: the CMP plumbing is in the host, its decisions in the core) |");
    println!(
        "| **everything a page loads** | | **{}** | **{}** |",
        kb(total),
        kb(total_br)
    );
    total
}

/// Cold loads of each bench page (`www/bench/`), in turn.
const COLD_LOADS: usize = 15;

/// How much later the SDK is ready than the same page without it has
/// loaded, over cold loads (empty HTTP cache, no cookies or storage):
/// `bench/none.html` and `bench/sdk.html` (the same page with the inline
/// snippet) from `origin` (served by `server`) in turn, so both see the
/// same machine. Printed with the medians of where the time goes (the
/// page's and the SDK's two files' resource timing).
async fn ready_after_no_sdk(origin: &str, server: &str, b: &Browser) {
    let url = |path: &str| [origin, path].concat();
    let cold = || async {
        b.cdp("Network.enable", json!({})).await;
        b.cdp("Network.clearBrowserCache", json!({})).await;
        b.cdp("Network.clearBrowserCookies", json!({})).await;
        b.cdp(
            "Storage.clearDataForOrigin",
            json!({"origin": origin, "storageTypes": "all"}),
        )
        .await;
    };
    let loaded = || async {
        eventually("the page's load event", Duration::from_secs(20), || async {
            let t = b
                .js("const n = performance.getEntriesByType('navigation')[0]; return n && n.loadEventEnd > 0 ? n.loadEventEnd : null")
                .await;
            t.as_f64()
        })
        .await
    };
    const PARTS: &str = "const r = performance.getEntriesByType('resource'); const f = (p) => { const e = r.find((x) => p.test(x.name)); return e ? [e.startTime, e.requestStart, e.responseStart, e.responseEnd] : [0, 0, 0, 0]; }; const n = performance.getEntriesByType('navigation')[0]; return { ready: sluice.readyAt, page: [n.startTime, n.requestStart, n.responseStart, n.responseEnd], loader: f(/sluice\\.js$/), wasm: f(/\\.wasm$/), hashed: r.filter((x) => /sdk_bg\\.[0-9a-f]+\\.wasm$/.test(x.name)).length }";
    let (mut none, mut ready, mut parts) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..COLD_LOADS {
        cold().await;
        b.client.goto(&url("/bench/none")).await.unwrap();
        none.push(loaded().await);
        cold().await;
        b.client.goto(&url("/bench/sdk")).await.unwrap();
        b.wait_for_sdk().await;
        let t = b.js(PARTS).await;
        ready.push(t["ready"].as_f64().unwrap_or(0.0));
        parts.push(t);
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let part = |name: &str, i: usize| {
        median(
            parts
                .iter()
                .map(|t| t[name][i].as_f64().unwrap_or(0.0))
                .collect(),
        )
    };
    let (none_ms, ready_ms) = (median(none.clone()), median(ready.clone()));
    println!(
        "\nCold loads {server} ({COLD_LOADS} of each, in turn; empty cache, no cookies or storage): the page without the SDK has loaded (`loadEventEnd`) at a median {none_ms:.1} ms after navigation start, the same page with the SDK is ready at {ready_ms:.1} ms: **{:.1} ms later** (goal ≤ 25 ms). Each load, without / with: {:?} / {:?} ms.",
        ready_ms - none_ms,
        none.iter().map(|t| t.round()).collect::<Vec<_>>(),
        ready.iter().map(|t| t.round()).collect::<Vec<_>>(),
    );
    let span = |name: &str| {
        let [start, request, response, end] = [0, 1, 2, 3].map(|i| part(name, i));
        format!("{name} {start:.1} / {request:.1} / {response:.1} / {end:.1}")
    };
    println!(
        "Where it goes (medians over the loads with the SDK, ms after navigation start; start / request sent / first byte / last byte): {}, {} (with the glue), {} (from the snippet); ready {ready_ms:.1}.",
        span("page"),
        span("loader"),
        span("wasm"),
    );
    let fallbacks = parts
        .iter()
        .filter(|t| t["hashed"].as_u64() != Some(0))
        .count();
    println!("Loads that fetched the content-hashed Wasm too (the snippet's was not this build's): {fallbacks} of {COLD_LOADS}.");
}

async fn sdk_browser() {
    let stack = Stack::start();
    let b = Browser::start().await;
    let origin = stack.url("/").trim_end_matches('/').to_owned();
    ready_after_no_sdk(
        &origin,
        "through `wrangler dev` (as `cargo xtask dev` and the tests serve)",
        &b,
    )
    .await;
    {
        let (_workerd, port) = raw_site();
        let origin = format!("http://127.0.0.1:{port}");
        ready_after_no_sdk(&origin, "on raw workerd (no dev proxy: the collector and the static files, as production has them)", &b).await;
    }
    b.client.goto(&stack.url("/")).await.unwrap();
    b.wait_for_sdk().await;
    const NAV: &str = "const n = performance.getEntriesByType('navigation')[0]; return { ready: sluice.readyAt, responseEnd: n.responseEnd, dcl: n.domContentLoadedEventEnd }";
    let first = b.js(NAV).await;
    b.client.refresh().await.unwrap();
    b.wait_for_sdk().await;
    let warm = b.js(NAV).await;
    println!("\n| time to ready (ms after navigation start) | SDK ready | page response end | DOMContentLoaded |\n| --- | --- | --- | --- |");
    for (label, t) in [
        ("first visit (empty cache)", &first),
        ("reload (cached)", &warm),
    ] {
        println!(
            "| {label} | {:.1} | {:.1} | {:.1} |",
            t["ready"].as_f64().unwrap_or(0.0),
            t["responseEnd"].as_f64().unwrap_or(0.0),
            t["dcl"].as_f64().unwrap_or(0.0)
        );
    }
    println!();
    b.js("sluice.consent.set({ analytics: true }); return true")
        .await;
    // First event: the demo page calls `sluice.page()` as it loads; with the
    // consent now stored it is sent as soon as the SDK is ready. Timed by the
    // page's own resource timing (no clock crosses processes).
    let mut first = Vec::new();
    for _ in 0..5 {
        b.client.refresh().await.unwrap();
        b.wait_for_sdk().await;
        let t = eventually(
            "the first batch to be answered",
            Duration::from_secs(20),
            || async {
                let t = b
                    .js("const r = performance.getEntriesByType('resource').filter(e => e.name.includes('/v1/batch'))[0]; return r && r.responseEnd > 0 ? { ready: sluice.readyAt, start: r.startTime, end: r.responseEnd } : null")
                    .await;
                (!t.is_null()).then_some(t)
            },
        )
        .await;
        let f = |k: &str| t[k].as_f64().unwrap();
        first.push((f("start") - f("ready"), f("end") - f("ready"), f("end")));
    }
    first.sort_by(|a, b| a.1.total_cmp(&b.1));
    let (start, end, nav) = first[first.len() / 2];
    println!(
        "First event (the page view of a reload with consent stored; median of {} loads): its request starts {start:.1} ms after the SDK is ready and is answered {end:.1} ms after it ({nav:.1} ms after navigation start); all loads: {:?} ms after ready.",
        first.len(),
        first.iter().map(|f| (f.1 * 10.0).round() / 10.0).collect::<Vec<_>>()
    );
    // performance.now() is coarsened without cross-origin isolation: time blocks of 100 calls.
    let per_call = b
        .js("const blocks = []; let k = 0; for (let b = 0; b < 100; b++) { const t = performance.now(); for (let i = 0; i < 100; i++) sluice.track('Bench Call', { i: k++, sku: 'MUG-001', price: 12 }); blocks.push((performance.now() - t) * 10); } blocks.sort((a, b) => a - b); return { median: blocks[50], p95: blocks[95] };")
        .await;
    println!(
        "Main-thread time per `track()` (10,000 calls, in blocks of 100): median {:.1} µs, p95 {:.1} µs.",
        per_call["median"].as_f64().unwrap(),
        per_call["p95"].as_f64().unwrap()
    );
    eventually(
        "the 10,000 calls to be delivered",
        Duration::from_secs(180),
        || async {
            (stack.d1("SELECT COUNT(*) AS n FROM events WHERE event = 'Bench Call'")[0]["n"]
                .as_i64()
                .unwrap()
                >= 10_000)
                .then_some(())
        },
    )
    .await;
    // The burst: 10,000 calls at once; main-thread busy until all are stored.
    b.cdp("Performance.enable", json!({})).await;
    let busy = |m: &Value| {
        m["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["name"] == "TaskDuration")
            .unwrap()["value"]
            .as_f64()
            .unwrap()
    };
    // Count what goes on the wire: request bodies (gzipped or not) and requests.
    b.js("window.__wire = { requests: 0, bytes: 0, gzipped: 0, beacons: 0 }; const f = window.fetch; window.fetch = function (url, init) { if (String(url).includes('/v1/batch') && init && init.body != null) { const body = init.body; window.__wire.requests++; window.__wire.bytes += typeof body === 'string' ? new TextEncoder().encode(body).length : body.byteLength; if (init.headers && init.headers['content-encoding'] === 'gzip') window.__wire.gzipped++; } return f.apply(this, arguments); }; return true").await;
    let before = busy(&b.cdp("Performance.getMetrics", json!({})).await);
    let started = Instant::now();
    b.js("for (let i = 0; i < 10000; i++) sluice.track('Burst', { i, sku: 'MUG-001', name: 'Blue Mug', price: 12, currency: 'EUR' }); return true")
        .await;
    let stored = eventually(
        "the burst to be delivered",
        Duration::from_secs(180),
        || async {
            let n = stack.d1("SELECT COUNT(*) AS n FROM events WHERE event = 'Burst'")[0]["n"]
                .as_i64()
                .unwrap();
            (n >= 10_000).then_some(n)
        },
    )
    .await;
    let after = busy(&b.cdp("Performance.getMetrics", json!({})).await);
    let dropped = b.js("return sluice.stats().dropped").await;
    let wire = b.js("return window.__wire").await;
    let (requests, bytes) = (
        wire["requests"].as_f64().unwrap(),
        wire["bytes"].as_f64().unwrap(),
    );
    println!(
        "Burst of 10,000 `track()` calls (five properties each): {stored} of 10,000 stored in D1 in {:.1} s; main-thread busy {:.2} s in total (serialising, compressing and sending included); {dropped} evicted.",
        started.elapsed().as_secs_f64(),
        after - before
    );
    println!(
        "On the wire for the burst: {requests} requests ({} gzipped), {:.0} request-body bytes per event ({} in all; headers not counted).",
        wire["gzipped"],
        bytes / 10_000.0,
        kb(bytes as usize)
    );
}

// ---------------------------------------------------------------- collector on raw workerd

/// One request over a keep-alive connection: the status, or `None` if the connection failed.
fn exchange(s: &mut TcpStream, request: &[u8], buf: &mut [u8]) -> Option<u16> {
    s.write_all(request).ok()?;
    let mut got = Vec::new();
    let (head_end, len, status) = loop {
        let n = s.read(buf).ok()?;
        if n == 0 {
            return None;
        }
        got.extend_from_slice(&buf[..n]);
        if let Some(p) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&got[..p]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            let status = head
                .split_whitespace()
                .nth(1)
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            break (p + 4, len, status);
        }
    };
    while got.len() < head_end + len {
        let n = s.read(buf).ok()?;
        if n == 0 {
            return None;
        }
        got.extend_from_slice(&buf[..n]);
    }
    Some(status)
}

/// Load from `threads` keep-alive connections for `secs`: (requests answered 200, others and failures, seconds).
fn load(port: u16, request: &[u8], threads: usize, secs: f64) -> (u64, u64, f64) {
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let started = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let request = request.to_vec();
            std::thread::spawn(move || {
                let (mut ok, mut failed) = (0u64, 0u64);
                let mut buf = vec![0u8; 64 * 1024];
                while Instant::now() < deadline {
                    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
                        failed += 1;
                        std::thread::sleep(Duration::from_millis(10));
                        continue;
                    };
                    let _ = s.set_nodelay(true);
                    while Instant::now() < deadline {
                        match exchange(&mut s, &request, &mut buf) {
                            Some(200) => ok += 1,
                            Some(_) => failed += 1,
                            None => {
                                failed += 1;
                                break; // reconnect
                            }
                        }
                    }
                }
                (ok, failed)
            })
        })
        .collect();
    let (ok, failed) = handles
        .into_iter()
        .map(|h| h.join().unwrap_or((0, 0)))
        .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
    (ok, failed, started.elapsed().as_secs_f64())
}

fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks: f64 = fields
        .get(11)
        .and_then(|u| u.parse::<f64>().ok())
        .unwrap_or(0.0)
        + fields
            .get(12)
            .and_then(|s| s.parse::<f64>().ok())
            .unwrap_or(0.0);
    ticks / 100.0
}

const NOOP_WORKER: &str = "export default { async fetch(request) { const body = await request.json(); return new Response(JSON.stringify({ accepted: body.batch.length }), { headers: { 'content-type': 'application/json' } }); } };";
/// The Queue stand-in, named like workerd's queue class (workers-rs checks the name).
const QUEUE_STUB: &str = "class WorkerQueue { async send() {} async sendBatch() {} } export default function () { return new WorkerQueue(); }";

/// A fresh directory holding the built collector (`index.js`,
/// `index_bg.wasm`) and the Queue stand-in, for a raw workerd config.
fn collector_dir(name: &str) -> std::path::PathBuf {
    let build = root().join("edge-worker/build/collector");
    let dir = temp_dir(name);
    std::fs::copy(build.join("index.js"), dir.join("index.js")).unwrap();
    std::fs::copy(build.join("index_bg.wasm"), dir.join("index_bg.wasm")).unwrap();
    std::fs::write(dir.join("queue-stub.js"), QUEUE_STUB).unwrap();
    dir
}

/// The collector as a raw workerd worker (`sluice`) with these sources,
/// the Queue stand-in as `EVENTS`, and `extra` bindings (capnp, may be empty).
fn collector_worker(sources: &str, extra: &str) -> String {
    let extra = if extra.is_empty() {
        String::new()
    } else {
        format!(", {extra}")
    };
    format!(
        r#"const sluice :Workerd.Worker = (
  modules = [ (name = "index.js", esModule = embed "index.js"), (name = "index_bg.wasm", wasm = embed "index_bg.wasm") ],
  compatibilityDate = "2026-04-20",
  bindings = [ (name = "SLUICE_SOURCES", text = {sources:?}),
               (name = "EVENTS", wrapped = (moduleName = "sluice:queue-stub")){extra} ],
);
"#
    )
}

/// The site's files (`dist/site`) and the collector on raw workerd, as a
/// deploy has them: the SDK's paths and the accept path to the collector,
/// everything else a static file (what Workers Static Assets serve in
/// front of it), the collector's `ASSETS` the same files; no `wrangler
/// dev` proxy, Miniflare entry worker or request log, whose work per
/// request (3.6-6.5 ms of CPU on this machine) shares the 2 cores with the
/// browser. Nothing is compressed (on loopback; Cloudflare's edge
/// compresses on its own machines). Returns workerd and its port.
fn raw_site() -> (Process, u16) {
    const SITE: &str = "export default { fetch(req, env) { const p = new URL(req.url).pathname; return p.startsWith('/sluice/') || p.startsWith('/v1/') ? env.SLUICE.fetch(req) : env.FILES.fetch(req); } };";
    const FILES: &str = "const TYPES = { html: 'text/html; charset=utf-8', js: 'text/javascript; charset=utf-8', wasm: 'application/wasm', json: 'application/json', css: 'text/css' }; export default { async fetch(req, env) { let p = new URL(req.url).pathname; if (p.endsWith('/')) p += 'index.html'; else if (!p.split('/').pop().includes('.')) p += '.html'; const r = await env.DISK.fetch('http://disk' + p); return r.ok ? new Response(r.body, { headers: { 'content-type': TYPES[p.split('.').pop()] || 'application/octet-stream' } }) : new Response('not found', { status: 404 }); } };";
    let dir = collector_dir("workerd-site");
    std::fs::write(dir.join("site.js"), SITE).unwrap();
    std::fs::write(dir.join("files.js"), FILES).unwrap();
    let sources = json!([{"name": "demo", "write_key": "demo-write-key", "allowed_origins": [], "consent": {"regime": "opt_out"}}]).to_string();
    let port = free_port();
    let config = format!(
        r#"using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [ (name = "site", worker = .site), (name = "files", worker = .files), (name = "sluice", worker = .sluice),
               (name = "disk", disk = (path = {site:?})) ],
  sockets = [ (name = "s", address = "127.0.0.1:{port}", http = (), service = "site") ],
  extensions = [ (modules = [ (name = "sluice:queue-stub", esModule = embed "queue-stub.js", internal = true) ]) ],
);
const site :Workerd.Worker = (
  modules = [ (name = "site.js", esModule = embed "site.js") ],
  compatibilityDate = "2026-04-20",
  bindings = [ (name = "SLUICE", service = "sluice"), (name = "FILES", service = "files") ],
);
const files :Workerd.Worker = (
  modules = [ (name = "files.js", esModule = embed "files.js") ],
  compatibilityDate = "2026-04-20",
  bindings = [ (name = "DISK", service = "disk") ],
);
{collector}"#,
        site = root().join("dist/site").display().to_string(),
        collector = collector_worker(&sources, r#"(name = "ASSETS", service = "files")"#),
    );
    (workerd(&dir, &config, &[port]), port)
}

/// Run workerd on `config` (written into `dir`, beside the files it
/// embeds) and wait until it listens on every one of `ports`.
fn workerd(dir: &std::path::Path, config: &str, ports: &[u16]) -> Process {
    std::fs::write(dir.join("config.capnp"), config).unwrap();
    let log = std::fs::File::create(dir.join("workerd.log")).unwrap();
    let process = Process::spawn(
        "workerd",
        Command::new(root().join("node_modules/@cloudflare/workerd-linux-64/bin/workerd"))
            .arg("serve")
            .arg("--experimental")
            .arg(dir.join("config.capnp"))
            .current_dir(dir)
            .stdout(log.try_clone().unwrap())
            .stderr(log),
    );
    let up = |port: &u16| TcpStream::connect(("127.0.0.1", *port)).is_ok();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ports.iter().all(up) {
        assert!(
            Instant::now() < deadline,
            "workerd did not start; see {}",
            dir.join("workerd.log").display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    process
}

fn raw_workerd() {
    // The collector: the worker that answers the accept path.
    let dir = collector_dir("workerd");
    std::fs::write(dir.join("noop.js"), NOOP_WORKER).unwrap();
    let sources = json!([{"name": "bench", "write_key": "bench-key", "allowed_origins": ["*"], "consent": {"regime": "opt_out"},
                          "rate_limit": {"requests_per_second": 1e9, "burst": 1000000000}}]).to_string();
    let (sluice_port, noop_port) = (free_port(), free_port());
    let config = format!(
        r#"using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [ (name = "sluice", worker = .sluice), (name = "noop", worker = .noop) ],
  sockets = [ (name = "s", address = "127.0.0.1:{sluice_port}", http = (), service = "sluice"),
              (name = "n", address = "127.0.0.1:{noop_port}", http = (), service = "noop") ],
  extensions = [ (modules = [ (name = "sluice:queue-stub", esModule = embed "queue-stub.js", internal = true) ]) ],
);
const noop :Workerd.Worker = (
  modules = [ (name = "noop.js", esModule = embed "noop.js") ],
  compatibilityDate = "2026-04-20",
);
{collector}"#,
        collector = collector_worker(&sources, ""),
    );
    let process = workerd(&dir, &config, &[sluice_port, noop_port]);
    println!("Raw workerd (not `wrangler dev`), load from 4 keep-alive connections on the same 2 cores, 5 s per run.");
    println!("The Queue is an in-process stand-in on raw workerd (a `wrapped` binding whose sendBatch resolves at once); everything else is the real accept path: parse, authenticate, validate, clock skew, enrich (user agent, bots, referrer, campaign, IP), consent, serialise for the Queue.\n");
    println!("| batch | Sluice events/s | no-op JS events/s | ratio | Sluice CPU/event | no-op CPU/event | failed requests (Sluice / no-op) |\n| --- | --- | --- | --- | --- | --- | --- |");
    for n in batch_sizes() {
        let body = batch_body(n);
        let request = |port: u16| {
            format!(
                "POST /v1/batch HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Basic YmVuY2gta2V5Og==\r\nContent-Type: text/plain\r\nUser-Agent: bench\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .into_bytes()
        };
        let run = |port: u16| {
            let req = request(port);
            load(port, &req, 4, 1.0); // warm up
            let cpu = cpu_seconds(process.pid());
            let (ok, failed, secs) = load(port, &req, 4, 5.0);
            let used = cpu_seconds(process.pid()) - cpu;
            let events = ok as f64 * n as f64;
            (events / secs, used / events.max(1.0) * 1e6, failed)
        };
        let (s_eps, s_cpu, s_failed) = run(sluice_port);
        let (n_eps, n_cpu, n_failed) = run(noop_port);
        println!(
            "| {n} | {s_eps:.0} | {n_eps:.0} | {:.2} | {s_cpu:.1} µs | {n_cpu:.1} µs | {s_failed} / {n_failed} |",
            s_eps / n_eps
        );
    }
    for (name, wasm) in sluice_e2e::size::worker_modules() {
        println!(
            "\n{name} worker wasm: {} raw, {} gzipped.",
            kb(wasm.len()),
            kb(sluice_e2e::size::gzip_len(&wasm))
        );
    }
}

/// The batch sizes `raw_workerd` runs, in order: `SLUICE_BENCH_BATCHES`
/// (comma-separated, say `100,20,1` to run batches of 1 after the module
/// has warmed up), else 1, 20, 100.
fn batch_sizes() -> Vec<usize> {
    std::env::var("SLUICE_BENCH_BATCHES")
        .ok()
        .map(|v| {
            v.split(',')
                .filter_map(|n| n.trim().parse().ok())
                .collect::<Vec<usize>>()
        })
        .filter(|sizes| !sizes.is_empty() && !sizes.contains(&0))
        .unwrap_or_else(|| vec![1, 20, 100])
}

/// The pure part of the accept path per event, natively (no I/O): split,
/// decode, validate, clock skew, enrich, consent, encode for the Queue
/// (`shared/benches/support/accept_path.rs`, which the accept bench runs
/// too). Both ways: the fast lane the collector takes
/// (`sluice_shared::splice`) and every event decoded whole (what a tracking
/// plan or audiences need).
fn native_cost() {
    let body = batch_body(100);
    let run = |lane: bool| accept_path::run(body.as_bytes(), lane, accept_path::Stage::Pack);
    for (lane, what) in [(true, "fast lane"), (false, "every event decoded whole")] {
        for _ in 0..20 {
            run(lane);
        }
        let rounds = 300;
        let t = Instant::now();
        for _ in 0..rounds {
            run(lane);
        }
        let per_event = t.elapsed().as_secs_f64() / (rounds as f64 * 100.0) * 1e6;
        println!("Native split + decode + validate + skew + enrich + consent + encode, {what}: {per_event:.1} µs per event (batches of 100, release build).");
    }
}

// ---------------------------------------------------------------- delivery

const LATENCY: &str = r#"
import glob, json, sqlite3, sys, time, urllib.request
port, state, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
files = [f for f in glob.glob(state + "/v3/d1/miniflare-D1DatabaseObject/*.sqlite") if not f.endswith("metadata.sqlite")]
db = sqlite3.connect(files[0], timeout=30)
out = []
for i in range(n):
    mid = "lat-%d-%f" % (i, time.time())
    body = json.dumps({"batch": [{"type": "track", "messageId": mid, "anonymousId": "lat", "event": "Latency"}]}).encode()
    req = urllib.request.Request("http://127.0.0.1:%d/v1/batch?writeKey=demo-write-key" % port, data=body, method="POST")
    t0 = time.monotonic()
    urllib.request.urlopen(req).read()
    while not db.execute("SELECT 1 FROM events WHERE message_id = ?", (mid,)).fetchone():
        time.sleep(0.005)
    out.append((time.monotonic() - t0) * 1000)
print(json.dumps(out))
"#;

async fn delivery() {
    let stack = Stack::start_with(&[
        ("SLUICE_SOURCES", &json!([{"name": "demo", "write_key": "demo-write-key", "allowed_origins": [], "consent": {"regime": "opt_out"}, "destinations": ["lake"],
                                    "rate_limit": {"requests_per_second": 1e9, "burst": 1000000000}}]).to_string()),
        ("SLUICE_DESTINATIONS", &json!([{"name": "lake", "kind": "r2"}]).to_string()),
    ]);
    let total = 5000usize;
    let started = Instant::now();
    for chunk in 0..total / 100 {
        let body = json!({"batch": (0..100).map(|i| event(chunk * 100 + i)).collect::<Vec<_>>()});
        let (status, _) = stack.request(
            "POST",
            "/v1/batch?writeKey=demo-write-key",
            &[],
            body.to_string().as_bytes(),
        );
        assert_eq!(status, 200);
    }
    let posted = started.elapsed().as_secs_f64();
    eventually("5,000 events in D1", Duration::from_secs(300), || async {
        (stack.d1("SELECT COUNT(*) AS n FROM events")[0]["n"]
            .as_i64()
            .unwrap()
            >= total as i64)
            .then_some(())
    })
    .await;
    let d1 = started.elapsed().as_secs_f64();
    eventually("5,000 events in R2", Duration::from_secs(300), || async {
        let n = stack
            .d1("SELECT COALESCE(SUM(count), 0) AS n FROM counters WHERE name = 'delivered_lake'")
            [0]["n"]
            .as_i64()
            .unwrap();
        (n >= total as i64).then_some(())
    })
    .await;
    let r2 = started.elapsed().as_secs_f64();
    println!("On `wrangler dev` (workerd behind its Node proxy; local Queues with a 1 s batch window), 5,000 events POSTed in batches of 100 ({posted:.1} s to accept):");
    println!(
        "- all in D1 after {d1:.1} s: {:.0} events/s through Queue → dedup (Durable Objects) → D1;",
        total as f64 / d1
    );
    println!(
        "- all in R2 after {r2:.1} s: {:.0} events/s including the fan-out to the lake.",
        total as f64 / r2
    );
    let latencies = sluice_e2e::stack::python_json(
        LATENCY,
        &[
            &stack.port.to_string(),
            &stack.state.display().to_string(),
            "50",
        ],
    );
    let mut ms: Vec<f64> = latencies.iter().map(|v| v.as_f64().unwrap()).collect();
    ms.sort_by(|a, b| a.total_cmp(b));
    println!("Latency from POST to visible in D1, 50 single events one after another: p50 {:.0} ms, p99 {:.0} ms.", ms[ms.len() / 2], ms[ms.len() * 99 / 100]);
}

// ---------------------------------------------------------------- audiences

/// The README's example definitions (2 traits, 2 audiences), on the cost mix's events.
const AUDIENCES: &str = r#"{ "traits": [
    { "name": "lifetime_revenue", "kind": "sum", "property": "revenue", "event": "Order Completed",
      "purposes": ["personalization"], "browser_visible": true },
    { "name": "views_7d", "kind": "count", "event": "Product Viewed", "window_s": 604800,
      "where": [{ "property": "category", "op": "eq", "value": "Kitchen" }], "purposes": ["personalization"] } ],
  "audiences": [
    { "name": "hot_shoppers", "purposes": ["personalization"], "browser_visible": true,
      "when": { "all": [
        { "did": { "event": "Product Viewed", "times": 3, "within_s": 604800 } },
        { "did_not": { "event": "Order Completed", "within_s": 604800 } } ] } },
    { "name": "big_spenders", "purposes": ["personalization"],
      "when": { "any": [
        { "trait": { "name": "lifetime_revenue", "op": "gte", "value": 500 } },
        { "profile": { "name": "plan", "op": "eq", "value": "vip" } } ] } } ] }"#;

fn percentiles(mut ms: Vec<f64>) -> String {
    ms.sort_by(|a, b| a.total_cmp(b));
    format!(
        "p50 {:.0} ms, p99 {:.0} ms",
        ms[ms.len() / 2],
        ms[(ms.len() * 99 / 100).min(ms.len() - 1)]
    )
}

/// Per person: two product views, then the third (timed): its answer, the
/// profile API, and `Audience Entered` at a webhook.
async fn audience_latency(people: usize) {
    use sluice_e2e::{Behaviour, Receiver};
    let hook = Receiver::start("bench-secret", Behaviour::Healthy);
    let stack = Stack::start_with(&[
        ("SLUICE_SOURCES", &json!([{"name": "demo", "write_key": "demo-write-key", "allowed_origins": [], "consent": {"regime": "opt_in"},
                                    "destinations": ["hook"], "rate_limit": {"requests_per_second": 1e9, "burst": 1_000_000_000}}]).to_string()),
        ("SLUICE_DESTINATIONS", &json!([{"name": "hook", "kind": "webhook", "url": hook.url(), "secret_var": "HOOK_SECRET"}]).to_string()),
        ("HOOK_SECRET", "bench-secret"),
        ("SLUICE_AUDIENCES", AUDIENCES),
    ]);
    let (status, _) = stack.request("GET", "/v1/batch", &[], b"");
    assert_eq!(status, 405);
    let run = std::process::id();
    let view = |p: usize, k: usize| {
        json!({"batch": [{"type": "track", "messageId": format!("aud-bench-{run}-{p}-{k}"), "anonymousId": format!("bench-person-{run}-{p}"),
                          "event": "Product Viewed", "properties": {"category": "Kitchen", "sku": "MUG-001"},
                          "context": {"consent": {"categories": {"analytics": "granted", "personalization": "granted"}}}}]})
    };
    let (mut answer_ms, mut profile_ms, mut webhook_ms) = (Vec::new(), Vec::new(), Vec::new());
    for p in 0..people {
        for k in 0..2 {
            let (status, _) =
                stack.post_json("/v1/batch?writeKey=demo-write-key", &[], &view(p, k));
            assert_eq!(status, 200);
        }
        let person = format!("bench-person-{run}-{p}");
        let t0 = Instant::now();
        let (status, answer) =
            stack.post_json("/v1/batch?writeKey=demo-write-key", &[], &view(p, 2));
        answer_ms.push(t0.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(status, 200);
        assert_eq!(
            answer["profile"]["audiences"],
            json!(["hot_shoppers"]),
            "{answer}"
        );
        let member = |body: &Value| {
            body["audiences"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|a| a["name"] == "hot_shoppers" && a["member"] == true)
        };
        let profiled = eventually(
            "the audience in the profile API",
            Duration::from_secs(30),
            || async {
                let (status, body) = stack.admin(
                    "GET",
                    &format!("/v1/profiles/{person}"),
                    "dev-admin-token",
                    None,
                );
                (status == 200 && member(&body)).then(|| t0.elapsed())
            },
        )
        .await;
        profile_ms.push(profiled.as_secs_f64() * 1000.0);
        let at = eventually(
            "Audience Entered at the webhook",
            Duration::from_secs(60),
            || async {
                hook.received().iter().find_map(|r| {
                    let batch = r.body["batch"].as_array()?;
                    batch
                        .iter()
                        .any(|e| {
                            e["event"] == "Audience Entered" && e["anonymousId"] == person.as_str()
                        })
                        .then_some(r.at)
                })
            },
        )
        .await;
        webhook_ms.push(at.duration_since(t0).as_secs_f64() * 1000.0);
    }
    println!("On `wrangler dev` (local Queues with a 1 s batch window), {people} people one after another, each entering `hot_shoppers` with their third product view (single-event requests):");
    println!(
        "- in the collector's answer to that view (the request's round trip): {};",
        percentiles(answer_ms)
    );
    println!("- in `GET /v1/profiles/{{id}}` (from sending the view to the first answer showing it): {};", percentiles(profile_ms));
    println!("- `Audience Entered` at a webhook on loopback (Queue → dedup → fan-out → deliveries Queue → webhook): {}.", percentiles(webhook_ms));
    let stored = sluice_e2e::cost::person_storage(&stack);
    println!(
        "State per person after 3 views (2 traits, 2 audiences): {} objects, record {:.0} bytes as stored, SQLite file {:.0} bytes.",
        stored.people, stored.record_bytes, stored.file_bytes
    );
}

/// The cost mix with and without the example definitions.
async fn audience_cost(events: usize) {
    use sluice_e2e::cost;
    let plain = cost::measure("D1 hot window", true, events).await;
    let with = cost::measure_with(
        "D1 hot window + audiences",
        true,
        events,
        &[("SLUICE_AUDIENCES", AUDIENCES)],
    )
    .await;
    let total = |m: &cost::Measured| -> f64 { cost::per_million_total(&m.usage) };
    let added = total(&with) - total(&plain);
    println!(
        "With the example definitions: {} people kept a state (record {:.0} bytes as stored, SQLite file {:.0} bytes each); {} audience events emitted and delivered.\n",
        with.people.people, with.people.record_bytes, with.people.file_bytes, with.emitted
    );
    let (plain_total, with_total) = (total(&plain), total(&with));
    cost::report(&[plain, with]);
    println!(
        "\nAudiences add ${added:.3} per million events (${plain_total:.3} → ${with_total:.3})."
    );
}

#[tokio::main]
async fn main() {
    let what = std::env::args().nth(1).unwrap_or_else(|| "all".into());
    println!("# Sluice benchmarks\n");
    println!(
        "Machine: {} cores; {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        Command::new("uname")
            .arg("-sr")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default()
    );
    if what == "all" || what == "sdk" {
        section("SDK");
        let total = sdk_sizes();
        println!(
            "\nMeasured total {}; the goal is 24 KB. `cargo xtask test` asserts the snippet's 1 KB and a ceiling on the total (tests/tests/size.rs).",
            kb(total)
        );
        sdk_browser().await;
    }
    if what == "all" || what == "worker" {
        section("Collector");
        native_cost();
        raw_workerd();
    }
    if what == "all" || what == "delivery" {
        section("Delivery");
        delivery().await;
    }
    if what == "all" || what == "cost" {
        section("Cost per million events");
        sluice_e2e::cost::bench(5000).await;
    }
    if what == "all" || what == "load" {
        section("Load: a sustained rate through the local pipeline");
        sluice_e2e::load::bench();
    }
    if what == "all" || what == "audiences" {
        section("Audiences");
        if std::env::var_os("SLUICE_BENCH_SKIP_LATENCY").is_none() {
            audience_latency(50).await;
        }
        // `SLUICE_BENCH_EVENTS` (default 5,000) events per configuration.
        let events = std::env::var("SLUICE_BENCH_EVENTS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(5000);
        audience_cost(events).await;
    }
}
