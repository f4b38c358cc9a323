//! Vendor destinations end to end on workerd: events posted over real HTTP
//! go through the real pipeline (collector, Queue, dedup shards, D1, fan-out,
//! the deliveries Queue, the vendor sink) to local stubs of Meta's
//! Conversions API and GA4's Measurement Protocol, which check every request
//! against the vendor's documented shape and answer as the vendor does.
//!
//! "Nothing more arrived" is never a sleep: a sentinel event sent after (or
//! in the same request as) what must not arrive goes through the same path,
//! and the counts are read once it is there.
#![allow(clippy::unwrap_used)] // test code: a panic is a failed test

use serde_json::{json, Value};
use sluice_e2e::stores::{once, tally};
use sluice_e2e::{eventually, Answer, Browser, Stack, Vendor, VendorStub};
use std::time::Duration;

const CHROME: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36";
const META_TOKEN: &str = "e2e-meta-token";
const GA4_SECRET: &str = "e2e-ga4-secret";
const PIXEL: &str = "1234567890";
const WAIT: Duration = Duration::from_secs(60);

/// A stack whose demo source feeds `meta` (Meta CAPI) and `ga4` (GA4 MP),
/// each pointed at its stub. The source stores events whatever their
/// consent (`collect_requires: ["necessary"]`), so a refused purpose is
/// decided where the destinations are chosen, not at the door.
fn start(meta: &VendorStub, ga4: &VendorStub) -> Stack {
    let retry = json!({"initial_delay_s": 1, "max_delay_s": 2, "max_attempts": 5});
    let destinations = json!([
        {"name": "meta", "kind": "meta_capi", "retry": retry,
         "settings": {"pixel_id": PIXEL, "access_token_var": "META_ACCESS_TOKEN",
                      "test_event_code": "TEST4242", "endpoint_url": meta.base_url()}},
        {"name": "ga4", "kind": "ga4", "retry": retry,
         "settings": {"measurement_id": "G-E2ETEST", "api_secret_var": "GA4_API_SECRET",
                      "endpoint_url": ga4.base_url()}}
    ]);
    let sources = json!([{"name": "demo", "write_key": "demo-write-key", "allowed_origins": [],
                          "consent": {"regime": "opt_in", "collect_requires": ["necessary"]},
                          "destinations": ["meta", "ga4"]}]);
    Stack::start_with(&[
        ("SLUICE_SOURCES", &sources.to_string()),
        ("SLUICE_DESTINATIONS", &destinations.to_string()),
        ("META_ACCESS_TOKEN", META_TOKEN),
        ("GA4_API_SECRET", GA4_SECRET),
    ])
}

/// A `Product Viewed` from the shop, with these consent categories.
fn event(id: &str, consent: &[(&str, &str)]) -> Value {
    let categories: serde_json::Map<String, Value> = consent
        .iter()
        .map(|(p, s)| ((*p).to_owned(), json!(s)))
        .collect();
    json!({"type": "track", "messageId": id, "anonymousId": "visitor-1", "event": "Product Viewed",
           "properties": {"product_id": id, "price": 12.5, "currency": "EUR"},
           "context": {"page": {"url": "https://shop.example.com/p/1"},
                       "cookies": {"_ga": "GA1.1.1111111111.1764500000"},
                       "consent": {"categories": categories, "source": "explicit"}}})
}

const BOTH: [(&str, &str); 2] = [("analytics", "granted"), ("marketing", "granted")];
const NO_MARKETING: [(&str, &str); 2] = [("analytics", "granted"), ("marketing", "denied")];
const NO_ANALYTICS: [(&str, &str); 2] = [("analytics", "denied"), ("marketing", "granted")];

/// POST one batch (one request to the collector); every event accepted.
fn post(stack: &Stack, events: Vec<Value>) {
    let n = events.len();
    let (status, body) = stack.post_json(
        "/v1/batch?writeKey=demo-write-key",
        &[("user-agent", CHROME)],
        &json!({ "batch": events }),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["accepted"], n, "{body}");
}

/// Wait until every id of `ids` was delivered to the stub (answered 2xx).
async fn delivered(stub: &VendorStub, ids: &[&str]) {
    let what = format!("{:?} to deliver {ids:?}", stub.vendor);
    eventually(&what, WAIT, || async {
        let got = stub.delivered_ids();
        ids.iter()
            .all(|id| got.iter().any(|g| g == id))
            .then_some(())
    })
    .await;
}

/// Every request the stub got had the vendor's documented shape.
fn assert_documented_shape(stub: &VendorStub) {
    for r in stub.received() {
        assert!(
            r.violations.is_empty(),
            "{:?} got a request outside its documented shape: {:#?}\n{:#}",
            stub.vendor,
            r.violations,
            r.body
        );
    }
}

/// The ids of each request (sorted: the pipeline keeps no order within a
/// batch, its dedup shards group by id), in the order the requests arrived.
fn requests(stub: &VendorStub) -> Vec<Vec<String>> {
    stub.received()
        .iter()
        .map(|r| {
            let mut ids = r.event_ids(stub.vendor);
            ids.sort();
            ids
        })
        .collect()
}

/// Wait for the counter to reach `n` (it is written just after the vendor
/// answered), then check it is exactly `n`.
async fn counted(stack: &Stack, name: &str, n: i64) {
    let got = eventually(&format!("counter {name}"), WAIT, || async {
        let c = stack.counter(name);
        (c >= n).then_some(c)
    })
    .await;
    assert_eq!(got, n, "counter {name}");
}

fn ids(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

#[tokio::test]
async fn consented_events_reach_meta_and_ga4_in_one_request_each_carrying_their_message_ids() {
    let meta = VendorStub::start(Vendor::Meta, Answer::Success);
    let ga4 = VendorStub::start(Vendor::Ga4, Answer::Success);
    let stack = start(&meta, &ga4);
    let batch = ["ok-1", "ok-2", "ok-3", "ok-4", "ok-5"];
    post(&stack, batch.iter().map(|id| event(id, &BOTH)).collect());
    delivered(&meta, &batch).await;
    delivered(&ga4, &batch).await;
    // The sentinel: a later request through the same path. Once it is
    // there, anything else the first batch caused would be there too.
    post(&stack, vec![event("ok-sentinel", &BOTH)]);
    delivered(&meta, &["ok-sentinel"]).await;
    delivered(&ga4, &["ok-sentinel"]).await;

    assert_documented_shape(&meta);
    assert_documented_shape(&ga4);
    let expected = vec![ids(&batch), ids(&["ok-sentinel"])];
    assert_eq!(
        requests(&meta),
        expected,
        "Meta: one request for the batch (event_id = messageId), one for the sentinel"
    );
    assert_eq!(
        requests(&ga4),
        expected,
        "GA4: one request for the batch (params.event_id = messageId), one for the sentinel"
    );

    // What the vendors were sent, beyond the shape: Meta's access token in
    // the query, the standard event, the browser fields unhashed; GA4's
    // credentials in the query, the client id from `_ga`, the consent signals.
    let m = &meta.received()[0];
    assert_eq!(
        m.target,
        format!("/v24.0/{PIXEL}/events?access_token={META_TOKEN}")
    );
    assert_eq!(m.body["test_event_code"], "TEST4242");
    let first = &m.body["data"][0];
    assert_eq!(first["event_name"], "ViewContent");
    assert_eq!(first["action_source"], "website");
    assert_eq!(first["event_source_url"], "https://shop.example.com/p/1");
    assert_eq!(first["user_data"]["client_user_agent"], CHROME);
    assert_eq!(first["custom_data"]["currency"], "EUR");
    let g = &ga4.received()[0];
    assert_eq!(
        g.target,
        format!("/mp/collect?measurement_id=G-E2ETEST&api_secret={GA4_SECRET}")
    );
    assert_eq!(g.body["client_id"], "1111111111.1764500000");
    assert_eq!(
        g.body["consent"],
        json!({"ad_user_data": "GRANTED", "ad_personalization": "DENIED"})
    );
    assert_eq!(g.body["events"][0]["name"], "view_item");
    assert!(
        m.status == 200 && g.status == 204,
        "the documented success answers"
    );
    counted(&stack, "delivered_meta", 6).await;
    counted(&stack, "delivered_ga4", 6).await;
}

#[tokio::test]
async fn refused_consent_sends_nothing_to_meta_or_ga4() {
    let meta = VendorStub::start(Vendor::Meta, Answer::Success);
    let ga4 = VendorStub::start(Vendor::Ga4, Answer::Success);
    let stack = start(&meta, &ga4);
    // Marketing refused: not for Meta (an advertising destination); analytics
    // refused: not for GA4. Each still goes to the other vendor.
    post(
        &stack,
        vec![
            event("no-mkt-1", &NO_MARKETING),
            event("no-mkt-2", &NO_MARKETING),
            event("no-ana-1", &NO_ANALYTICS),
            event("no-ana-2", &NO_ANALYTICS),
        ],
    );
    // More refused events in the same request as the sentinel: the sentinel
    // cannot arrive without them if consent were not checked.
    post(
        &stack,
        vec![
            event("no-mkt-3", &NO_MARKETING),
            event("no-ana-3", &NO_ANALYTICS),
            event("sentinel", &BOTH),
        ],
    );
    delivered(&meta, &["no-ana-1", "no-ana-2", "no-ana-3", "sentinel"]).await;
    delivered(&ga4, &["no-mkt-1", "no-mkt-2", "no-mkt-3", "sentinel"]).await;

    assert_documented_shape(&meta);
    assert_documented_shape(&ga4);
    assert_eq!(
        tally(meta.delivered_ids()),
        once(&["no-ana-1", "no-ana-2", "no-ana-3", "sentinel"]),
        "Meta got no event whose marketing consent was refused"
    );
    assert_eq!(
        tally(ga4.delivered_ids()),
        once(&["no-mkt-1", "no-mkt-2", "no-mkt-3", "sentinel"]),
        "GA4 got no event whose analytics consent was refused"
    );
    // Not in any form either (a renamed or nested copy would still be a leak).
    for (stub, refused) in [
        (&meta, ["no-mkt-1", "no-mkt-2", "no-mkt-3"]),
        (&ga4, ["no-ana-1", "no-ana-2", "no-ana-3"]),
    ] {
        for r in stub.received() {
            let body = r.body.to_string();
            for id in refused {
                assert!(!body.contains(id), "{id} reached {:?}: {body}", stub.vendor);
            }
        }
    }
    // They went through the pipeline (stored, as the source allows) and
    // were withheld where the destinations are chosen, each counted once.
    let stored = stack.d1("SELECT COUNT(*) AS n FROM events");
    assert_eq!(stored[0]["n"], 7, "every event stored: {stored:?}");
    counted(&stack, "withheld_meta", 3).await;
    counted(&stack, "withheld_ga4", 3).await;
}

#[tokio::test]
async fn a_duplicate_send_reaches_meta_and_ga4_once_with_the_same_event_id() {
    let meta = VendorStub::start(Vendor::Meta, Answer::Success);
    let ga4 = VendorStub::start(Vendor::Ga4, Answer::Success);
    let stack = start(&meta, &ga4);
    post(&stack, vec![event("dup-1", &BOTH)]);
    delivered(&meta, &["dup-1"]).await;
    delivered(&ga4, &["dup-1"]).await;
    eventually("dup-1 committed as seen", WAIT, || async {
        stack
            .dedup_seen()
            .iter()
            .any(|r| r["id"] == "dup-1" && r["done"].as_i64() == Some(1))
            .then_some(())
    })
    .await;
    // The same event again in another request (a retry, a second tab), with
    // a sentinel beside it: had the copy not been dropped, it would travel
    // with the sentinel, in the same request to each vendor.
    post(
        &stack,
        vec![event("dup-1", &BOTH), event("dup-sentinel", &BOTH)],
    );
    delivered(&meta, &["dup-sentinel"]).await;
    delivered(&ga4, &["dup-sentinel"]).await;

    assert_documented_shape(&meta);
    assert_documented_shape(&ga4);
    let expected = vec![ids(&["dup-1"]), ids(&["dup-sentinel"])];
    assert_eq!(
        requests(&meta),
        expected,
        "Meta: one request carrying event_id dup-1"
    );
    assert_eq!(
        requests(&ga4),
        expected,
        "GA4: one request carrying event_id dup-1"
    );
    counted(&stack, "duplicates_dropped", 1).await;
}

#[tokio::test]
async fn a_rate_limited_vendor_gets_the_batch_again_after_retry_after_and_keeps_one_copy() {
    let throttle = Answer::ThrottleFirst {
        n: 1,
        retry_after_s: 1,
    };
    let meta = VendorStub::start(Vendor::Meta, throttle);
    let ga4 = VendorStub::start(Vendor::Ga4, throttle);
    let stack = start(&meta, &ga4);
    post(&stack, vec![event("rl-1", &BOTH), event("rl-2", &BOTH)]);
    delivered(&meta, &["rl-1", "rl-2"]).await;
    delivered(&ga4, &["rl-1", "rl-2"]).await;
    // A sentinel after the retry landed: no further copy is on its way.
    post(&stack, vec![event("rl-sentinel", &BOTH)]);
    delivered(&meta, &["rl-sentinel"]).await;
    delivered(&ga4, &["rl-sentinel"]).await;

    for stub in [&meta, &ga4] {
        assert_documented_shape(stub);
        let statuses: Vec<u16> = stub.received().iter().map(|r| r.status).collect();
        let ok = if stub.vendor == Vendor::Meta {
            200
        } else {
            204
        };
        assert_eq!(
            statuses,
            [429, ok, ok],
            "{:?}: throttled, retried, then the sentinel",
            stub.vendor
        );
        assert_eq!(
            requests(stub),
            vec![
                ids(&["rl-1", "rl-2"]),
                ids(&["rl-1", "rl-2"]),
                ids(&["rl-sentinel"])
            ]
        );
        assert_eq!(
            tally(stub.delivered_ids()),
            once(&["rl-1", "rl-2", "rl-sentinel"])
        );
    }
    counted(&stack, "retried_meta", 2).await;
    counted(&stack, "retried_ga4", 2).await;
    counted(&stack, "delivered_meta", 3).await;
    counted(&stack, "delivered_ga4", 3).await;
    assert_eq!(stack.counter("dead_lettered_meta"), 0);
}

#[tokio::test]
async fn the_debugger_shows_each_destinations_deliveries_for_the_last_hour_and_day() {
    let meta = VendorStub::start(
        Vendor::Meta,
        Answer::ThrottleFirst {
            n: 1,
            retry_after_s: 1,
        },
    );
    let ga4 = VendorStub::start(Vendor::Ga4, Answer::Refuse);
    let stack = start(&meta, &ga4);
    post(
        &stack,
        vec![
            event("ov-1", &BOTH),
            event("ov-2", &BOTH),
            event("ov-no-mkt", &NO_MARKETING),
            event("ov-no-ana", &NO_ANALYTICS),
        ],
    );
    // Meta: three events throttled once, then delivered; one withheld.
    // GA4: three events refused for good (dead-lettered); one withheld.
    delivered(&meta, &["ov-1", "ov-2", "ov-no-ana"]).await;
    counted(&stack, "delivered_meta", 3).await;
    counted(&stack, "dead_lettered_ga4", 3).await;
    counted(&stack, "withheld_meta", 1).await;
    counted(&stack, "withheld_ga4", 1).await;

    let (status, o) = stack.admin("GET", "/admin/v1/deliveries", "dev-admin-token", None);
    assert_eq!(status, 200, "{o}");
    let dest = |name: &str| {
        o["destinations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no {name} in {o:#}"))
    };
    let (m, g) = (dest("meta"), dest("ga4"));
    assert_eq!(m["kind"], "meta_capi");
    for window in ["hour", "day"] {
        let counts = |d: &Value| {
            [
                "delivered",
                "retrying",
                "withheld",
                "deadLettered",
                "skipped",
            ]
            .map(|k| d[window][k].as_i64().unwrap())
        };
        assert_eq!(counts(&m), [3, 3, 1, 0, 0], "meta {window}: {m:#}");
        assert_eq!(counts(&g), [0, 0, 1, 3, 0], "ga4 {window}: {g:#}");
    }
    // Delivered after a throttled attempt and a Retry-After of 1 s.
    let latency = m["hour"]["latencyMsMax"].as_i64().unwrap();
    assert!(latency >= 1000, "meta latency {latency} ms: {m:#}");
    assert!(m["hour"]["latencyMsAvg"].as_i64().unwrap() <= latency);
    assert_eq!(g["hour"]["latencyMsAvg"], Value::Null, "nothing delivered");
    let error = |d: &Value| d["lastError"]["message"].as_str().unwrap_or("").to_owned();
    assert!(error(&m).contains("meta_rate_limited"), "{m:#}");
    assert!(error(&g).contains("ga4_http_error"), "{g:#}");
    let (refused, _) = stack.admin("GET", "/admin/v1/deliveries", "not-a-token", None);
    assert_eq!(refused, 401, "the overview needs an admin token");

    // The same overview in the debugger page, in Chromium.
    let browser = Browser::start().await;
    browser.client.goto(&stack.url("/debugger")).await.unwrap();
    browser
        .js("document.getElementById('token').value = 'dev-admin-token'; document.querySelector('#connect button').click();")
        .await;
    let row = |name: &str, window: &str| {
        format!(
            "return Array.from(document.querySelectorAll('tr[data-destination=\"{name}\"][data-window=\"{window}\"] td')).map(function (td) {{ return td.textContent; }})"
        )
    };
    let cells = eventually("the debugger's delivery overview", WAIT, || async {
        let cells = browser.js(&row("meta", "hour")).await;
        (cells.as_array().is_some_and(|c| c.len() == 9)).then_some(cells)
    })
    .await;
    assert_eq!(cells[0], "meta (meta_capi)");
    assert_eq!(cells[1], "last hour");
    assert_eq!(
        cells.as_array().unwrap()[2..7],
        [json!("3"), json!("3"), json!("1"), json!("0"), json!("0")]
    );
    assert!(
        cells[8].as_str().unwrap().contains("meta_rate_limited"),
        "{cells}"
    );
    let ga4_day = browser.js(&row("ga4", "day")).await;
    assert_eq!(ga4_day[1], "last day");
    assert_eq!(
        ga4_day.as_array().unwrap()[2..7],
        [json!("0"), json!("0"), json!("1"), json!("3"), json!("0")]
    );
    assert_eq!(ga4_day[7], "—", "no latency without a delivery");
}
