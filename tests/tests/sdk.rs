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
}

/// How many `Offline …` events the tab's stored queue holds.
const HELD_OFFLINE: &str = "return Object.keys(localStorage).filter(k => k.startsWith('sluice:q:'))
    .flatMap(k => JSON.parse(localStorage.getItem(k))).filter(e => (e.event || '').startsWith('Offline ')).length";

/// A sentinel straight to the collector, waited for in D1.
async fn sentinel(stack: &Stack, id: &str) {
    let (status, _) = stack.post_json(
        "/v1/batch?writeKey=demo-write-key",
        &[],
        &json!({"batch": [{"type": "track", "messageId": id, "anonymousId": "s", "event": "Sentinel"}]}),
    );
    assert_eq!(status, 200);
    eventually("the sentinel in D1", Duration::from_secs(30), || async {
        (!stack
            .d1(&format!("SELECT 1 FROM events WHERE message_id = '{id}'"))
            .is_empty())
        .then_some(())
    })
    .await;
}

async fn rows_named(stack: &Stack, like: &str, expect: usize) -> Vec<Value> {
    let sql = format!("SELECT message_id, event, COUNT(*) AS copies FROM events WHERE event LIKE '{like}' GROUP BY message_id ORDER BY event");
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

#[tokio::test]
async fn offline_then_online_delivers_everything_exactly_once() {
    let stack = Stack::start();
    let browser = Browser::start().await;
    open(&stack, &browser, true).await;
    browser.offline(true).await;
    browser
        .js("for (let i = 0; i < 5; i++) sluice.track('Offline ' + i, { i }); return true")
        .await;
    // Exactly the five, held in the tab's stored queue.
    eventually(
        "the five events held while offline",
        Duration::from_secs(20),
        || async { (browser.js(HELD_OFFLINE).await == json!(5)).then_some(()) },
    )
    .await;
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
    assert_eq!(rows.len(), 5);
    assert!(rows.iter().all(|r| r["copies"] == 1));
    eventually("the queue to drain", Duration::from_secs(20), || async {
        (browser.js("return sluice.stats().queued").await == json!(0)).then_some(())
    })
    .await;
}

#[tokio::test]
async fn navigating_away_right_after_track_still_delivers() {
    let stack = Stack::start();
    let browser = Browser::start().await;
    open(&stack, &browser, true).await;
    browser.js("sluice.track('Leaving Now', { why: 'test' }); location.href = '/sluice/v1/manifest.json'; return true").await;
    let rows = rows_named(&stack, "Leaving Now", 1).await;
    assert_eq!(rows[0]["copies"], 1);
}

#[tokio::test]
async fn two_tabs_do_not_double_send() {
    let stack = Stack::start();
    let browser = Browser::start().await;
    let c = &browser.client;
    let tab_a = c.window().await.unwrap();
    browser.record_sends().await;
    open(&stack, &browser, true).await;
    browser.offline(true).await;
    browser
        .js("for (let i = 0; i < 3; i++) sluice.track('Tab A ' + i); return true")
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;

    let tab_b = c.new_window(true).await.unwrap().handle;
    c.switch_to_window(tab_b.clone()).await.unwrap();
    browser.record_sends().await;
    c.goto(&stack.url("/")).await.unwrap();
    browser.wait_for_sdk().await;
    browser.js("sluice.track('Tab B 0'); return true").await;
    rows_named(&stack, "Tab B %", 1).await;
    // Tab A is alive (its queue's lock is held): tab B must leave A's events alone.
    tokio::time::sleep(Duration::from_secs(7)).await;
    assert!(
        stack
            .d1("SELECT 1 FROM events WHERE event LIKE 'Tab A %'")
            .is_empty(),
        "tab B took a live tab's queue"
    );
    let sent_b = ids(&browser.js("return window.__sent").await);
    assert!(!sent_b.is_empty());

    // Tab A closes: its stored queue is orphaned and tab B delivers it, once.
    c.switch_to_window(tab_a).await.unwrap();
    c.close_window().await.unwrap();
    c.switch_to_window(tab_b).await.unwrap();
    let rows = rows_named(&stack, "Tab A %", 3).await;
    assert!(rows.iter().all(|r| r["copies"] == 1));
    let sent_b = ids(&browser.js("return window.__sent").await);
    for r in &rows {
        let id = r["message_id"].as_str().unwrap();
        assert_eq!(
            sent_b.iter().filter(|s| *s == id).count(),
            1,
            "{id} sent once by tab B: {sent_b:?}"
        );
    }
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
/// a burst made in one task goes out in a request per ~32 KB of events, not
/// one per event, and every event arrives once.
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
    assert!(rows.iter().all(|r| r["copies"] == 1));
    eventually("the queue to drain", Duration::from_secs(20), || async {
        (browser.js("return sluice.stats().queued").await == json!(0)).then_some(())
    })
    .await;
    let wire = browser.js("return window.__wire").await;
    let requests = wire["requests"].as_u64().unwrap();
    assert_eq!(
        wire["gzipped"],
        json!(requests),
        "every upload gzipped: {wire}"
    );
    // ~1 KB per event before compression and 32 KB per body: ~32 requests.
    assert!(
        (1..=50).contains(&requests),
        "1,000 events in {requests} requests"
    );
}
