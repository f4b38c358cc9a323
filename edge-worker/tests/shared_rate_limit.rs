//! The rate limit shared by every isolate (Cloudflare's Rate Limiting
//! binding), on top of the per-isolate buckets.
#![allow(clippy::unwrap_used)] // test code: a panic is a failed test

mod common;

use common::*;
use serde_json::json;

#[test]
fn over_the_shared_limit_is_a_429_with_retry_after_and_nothing_is_queued() {
    let mut h = Harness::new();
    h.fake.shared_limit = Some(false);
    let res = h.send(post(
        "/v1/batch?writeKey=demo-write-key",
        batch(json!([track("over")])),
        &[],
    ));
    assert_eq!(res.status, 429);
    assert_eq!(json_body(&res)["error"]["code"], "rate_limited");
    assert_eq!(res.header("retry-after"), Some("10"));
    assert!(h.events().is_empty());
}

#[test]
fn within_the_shared_limit_or_without_the_binding_the_request_is_accepted() {
    for shared in [Some(true), None] {
        let mut h = Harness::new();
        h.fake.shared_limit = shared;
        let res = h.send(post(
            "/v1/batch?writeKey=demo-write-key",
            batch(json!([track("ok")])),
            &[],
        ));
        assert_eq!(res.status, 200, "{shared:?}");
        assert_eq!(h.events().len(), 1, "{shared:?}");
    }
}

#[test]
fn the_per_isolate_limit_still_holds_when_the_shared_one_allows() {
    let mut h = Harness::new();
    h.fake.shared_limit = Some(true);
    let statuses: Vec<u16> = (0..3)
        .map(|i| {
            h.send(post(
                "/v1/batch?writeKey=tiny-key",
                batch(json!([track(&format!("t-{i}"))])),
                &[],
            ))
            .status
        })
        .collect();
    assert_eq!(statuses, [200, 200, 429], "the tiny source's burst is 2");
}
