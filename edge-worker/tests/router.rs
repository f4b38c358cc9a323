//! Every route and error path of the collector, called as a function (no server).
#![allow(clippy::unwrap_used)] // test code: a panic is a failed test

mod common;

use common::*;
use serde_json::{json, Value};
use sluice_edge_worker::config::Config;
use sluice_edge_worker::http::HttpRequest;
use sluice_edge_worker::ports::Asset;
use std::io::Write;

#[test]
fn analytics_js_single_event_bodies_are_accepted_on_the_short_paths() {
    let h = Harness::new();
    for (path, file) in [
        ("/v1/t", "analytics-js/track.json"),
        ("/v1/p", "analytics-js/page.json"),
        ("/v1/i", "analytics-js/identify.json"),
    ] {
        let res = h.send(post(path, fixture(file), &[("content-type", "text/plain")]));
        assert_eq!(
            res.status,
            200,
            "{path}: {}",
            String::from_utf8_lossy(&res.body)
        );
        assert_eq!(json_body(&res)["accepted"], 1, "{path}");
    }
    let events = h.events();
    assert_eq!(events.len(), 3);
    assert!(events.iter().all(|e| e.source == "web"));
    let t = &events[0].event;
    let ctx = t.context.as_ref().unwrap();
    assert_eq!(ctx["ip"], "203.0.113.0", "truncated by default");
    assert_eq!(ctx["os"]["name"], "Windows 10");
    assert_eq!(ctx["sluice"]["referrer"]["medium"], "search");
    assert_eq!(ctx["sluice"]["skew"], "corrected");
    assert_eq!(t.received_at.as_deref(), Some("2024-05-01T10:05:00.000Z"));
    assert_eq!(
        t.original_timestamp.as_deref(),
        Some("2024-05-01T10:00:00.123Z")
    );
}

#[test]
fn rudderstack_payloads_are_accepted_on_its_paths() {
    let h = Harness::new();
    let rs_headers = [
        ("authorization", basic("demo-write-key")),
        ("content-type", "application/json;charset=UTF-8".into()),
    ];
    let headers: Vec<(&str, &str)> = rs_headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(
        h.send(post(
            "/v1/track",
            fixture("rudderstack/track.json"),
            &headers
        ))
        .status,
        200
    );
    assert_eq!(
        h.send(post(
            "/v1/identify",
            fixture("rudderstack/identify.json"),
            &headers
        ))
        .status,
        200
    );
    let beacon = h.send(post(
        "/beacon/v1/batch?writeKey=demo-write-key",
        fixture("rudderstack/beacon-batch.json"),
        &[("content-type", "text/plain")],
    ));
    assert_eq!(json_body(&beacon)["accepted"], 2);
    let events = h.events();
    assert_eq!(events.len(), 4);
    assert_eq!(
        events[0].event.user_id, None,
        "RudderStack's empty userId is absent"
    );
    assert_eq!(events[0].event.extra["channel"], "web");
}

#[test]
fn one_bad_event_is_reported_and_the_good_ones_are_kept() {
    let h = Harness::new();
    let res = h.send(post("/v1/batch", batch(json!([track("good-1"), {"type":"track","messageId":"bad-1","anonymousId":"a"}, track("good-2")])), &[("authorization", &basic("demo-write-key"))]));
    assert_eq!(res.status, 200);
    let body = json_body(&res);
    assert_eq!(
        (body["accepted"].clone(), body["rejected"].clone()),
        (json!(2), json!(1))
    );
    assert_eq!(body["results"][1]["status"], "rejected");
    assert_eq!(body["results"][1]["messageId"], "bad-1");
    assert_eq!(body["results"][1]["errors"][0]["code"], "missing_field");
    let ids: Vec<_> = h
        .events()
        .iter()
        .map(|e| e.event.message_id.clone())
        .collect();
    assert_eq!(ids, ["good-1", "good-2"]);
}

#[test]
fn whole_request_errors_have_statuses_and_codes() {
    let h = Harness::new();
    let cases: Vec<(HttpRequest, u16, &str)> = vec![
        (
            post(
                "/v1/batch",
                "{nope",
                &[("authorization", &basic("demo-write-key"))],
            ),
            400,
            "invalid_json",
        ),
        (
            post(
                "/v1/batch",
                "{}",
                &[("authorization", &basic("demo-write-key"))],
            ),
            400,
            "missing_batch",
        ),
        (
            post("/v1/batch", batch(json!([track("x")])), &[]),
            401,
            "unauthorized",
        ),
        (
            post(
                "/v1/batch",
                batch(json!([track("x")])),
                &[("authorization", &basic("nope"))],
            ),
            401,
            "unauthorized",
        ),
        (
            post(
                "/v1/batch",
                vec![b' '; 600 * 1024],
                &[("authorization", &basic("demo-write-key"))],
            ),
            413,
            "payload_too_large",
        ),
        (
            post(
                "/v1/batch",
                batch(json!([track("x")])),
                &[
                    ("authorization", &basic("demo-write-key")),
                    ("content-encoding", "br"),
                ],
            ),
            400,
            "bad_content_encoding",
        ),
        (
            post(
                "/v1/batch",
                batch(json!([track("x")])),
                &[
                    ("authorization", &basic("demo-write-key")),
                    ("origin", "https://evil.example"),
                ],
            ),
            403,
            "origin_not_allowed",
        ),
        (post("/v1/launch", "{}", &[]), 404, "not_found"),
        (post("/elsewhere", "{}", &[]), 404, "not_found"),
        (
            HttpRequest {
                method: "GET".into(),
                path: "/v1/batch".into(),
                ..HttpRequest::default()
            },
            405,
            "method_not_allowed",
        ),
    ];
    for (req, status, code) in cases {
        let path = req.path.clone();
        let res = h.send(req);
        assert_eq!(res.status, status, "{path}");
        assert_eq!(json_body(&res)["error"]["code"], code, "{path}");
        assert!(json_body(&res)["error"]["message"].as_str().unwrap().len() > 5);
    }
    assert!(
        h.events().is_empty(),
        "nothing is queued for a failed request"
    );
}

#[test]
fn an_oversized_gzip_batch_gets_413_and_a_small_one_is_read() {
    let h = Harness::new();
    let gz = |data: &[u8]| {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    };
    let ok = h.send(post(
        "/v1/batch",
        gz(&batch(json!([track("gz-1")]))),
        &[
            ("authorization", &basic("demo-write-key")),
            ("content-encoding", "gzip"),
        ],
    ));
    assert_eq!(json_body(&ok)["accepted"], 1);
    let mut huge = b"{\"batch\":[],\"pad\":\"".to_vec();
    huge.extend(vec![b'x'; 600 * 1024]);
    huge.extend(b"\"}");
    let res = h.send(post(
        "/v1/batch",
        gz(&huge),
        &[
            ("authorization", &basic("demo-write-key")),
            ("content-encoding", "gzip"),
        ],
    ));
    assert_eq!(res.status, 413);
}

#[test]
fn a_queue_failure_is_a_retryable_503_and_nothing_is_reported_accepted() {
    let mut h = Harness::new();
    h.fake.queue_down = true;
    let res = h.send(post(
        "/v1/batch",
        batch(json!([track("q-1")])),
        &[("authorization", &basic("demo-write-key"))],
    ));
    assert_eq!(res.status, 503);
    assert_eq!(res.header("retry-after"), Some("1"));
    assert_eq!(json_body(&res)["error"]["code"], "unavailable");
}

#[test]
fn a_page_on_the_collectors_own_host_is_always_allowed() {
    let h = Harness::new();
    let res = h.send(post(
        "/v1/batch?writeKey=demo-write-key",
        batch(json!([track("same-1")])),
        &[
            ("origin", "http://127.0.0.1:8787"),
            ("host", "127.0.0.1:8787"),
        ],
    ));
    assert_eq!(res.status, 200);
    let res = h.send(post(
        "/v1/batch?writeKey=demo-write-key",
        batch(json!([track("same-2")])),
        &[
            ("origin", "http://127.0.0.1:8787"),
            ("host", "127.0.0.1:9999"),
        ],
    ));
    assert_eq!(res.status, 403);
}

#[test]
fn cors_preflight_lists_headers_and_real_responses_carry_them() {
    let h = Harness::new();
    let pre = h.send(HttpRequest {
        method: "OPTIONS".into(),
        path: "/v1/batch".into(),
        headers: vec![("origin".into(), "https://shop.example.com".into())],
        ..HttpRequest::default()
    });
    assert_eq!(pre.status, 204);
    assert!(pre
        .header("access-control-allow-headers")
        .unwrap()
        .contains("authorization"));
    let res = h.send(post(
        "/v1/batch",
        batch(json!([track("c-1")])),
        &[
            ("authorization", &basic("demo-write-key")),
            ("origin", "https://shop.example.com"),
        ],
    ));
    assert_eq!(
        res.header("access-control-allow-origin"),
        Some("https://shop.example.com")
    );
    let only_shop = Harness::with(
        Config::from_sources_json(
            r#"[{"name":"web","write_key":"k","allowed_origins":["https://shop.example.com"]}]"#,
        )
        .unwrap(),
    );
    let denied = only_shop.send(HttpRequest {
        method: "OPTIONS".into(),
        path: "/v1/batch".into(),
        headers: vec![("origin".into(), "https://evil.example".into())],
        ..HttpRequest::default()
    });
    assert_eq!(denied.status, 403);
    assert_eq!(denied.header("access-control-allow-origin"), None);
}

#[test]
fn the_rate_limit_answers_429_with_retry_after() {
    let h = Harness::new();
    let send = || {
        h.send(post(
            "/v1/batch?writeKey=tiny-key",
            batch(json!([track("r")])),
            &[],
        ))
    };
    assert_eq!(send().status, 200);
    assert_eq!(send().status, 200);
    let limited = send();
    assert_eq!(limited.status, 429);
    assert_eq!(limited.header("retry-after"), Some("1"));
    assert_eq!(
        h.send(post(
            "/v1/batch?writeKey=demo-write-key",
            batch(json!([track("r2")])),
            &[]
        ))
        .status,
        200,
        "other keys are unaffected"
    );
}

#[test]
fn consent_is_enforced_per_source_policy_and_drops_are_counted() {
    let h = Harness::new();
    let with_consent = |id: &str, state: &str| {
        let mut e = track(id);
        e["context"]["consent"] = json!({"categories": {"analytics": state}, "source": "explicit"});
        e
    };
    // Opt-in source: no consent or denied → dropped; granted → kept.
    let res = h.send(post(
        "/v1/batch?writeKey=strict-key",
        batch(json!([
            track("s-none"),
            with_consent("s-no", "denied"),
            with_consent("s-yes", "granted")
        ])),
        &[],
    ));
    let body = json_body(&res);
    assert_eq!(
        (body["accepted"].clone(), body["dropped"].clone()),
        (json!(1), json!(2))
    );
    assert_eq!(body["results"][0]["reason"]["code"], "consent_required");
    let kept = h.events();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].event.message_id, "s-yes");
    assert_eq!(
        kept[0].event.context.as_ref().unwrap()["consent"]["categories"]["analytics"],
        "granted",
        "stored with its consent"
    );
    assert!(
        kept[0].event.context.as_ref().unwrap().get("ip").is_none(),
        "ip policy drop"
    );
    assert_eq!(
        h.drops(),
        [("strict".to_owned(), "consent_required".to_owned(), 2)]
    );
    // Anonymising source: kept without identifiers.
    let res = h.send(post(
        "/v1/batch?writeKey=anon-key",
        batch(json!([with_consent("n-1", "denied")])),
        &[],
    ));
    assert_eq!(json_body(&res)["accepted"], 1);
    let anon = h.events().pop().unwrap().event;
    assert_eq!((anon.anonymous_id, anon.user_id), (None, None));
    assert_eq!(
        anon.context.as_ref().unwrap()["sluice"]["consent"],
        "anonymous"
    );
}

#[test]
fn gpc_opts_out_of_sale_sharing_and_is_recorded() {
    let h = Harness::new();
    let res = h.send(post(
        "/v1/batch?writeKey=demo-write-key",
        batch(json!([track("g-1")])),
        &[("sec-gpc", "1")],
    ));
    assert_eq!(
        json_body(&res)["accepted"],
        1,
        "opt-out regime: analytics still allowed"
    );
    let e = h.events().pop().unwrap().event;
    let consent = sluice_shared::consent::Consent::from_context(e.context.as_ref())
        .unwrap()
        .unwrap();
    assert!(consent.gpc);
    assert!(!sluice_shared::consent::may_forward(
        Some(&consent),
        &[sluice_shared::consent::Purpose::SaleSharing],
        sluice_shared::consent::Regime::OptOut
    ));
}

#[test]
fn bots_are_flagged_or_dropped_per_policy() {
    let h = Harness::new();
    let bot = [(
        "user-agent",
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    )];
    let mut req = post(
        "/v1/batch?writeKey=demo-write-key",
        batch(json!([track("b-1")])),
        &[],
    );
    req.headers.retain(|(k, _)| k != "user-agent");
    req.headers
        .extend(bot.iter().map(|(k, v)| ((*k).into(), (*v).into())));
    assert_eq!(json_body(&h.send(req.clone()))["accepted"], 1);
    assert_eq!(
        h.events()[0].event.context.as_ref().unwrap()["sluice"]["bot"],
        "known_bot"
    );
    let mut strict = req;
    strict.query = "writeKey=strict-key".into();
    let body = json_body(&h.send(strict));
    assert_eq!(body["dropped"], 1);
    assert_eq!(body["results"][0]["reason"]["code"], "bot");
}

#[test]
fn the_tracking_plan_blocks_violations_and_flags_unplanned_events() {
    let h = Harness::new();
    let granted = |mut e: Value| {
        e["context"]["consent"] = json!({"categories": {"analytics": "granted"}});
        e
    };
    let mut bad = granted(track("p-bad"));
    bad["properties"]["revenue"] = json!("12");
    let mut unplanned = granted(track("p-new"));
    unplanned["event"] = json!("Banner Seen");
    let res = h.send(post(
        "/v1/batch?writeKey=strict-key",
        batch(json!([bad, unplanned, granted(track("p-ok"))])),
        &[],
    ));
    let body = json_body(&res);
    assert_eq!(body["results"][0]["status"], "rejected");
    assert_eq!(
        body["results"][0]["errors"][0]["message"],
        "`properties.revenue` must be a number, got string \"12\""
    );
    assert_eq!(body["results"][1]["status"], "accepted");
    assert_eq!(body["results"][1]["warnings"][0]["code"], "unplanned_event");
    let flagged = h
        .events()
        .into_iter()
        .find(|e| e.event.message_id == "p-new")
        .unwrap();
    assert_eq!(
        flagged.event.context.unwrap()["sluice"]["violations"][0]["code"],
        "unplanned_event"
    );
}

#[test]
fn sdk_files_are_served_under_the_configured_path_with_cache_headers() {
    let mut h = Harness::new();
    for name in ["sluice.js", "sdk.0123abcd.js", "manifest.json"] {
        h.fake.assets.insert(
            format!("/sluice/v1/{name}"),
            Asset {
                content_type: "text/javascript".into(),
                body: name.as_bytes().to_vec(),
            },
        );
    }
    let get = |path: &str| {
        h.send(HttpRequest {
            method: "GET".into(),
            path: path.into(),
            ..HttpRequest::default()
        })
    };
    let loader = get("/cdn/sl/sluice.js");
    assert_eq!(
        (loader.status, loader.body.as_slice()),
        (200, b"sluice.js".as_slice())
    );
    assert_eq!(loader.header("cache-control"), Some("public, max-age=300"));
    assert_eq!(
        get("/cdn/sl/sdk.0123abcd.js").header("cache-control"),
        Some("public, max-age=31536000, immutable")
    );
    assert_eq!(
        get("/cdn/sl/manifest.json").header("cache-control"),
        Some("no-cache")
    );
    assert_eq!(get("/cdn/sl/missing.js").status, 404);
    assert_eq!(get("/cdn/sl/..%2fsecret").status, 404);
}

#[test]
fn the_current_wasm_is_served_at_a_stable_url_named_by_its_hashed_file() {
    let mut h = Harness::new();
    let mut asset = |name: &str, body: &str| {
        h.fake.assets.insert(
            format!("/sluice/v1/{name}"),
            Asset {
                content_type: "application/wasm".into(),
                body: body.as_bytes().to_vec(),
            },
        )
    };
    asset("sdk_bg.0123abcd.wasm", "old build");
    asset("sdk_bg.4567cdef.wasm", "this build");
    asset("sluice.js", "the loader");
    asset(
        "manifest.json",
        r#"{"loader": "sluice.js", "integrity": "sha384-abc+/=", "wasm": "sdk_bg.4567cdef.wasm"}"#,
    );
    let get = |h: &Harness, path: &str, etag: Option<&str>| {
        h.send(HttpRequest {
            method: "GET".into(),
            path: path.into(),
            headers: etag
                .map(|t| vec![("if-none-match".to_owned(), t.to_owned())])
                .unwrap_or_default(),
            ..HttpRequest::default()
        })
    };
    let wasm = get(&h, "/cdn/sl/sdk.wasm", None);
    assert_eq!(
        (wasm.status, wasm.body.as_slice()),
        (200, b"this build".as_slice())
    );
    assert_eq!(wasm.header("x-sluice-wasm"), Some("sdk_bg.4567cdef.wasm"));
    assert_eq!(
        wasm.header("access-control-expose-headers"),
        Some("x-sluice-wasm")
    );
    // Cached like the loader, not for a year: the next deploy's replaces it.
    assert_eq!(wasm.header("cache-control"), Some("public, max-age=300"));
    assert_eq!(wasm.header("content-type"), Some("application/wasm"));
    assert_eq!(wasm.header("etag"), Some("\"sdk_bg.4567cdef.wasm\""));
    let hashed = get(&h, "/cdn/sl/sdk_bg.4567cdef.wasm", None);
    assert_eq!(
        (hashed.header("x-sluice-wasm"), hashed.header("etag")),
        (None, None)
    );
    // Revalidated: the same build is not sent again (a weak tag, as a
    // compressing proxy makes it, matches too); another build's is.
    for tag in [
        "\"sdk_bg.4567cdef.wasm\"",
        "W/\"sdk_bg.4567cdef.wasm\"",
        "\"x\", \"sdk_bg.4567cdef.wasm\"",
    ] {
        let same = get(&h, "/cdn/sl/sdk.wasm", Some(tag));
        assert_eq!((same.status, same.body.len()), (304, 0), "{tag}");
        assert_eq!(same.header("x-sluice-wasm"), Some("sdk_bg.4567cdef.wasm"));
        assert_eq!(same.header("cache-control"), Some("public, max-age=300"));
    }
    assert_eq!(
        get(&h, "/cdn/sl/sdk.wasm", Some("\"sdk_bg.0123abcd.wasm\"")).status,
        200
    );
    // The loader is tagged by its bytes: the same is a 304, a new one is sent.
    let loader = get(&h, "/cdn/sl/sluice.js", None);
    let tag = loader.header("etag").unwrap().to_owned();
    assert!(
        tag.starts_with('"') && tag.ends_with('"') && tag.len() > 10,
        "{tag}"
    );
    let again = get(&h, "/cdn/sl/sluice.js", Some(&tag));
    assert_eq!((again.status, again.body.len()), (304, 0));
    assert_eq!(again.header("etag"), Some(tag.as_str()));
    h.fake.assets.insert(
        "/sluice/v1/sluice.js".into(),
        Asset {
            content_type: "text/javascript".into(),
            body: b"the next loader".to_vec(),
        },
    );
    let next = get(&h, "/cdn/sl/sluice.js", Some(&tag));
    assert_eq!(
        (next.status, next.body.as_slice()),
        (200, b"the next loader".as_slice())
    );
    assert_ne!(next.header("etag"), Some(tag.as_str()));
    // A manifest naming no hashed file in this directory: no stable Wasm.
    h.fake.assets.insert(
        "/sluice/v1/manifest.json".into(),
        Asset {
            content_type: "application/json".into(),
            body: br#"{"wasm": "../secret.0123abcd.wasm"}"#.to_vec(),
        },
    );
    assert_eq!(get(&h, "/cdn/sl/sdk.wasm", None).status, 404);
}

#[test]
fn the_id_endpoint_sets_a_server_cookie_and_keeps_an_existing_id() {
    let h = Harness::new();
    let mut req = HttpRequest {
        method: "GET".into(),
        path: "/cdn/sl/id".into(),
        ..HttpRequest::default()
    };
    req.client.https = true;
    let fresh = h.send(req.clone());
    assert_eq!(
        json_body(&fresh)["anonymousId"],
        "00000000-0000-4000-8000-000000000001"
    );
    assert_eq!(
        fresh.header("set-cookie"),
        Some("sluice_aid=00000000-0000-4000-8000-000000000001; Path=/; Max-Age=31536000; SameSite=Lax; Domain=example.com; Secure")
    );
    let existing = "5f2b8e1c-5c3e-4b8a-9d2c-4b6f3f7e4a8b";
    req.headers = vec![("cookie".into(), format!("other=1; sluice_aid={existing}"))];
    assert_eq!(json_body(&h.send(req.clone()))["anonymousId"], existing);
    req.headers.clear();
    req.query = format!("anonymousId={existing}");
    assert_eq!(
        json_body(&h.send(req))["anonymousId"],
        existing,
        "the SDK's stored id is adopted"
    );
}

/// The collector worker answers only its own paths (the accept path, the
/// SDK files, the id cookie, and 404 / 405 around them), exactly as the
/// whole router does; the admin API, the debugger's feed and the profiles
/// are the backend's, which the collector passes them on to.
#[test]
fn the_collector_answers_its_paths_as_the_whole_worker_does_and_passes_on_the_rest() {
    use sluice_edge_worker::router::{owner, Owner};
    let sdk = config().sdk_path;
    for (path, expected) in [
        ("/v1/batch", Owner::Collector),
        ("/v1/b", Owner::Collector),
        ("/beacon/v1/batch", Owner::Collector),
        ("/v1/t", Owner::Collector),
        ("/v1/identify", Owner::Collector),
        ("/cdn/sl/sluice.js", Owner::Collector),
        ("/cdn/sl/id", Owner::Collector),
        ("/nothing/here", Owner::Collector),
        ("/admin/v1/sources", Owner::Backend),
        ("/admin/v1/live", Owner::Backend),
        ("/admin/v1/deliveries", Owner::Backend),
        ("/v1/profiles/user-1", Owner::Backend),
    ] {
        assert_eq!(owner(path, &sdk), expected, "{path}");
    }
    let with_method = |method: &str, mut req: HttpRequest| {
        req.method = method.into();
        req
    };
    let origin = [("origin", "https://shop.example")];
    let requests = [
        post(
            "/v1/batch",
            batch(json!([track("c1"), {"type": "track"}])),
            &[("authorization", &basic("demo-write-key"))],
        ),
        post(
            "/v1/t",
            fixture("analytics-js/track.json"),
            &[("content-type", "text/plain")],
        ),
        post(
            "/v1/batch",
            b"{not json".to_vec(),
            &[("authorization", &basic("demo-write-key"))],
        ),
        with_method("OPTIONS", post("/v1/batch", Vec::new(), &origin)),
        with_method("GET", post("/v1/batch", Vec::new(), &origin)),
        with_method("GET", post("/nothing/here", Vec::new(), &[])),
        with_method("PUT", post("/cdn/sl/sluice.js", Vec::new(), &[])),
    ];
    for req in requests {
        let (whole, collector) = (Harness::new(), Harness::new());
        let expected = whole.send(req.clone());
        let answered = collector.send_collector(req.clone());
        assert_eq!(answered, expected, "{} {}", req.method, req.path);
        assert_eq!(
            collector.events().len(),
            whole.events().len(),
            "{}",
            req.path
        );
    }
    assert_eq!(
        Harness::new()
            .send(post(
                "/v1/batch",
                batch(json!([track("c2")])),
                &[("authorization", &basic("demo-write-key"))]
            ))
            .status,
        200,
        "the comparison above includes an accepted batch"
    );
}
