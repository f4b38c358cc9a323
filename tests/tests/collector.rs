//! The collector over real HTTP, on the worker in workerd, checked in D1.
#![allow(clippy::unwrap_used)] // test code: a panic is a failed test

use serde_json::{json, Value};
use sluice_e2e::{eventually, root, Stack};
use std::time::Duration;

const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36";
const GOOGLEBOT: &str = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";

fn sources() -> String {
    json!([
        {"name": "demo", "write_key": "demo-write-key", "allowed_origins": [], "consent": {"regime": "opt_out"}},
        {"name": "shop", "write_key": "shop-key", "allowed_origins": ["https://shop.example.com"], "consent": {"regime": "opt_out"}},
        {"name": "strict", "write_key": "strict-key", "allowed_origins": ["*"], "bots": "drop", "consent": {"regime": "opt_in"}},
        {"name": "ads", "write_key": "ads-key", "allowed_origins": ["*"],
         "consent": {"regime": "opt_out", "collect_requires": ["sale_sharing"], "without_consent": "anonymize"}},
        {"name": "ads-drop", "write_key": "ads-drop-key", "allowed_origins": ["*"],
         "consent": {"regime": "opt_out", "collect_requires": ["sale_sharing"], "without_consent": "drop"}}
    ])
    .to_string()
}

fn fixture(path: &str) -> String {
    std::fs::read_to_string(root().join("shared/tests/fixtures").join(path)).unwrap()
}

fn track(id: &str) -> Value {
    json!({"type": "track", "messageId": id, "anonymousId": "anon-e2e", "event": "Order Completed",
           "properties": {"revenue": 9.5}, "timestamp": "2024-05-01T10:00:00.000Z",
           "context": {"page": {"url": "https://shop.example.com/?utm_source=e2e", "referrer": "https://www.bing.com/search?q=mugs"}}})
}

fn batch(events: Value) -> Value {
    json!({"batch": events, "sentAt": "2024-05-01T10:00:01.000Z"})
}

/// Rows of `events` with these message ids, waiting until all `expect` of them are there.
async fn rows(stack: &Stack, ids: &[&str], expect: usize) -> Vec<Value> {
    let list = ids
        .iter()
        .map(|i| format!("'{i}'"))
        .collect::<Vec<_>>()
        .join(",");
    let sql = format!("SELECT * FROM events WHERE message_id IN ({list}) ORDER BY message_id");
    eventually(
        &format!("{expect} of {ids:?} in D1"),
        Duration::from_secs(30),
        || async {
            let r = stack.d1(&sql);
            (r.len() >= expect).then_some(r)
        },
    )
    .await
}

fn context(row: &Value) -> Value {
    serde_json::from_str(row["context"].as_str().unwrap()).unwrap()
}

/// Send a sentinel through the same source and wait for it: everything sent
/// before it has been processed, so anything absent now was not stored.
async fn settle(stack: &Stack, key: &str, id: &str) {
    let (status, _) = stack.post_json(
        &format!("/v1/batch?writeKey={key}"),
        &[("user-agent", CHROME)],
        &batch(json!([track(id)])),
    );
    assert_eq!(status, 200);
    rows(stack, &[id], 1).await;
}

#[tokio::test]
async fn the_collector_accepts_real_client_payloads_and_enforces_its_policies() {
    let stack = Stack::start_with(&[("SLUICE_SOURCES", &sources())]);
    payloads_from_analytics_js_and_rudderstack_land_enriched(&stack).await;
    a_batch_with_one_bad_event_stores_the_good_ones_and_reports_the_bad_one(&stack).await;
    bots_are_flagged_or_dropped_per_policy(&stack).await;
    gpc_strips_or_drops_per_policy(&stack).await;
    an_oversized_batch_gets_413_and_stores_nothing(&stack).await;
    a_full_batch_of_quote_heavy_events_is_accepted_and_stored(&stack).await;
    a_disallowed_origin_gets_403_and_cors_is_right_for_an_allowed_one(&stack).await;
    drops_are_counted(&stack).await;
}

async fn payloads_from_analytics_js_and_rudderstack_land_enriched(stack: &Stack) {
    for (path, file) in [
        ("/v1/t", "analytics-js/track.json"),
        ("/v1/p", "analytics-js/page.json"),
        ("/v1/i", "analytics-js/identify.json"),
    ] {
        let (status, body) = stack.request(
            "POST",
            path,
            &[("content-type", "text/plain"), ("user-agent", CHROME)],
            fixture(file).as_bytes(),
        );
        assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&body));
    }
    // base64("demo-write-key:")
    let auth = "Basic ZGVtby13cml0ZS1rZXk6";
    let (status, _) = stack.request(
        "POST",
        "/v1/track",
        &[
            ("authorization", auth),
            ("content-type", "application/json;charset=UTF-8"),
        ],
        fixture("rudderstack/track.json").as_bytes(),
    );
    assert_eq!(status, 200);
    let (status, body) = stack.request(
        "POST",
        "/beacon/v1/batch?writeKey=demo-write-key",
        &[("content-type", "text/plain")],
        fixture("rudderstack/beacon-batch.json").as_bytes(),
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));

    let ajs_track = "ajs-next-1714557600123-9d2c4b6f-3f7e-4a8b-9c1d-2e3f4a5b6c7d";
    let rs_track = "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0";
    let ids = [
        ajs_track,
        "ajs-next-1714557598001-0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
        "ajs-next-1714557660000-1b2c3d4e-5f6a-4b7c-8d9e-0f1a2b3c4d5e",
        rs_track,
        "2b3c4d5e-6f7a-4b8c-9d0e-1f2a3b4c5d6e",
        "3c4d5e6f-7a8b-4c9d-8e0f-2a3b4c5d6e7f",
    ];
    let stored = rows(stack, &ids, ids.len()).await;
    assert_eq!(stored.len(), 6);
    assert!(stored.iter().all(|r| r["source"] == "demo"));
    let ajs = stored
        .iter()
        .find(|r| r["message_id"] == ajs_track)
        .unwrap();
    assert_eq!(ajs["event"], "Order Completed");
    let ctx = context(ajs);
    assert_eq!(ctx["os"]["name"], "Windows 10", "user agent parsed: {ctx}");
    assert_eq!(ctx["browser"]["name"], "Chrome");
    assert_eq!(ctx["device"]["type"], "desktop");
    assert_eq!(ctx["sluice"]["referrer"]["medium"], "search");
    assert_eq!(
        ctx["campaign"]["source"], "newsletter",
        "the client's campaign is kept"
    );
    assert_eq!(ctx["sluice"]["consent"], "full");
    assert!(ajs["received_at"].as_str().unwrap().ends_with('Z'));
    let extra: Value = serde_json::from_str(ajs["extra"].as_str().unwrap()).unwrap();
    assert_eq!(extra["originalTimestamp"], "2024-05-01T10:00:00.123Z");
    assert!(extra["_metadata"].is_object(), "unknown fields are kept");
    assert_eq!(
        ctx["ip"], "127.0.0.0",
        "the client IP (loopback here), truncated to /24: {ctx}"
    );
    let rs = stored.iter().find(|r| r["message_id"] == rs_track).unwrap();
    assert!(
        rs["user_id"].is_null(),
        "RudderStack's empty userId is stored as absent"
    );
    let rs_ctx = context(rs);
    assert_eq!(rs_ctx["os"]["name"], "iPhone");
    assert_eq!(rs_ctx["campaign"]["clickIds"]["gclid"], "abc123");
}

async fn a_batch_with_one_bad_event_stores_the_good_ones_and_reports_the_bad_one(stack: &Stack) {
    let bad = json!({"type": "track", "messageId": "bad-1", "anonymousId": "a"});
    let (status, body) = stack.post_json(
        "/v1/batch?writeKey=demo-write-key",
        &[("user-agent", CHROME)],
        &batch(json!([track("good-1"), bad, track("good-2")])),
    );
    assert_eq!(status, 200);
    assert_eq!(
        (body["accepted"].clone(), body["rejected"].clone()),
        (json!(2), json!(1))
    );
    assert_eq!(body["results"][1]["errors"][0]["code"], "missing_field");
    assert_eq!(rows(stack, &["good-1", "good-2"], 2).await.len(), 2);
    assert!(stack
        .d1("SELECT 1 FROM events WHERE message_id = 'bad-1'")
        .is_empty());
}

async fn bots_are_flagged_or_dropped_per_policy(stack: &Stack) {
    let (_, flagged) = stack.post_json(
        "/v1/batch?writeKey=demo-write-key",
        &[("user-agent", GOOGLEBOT)],
        &batch(json!([track("bot-flag")])),
    );
    assert_eq!(flagged["accepted"], 1);
    let mut granted = track("bot-drop");
    granted["context"]["consent"] = json!({"categories": {"analytics": "granted"}});
    let (_, dropped) = stack.post_json(
        "/v1/batch?writeKey=strict-key",
        &[("user-agent", GOOGLEBOT)],
        &batch(json!([granted])),
    );
    assert_eq!(dropped["dropped"], 1);
    assert_eq!(dropped["results"][0]["reason"]["code"], "bot");
    let row = rows(stack, &["bot-flag"], 1).await;
    assert_eq!(context(&row[0])["sluice"]["bot"], "known_bot");
    let mut sentinel = track("bot-sentinel");
    sentinel["context"]["consent"] = json!({"categories": {"analytics": "granted"}});
    let (status, _) = stack.post_json(
        "/v1/batch?writeKey=strict-key",
        &[("user-agent", CHROME)],
        &batch(json!([sentinel])),
    );
    assert_eq!(status, 200);
    rows(stack, &["bot-sentinel"], 1).await;
    assert!(
        stack
            .d1("SELECT 1 FROM events WHERE message_id = 'bot-drop'")
            .is_empty(),
        "a dropped bot event is not stored"
    );
}

async fn gpc_strips_or_drops_per_policy(stack: &Stack) {
    let gpc = [("user-agent", CHROME), ("sec-gpc", "1")];
    let (_, stripped) = stack.post_json(
        "/v1/batch?writeKey=ads-key",
        &gpc,
        &batch(json!([track("gpc-strip")])),
    );
    assert_eq!(stripped["accepted"], 1);
    let (_, dropped) = stack.post_json(
        "/v1/batch?writeKey=ads-drop-key",
        &gpc,
        &batch(json!([track("gpc-drop")])),
    );
    assert_eq!(dropped["dropped"], 1);
    assert_eq!(dropped["results"][0]["reason"]["code"], "consent_required");
    let row = rows(stack, &["gpc-strip"], 1).await;
    assert!(
        row[0]["anonymous_id"].is_null() && row[0]["user_id"].is_null(),
        "identifiers stripped: {row:?}"
    );
    let ctx = context(&row[0]);
    assert_eq!(
        ctx["consent"]["gpc"], true,
        "stored with the consent it was collected under"
    );
    assert_eq!(ctx["sluice"]["consent"], "anonymous");
    settle(stack, "ads-drop-key", "gpc-sentinel").await;
    assert!(stack
        .d1("SELECT 1 FROM events WHERE message_id = 'gpc-drop'")
        .is_empty());
}

/// One `track` per id, each with the property `key` set to `value`.
fn padded_tracks(ids: &[String], key: &str, value: &str) -> Vec<Value> {
    ids.iter()
        .map(|id| {
            let mut e = track(id);
            e["properties"][key] = json!(value);
            e
        })
        .collect()
}

async fn an_oversized_batch_gets_413_and_stores_nothing(stack: &Stack) {
    let ids: Vec<String> = (0..40).map(|i| format!("big-{i}")).collect();
    let big = padded_tracks(&ids, "padding", &"x".repeat(15_000));
    let (status, body) = stack.post_json(
        "/v1/batch?writeKey=demo-write-key",
        &[("user-agent", CHROME)],
        &batch(json!(big)),
    );
    assert_eq!(status, 413);
    assert_eq!(body["error"]["code"], "payload_too_large");
    settle(stack, "demo-write-key", "big-sentinel").await;
    assert!(stack
        .d1("SELECT 1 FROM events WHERE message_id LIKE 'big-%' AND message_id != 'big-sentinel'")
        .is_empty());
}

/// 100 events of 2.3 KB, most of it quotes: the collector packs them into
/// messages of up to 120 KB of JSON text, which must also be their size on
/// the Queue (sent as JSON, every quote escaped, each grew past the 128 KB
/// message limit and the request got a 503).
async fn a_full_batch_of_quote_heavy_events_is_accepted_and_stored(stack: &Stack) {
    let ids: Vec<String> = (0..100).map(|i| format!("quotes-{i:03}")).collect();
    let events = padded_tracks(&ids, "said", &"\"".repeat(1_000));
    let (status, body) = stack.post_json(
        "/v1/batch?writeKey=demo-write-key",
        &[("user-agent", CHROME)],
        &batch(json!(events)),
    );
    assert_eq!(status, 200, "{body}");
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    let stored = rows(stack, &ids, 100).await;
    let props: Value = serde_json::from_str(stored[0]["properties"].as_str().unwrap()).unwrap();
    assert_eq!(props["said"], json!("\"".repeat(1_000)));
}

async fn a_disallowed_origin_gets_403_and_cors_is_right_for_an_allowed_one(stack: &Stack) {
    let body = batch(json!([track("origin-bad")])).to_string();
    let (status, _) = stack.request(
        "POST",
        "/v1/batch?writeKey=shop-key",
        &[("origin", "https://evil.example")],
        body.as_bytes(),
    );
    assert_eq!(status, 403);
    let (status, headers, _) = stack.request_full(
        "OPTIONS",
        "/v1/batch",
        &[
            ("origin", "https://shop.example.com"),
            ("access-control-request-method", "POST"),
            (
                "access-control-request-headers",
                "authorization,content-type",
            ),
        ],
        b"",
    );
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(status, 204);
    assert_eq!(
        header("access-control-allow-origin").as_deref(),
        Some("https://shop.example.com")
    );
    assert!(header("access-control-allow-headers")
        .unwrap()
        .contains("authorization"));
    let body = batch(json!([track("origin-ok")])).to_string();
    let (status, headers, _) = stack.request_full(
        "POST",
        "/v1/batch?writeKey=shop-key",
        &[
            ("origin", "https://shop.example.com"),
            ("user-agent", CHROME),
        ],
        body.as_bytes(),
    );
    assert_eq!(status, 200);
    assert!(headers
        .iter()
        .any(|(k, v)| k == "access-control-allow-origin" && v == "https://shop.example.com"));
    rows(stack, &["origin-ok"], 1).await;
    assert!(stack
        .d1("SELECT 1 FROM events WHERE message_id = 'origin-bad'")
        .is_empty());
}

async fn drops_are_counted(stack: &Stack) {
    // Polled until exactly these: one bot drop, one consent drop, nothing else.
    let expected = vec![
        json!({"source": "ads-drop", "name": "dropped_consent_required", "count": 1}),
        json!({"source": "strict", "name": "dropped_bot", "count": 1}),
    ];
    eventually("the drop counters in D1", Duration::from_secs(30), || async {
        let c = stack.d1(
            "SELECT source, name, count FROM counters WHERE name LIKE 'dropped_%' ORDER BY source, name",
        );
        (c == expected).then_some(())
    })
    .await;
}

/// The limit across isolates is Cloudflare's Rate Limiting binding
/// (`RATE_LIMITER` in collector.toml, per write key and client; Miniflare
/// runs the same fixed-window limiter locally). This stack runs
/// collector.toml with the binding's limit lowered from 1,000 to 20 per 10 s
/// and a per-isolate limit far above it: the 21st request of a window is
/// refused by the binding (`Retry-After` = its period), the 20 before it
/// are not.
#[tokio::test]
async fn the_shared_rate_limit_binding_refuses_the_request_past_its_limit() {
    const LIMIT: usize = 20;
    let config = std::fs::read_to_string(root().join("edge-worker/collector.toml")).unwrap();
    let production = "simple = { limit = 1000, period = 10 }";
    assert!(
        config.contains(production),
        "collector.toml's binding changed"
    );
    let sources = json!([{"name": "loud", "write_key": "loud-key", "allowed_origins": ["*"],
        "consent": {"regime": "opt_out"}, "rate_limit": {"requests_per_second": 100000.0, "burst": 100000}}]);
    let stack = Stack::start_configured(
        &[("SLUICE_SOURCES", &sources.to_string())],
        &[],
        &|name, text| {
            if name == "collector.toml" {
                text.replace(
                    production,
                    &format!("simple = {{ limit = {LIMIT}, period = 10 }}"),
                )
            } else {
                text
            }
        },
    );
    let window_ms = 10_000;
    let now_ms = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis()
    };
    // A burst must fall inside one of the limiter's fixed windows: start at
    // the beginning of one, and try again in the next if it ran over.
    for _attempt in 0..3 {
        let wait = window_ms - now_ms() % window_ms;
        tokio::time::sleep(Duration::from_millis(wait as u64 + 50)).await;
        let window = now_ms() / window_ms;
        let send = |i: usize| {
            let body = batch(json!([track(&format!("loud-{window}-{i}"))]));
            stack.request_full(
                "POST",
                "/v1/batch?writeKey=loud-key",
                &[("content-type", "application/json")],
                body.to_string().as_bytes(),
            )
        };
        let statuses: Vec<u16> = (0..LIMIT).map(|i| send(i).0).collect();
        let (status, headers, _) = send(LIMIT);
        if now_ms() / window_ms != window {
            eprintln!(
                "burst ran over its window: {} ms",
                now_ms() - window * window_ms
            );
            continue;
        }
        assert_eq!(
            statuses,
            vec![200; LIMIT],
            "the first {LIMIT} of the window pass"
        );
        assert_eq!(status, 429, "the next is refused");
        let retry_after = headers
            .iter()
            .find(|(k, _)| k == "retry-after")
            .map(|(_, v)| v.as_str());
        assert_eq!(retry_after, Some("10"), "the binding's period");
        return;
    }
    panic!("no burst of {} requests fit in a 10 s window", LIMIT + 1);
}
