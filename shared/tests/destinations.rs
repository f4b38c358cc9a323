//! Golden fixtures of the vendor destinations: Segment events in, the exact
//! requests out (method, URL, headers, body), and the vendors' documented
//! answers classified per event.
//!
//! Each `tests/fixtures/destinations/<vendor>/<case>.json` holds `config`,
//! `now`, `events`, the expected `requests` and `skipped` events, and
//! `answers` with the verdicts they must give. The expected hashes were
//! computed outside this crate (Python's hashlib) from hand-normalised values.
#![cfg(feature = "dest")]
#![allow(clippy::unwrap_used)] // test code: a panic is a failed test

use serde_json::{json, Value};
use sluice_shared::dest::ga4::Ga4;
use sluice_shared::dest::google_ads::GoogleAds;
use sluice_shared::dest::meta::{Meta, MetaConfig};
use sluice_shared::dest::tiktok::TikTok;
use sluice_shared::dest::{shape, Destination, Encoded, HttpAnswer, Verdict};
use sluice_shared::{Event, Timestamp};

fn cases(vendor: &str) -> Vec<(String, Value)> {
    let dir = format!(
        "{}/tests/fixtures/destinations/{vendor}",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut out: Vec<(String, Value)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .map(|entry| {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            (
                path.file_name().unwrap().to_string_lossy().into_owned(),
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path:?}: {e}")),
            )
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(!out.is_empty(), "no fixtures in {dir}");
    out
}

/// Numbers compared by value (`20` and `20.0` are the same JSON number).
fn canon(v: &Value) -> Value {
    match v {
        Value::Number(n) => json!(n.as_f64().unwrap()),
        Value::Array(a) => Value::Array(a.iter().map(canon).collect()),
        Value::Object(o) => Value::Object(o.iter().map(|(k, v)| (k.clone(), canon(v))).collect()),
        other => other.clone(),
    }
}

/// A verdict as the fixtures write it: `"delivered"`, `{"retry": code, "after_ms": n}`,
/// `{"permanent": code}`, `{"skipped": code}` (the code is the reason's prefix).
fn verdict_json(v: &Verdict) -> Value {
    let code = |reason: &str| {
        let (code, rest) = reason
            .split_once(": ")
            .unwrap_or_else(|| panic!("reason without a code: {reason:?}"));
        assert!(!rest.is_empty(), "reason without a message: {reason:?}");
        Value::from(code)
    };
    match v {
        Verdict::Delivered => json!("delivered"),
        Verdict::Retry { after_ms, reason } => match after_ms {
            Some(ms) => json!({"retry": code(reason), "after_ms": ms}),
            None => json!({"retry": code(reason)}),
        },
        Verdict::Permanent { reason } => json!({"permanent": code(reason)}),
        Verdict::Skipped { reason } => json!({"skipped": code(reason)}),
    }
}

fn check<D: Destination>(vendor: &str) -> usize {
    let mut answers_checked = 0;
    for (name, case) in cases(vendor) {
        let ctx = format!("{vendor}/{name}");
        let config: D::Config = serde_json::from_value(case["config"].clone())
            .unwrap_or_else(|e| panic!("{ctx}: config: {e}"));
        let events: Vec<Event> = serde_json::from_value(case["events"].clone()).unwrap();
        let now = Timestamp::parse(case["now"].as_str().unwrap()).unwrap().0;
        let Encoded { requests, skipped } = D::encode(&config, &events, now);

        let expected = case["requests"].as_array().unwrap();
        assert_eq!(requests.len(), expected.len(), "{ctx}: request count");
        for (i, (got, want)) in requests.iter().zip(expected).enumerate() {
            assert_eq!(got.method, want["method"], "{ctx}: request {i} method");
            assert_eq!(got.url, want["url"], "{ctx}: request {i} url");
            let headers: Value = got
                .headers
                .iter()
                .map(|(k, v)| json!([k, v]))
                .collect::<Vec<_>>()
                .into();
            assert_eq!(headers, want["headers"], "{ctx}: request {i} headers");
            let body: Value = serde_json::from_slice(&got.body)
                .unwrap_or_else(|e| panic!("{ctx}: request {i} body is not JSON: {e}"));
            assert_eq!(
                canon(&body),
                canon(&want["body"]),
                "{ctx}: request {i} body\n got: {body:#}"
            );
            assert_eq!(
                json!(got.events),
                want["events"],
                "{ctx}: request {i} events"
            );
            assert!(
                got.body.len() <= D::limits(&config).max_bytes,
                "{ctx}: request {i} over the byte limit"
            );
            if let Err(violations) = shape::check(D::KIND, got, now) {
                panic!("{ctx}: request {i} breaks the vendor's documented shape: {violations:#?}");
            }
        }
        let skipped: Value = skipped
            .iter()
            .map(|(i, v)| json!([i, verdict_json(v)]))
            .collect::<Vec<_>>()
            .into();
        assert_eq!(skipped, case["skipped"], "{ctx}: skipped");
        // Every event is either in exactly one request or skipped.
        let mut seen: Vec<u64> = requests
            .iter()
            .flat_map(|r| r.events.iter().map(|i| *i as u64))
            .chain(
                skipped
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|s| s[0].as_u64().unwrap()),
            )
            .collect();
        seen.sort_unstable();
        assert_eq!(
            seen,
            (0..events.len() as u64).collect::<Vec<_>>(),
            "{ctx}: every event accounted for once"
        );

        for answer in case["answers"].as_array().unwrap() {
            let what = format!("{ctx}: answer {:?}", answer["description"]);
            let request = &requests[answer["request"].as_u64().unwrap() as usize];
            let body = match &answer["body"] {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let http = HttpAnswer {
                status: u16::try_from(answer["status"].as_u64().unwrap()).unwrap(),
                retry_after_ms: answer["retry_after_ms"].as_u64(),
                body,
            };
            let verdicts = D::classify(&config, request, &http);
            assert_eq!(
                verdicts.len(),
                request.events.len(),
                "{what}: one verdict per event"
            );
            let got: Value = verdicts.iter().map(verdict_json).collect::<Vec<_>>().into();
            assert_eq!(got, answer["verdicts"], "{what}\n got: {verdicts:#?}");
            answers_checked += 1;
        }
    }
    answers_checked
}

#[test]
fn meta_requests_and_answers_match_the_golden_fixtures() {
    assert_eq!(check::<Meta>("meta"), 9);
}

#[test]
fn ga4_requests_and_answers_match_the_golden_fixtures() {
    assert_eq!(check::<Ga4>("ga4"), 7);
}

#[test]
fn google_ads_requests_and_answers_match_the_golden_fixtures() {
    assert_eq!(check::<GoogleAds>("google_ads"), 10);
}

#[test]
fn tiktok_requests_and_answers_match_the_golden_fixtures() {
    assert_eq!(check::<TikTok>("tiktok"), 6);
}

const NOW: &str = "2026-12-01T10:00:00Z";

fn now() -> i64 {
    Timestamp::parse(NOW).unwrap().0
}

fn page_event(i: usize, anonymous_id: &str) -> Event {
    serde_json::from_value(json!({
        "type": "page", "messageId": format!("m-{i}"), "anonymousId": anonymous_id,
        "timestamp": "2026-12-01T09:00:00Z",
        "context": {"userAgent": "UA", "page": {"url": "https://shop.example.com/"}}
    }))
    .unwrap()
}

fn meta_config() -> MetaConfig {
    serde_json::from_value(json!({"pixel_id": "1", "access_token": "t"})).unwrap()
}

#[test]
fn meta_sends_at_most_1000_events_a_request() {
    let events: Vec<Event> = (0..2_001).map(|i| page_event(i, "a")).collect();
    let encoded = Meta::encode(&meta_config(), &events, now());
    let sizes: Vec<usize> = encoded.requests.iter().map(|r| r.events.len()).collect();
    assert_eq!(sizes, vec![1_000, 1_000, 1]);
    let first: Value = serde_json::from_slice(&encoded.requests[0].body).unwrap();
    assert_eq!(first["data"].as_array().unwrap().len(), 1_000);
    assert_eq!(encoded.requests[2].events, vec![2_000]);
}

#[test]
fn ga4_sends_one_client_and_at_most_25_events_a_request() {
    // 30 events of client a interleaved with 3 of client b.
    let mut events = Vec::new();
    for i in 0..33 {
        events.push(page_event(i, if i % 11 == 5 { "b" } else { "a" }));
    }
    let config =
        serde_json::from_value(json!({"measurement_id": "G-1", "api_secret": "s"})).unwrap();
    let encoded = Ga4::encode(&config, &events, now());
    assert!(encoded.skipped.is_empty());
    let shape: Vec<(String, usize)> = encoded
        .requests
        .iter()
        .map(|r| {
            let body: Value = serde_json::from_slice(&r.body).unwrap();
            (
                body["client_id"].as_str().unwrap().to_owned(),
                body["events"].as_array().unwrap().len(),
            )
        })
        .collect();
    assert_eq!(
        shape,
        vec![("a".into(), 25), ("a".into(), 5), ("b".into(), 3)]
    );
    assert_eq!(encoded.requests[2].events, vec![5, 16, 27]);
}

#[test]
fn a_resent_event_carries_the_same_event_id() {
    let events = vec![page_event(7, "a")];
    let first = Meta::encode(&meta_config(), &events, now());
    let again = Meta::encode(&meta_config(), &events, now() + 60_000);
    assert_eq!(first.requests[0].body, again.requests[0].body);
    let body: Value = serde_json::from_slice(&first.requests[0].body).unwrap();
    assert_eq!(body["data"][0]["event_id"], "m-7");
}

#[test]
fn configs_reject_unknown_fields_and_have_no_default_credentials() {
    use sluice_shared::dest::{ga4::Ga4Config, google_ads::GoogleAdsConfig, tiktok::TikTokConfig};
    let err = serde_json::from_value::<MetaConfig>(json!({"pixel_id": "1"})).unwrap_err();
    assert!(err.to_string().contains("access_token"), "{err}");
    let err = serde_json::from_value::<MetaConfig>(
        json!({"pixel_id": "1", "access_token": "t", "acess_token": "typo"}),
    )
    .unwrap_err();
    assert!(err.to_string().contains("unknown field"), "{err}");
    assert!(serde_json::from_value::<Ga4Config>(json!({"measurement_id": "G-1"})).is_err());
    assert!(serde_json::from_value::<TikTokConfig>(json!({"pixel_code": "C"})).is_err());
    assert!(serde_json::from_value::<GoogleAdsConfig>(json!({
        "customer_id": "1", "access_token": "a", "conversion_actions": {}
    }))
    .is_err());
}

#[test]
fn raw_personal_data_never_reaches_an_advertising_destination() {
    let email = "Jane.Doe@Mailbox.test";
    let phone = "+1 616 954 7888";
    let event: Event = serde_json::from_value(json!({
        "type": "track", "event": "Order Completed", "messageId": "m", "userId": "jane-1",
        "timestamp": "2026-12-01T09:00:00Z",
        "context": {"userAgent": "UA", "page": {"url": "https://shop.example.com/"},
            "campaign": {"clickIds": {"gclid": "g", "ttclid": "t"}},
            "traits": {"email": email, "phone": phone, "firstName": "Jane", "lastName": "Doe",
                "address": {"city": "Springfield", "postalCode": "94025", "country": "US"}}},
        "properties": {"order_id": "o", "revenue": 1, "currency": "USD", "email": email}
    }))
    .unwrap();
    let events = [event];
    let bodies: Vec<(&str, Vec<u8>)> = vec![
        (
            "meta",
            Meta::encode(&meta_config(), &events, now()).requests[0]
                .body
                .clone(),
        ),
        (
            "tiktok",
            TikTok::encode(
                &serde_json::from_value(json!({"pixel_code": "C", "access_token": "t"})).unwrap(),
                &events,
                now(),
            )
            .requests[0]
                .body
                .clone(),
        ),
        (
            "google_ads",
            GoogleAds::encode(
                &serde_json::from_value(json!({"customer_id": "1", "developer_token": "d",
                    "access_token": "a", "conversion_actions": {"Order Completed": "9"}}))
                .unwrap(),
                &events,
                now(),
            )
            .requests[0]
                .body
                .clone(),
        ),
    ];
    for (vendor, body) in bodies {
        let text = String::from_utf8(body).unwrap().to_lowercase();
        for raw in [
            "jane.doe",
            "mailbox.test",
            "616",
            "jane-1",
            "\"jane\"",
            "doe\"",
            "springfield",
        ] {
            assert!(!text.contains(raw), "{vendor} got {raw:?} in clear: {text}");
        }
    }
}
