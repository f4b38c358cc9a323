//! The browser SDK in real headless Chromium against the worker on workerd.
#![allow(clippy::unwrap_used)] // test code: a panic is a failed test

use serde_json::{json, Value};
use sluice_e2e::{eventually, Browser, Stack};
use std::time::Duration;

async fn open(stack: &Stack, browser: &Browser, consent: bool) {
    browser
        .client
        .goto(&stack.url("/"))
        .await
        .expect("open the demo page");
    browser.wait_for_sdk().await;
    let choice = if consent { "true" } else { "false" };
    browser
        .js(&format!(
            "sluice.consent.set({{ analytics: {choice} }}); return true"
        ))
        .await;
    if consent {
        // The page's first events (its page view, the consent change) are
        // answered before a test goes on: a request that going offline cuts
        // may already have reached the collector, and sending its events
        // again is the SDK's at-least-once retry (the collector drops the
        // copy), which `second_copies` would count against the SDK.
        eventually(
            "the page's first events answered",
            Duration::from_secs(20),
            || async {
                (browser
                    .js("const s = sluice.stats(); return s.queued + s.inflight")
                    .await
                    == json!(0))
                .then_some(())
            },
        )
        .await;
    }
}

/// How many events named `<prefix>…` the origin's stored queues hold (every tab's).
fn held(prefix: &str) -> String {
    format!(
        "return Object.keys(localStorage).filter(k => k.startsWith('sluice:q:'))
    .flatMap(k => JSON.parse(localStorage.getItem(k))).filter(e => (e.event || '').startsWith('{prefix}')).length"
    )
}

/// Script that records in `window.__stored`, as each upload is handed to
/// `fetch`, how many `<prefix>…` events the stored queues hold: from a
/// microtask queued by `fetch`, which runs right after the host's task that
/// reports the request wired, before any timer.
fn record_stored_at_each_upload(prefix: &str) -> String {
    let stored = held(prefix).replacen("return ", "", 1);
    format!(
        "window.__stored = []; const f = window.fetch;
         window.fetch = function (url) {{ const r = f.apply(this, arguments);
           if (String(url).includes('/v1/batch')) queueMicrotask(() => window.__stored.push({stored}));
           return r; }};"
    )
}

/// Take the current tab offline, track `n` events named `<prefix><i>`, and
/// wait until its stored queue holds them.
async fn track_offline(browser: &Browser, prefix: &str, n: usize) {
    browser.offline(true).await;
    browser
        .js(&format!(
            "for (let i = 0; i < {n}; i++) sluice.track('{prefix}' + i, {{ i }}); return true"
        ))
        .await;
    let script = held(prefix);
    eventually(
        &format!("the {n} `{prefix}` events stored while offline"),
        Duration::from_secs(20),
        || async { (browser.js(&script).await == json!(n)).then_some(()) },
    )
    .await;
}

/// A sentinel straight to the collector, waited for in D1.
async fn sentinel(stack: &Stack, id: &str) {
    post_sentinel(stack, id);
    eventually("the sentinel in D1", Duration::from_secs(30), || async {
        (!stack
            .d1(&format!("SELECT 1 FROM events WHERE message_id = '{id}'"))
            .is_empty())
        .then_some(())
    })
    .await;
}

fn post_sentinel(stack: &Stack, id: &str) {
    let (status, _) = stack.post_json(
        "/v1/batch?writeKey=demo-write-key",
        &[],
        &json!({"batch": [{"type": "track", "messageId": id, "anonymousId": "s", "event": "Sentinel"}]}),
    );
    assert_eq!(status, 200);
}

/// Second copies the worker has received so far, counted at the server: the
/// pipeline counts every copy of a messageId after the first where it drops
/// it (`duplicates_in_batch` in one consumer batch, `duplicates_dropped` at
/// the dedup claim; a copy that met the first in flight is retried and then
/// dropped, counted once). Read after a sentinel sent twice through the
/// collector: the sentinel's own second copy is waited for and not counted,
/// so every copy that arrived before it has been counted.
async fn second_copies(stack: &Stack, id: &str) -> i64 {
    let total = || stack.counter("duplicates_in_batch") + stack.counter("duplicates_dropped");
    sentinel(stack, id).await;
    let before = total();
    post_sentinel(stack, id);
    eventually(
        "the sentinel's second copy counted",
        Duration::from_secs(30),
        || async { (total() > before).then_some(()) },
    )
    .await;
    total() - 1
}

/// Wait until no stored queue holds `<prefix>…` events and the current tab's
/// queue is empty: every tab that could send them has sent them.
async fn drained(browser: &Browser, prefix: &str) {
    let script = held(prefix);
    eventually(
        &format!("no stored queue holding `{prefix}` events"),
        Duration::from_secs(30),
        || async { (browser.js(&script).await == json!(0)).then_some(()) },
    )
    .await;
    eventually("the queue to drain", Duration::from_secs(20), || async {
        (browser.js("return sluice.stats().queued").await == json!(0)).then_some(())
    })
    .await;
}

async fn rows_named(stack: &Stack, like: &str, expect: usize) -> Vec<Value> {
    let sql =
        format!("SELECT message_id, event FROM events WHERE event LIKE '{like}' ORDER BY event");
    eventually(
        &format!("{expect} `{like}` events in D1"),
        Duration::from_secs(45),
        || async {
            let r = stack.d1(&sql);
            (r.len() >= expect).then_some(r)
        },
    )
    .await
}

fn ids(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|i| i.as_str().unwrap().to_owned())
        .collect()
}

/// Open the demo page in a new tab and make it the current one.
async fn new_tab(stack: &Stack, browser: &Browser) -> fantoccini::wd::WindowHandle {
    let c = &browser.client;
    let tab = c.new_window(true).await.unwrap().handle;
    c.switch_to_window(tab.clone()).await.unwrap();
    c.goto(&stack.url("/")).await.unwrap();
    browser.wait_for_sdk().await;
    tab
}

#[tokio::test]
async fn offline_then_online_delivers_everything_exactly_once() {
    let stack = Stack::start();
    let browser = Browser::start().await;
    open(&stack, &browser, true).await;
    track_offline(&browser, "Offline ", 5).await;
    // A sentinel through the collector: once stored, anything the page had
    // managed to send before it would be stored too.
    sentinel(&stack, "offline-sentinel").await;
    assert!(
        stack
            .d1("SELECT 1 FROM events WHERE event LIKE 'Offline %'")
            .is_empty(),
        "nothing arrived while offline"
    );
    browser.offline(false).await;
    let rows = rows_named(&stack, "Offline %", 5).await;
    drained(&browser, "Offline ").await;
    assert_eq!(rows.len(), 5);
    assert_eq!(
        second_copies(&stack, "offline-dup").await,
        0,
        "the worker received each event once"
    );
}

/// Sites track on their way out (time on page, "Page Left") from their own
/// `pagehide` or `visibilitychange` listeners, added after the SDK's: those
/// events go too, also from a `window` listener that runs after the SDK's
/// last beacon (an event made while the page is hidden goes by beacon as it
/// is made).
#[tokio::test]
async fn events_tracked_in_the_pages_own_leaving_listeners_are_delivered() {
    let stack = Stack::start();
    let browser = Browser::start().await;
    open(&stack, &browser, true).await;
    drained(&browser, "Page Left").await;
    browser
        .js(
            "addEventListener('pagehide', () => sluice.track('Page Left (pagehide)'));
             document.addEventListener('visibilitychange', () =>
               document.visibilityState == 'hidden' && sluice.track('Page Left (document)'));
             addEventListener('visibilitychange', () =>
               document.visibilityState == 'hidden' && sluice.track('Page Left (window)'));
             location.href = '/sluice/v1/manifest.json'; return true",
        )
        .await;
    let rows = rows_named(&stack, "Page Left (%", 3).await;
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert_eq!(second_copies(&stack, "page-left-dup").await, 0);
}

#[tokio::test]
async fn navigating_away_right_after_track_still_delivers() {
    let stack = Stack::start();
    let browser = Browser::start().await;
    open(&stack, &browser, true).await;
    browser.js("sluice.track('Leaving Now', { why: 'test' }); location.href = '/sluice/v1/manifest.json'; return true").await;
    let rows = rows_named(&stack, "Leaving Now", 1).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(second_copies(&stack, "leaving-dup").await, 0);
}

#[tokio::test]
async fn two_tabs_do_not_double_send() {
    let stack = Stack::start();
    let browser = Browser::start().await;
    let c = &browser.client;
    let tab_a = c.window().await.unwrap();
    open(&stack, &browser, true).await;
    track_offline(&browser, "Tab A ", 3).await;

    let tab_b = new_tab(&stack, &browser).await;
    browser.js("sluice.track('Tab B 0'); return true").await;
    rows_named(&stack, "Tab B %", 1).await;
    // Tab B tried to adopt A's queue when it loaded (and tries every few
    // seconds). Web Locks grant requests for one name in order: once this
    // probe is told A's lock is taken, B's earlier tries were told so too.
    let probe = "const k = Object.keys(localStorage).find(k => k.startsWith('sluice:q:')
        && JSON.parse(localStorage.getItem(k)).some(e => (e.event || '').startsWith('Tab A ')));
        return navigator.locks.request(k, { ifAvailable: true }, l => l === null)";
    assert_eq!(
        browser.js(probe).await,
        json!(true),
        "tab A holds its queue's lock"
    );
    assert_eq!(
        browser.js(&held("Tab A ")).await,
        json!(3),
        "tab B left a live tab's queue alone"
    );

    // Tab A closes: its stored queue is orphaned and tab B delivers it, once.
    c.switch_to_window(tab_a).await.unwrap();
    c.close_window().await.unwrap();
    c.switch_to_window(tab_b).await.unwrap();
    let rows = rows_named(&stack, "Tab A %", 3).await;
    drained(&browser, "Tab A ").await;
    assert_eq!(rows.len(), 3);
    assert_eq!(second_copies(&stack, "tabs-dup").await, 0);
}

/// Once `fetch` has a request, its events leave the stored queue before
/// anything else runs: a timer set then may never fire (the page is being
/// left), and the tab that adopts the stored queue, or the next page, would
/// send them again. (Seen: a tab closed while offline came back online as
/// it closed, sent its queue, and the tab that adopted it sent it again.)
#[tokio::test]
async fn a_wired_requests_events_leave_the_stored_queue_in_the_same_task() {
    let stack = Stack::start();
    let browser = Browser::start().await;
    open(&stack, &browser, true).await;
    drained(&browser, "Wired ").await;
    browser
        .js(&format!(
            "{} for (let i = 0; i < 3; i++) sluice.track('Wired ' + i); return true",
            record_stored_at_each_upload("Wired ")
        ))
        .await;
    let rows = rows_named(&stack, "Wired %", 3).await;
    assert_eq!(rows.len(), 3);
    let seen = browser.js("return window.__stored").await;
    assert_eq!(
        seen,
        json!([0]),
        "the stored queue as each request was wired: {seen}"
    );
}

/// The same for a large stored queue (whose writes are otherwise at most
/// once a second, and one is due: an event made just before) once the page
/// is being left: a tab closing offline that comes back online as it closes
/// sends its queue, and must not leave it stored for the tab that adopts it.
#[tokio::test]
async fn a_request_wired_while_the_page_is_left_leaves_a_large_stored_queue_at_once() {
    let stack = Stack::start();
    let browser = Browser::start().await;
    open(&stack, &browser, true).await;
    drained(&browser, "Leaving ").await;
    track_offline(&browser, "Leaving ", 250).await;
    browser
        .js(&format!(
            "{} sluice.track('Leaving 250'); dispatchEvent(new Event('pagehide')); return true",
            record_stored_at_each_upload("Leaving ")
        ))
        .await;
    assert_eq!(
        browser.js(&held("Leaving ")).await,
        json!(251),
        "offline, the page being left keeps its queue stored"
    );
    browser.offline(false).await;
    let rows = rows_named(&stack, "Leaving %", 251).await;
    assert_eq!(rows.len(), 251);
    let seen = browser.js("return window.__stored").await;
    assert_eq!(
        seen.get(0),
        Some(&json!(0)),
        "the stored queue as the first request was wired: {seen}"
    );
}

/// Tab A is online and its request is on the wire (slow network) when the
/// tab closes. The browser completes that `keepalive` request; tab B, which
/// adopts A's stored queue, must not send those events again.
#[tokio::test]
async fn a_tab_closed_with_its_request_in_flight_is_not_sent_again() {
    let stack = Stack::start();
    let browser = Browser::start().await;
    let c = &browser.client;
    let tab_a = c.window().await.unwrap();
    open(&stack, &browser, true).await;
    eventually(
        "tab A's queue to drain",
        Duration::from_secs(20),
        || async { (browser.js("return sluice.stats().queued").await == json!(0)).then_some(()) },
    )
    .await;
    let tab_b = new_tab(&stack, &browser).await;
    c.switch_to_window(tab_a).await.unwrap();
    browser.cdp("Network.enable", json!({})).await;
    browser
        .cdp(
            "Network.emulateNetworkConditions",
            json!({"offline": false, "latency": 3000, "downloadThroughput": -1, "uploadThroughput": -1}),
        )
        .await;
    // Count the uploads handed to the browser (after gzip, before the answer).
    browser
        .js("window.__uploads = 0; const f = window.fetch; window.fetch = function (url) { if (String(url).includes('/v1/batch')) window.__uploads++; return f.apply(this, arguments); };
             for (let i = 0; i < 3; i++) sluice.track('In Flight ' + i); sluice.flush(); return true")
        .await;
    eventually(
        "tab A's request on the wire",
        Duration::from_secs(10),
        || async {
            (browser
                .js("return window.__uploads > 0 && sluice.stats().inflight > 0")
                .await
                == json!(true))
            .then_some(())
        },
    )
    .await;
    c.close_window().await.unwrap();
    c.switch_to_window(tab_b).await.unwrap();
    let rows = rows_named(&stack, "In Flight %", 3).await;
    drained(&browser, "In Flight ").await;
    assert_eq!(rows.len(), 3);
    assert_eq!(
        second_copies(&stack, "inflight-dup").await,
        0,
        "the closed tab's request in flight was not sent again"
    );
}

/// Two live tabs race to adopt a closed tab's stored queue: one takes it.
#[tokio::test]
async fn two_tabs_racing_to_adopt_a_closed_tabs_queue_send_it_once() {
    let stack = Stack::start();
    let browser = Browser::start().await;
    let c = &browser.client;
    let tab_a = c.window().await.unwrap();
    open(&stack, &browser, true).await;
    track_offline(&browser, "Orphan ", 3).await;
    let tab_b = new_tab(&stack, &browser).await;
    let tab_c = new_tab(&stack, &browser).await;
    c.switch_to_window(tab_a).await.unwrap();
    c.close_window().await.unwrap();
    c.switch_to_window(tab_c).await.unwrap();
    let rows = rows_named(&stack, "Orphan %", 3).await;
    drained(&browser, "Orphan ").await;
    c.switch_to_window(tab_b).await.unwrap();
    drained(&browser, "Orphan ").await;
    assert_eq!(rows.len(), 3);
    assert_eq!(second_copies(&stack, "race-dup").await, 0);
}

/// Offline, events are stored; the page reloads as the network comes back
/// (the `online` send may be on the wire when the page goes): the reloaded
/// page adopts what is left and every event reaches the worker once.
#[tokio::test]
async fn offline_then_reload_then_online_sends_each_event_once() {
    let stack = Stack::start();
    let browser = Browser::start().await;
    open(&stack, &browser, true).await;
    track_offline(&browser, "Reload ", 3).await;
    browser.offline(false).await;
    browser
        .js("window.__before_reload = true; location.reload(); return true")
        .await;
    eventually(
        "the reloaded page's SDK",
        Duration::from_secs(20),
        || async {
            (browser
                .js("return !window.__before_reload && !!(window.sluice && window.sluice.loaded)")
                .await
                == json!(true))
            .then_some(())
        },
    )
    .await;
    let rows = rows_named(&stack, "Reload %", 3).await;
    drained(&browser, "Reload ").await;
    assert_eq!(rows.len(), 3);
    assert_eq!(second_copies(&stack, "reload-dup").await, 0);
}

#[tokio::test]
async fn consent_denied_means_nothing_is_sent_or_stored() {
    let stack = Stack::start();
    let browser = Browser::start().await;
    browser.record_sends().await;
    open(&stack, &browser, false).await;
    browser.js("sluice.track('Denied 1'); sluice.page('Denied Page'); sluice.identify('u-denied', { email: 'x@example.com' }); return true").await;
    assert_eq!(
        browser
            .js("return sluice.consent.get().categories.analytics")
            .await,
        "denied"
    );
    // The sentinel goes the same way: the visitor now consents and the page
    // tracks one more event. Once it is stored, anything the SDK had queued
    // before it would have been sent first.
    browser
        .js("sluice.consent.set({ analytics: true }); sluice.track('SDK Sentinel'); sluice.flush(); return true")
        .await;
    let rows = rows_named(&stack, "SDK Sentinel", 1).await;
    let stored: Vec<String> = stack
        .d1("SELECT event FROM events ORDER BY event")
        .iter()
        .map(|r| r["event"].as_str().unwrap_or("(none)").to_owned())
        .collect();
    assert_eq!(
        stored,
        ["Consent Updated", "SDK Sentinel"],
        "nothing captured while consent was denied is stored"
    );
    let sent = ids(&browser.js("return window.__sent").await);
    assert_eq!(
        sent.len(),
        2,
        "only the consent change and the sentinel left the page: {sent:?}"
    );
    assert!(sent.contains(&rows[0]["message_id"].as_str().unwrap().to_owned()));
}

/// Uploads are gzipped (the browser has `CompressionStream`) and batched:
/// a burst made in one task goes out in a request per 448 KiB (or 500
/// events), not one per event, and every event arrives once.
#[tokio::test]
async fn a_burst_goes_out_gzipped_in_few_requests() {
    let stack = Stack::start();
    let browser = Browser::start().await;
    open(&stack, &browser, true).await;
    browser
        .js("window.__wire = { requests: 0, gzipped: 0 }; const f = window.fetch; window.fetch = function (url, init) { if (String(url).includes('/v1/batch')) { window.__wire.requests++; if (init.headers['content-encoding'] === 'gzip' && init.body instanceof ArrayBuffer) window.__wire.gzipped++; } return f.apply(this, arguments); }; return true")
        .await;
    browser
        .js("for (let i = 0; i < 1000; i++) sluice.track('Gzip Burst', { i, sku: 'MUG-001', name: 'Blue Mug', price: 12, currency: 'EUR' }); return true")
        .await;
    let rows = rows_named(&stack, "Gzip Burst", 1000).await;
    assert_eq!(rows.len(), 1000);
    eventually("the queue to drain", Duration::from_secs(20), || async {
        (browser.js("return sluice.stats().queued").await == json!(0)).then_some(())
    })
    .await;
    assert_eq!(second_copies(&stack, "burst-dup").await, 0);
    let wire = browser.js("return window.__wire").await;
    let requests = wire["requests"].as_u64().unwrap();
    assert_eq!(
        wire["gzipped"],
        json!(requests),
        "every upload gzipped: {wire}"
    );
    // ~1 KB per event before compression and 448 KiB per body: 3 requests,
    // or 4 when the first events left before the rest were made.
    assert!(
        (3..=4).contains(&requests),
        "1,000 events in {requests} requests: {wire}"
    );
}

/// The npm package (`@sluice/sdk`, an ES module for bundlers: dist/npm) works
/// like the snippet: `load` resolves to the API, calls made before consent
/// wait for it, and each event is stored once with the page's ids.
#[tokio::test]
async fn the_npm_es_module_package_delivers_like_the_snippet() {
    let stack = Stack::start();
    let browser = Browser::start().await;
    let c = &browser.client;
    c.goto(&stack.url("/esm.html")).await.unwrap();
    eventually("the ES module to load", Duration::from_secs(20), || async {
        (browser.js("return !!window.sluiceEsm").await == json!(true)).then_some(())
    })
    .await;
    let sent = browser
        .js("const s = window.sluiceEsm;
             const identify = s.identify('esm-user', { plan: 'pro' });
             const track = s.track('ESM Tracked', { n: 1 });
             s.consent.set({ analytics: true });
             return { track, identify, anonymousId: s.anonymousId(), user: s.user().userId,
                      glob: typeof window.sluice }")
        .await;
    assert_eq!(sent["user"], json!("esm-user"), "{sent}");
    assert_eq!(
        sent["glob"],
        json!("undefined"),
        "no snippet global: {sent}"
    );
    // The page view made at load, the identify, the track, and the
    // `Consent Updated` the SDK sends when consent is set.
    let sql = "SELECT type, COALESCE(event, name) AS what, message_id, anonymous_id, user_id
               FROM events ORDER BY type, what";
    let rows = eventually("the four events in D1", Duration::from_secs(45), || async {
        let r = stack.d1(sql);
        (r.len() >= 4).then_some(r)
    })
    .await;
    let anon = &sent["anonymousId"];
    assert!(
        rows.iter()
            .all(|r| &r["anonymous_id"] == anon && r["user_id"] == json!("esm-user")),
        "{rows:?}"
    );
    let seen: Vec<(&Value, &Value)> = rows.iter().map(|r| (&r["type"], &r["what"])).collect();
    assert_eq!(
        seen,
        [
            (&json!("identify"), &Value::Null),
            (&json!("page"), &json!("ES module")),
            (&json!("track"), &json!("Consent Updated")),
            (&json!("track"), &json!("ESM Tracked")),
        ],
        "{rows:?}"
    );
    assert_eq!(rows[0]["message_id"], sent["identify"]);
    assert_eq!(rows[3]["message_id"], sent["track"]);
    assert_eq!(second_copies(&stack, "esm-dup").await, 0);
}

/// The resource timing of the current page's SDK files: `[name, start, response end]`.
const SDK_REQUESTS: &str = r"return performance.getEntriesByType('resource')
    .filter(e => e.name.includes('/sluice/v1/') && /\.(js|wasm)$/.test(e.name))
    .map(e => [e.name.split('/').pop(), e.startTime, e.responseEnd])";

/// The inline snippet starts the Wasm's download at its stable URL beside
/// the loader's (one round trip before the SDK is ready, not two), and the
/// loader uses it only if it is its own build's: a stale one (a loader and
/// a Wasm of two deploys in the cache) makes it fetch its content-hashed
/// file instead.
#[tokio::test]
async fn the_snippet_downloads_the_wasm_beside_the_loader_and_only_this_builds_is_used() {
    let stack = Stack::start();
    let b = Browser::start().await;
    b.client.goto(&stack.url("/")).await.unwrap();
    b.wait_for_sdk().await;
    let requests = b.js(SDK_REQUESTS).await;
    let names: Vec<&str> = requests
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r[0].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "the loader and the Wasm only: {requests}");
    assert!(
        names.contains(&"sluice.js") && names.contains(&"sdk.wasm"),
        "{requests}"
    );
    let at = |name: &str, i: usize| {
        requests
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r[0] == name)
            .unwrap()[i]
            .as_f64()
            .unwrap()
    };
    assert!(
        at("sdk.wasm", 1) < at("sluice.js", 2),
        "the Wasm was requested after the loader had arrived: {requests}"
    );
    // Through workerd: each stable file names its build and is revalidated
    // by its etag (a 304, no body), the Wasm with its hashed name.
    let manifest: Value =
        serde_json::from_slice(&stack.request("GET", "/sluice/v1/manifest.json", &[], b"").1)
            .unwrap();
    for file in ["sdk.wasm", "sluice.js"] {
        let path = format!("/sluice/v1/{file}");
        let (status, headers, body) = stack.request_full("GET", &path, &[], b"");
        let header = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(status, 200, "{file}");
        assert!(!body.is_empty(), "{file}");
        let etag = header("etag").unwrap_or_else(|| panic!("{file} has no etag"));
        if file == "sdk.wasm" {
            let name = manifest["wasm"].as_str().unwrap();
            assert_eq!(header("x-sluice-wasm").as_deref(), Some(name));
            assert_eq!(etag, format!("\"{name}\""));
        }
        let (status, _, body) =
            stack.request_full("GET", &path, &[("If-None-Match", etag.as_str())], b"");
        assert_eq!((status, body.len()), (304, 0), "{file} revalidated");
    }

    // Another build's Wasm at the stable URL: not used (it is not even Wasm).
    b.cdp("Page.enable", json!({})).await;
    b.cdp(
        "Page.addScriptToEvaluateOnNewDocument",
        json!({"source": "const f = window.fetch; window.fetch = function (url) {
            if (String(url).endsWith('/sdk.wasm')) return Promise.resolve(new Response('not this build',
              { headers: { 'content-type': 'application/wasm', 'x-sluice-wasm': 'sdk_bg.0000000000000000.wasm' } }));
            return f.apply(this, arguments); }"}),
    )
    .await;
    b.client.refresh().await.unwrap();
    b.wait_for_sdk().await;
    let requests = b.js(SDK_REQUESTS).await;
    assert!(
        requests
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r[0].as_str().unwrap().starts_with("sdk_bg.")),
        "the loader fetched its own build's Wasm: {requests}"
    );
    b.js("sluice.consent.set({ analytics: true }); sluice.track('Stale Wasm Page'); return true")
        .await;
    let rows = rows_named(&stack, "Stale Wasm Page", 1).await;
    assert_eq!(rows.len(), 1);
}
