//! Golden fixtures for the product-analytics and engagement destinations
//! (Mixpanel, Amplitude, PostHog, Braze): Segment events in, the exact vendor
//! requests out (method, URL, headers with the auth, body JSON, which events
//! each carries), and the vendor's documented answers classified per event.
//!
//! Each `tests/fixtures/destinations/<vendor>/<case>.json` holds `config`,
//! `now_ms`, `events`, the expected `requests` and `skipped`, and `answers`:
//! `{request, status, retry_after_ms, body, verdicts}` where a verdict is
//! `"delivered"`, `{"retry": {"after_ms": n|null, "reason": "substring"}}`,
//! `{"permanent": "substring"}` or `{"skipped": "substring"}`.
//!
//! `SLUICE_BLESS=1 cargo test --test destinations_product` rewrites the
//! `requests` and `skipped` of the fixtures from the code (review the diff:
//! the fixture is the specification); `answers` are always written by hand.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use sluice_shared::dest::amplitude::Amplitude;
use sluice_shared::dest::braze::Braze;
use sluice_shared::dest::ga4::Ga4;
use sluice_shared::dest::google_ads::GoogleAds;
use sluice_shared::dest::meta::Meta;
use sluice_shared::dest::mixpanel::Mixpanel;
use sluice_shared::dest::posthog::PostHog;
use sluice_shared::dest::tiktok::TikTok;
use sluice_shared::dest::{Destination, Encoded, HttpAnswer, HttpRequest, Verdict};
use sluice_shared::Event;

fn path(name: &str) -> String {
    format!(
        "{}/tests/fixtures/destinations/{name}",
        env!("CARGO_MANIFEST_DIR")
    )
}

fn load(name: &str) -> Value {
    let p = path(name);
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{p}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{p}: {e}"))
}

fn request_json(r: &HttpRequest) -> Value {
    let body: Value = serde_json::from_slice(&r.body)
        .unwrap_or_else(|e| panic!("body of {} is not JSON: {e}", r.url));
    json!({
        "method": r.method,
        "url": r.url,
        "headers": r.headers,
        "body": body,
        "events": r.events,
    })
}

fn verdict_json(v: &Verdict) -> Value {
    match v {
        Verdict::Delivered => json!("delivered"),
        Verdict::Retry { after_ms, reason } => {
            json!({"retry": {"after_ms": after_ms, "reason": reason}})
        }
        Verdict::Permanent { reason } => json!({ "permanent": reason }),
        Verdict::Skipped { reason } => json!({ "skipped": reason }),
    }
}

/// `actual` matches `expected`: same kind, same `after_ms`, and the expected
/// reason is a substring of the actual one.
fn verdict_matches(actual: &Verdict, expected: &Value) -> bool {
    match (actual, expected) {
        (Verdict::Delivered, Value::String(s)) => s == "delivered",
        (Verdict::Retry { after_ms, reason }, e) if e.get("retry").is_some() => {
            let e = &e["retry"];
            e["after_ms"].as_u64() == *after_ms
                && reason.contains(e["reason"].as_str().unwrap_or(""))
        }
        (Verdict::Permanent { reason }, e) => e
            .get("permanent")
            .and_then(Value::as_str)
            .is_some_and(|s| reason.contains(s)),
        (Verdict::Skipped { reason }, e) => e
            .get("skipped")
            .and_then(Value::as_str)
            .is_some_and(|s| reason.contains(s)),
        _ => false,
    }
}

fn encode_case<D: Destination>(case: &Value) -> (D::Config, Encoded) {
    let config: D::Config =
        serde_json::from_value(case["config"].clone()).unwrap_or_else(|e| panic!("config: {e}"));
    let events: Vec<Event> = serde_json::from_value(case["events"].clone()).unwrap();
    let now_ms = case["now_ms"].as_i64().unwrap();
    let encoded = D::encode(&config, &events, now_ms);
    (config, encoded)
}

/// Run one golden case: the requests and skips are exactly the fixture's, and
/// every documented answer classifies as the fixture says. Returns the
/// encoded output for extra assertions.
fn golden<D: Destination>(name: &str) -> Encoded
where
    D::Config: DeserializeOwned,
{
    let mut case = load(name);
    let (config, encoded) = encode_case::<D>(&case);
    let requests: Vec<Value> = encoded.requests.iter().map(request_json).collect();
    let skipped: Vec<Value> = encoded
        .skipped
        .iter()
        .map(|(i, v)| json!([i, verdict_json(v)]))
        .collect();
    if std::env::var_os("SLUICE_BLESS").is_some() {
        case["requests"] = Value::from(requests.clone());
        case["skipped"] = Value::from(skipped.clone());
        let text = serde_json::to_string_pretty(&case).unwrap() + "\n";
        std::fs::write(path(name), text).unwrap();
    }
    assert_eq!(
        Value::from(requests),
        case["requests"],
        "{name}: requests differ from the fixture"
    );
    assert_eq!(
        Value::from(skipped),
        case["skipped"],
        "{name}: skipped events differ from the fixture"
    );
    let answers = case["answers"].as_array().cloned().unwrap_or_default();
    for (k, a) in answers.iter().enumerate() {
        let request = &encoded.requests[a["request"].as_u64().unwrap() as usize];
        let body = match &a["body"] {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let answer = HttpAnswer {
            status: a["status"].as_u64().unwrap() as u16,
            retry_after_ms: a["retry_after_ms"].as_u64(),
            body,
        };
        let verdicts = D::classify(&config, request, &answer);
        let expected = a["verdicts"].as_array().unwrap();
        assert_eq!(
            verdicts.len(),
            request.events.len(),
            "{name} answer {k}: one verdict per event"
        );
        assert_eq!(
            verdicts.len(),
            expected.len(),
            "{name} answer {k}: {verdicts:?}"
        );
        for (v, e) in verdicts.iter().zip(expected) {
            assert!(
                verdict_matches(v, e),
                "{name} answer {k} ({}): got {v:?}, fixture says {e}",
                answer.status
            );
        }
    }
    encoded
}

fn header<'a>(r: &'a HttpRequest, name: &str) -> Option<&'a str> {
    r.headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Events that are all sent or accounted for: every index appears exactly once
/// across the requests and the skipped list.
fn every_event_accounted_for(encoded: &Encoded, n: usize) {
    let mut seen = vec![0usize; n];
    for r in &encoded.requests {
        for &i in &r.events {
            seen[i] += 1;
        }
    }
    for (i, _) in &encoded.skipped {
        seen[*i] += 1;
    }
    assert_eq!(seen, vec![1; n], "each event in exactly one place");
}

fn many_tracks(n: usize, padding: usize) -> Vec<Event> {
    (0..n)
        .map(|i| {
            serde_json::from_value(json!({
                "type": "track",
                "messageId": format!("m-{i}"),
                "userId": "user-12345",
                "anonymousId": "anon-12345",
                "event": "Product Viewed",
                "timestamp": "2024-05-01T10:00:00.000Z",
                "properties": {"pad": "x".repeat(padding)},
            }))
            .unwrap()
        })
        .collect()
}

// ---------- Mixpanel ----------

#[test]
fn mixpanel_events_go_to_import_and_identify_to_a_profile_set() {
    let encoded = golden::<Mixpanel>("mixpanel/spec_calls.json");
    every_event_accounted_for(&encoded, 8);
}

#[test]
fn mixpanel_strict_failures_are_permanent_per_event_and_the_rest_delivered() {
    golden::<Mixpanel>("mixpanel/answers.json");
}

#[test]
fn mixpanel_service_account_and_eu_residency_change_url_and_auth() {
    let encoded = golden::<Mixpanel>("mixpanel/service_account_eu.json");
    assert!(encoded.requests[0]
        .url
        .starts_with("https://api-eu.mixpanel.com/import?strict=1&project_id="));
}

#[test]
fn mixpanel_batches_stay_within_2000_events() {
    let config: <Mixpanel as Destination>::Config =
        serde_json::from_value(json!({"project_token": "tok"})).unwrap();
    let events = many_tracks(4_001, 0);
    let encoded = Mixpanel::encode(&config, &events, 0);
    let sizes: Vec<usize> = encoded.requests.iter().map(|r| r.events.len()).collect();
    assert_eq!(sizes, vec![2_000, 2_000, 1]);
    every_event_accounted_for(&encoded, 4_001);
}

#[test]
fn mixpanel_batches_stay_within_10_mb() {
    let config: <Mixpanel as Destination>::Config =
        serde_json::from_value(json!({"project_token": "tok"})).unwrap();
    // ~100 KB each: 10 MB holds 104 of them, not 2,000.
    let events = many_tracks(250, 100_000);
    let encoded = Mixpanel::encode(&config, &events, 0);
    assert!(encoded.requests.len() == 3, "{}", encoded.requests.len());
    for r in &encoded.requests {
        assert!(r.body.len() <= 10 * 1024 * 1024, "{}", r.body.len());
        let parsed: Vec<Value> = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(parsed.len(), r.events.len());
    }
    assert_eq!(encoded.requests[0].events.len(), 104);
    every_event_accounted_for(&encoded, 250);
}

#[test]
fn mixpanel_deletion_is_a_gdpr_request_with_the_oauth_token() {
    let config: <Mixpanel as Destination>::Config = serde_json::from_value(
        json!({"project_token": "tok", "gdpr_oauth_token": "oauth-1", "region": "eu"}),
    )
    .unwrap();
    let r = Mixpanel::delete_request(&config, "user-12345").unwrap();
    assert_eq!(
        request_json(&r),
        json!({
            "method": "POST",
            "url": "https://eu.mixpanel.com/api/app/data-deletions/v3.0/?token=tok",
            "headers": [["Content-Type", "application/json"], ["Authorization", "Bearer oauth-1"]],
            "body": {"distinct_ids": ["user-12345"], "compliance_type": "GDPR"},
            "events": [],
        })
    );
}

// ---------- Amplitude ----------

#[test]
fn amplitude_events_go_to_http_v2_with_insert_ids() {
    let encoded = golden::<Amplitude>("amplitude/spec_calls.json");
    every_event_accounted_for(&encoded, 8);
}

#[test]
fn amplitude_invalid_events_are_permanent_and_throttled_ones_back_off() {
    golden::<Amplitude>("amplitude/answers.json");
}

#[test]
fn amplitude_batches_stay_within_2000_events_and_1_mb() {
    let config: <Amplitude as Destination>::Config =
        serde_json::from_value(json!({"api_key": "key"})).unwrap();
    let encoded = Amplitude::encode(&config, &many_tracks(2_001, 0), 0);
    let sizes: Vec<usize> = encoded.requests.iter().map(|r| r.events.len()).collect();
    assert_eq!(sizes, vec![2_000, 1]);
    let encoded = Amplitude::encode(&config, &many_tracks(30, 100_000), 0);
    for r in &encoded.requests {
        assert!(r.body.len() <= 1_000_000, "{}", r.body.len());
    }
    // ~100.2 KB each: 9 fit under 1 MB, 10 would not.
    assert_eq!(encoded.requests[0].events.len(), 9);
    every_event_accounted_for(&encoded, 30);
}

#[test]
fn amplitude_deletion_uses_the_user_privacy_api() {
    let config: <Amplitude as Destination>::Config = serde_json::from_value(
        json!({"api_key": "key", "secret_key": "secret", "deletion_requester": "privacy@shop.example"}),
    )
    .unwrap();
    let r = Amplitude::delete_request(&config, "user-12345").unwrap();
    assert_eq!(r.url, "https://amplitude.com/api/2/deletions/users");
    assert_eq!(header(&r, "authorization"), Some("Basic a2V5OnNlY3JldA=="));
    assert_eq!(
        serde_json::from_slice::<Value>(&r.body).unwrap(),
        json!({"user_ids": ["user-12345"], "requester": "privacy@shop.example", "ignore_invalid_id": "True"})
    );
}

// ---------- PostHog ----------

#[test]
fn posthog_events_go_to_batch_with_uuids_and_spec_events() {
    let encoded = golden::<PostHog>("posthog/spec_calls.json");
    every_event_accounted_for(&encoded, 8);
}

#[test]
fn posthog_answers_classify_by_status() {
    golden::<PostHog>("posthog/answers.json");
}

#[test]
fn posthog_deletion_uses_the_persons_api_with_the_personal_key() {
    let config: <PostHog as Destination>::Config = serde_json::from_value(json!({
        "api_key": "phc_key", "host": "https://eu.i.posthog.com",
        "personal_api_key": "phx_personal", "project_id": "42"
    }))
    .unwrap();
    let r = PostHog::delete_request(&config, "user-12345").unwrap();
    assert_eq!(
        request_json(&r),
        json!({
            "method": "POST",
            "url": "https://eu.posthog.com/api/projects/42/persons/bulk_delete/?delete_events=true",
            "headers": [["Content-Type", "application/json"], ["Authorization", "Bearer phx_personal"]],
            "body": {"distinct_ids": ["user-12345"], "delete_events": true},
            "events": [],
        })
    );
}

// ---------- Braze ----------

#[test]
fn braze_identify_track_and_orders_become_attributes_events_and_purchases() {
    let encoded = golden::<Braze>("braze/spec_calls.json");
    every_event_accounted_for(&encoded, 8);
}

#[test]
fn braze_minor_errors_are_kept_per_event() {
    golden::<Braze>("braze/answers.json");
}

#[test]
fn braze_ecommerce_spec_can_go_as_recommended_events() {
    let encoded = golden::<Braze>("braze/ecommerce_events.json");
    every_event_accounted_for(&encoded, 5);
}

#[test]
fn braze_requests_hold_at_most_75_objects() {
    let config: <Braze as Destination>::Config = serde_json::from_value(
        json!({"rest_api_key": "key", "rest_endpoint": "https://rest.iad-01.braze.com"}),
    )
    .unwrap();
    let mut events = many_tracks(100, 0);
    // Orders of 10 products each: 10 objects per event.
    for (i, e) in events.iter_mut().enumerate().take(20) {
        e.event = Some("Order Completed".into());
        let products: Vec<Value> = (0..10)
            .map(|p| json!({"product_id": format!("p{p}"), "price": 1.5, "quantity": 1}))
            .collect();
        e.properties = Some(
            json!({"order_id": format!("o{i}"), "currency": "EUR", "products": products})
                .as_object()
                .unwrap()
                .clone(),
        );
    }
    let encoded = Braze::encode(&config, &events, 0);
    for r in &encoded.requests {
        let body: Value = serde_json::from_slice(&r.body).unwrap();
        let objects: usize = ["attributes", "events", "purchases"]
            .iter()
            .map(|k| body[k].as_array().map_or(0, Vec::len))
            .sum();
        assert!(objects <= 75, "{objects} objects");
    }
    let total: usize = encoded.requests.iter().map(|r| r.events.len()).sum();
    assert_eq!(total, 100);
    every_event_accounted_for(&encoded, 100);
}

#[test]
fn braze_requests_stay_within_their_byte_cap() {
    let config: <Braze as Destination>::Config = serde_json::from_value(
        json!({"rest_api_key": "key", "rest_endpoint": "https://rest.iad-01.braze.com"}),
    )
    .unwrap();
    // 75 objects of ~100 KB: within the object count, over 4 MB.
    let encoded = Braze::encode(&config, &many_tracks(75, 100_000), 0);
    assert_eq!(encoded.requests.len(), 2);
    for r in &encoded.requests {
        assert!(r.body.len() <= 4 * 1024 * 1024, "{}", r.body.len());
    }
    every_event_accounted_for(&encoded, 75);
}

#[test]
fn braze_two_orders_of_one_user_at_one_instant_never_share_a_request() {
    let config: <Braze as Destination>::Config = serde_json::from_value(
        json!({"rest_api_key": "key", "rest_endpoint": "https://rest.iad-01.braze.com"}),
    )
    .unwrap();
    let order = |id: &str, products: usize| -> Event {
        let products: Vec<Value> = (0..products)
            .map(|p| json!({"product_id": format!("{id}-p{p}"), "price": 2.0}))
            .collect();
        serde_json::from_value(json!({
            "type": "track", "messageId": id, "userId": "user-12345", "event": "Order Completed",
            "timestamp": "2024-05-01T10:00:00.000Z", "properties": {"products": products},
        }))
        .unwrap()
    };
    let events = vec![order("o1", 2), order("o2", 1)];
    let encoded = Braze::encode(&config, &events, 0);
    let carried: Vec<Vec<usize>> = encoded.requests.iter().map(|r| r.events.clone()).collect();
    assert_eq!(carried, vec![vec![0], vec![1]]);
    // A minor error on the first request's second purchase belongs to order 0 alone.
    let answer = HttpAnswer {
        status: 201,
        retry_after_ms: None,
        body: json!({"message": "success", "errors": [{"type": "'price' is not valid", "input_array": "purchases", "index": 1}]}).to_string(),
    };
    let verdicts = Braze::classify(&config, &encoded.requests[0], &answer);
    assert!(
        matches!(&verdicts[..], [Verdict::Permanent { .. }]),
        "{verdicts:?}"
    );
}

#[test]
fn braze_deletion_uses_users_delete() {
    let config: <Braze as Destination>::Config = serde_json::from_value(
        json!({"rest_api_key": "key", "rest_endpoint": "https://rest.fra-01.braze.eu"}),
    )
    .unwrap();
    let r = Braze::delete_request(&config, "user-12345").unwrap();
    assert_eq!(
        request_json(&r),
        json!({
            "method": "POST",
            "url": "https://rest.fra-01.braze.eu/users/delete",
            "headers": [["Content-Type", "application/json"], ["Authorization", "Bearer key"]],
            "body": {"external_ids": ["user-12345"]},
            "events": [],
        })
    );
}

#[test]
fn every_destination_applies_its_overrides_before_mapping() {
    fn check<D: Destination>(mut config: Value) {
        config["overrides"] = json!({
            "deny": ["Product Viewed"],
            "rename": {"Signed Up": "signup"},
            "properties": {"method": "signup_method"},
        });
        let config: D::Config = serde_json::from_value(config).unwrap();
        let events: Vec<Event> = serde_json::from_value(json!([
            {"type": "track", "messageId": "m-1", "userId": "user-12345", "event": "Product Viewed"},
            {"type": "track", "messageId": "m-2", "userId": "user-12345", "event": "Signed Up",
             "properties": {"method": "email"}},
        ]))
        .unwrap();
        let encoded = D::encode(&config, &events, 0);
        assert!(
            matches!(&encoded.skipped[..], [(0, Verdict::Skipped { reason })] if reason.contains("deny list")),
            "{}: {:?}",
            D::KIND,
            encoded.skipped
        );
        let body = String::from_utf8(encoded.requests[0].body.clone()).unwrap();
        assert!(body.contains("\"signup\""), "{}: {body}", D::KIND);
        assert!(
            body.contains("\"signup_method\":\"email\""),
            "{}: {body}",
            D::KIND
        );
        assert!(!body.contains("Signed Up"), "{}: {body}", D::KIND);
    }
    check::<Mixpanel>(json!({"project_token": "t"}));
    check::<Amplitude>(json!({"api_key": "k"}));
    check::<PostHog>(json!({"api_key": "k", "host": "https://us.i.posthog.com"}));
    check::<Braze>(json!({"rest_api_key": "k", "rest_endpoint": "https://rest.iad-01.braze.com"}));

    // The advertising four: the renamed event loses its standard mapping
    // (`standard`), and a renamed property feeds the vendor's value field.
    fn check_ad<D: Destination>(mut config: Value, standard: &str, value: &str) {
        config["overrides"] = json!({
            "deny": ["Product Viewed"],
            "rename": {"Signed Up": "signup"},
            "properties": {"amount": "value"},
        });
        let config: D::Config = serde_json::from_value(config).unwrap();
        let context = json!({
            "userAgent": "Mozilla/5.0", "ip": "203.0.113.9",
            "page": {"url": "https://shop.example/welcome"},
            "cookies": {"_ga": "GA1.1.123.456"},
            "campaign": {"clickIds": {"gclid": "g-1"}},
        });
        let events: Vec<Event> = serde_json::from_value(json!([
            {"type": "track", "messageId": "m-1", "userId": "user-12345", "event": "Product Viewed",
             "timestamp": "2026-12-01T10:00:00Z", "context": context},
            {"type": "track", "messageId": "m-2", "userId": "user-12345", "event": "Signed Up",
             "timestamp": "2026-12-01T10:00:00Z", "context": context,
             "properties": {"amount": 12, "currency": "EUR"}},
        ]))
        .unwrap();
        let now = 1_796_119_200_000; // 2026-12-01T10:00:00Z
        let encoded = D::encode(&config, &events, now);
        assert!(
            matches!(&encoded.skipped[..], [(0, Verdict::Skipped { reason })] if reason.contains("deny list")),
            "{}: {:?}",
            D::KIND,
            encoded.skipped
        );
        assert_eq!(encoded.requests.len(), 1, "{}", D::KIND);
        let body = String::from_utf8(encoded.requests[0].body.clone()).unwrap();
        assert!(!body.contains(standard), "{}: {body}", D::KIND);
        assert!(
            body.contains(&format!("\"{value}\":12")),
            "{}: {body}",
            D::KIND
        );
    }
    check_ad::<Meta>(
        json!({"pixel_id": "1", "access_token": "t"}),
        "CompleteRegistration",
        "value",
    );
    check_ad::<Ga4>(
        json!({"measurement_id": "G-1", "api_secret": "s"}),
        "sign_up",
        "value",
    );
    check_ad::<GoogleAds>(
        json!({"customer_id": "123", "developer_token": "d", "access_token": "a",
               "conversion_actions": {"signup": "987"}}),
        "Signed Up",
        "conversionValue",
    );
    check_ad::<TikTok>(
        json!({"pixel_code": "P", "access_token": "t"}),
        "CompleteRegistration",
        "value",
    );
}

#[test]
fn credentials_never_go_over_plain_http_except_to_a_local_stub() {
    for (config, ok) in [
        (
            json!({"rest_api_key": "k", "rest_endpoint": "http://rest.iad-01.braze.com"}),
            false,
        ),
        (
            json!({"rest_api_key": "k", "rest_endpoint": "http://127.0.0.1:8787"}),
            true,
        ),
    ] {
        assert_eq!(
            serde_json::from_value::<<Braze as Destination>::Config>(config).is_ok(),
            ok
        );
    }
    let ph = json!({"api_key": "k", "host": "http://eu.i.posthog.com"});
    assert!(serde_json::from_value::<<PostHog as Destination>::Config>(ph).is_err());
    // Mixpanel and Amplitude have fixed hosts per region; api_host points them at a stub.
    let mp: <Mixpanel as Destination>::Config =
        serde_json::from_value(json!({"project_token": "t", "api_host": "http://127.0.0.1:8787/"}))
            .unwrap();
    let events = many_tracks(1, 0);
    assert_eq!(
        Mixpanel::encode(&mp, &events, 0).requests[0].url,
        "http://127.0.0.1:8787/import?strict=1"
    );
    let amp: <Amplitude as Destination>::Config =
        serde_json::from_value(json!({"api_key": "k", "api_host": "http://localhost:9000"}))
            .unwrap();
    assert_eq!(
        Amplitude::encode(&amp, &events, 0).requests[0].url,
        "http://localhost:9000/2/httpapi"
    );
    let bad = json!({"api_key": "k", "api_host": "http://api2.amplitude.com"});
    assert!(serde_json::from_value::<<Amplitude as Destination>::Config>(bad).is_err());
    // The advertising four: `endpoint_url` follows the same rule.
    fn endpoint<D: Destination>(mut config: Value) {
        for (url, ok) in [
            ("http://graph.example", false),
            ("graph.example", false),
            ("http://127.0.0.1:8787/", true),
            ("https://graph.example", true),
        ] {
            config["endpoint_url"] = json!(url);
            let parsed = serde_json::from_value::<D::Config>(config.clone());
            assert_eq!(parsed.is_ok(), ok, "{} {url}", D::KIND);
        }
    }
    endpoint::<Meta>(json!({"pixel_id": "1", "access_token": "t"}));
    endpoint::<Ga4>(json!({"measurement_id": "G-1", "api_secret": "s"}));
    endpoint::<GoogleAds>(json!({"customer_id": "123", "developer_token": "d",
        "access_token": "a", "conversion_actions": {}}));
    endpoint::<TikTok>(json!({"pixel_code": "P", "access_token": "t"}));
}

#[test]
fn configs_reject_unknown_fields_and_need_their_credentials() {
    fn rejects<D: Destination>(good: Value, typo: &str) {
        let mut bad = good.clone();
        bad[typo] = json!(1);
        assert!(
            serde_json::from_value::<D::Config>(good.clone()).is_ok(),
            "{}",
            D::KIND
        );
        let err = serde_json::from_value::<D::Config>(bad)
            .err()
            .expect("typo rejected");
        assert!(
            err.to_string().contains("unknown field"),
            "{}: {err}",
            D::KIND
        );
        assert!(
            serde_json::from_value::<D::Config>(json!({})).is_err(),
            "{}: credentials have no default",
            D::KIND
        );
    }
    rejects::<Mixpanel>(json!({"project_token": "t"}), "projet_token");
    rejects::<Amplitude>(json!({"api_key": "k"}), "apikey");
    rejects::<PostHog>(
        json!({"api_key": "k", "host": "https://us.i.posthog.com"}),
        "hots",
    );
    rejects::<Braze>(
        json!({"rest_api_key": "k", "rest_endpoint": "https://rest.iad-01.braze.com"}),
        "endpoint",
    );
}

/// Whatever the events, every one is sent once or skipped with a reason,
/// every request is valid JSON within the vendor's limits, and a success
/// answer delivers exactly the events of its request.
#[cfg(not(target_arch = "wasm32"))]
mod properties {
    use super::*;
    use proptest::prelude::*;

    fn event(vendor: &'static str) -> impl Strategy<Value = Value> {
        let kind = prop::sample::select(vec![
            "track", "page", "screen", "identify", "group", "alias",
        ]);
        let name = prop::sample::select(vec![
            "Order Completed",
            "Product Viewed",
            "Checkout Started",
            "Signed Up",
            "",
        ]);
        let user = prop::option::of(prop::sample::select(vec!["user-12345", "u1", "user-67890"]));
        let anon = prop::option::of(prop::sample::select(vec!["anon-7f3c9a", "dev"]));
        let product = (
            prop::option::of(prop::sample::select(vec!["sku-1", "sku-2"])),
            prop::option::of(0.0f64..500.0),
            0u64..4,
        )
            .prop_map(|(id, price, q)| json!({"product_id": id, "price": price, "quantity": q, "name": "P"}));
        let integrations = prop::sample::select(vec![
            Value::Null,
            json!({"All": false}),
            json!({"All": false, vendor: true}),
            json!({vendor: false}),
        ]);
        (
            kind,
            name,
            user,
            anon,
            prop::collection::vec(product, 0..4),
            0usize..60_000,
            0i64..86_400_000,
            integrations,
            "[a-z0-9_-]{0,50}",
        )
            .prop_map(move |(kind, name, user, anon, products, pad, t, integrations, id)| {
                json!({
                    "type": kind, "messageId": id, "event": name, "userId": user, "anonymousId": anon,
                    "groupId": "g1", "previousId": "anon-7f3c9a", "name": "Home",
                    "timestamp": sluice_shared::Timestamp(1_714_500_000_000 + t).to_rfc3339(),
                    "integrations": integrations,
                    "properties": {"products": products, "total": 10.0, "order_id": "o1", "pad": "x".repeat(pad)},
                    "traits": {"email": "a@b.c", "pad": "y".repeat(pad / 2)},
                    "context": {"ip": "203.0.113.7", "page": {"url": "https://shop.example/a?b"}},
                })
            })
    }

    /// The vendor objects a request body holds.
    fn objects(kind: &str, body: &Value) -> usize {
        match kind {
            "mixpanel" => body.as_array().map_or(0, Vec::len),
            "amplitude" => body["events"].as_array().map_or(0, Vec::len),
            "posthog" => body["batch"].as_array().map_or(0, Vec::len),
            _ => ["attributes", "events", "purchases"]
                .iter()
                .map(|k| body[k].as_array().map_or(0, Vec::len))
                .sum(),
        }
    }

    fn holds<D: Destination>(
        config: Value,
        raw: &[Value],
        success: &str,
    ) -> Result<(), TestCaseError> {
        let config: D::Config = serde_json::from_value(config).unwrap();
        let events: Vec<Event> = serde_json::from_value(Value::from(raw.to_vec())).unwrap();
        let encoded = D::encode(&config, &events, 1_714_557_900_000);
        every_event_accounted_for(&encoded, events.len());
        for r in &encoded.requests {
            let body: Value = serde_json::from_slice(&r.body).unwrap();
            let limits = D::limits(&config);
            let n = objects(D::KIND, &body);
            prop_assert!(!r.events.is_empty());
            prop_assert!(n <= limits.max_events, "{}: {n} objects", D::KIND);
            prop_assert!(
                r.body.len() <= limits.max_bytes,
                "{}: {} bytes",
                D::KIND,
                r.body.len()
            );
            if D::KIND == "braze" {
                prop_assert!(n >= r.events.len());
            } else {
                prop_assert_eq!(n, r.events.len());
            }
            let status = if D::KIND == "braze" { 201 } else { 200 };
            let body = if r.url.contains("/engage") {
                r#"{"status":1,"error":null}"#
            } else {
                success
            };
            let answer = HttpAnswer {
                status,
                retry_after_ms: None,
                body: body.into(),
            };
            let verdicts = D::classify(&config, r, &answer);
            prop_assert_eq!(verdicts, vec![Verdict::Delivered; r.events.len()]);
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        #[test]
        fn mixpanel_accounts_for_every_event(events in prop::collection::vec(event("Mixpanel"), 0..80)) {
            holds::<Mixpanel>(json!({"project_token": "t"}), &events, r#"{"code":200,"status":"OK"}"#)?;
        }

        #[test]
        fn amplitude_accounts_for_every_event(events in prop::collection::vec(event("Amplitude"), 0..80)) {
            holds::<Amplitude>(json!({"api_key": "k", "group_type": "company"}), &events, r#"{"code":200}"#)?;
        }

        #[test]
        fn posthog_accounts_for_every_event(events in prop::collection::vec(event("PostHog"), 0..80)) {
            holds::<PostHog>(json!({"api_key": "k", "host": "https://us.i.posthog.com"}), &events, r#"{"status":1}"#)?;
        }

        #[test]
        fn braze_accounts_for_every_event(events in prop::collection::vec(event("Braze"), 0..120)) {
            holds::<Braze>(
                json!({"rest_api_key": "k", "rest_endpoint": "https://rest.iad-01.braze.com", "send_pages": true}),
                &events,
                r#"{"message":"success"}"#,
            )?;
        }
    }
}

#[test]
fn every_destination_declares_its_default_purposes() {
    use sluice_shared::consent::Purpose;
    let marketing = [Purpose::Marketing];
    let analytics = [Purpose::Analytics];
    assert_eq!(Meta::PURPOSES, marketing);
    assert_eq!(GoogleAds::PURPOSES, marketing);
    assert_eq!(TikTok::PURPOSES, marketing);
    assert_eq!(Braze::PURPOSES, marketing);
    assert_eq!(Ga4::PURPOSES, analytics);
    assert_eq!(Mixpanel::PURPOSES, analytics);
    assert_eq!(Amplitude::PURPOSES, analytics);
    assert_eq!(PostHog::PURPOSES, analytics);
}

#[test]
fn every_destination_honours_the_integrations_object_by_name_and_alias() {
    fn check<D: Destination>(config: Value) {
        let config: D::Config = serde_json::from_value(config).unwrap();
        let mut switches = vec![
            (json!({"All": false}), false),
            (json!({D::NAME: false}), false),
            (json!({"All": false, D::NAME: true}), true),
            (
                json!({"All": false, D::NAME.to_ascii_lowercase(): {"opt": 1}}),
                true,
            ),
            (json!({"All": true, D::NAME: null}), true),
            (json!({"All": false, "Some Other Tool": true}), false),
        ];
        for alias in D::ALIASES {
            switches.push((json!({"All": false, *alias: true}), true));
            switches.push((json!({*alias: false}), false));
        }
        for (integrations, sent) in switches {
            let events: Vec<Event> = serde_json::from_value(json!([{
                "type": "track", "messageId": "m-1", "userId": "user-12345",
                "anonymousId": "anon-12345", "event": "Signed Up",
                "timestamp": "2026-12-01T10:00:00Z",
                "context": {"userAgent": "Mozilla/5.0", "ip": "203.0.113.9",
                    "page": {"url": "https://shop.example/welcome"},
                    "cookies": {"_ga": "GA1.1.123.456"},
                    "campaign": {"clickIds": {"gclid": "g-1"}}},
                "integrations": integrations,
            }]))
            .unwrap();
            let encoded = D::encode(&config, &events, 1_796_119_200_000);
            let carried = encoded.requests.iter().any(|r| r.events == [0]);
            assert_eq!(
                carried,
                sent,
                "{} with {integrations}: {encoded:?}",
                D::KIND
            );
            if !sent {
                assert!(
                    matches!(&encoded.skipped[..], [(0, Verdict::Skipped { reason })]
                        if reason.contains(&format!("{} is disabled for this event", D::NAME))),
                    "{} with {integrations}: {:?}",
                    D::KIND,
                    encoded.skipped
                );
            }
        }
    }
    check::<Meta>(json!({"pixel_id": "1", "access_token": "t"}));
    check::<Ga4>(json!({"measurement_id": "G-1", "api_secret": "s"}));
    check::<GoogleAds>(json!({"customer_id": "123", "developer_token": "d",
        "access_token": "a", "conversion_actions": {"Signed Up": "987"}}));
    check::<TikTok>(json!({"pixel_code": "P", "access_token": "t"}));
    check::<Mixpanel>(json!({"project_token": "t"}));
    check::<Amplitude>(json!({"api_key": "k"}));
    check::<PostHog>(json!({"api_key": "k", "host": "https://us.i.posthog.com"}));
    check::<Braze>(json!({"rest_api_key": "k", "rest_endpoint": "https://rest.iad-01.braze.com"}));
}
