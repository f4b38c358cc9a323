//! Hostile input over real HTTP against the worker on workerd: every bad
//! request or event gets its typed code, and the good events sent beside it
//! are stored exactly once — counted in the R2 lake with DuckDB (no primary
//! key there: an event written twice is two rows), and present in D1; the
//! events of requests refused as a whole are stored nowhere. The final counts
//! are taken after a sentinel sent last through the same path is visible in
//! both stores, so nothing still on its way can be missed.
#![allow(clippy::unwrap_used)] // test code: a panic is a failed test

use serde_json::{json, Value};
use sluice_e2e::{duckdb, eventually, temp_dir, Stack};
use std::collections::BTreeMap;
use std::io::Write;
use std::ops::Not;
use std::time::Duration;

const CHROME: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36";
const KEY: &str = "demo-write-key";

fn good(id: &str) -> String {
    json!({"type": "track", "messageId": id, "anonymousId": "hostile-visitor", "event": "Product Viewed",
           "properties": {"product_id": id},
           "context": {"consent": {"categories": {"analytics": "granted"}, "source": "explicit"}}})
    .to_string()
}

fn envelope(events: &[&[u8]], rest: &str) -> Vec<u8> {
    let mut body = b"{\"batch\":[".to_vec();
    for (i, e) in events.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(e);
    }
    body.extend_from_slice(b"]");
    body.extend_from_slice(rest.as_bytes());
    body.extend_from_slice(b"}");
    body
}

/// Poll a condition from a synchronous step (the stores are read by subprocess).
fn eventually_sync(mut ready: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !ready() {
        assert!(std::time::Instant::now() < deadline, "timed out");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// What the test expects to be stored, and never stored, across all cases.
#[derive(Default)]
struct Ledger {
    stored: Vec<String>,
    never: Vec<String>,
}

struct Answer {
    status: u16,
    body: Value,
}

fn send(stack: &Stack, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Answer {
    let mut all = vec![("user-agent", CHROME)];
    all.extend_from_slice(headers);
    let (status, bytes) = stack.request("POST", path, &all, body);
    let body = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
        panic!(
            "{path}: {status} answer is not JSON: {}",
            String::from_utf8_lossy(&bytes)
        )
    });
    Answer { status, body }
}

fn batch_path() -> String {
    format!("/v1/batch?writeKey={KEY}")
}

/// A whole-request error: its status and code, in the one error shape.
fn assert_refused(case: &str, a: &Answer, status: u16, code: &str) {
    assert_eq!(
        (a.status, a.body["error"]["code"].as_str()),
        (status, Some(code)),
        "{case}: {}",
        a.body
    );
    assert!(
        a.body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{case}: {}",
        a.body
    );
    assert_eq!(a.body.as_object().unwrap().len(), 1, "{case}: {}", a.body);
}

/// A 200 with a result per event: `expected` gives each event's id as
/// reported and its error code (`None` = accepted).
fn assert_results(case: &str, a: &Answer, expected: &[(Option<&str>, Option<&str>)]) {
    assert_eq!(a.status, 200, "{case}: {}", a.body);
    let results = a.body["results"].as_array().unwrap();
    let got: Vec<(Option<&str>, Option<&str>)> = results
        .iter()
        .map(|r| {
            let code = match r["status"].as_str().unwrap() {
                "accepted" => None,
                "rejected" => Some(r["errors"][0]["code"].as_str().unwrap()),
                other => panic!("{case}: unexpected status {other}: {r}"),
            };
            (r["messageId"].as_str(), code)
        })
        .collect();
    assert_eq!(got, expected, "{case}: {}", a.body);
    let accepted = expected.iter().filter(|(_, c)| c.is_none()).count();
    assert_eq!(
        (
            a.body["accepted"].as_u64(),
            a.body["rejected"].as_u64(),
            a.body["dropped"].as_u64()
        ),
        (
            Some(accepted as u64),
            Some((expected.len() - accepted) as u64),
            Some(0)
        ),
        "{case}: {}",
        a.body
    );
}

fn warning_codes(a: &Answer) -> Vec<&str> {
    a.body["warnings"]
        .as_array()
        .map(|w| w.iter().map(|w| w["code"].as_str().unwrap()).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn hostile_input_gets_typed_errors_and_the_good_events_beside_it_are_stored_once() {
    let sources = json!([{"name": "demo", "write_key": KEY, "allowed_origins": ["https://shop.example.com"],
                          "consent": {"regime": "opt_in"}, "destinations": ["lake"]}]);
    let destinations =
        json!([{"name": "lake", "kind": "r2", "format": "ndjson", "purposes": ["analytics"]}]);
    let stack = Stack::start_with(&[
        ("SLUICE_SOURCES", &sources.to_string()),
        ("SLUICE_DESTINATIONS", &destinations.to_string()),
    ]);
    let mut ledger = Ledger::default();
    events_that_cannot_be_decoded_are_rejected_alone(&stack, &mut ledger);
    events_of_the_wrong_shape_are_rejected_alone(&stack, &mut ledger);
    a_bad_envelope_field_is_ignored_and_its_events_are_kept(&stack, &mut ledger);
    requests_that_cannot_be_read_are_refused_whole(&stack, &mut ledger);
    bodies_over_the_limits_and_bad_encodings_are_refused(&stack, &mut ledger);
    missing_wrong_and_garbage_credentials_and_foreign_origins_are_refused(&stack, &mut ledger);
    local_credentials_are_refused_on_a_public_host(&stack, &mut ledger);
    stored_exactly_once(&stack, &ledger).await;
}

fn events_that_cannot_be_decoded_are_rejected_alone(stack: &Stack, ledger: &mut Ledger) {
    let (g1, g2) = (good("h-utf8-good-1"), good("h-utf8-good-2"));
    let not_utf8 = b"{\"type\":\"track\",\"messageId\":\"h-utf8-bad\",\"anonymousId\":\"v\",\"event\":\"\xff\xfe\xfd\"}";
    let surrogate =
        br#"{"type":"track","messageId":"h-surrogate-bad","anonymousId":"v","event":"\ud800"}"#;
    let nan = br#"{"type":"track","messageId":"h-nan-bad","anonymousId":"v","event":"E","properties":{"v":NaN}}"#;
    let depth = 5_000; // serde_json stops at 128
    let deep = format!(
        r#"{{"type":"track","messageId":"h-deep-bad","anonymousId":"v","event":"E","properties":{{"p":{}1{}}}}}"#,
        "[".repeat(depth),
        "]".repeat(depth)
    );
    let duplicate = br#"{"type":"track","messageId":"h-dup-bad","messageId":"h-dup-other","anonymousId":"v","event":"E"}"#;
    let body = envelope(
        &[
            g1.as_bytes(),
            not_utf8,
            surrogate,
            nan,
            deep.as_bytes(),
            duplicate,
            g2.as_bytes(),
        ],
        r#","sentAt":"2024-05-01T10:00:01.000Z""#,
    );
    let a = send(
        stack,
        &batch_path(),
        &[("content-type", "text/plain")],
        &body,
    );
    let expected = [
        (Some("h-utf8-good-1"), None),
        (Some("h-utf8-bad"), Some("invalid_utf8")),
        (Some("h-surrogate-bad"), Some("malformed_event")),
        (Some("h-nan-bad"), Some("malformed_event")),
        (Some("h-deep-bad"), Some("too_deep")),
        (Some("h-dup-bad"), Some("malformed_event")),
        (Some("h-utf8-good-2"), None),
    ];
    assert_results("undecodable events", &a, &expected);
    // A client retries the same request once its first copy is stored (another
    // consumer batch): the same answer, and still one copy in storage (below).
    eventually_sync(|| {
        stack
            .d1("SELECT 1 FROM events WHERE message_id IN ('h-utf8-good-1', 'h-utf8-good-2')")
            .len()
            == 2
    });
    let again = send(
        stack,
        &batch_path(),
        &[("content-type", "text/plain")],
        &body,
    );
    assert_results("the same request again", &again, &expected);
    assert_results(
        "undecodable events",
        &a,
        &[
            (Some("h-utf8-good-1"), None),
            (Some("h-utf8-bad"), Some("invalid_utf8")),
            (Some("h-surrogate-bad"), Some("malformed_event")),
            (Some("h-nan-bad"), Some("malformed_event")),
            (Some("h-deep-bad"), Some("too_deep")),
            (Some("h-dup-bad"), Some("malformed_event")),
            (Some("h-utf8-good-2"), None),
        ],
    );
    assert!(
        a.body["results"][5]["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("duplicate field"),
        "{}",
        a.body
    );
    ledger
        .stored
        .extend(["h-utf8-good-1".into(), "h-utf8-good-2".into()]);
    ledger.never.extend(
        [
            "h-utf8-bad",
            "h-surrogate-bad",
            "h-nan-bad",
            "h-deep-bad",
            "h-dup-bad",
            "h-dup-other",
        ]
        .map(String::from),
    );
}

fn events_of_the_wrong_shape_are_rejected_alone(stack: &Stack, ledger: &mut Ledger) {
    let g = good("h-shape-good");
    let oversize =
        json!({"type": "track", "messageId": "h-oversize-bad", "anonymousId": "v", "event": "E",
                          "properties": {"padding": "x".repeat(33 * 1024)}})
        .to_string();
    let wrong_type = br#"{"type":"track","messageId":"h-props-bad","anonymousId":"v","event":"E","properties":[1,2]}"#;
    let type_number = br#"{"type":7,"messageId":"h-type-bad","anonymousId":"v"}"#;
    let unknown = br#"{"type":"launch","messageId":"h-unknown-bad","anonymousId":"v"}"#;
    let no_identity = br#"{"type":"track","messageId":"h-noid-bad","event":"E"}"#;
    let not_object = b"42";
    // No messageId: the collector derives one from the event's bytes.
    let no_message_id = br#"{"type":"track","anonymousId":"hostile-visitor","event":"No Id","context":{"consent":{"categories":{"analytics":"granted"}}}}"#;
    let a = send(
        stack,
        &batch_path(),
        &[("content-type", "application/json")],
        &envelope(
            &[
                oversize.as_bytes(),
                wrong_type,
                type_number,
                g.as_bytes(),
                unknown,
                no_identity,
                not_object,
                no_message_id,
            ],
            "",
        ),
    );
    let derived = a.body["results"][7]["messageId"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        derived,
        sluice_shared::parse::derive_message_id(no_message_id)
    );
    assert_results(
        "events of the wrong shape",
        &a,
        &[
            (Some("h-oversize-bad"), Some("event_too_large")),
            (Some("h-props-bad"), Some("malformed_event")),
            (Some("h-type-bad"), Some("unknown_type")),
            (Some("h-shape-good"), None),
            (Some("h-unknown-bad"), Some("unknown_type")),
            (Some("h-noid-bad"), Some("missing_identity")),
            (None, Some("malformed_event")),
            (Some(derived.as_str()), None),
        ],
    );
    ledger.stored.extend(["h-shape-good".into(), derived]);
    ledger.never.extend(
        [
            "h-oversize-bad",
            "h-props-bad",
            "h-type-bad",
            "h-unknown-bad",
            "h-noid-bad",
        ]
        .map(String::from),
    );
}

fn a_bad_envelope_field_is_ignored_and_its_events_are_kept(stack: &Stack, ledger: &mut Ledger) {
    // The issue's case: `"sentAt": 5` used to reject the whole batch.
    let (g1, g2) = (good("h-env-good-1"), good("h-env-good-2"));
    let a = send(
        stack,
        &batch_path(),
        &[],
        &envelope(
            &[g1.as_bytes(), g2.as_bytes()],
            r#","sentAt":5,"context":"not an object","integrations":[1]"#,
        ),
    );
    assert_results(
        "sentAt: 5",
        &a,
        &[(Some("h-env-good-1"), None), (Some("h-env-good-2"), None)],
    );
    assert_eq!(
        warning_codes(&a),
        [
            "invalid_envelope_field",
            "invalid_envelope_field",
            "invalid_envelope_field"
        ],
        "{}",
        a.body
    );
    // NaN and a duplicate at the envelope level: ignored too.
    let g3 = good("h-env-good-3");
    let a = send(
        stack,
        &batch_path(),
        &[],
        &envelope(
            &[g3.as_bytes()],
            r#","sentAt":NaN,"writeKey":"x","writeKey":"y""#,
        ),
    );
    assert_results("sentAt: NaN", &a, &[(Some("h-env-good-3"), None)]);
    assert_eq!(
        warning_codes(&a),
        ["invalid_envelope_field", "duplicate_envelope_field"],
        "{}",
        a.body
    );
    ledger
        .stored
        .extend(["h-env-good-1", "h-env-good-2", "h-env-good-3"].map(String::from));
}

fn requests_that_cannot_be_read_are_refused_whole(stack: &Stack, ledger: &mut Ledger) {
    let never = good("h-never-json");
    let mut truncated = envelope(&[never.as_bytes()], "");
    truncated.truncate(truncated.len() - 3);
    let a = send(stack, &batch_path(), &[], &truncated);
    assert_refused("truncated JSON", &a, 400, "invalid_json");

    let never_nan = good("h-never-nan-structure");
    let mut body = envelope(&[never_nan.as_bytes()], "");
    body.splice(1..1, b"NaN,".iter().copied());
    let a = send(stack, &batch_path(), &[], &body);
    assert_refused("NaN in the envelope's structure", &a, 400, "invalid_json");

    let never_env = good("h-never-envelope");
    let a = send(
        stack,
        &batch_path(),
        &[],
        format!(r#"{{"batch":{{"0":{never_env}}}}}"#).as_bytes(),
    );
    assert_refused("batch is not an array", &a, 400, "invalid_envelope");

    let a = send(stack, &batch_path(), &[], br#"[{"type":"track"}]"#);
    assert_refused("not an object", &a, 400, "not_an_object");
    let a = send(stack, &batch_path(), &[], br#"{"sentAt":"x"}"#);
    assert_refused("no batch", &a, 400, "missing_batch");
    let a = send(stack, &batch_path(), &[], b"   ");
    assert_refused("empty body", &a, 400, "empty_body");

    let mut many: Vec<&[u8]> = vec![b"{}".as_slice(); 2500];
    many.push(never.as_bytes());
    let a = send(stack, &batch_path(), &[], &envelope(&many, ""));
    assert_refused("too many events", &a, 400, "too_many_events");
    ledger
        .never
        .extend(["h-never-json", "h-never-nan-structure", "h-never-envelope"].map(String::from));
}

fn bodies_over_the_limits_and_bad_encodings_are_refused(stack: &Stack, ledger: &mut Ledger) {
    let padded: Vec<String> = (0..20)
        .map(|i| {
            json!({"type": "track", "messageId": format!("h-never-big-{i}"), "anonymousId": "v", "event": "E",
                   "properties": {"padding": "x".repeat(30_000)}})
            .to_string()
        })
        .collect();
    let refs: Vec<&[u8]> = padded.iter().map(|e| e.as_bytes()).collect();
    let big = envelope(&refs, "");
    assert!(big.len() > 500 * 1024);
    let a = send(stack, &batch_path(), &[], &big);
    assert_refused("oversize body", &a, 413, "payload_too_large");

    // 10 MB of events in a gzip body of a few KB: stops at the limit.
    let bomb_events: Vec<String> = (0..400)
        .map(|i| {
            json!({"type": "track", "messageId": format!("h-never-bomb-{i}"), "anonymousId": "v", "event": "E",
                   "properties": {"padding": " ".repeat(25_000)}})
            .to_string()
        })
        .collect();
    let refs: Vec<&[u8]> = bomb_events.iter().map(|e| e.as_bytes()).collect();
    let bomb = gzip(&envelope(&refs, ""));
    assert!(bomb.len() < 100 * 1024, "{}", bomb.len());
    let a = send(stack, &batch_path(), &[("content-encoding", "gzip")], &bomb);
    assert_refused("gzip bomb", &a, 413, "payload_too_large");

    let never = good("h-never-corrupt-gzip");
    let mut corrupt = gzip(&envelope(&[never.as_bytes()], ""));
    let middle = corrupt.len() / 2;
    corrupt[middle] ^= 0xff;
    corrupt.truncate(corrupt.len() - 4);
    let a = send(
        stack,
        &batch_path(),
        &[("content-encoding", "gzip")],
        &corrupt,
    );
    assert_refused("corrupt gzip", &a, 400, "bad_content_encoding");

    let never_br = good("h-never-br");
    let a = send(
        stack,
        &batch_path(),
        &[("content-encoding", "br")],
        &envelope(&[never_br.as_bytes()], ""),
    );
    assert_refused("unsupported encoding", &a, 400, "bad_content_encoding");

    // The control: a good gzip body is read.
    let g = good("h-gzip-good");
    let a = send(
        stack,
        &batch_path(),
        &[("content-encoding", "gzip")],
        &gzip(&envelope(&[g.as_bytes()], "")),
    );
    assert_results("gzip", &a, &[(Some("h-gzip-good"), None)]);
    ledger.stored.push("h-gzip-good".into());
    ledger.never.extend(
        [
            "h-never-big-0",
            "h-never-bomb-0",
            "h-never-corrupt-gzip",
            "h-never-br",
        ]
        .map(String::from),
    );
}

fn missing_wrong_and_garbage_credentials_and_foreign_origins_are_refused(
    stack: &Stack,
    ledger: &mut Ledger,
) {
    let never = good("h-never-auth");
    let body = envelope(&[never.as_bytes()], "");
    let a = send(stack, "/v1/batch", &[], &body);
    assert_refused("no credentials", &a, 401, "unauthorized");
    let a = send(stack, "/v1/batch?writeKey=not-a-key", &[], &body);
    assert_refused("unknown write key", &a, 401, "unauthorized");
    for garbage in [
        "Basic !!!not-base64!!!",
        "Basic /w==",
        "Bearer demo-write-key",
        "Basic",
    ] {
        let a = send(stack, "/v1/batch", &[("authorization", garbage)], &body);
        assert_refused(garbage, &a, 401, "unauthorized");
    }
    let a = send(
        stack,
        "/v1/batch",
        &[],
        &envelope(&[never.as_bytes()], r#","writeKey":42"#),
    );
    assert_refused(
        "a write key of the wrong type is no key",
        &a,
        401,
        "unauthorized",
    );
    let a = send(
        stack,
        &batch_path(),
        &[("origin", "https://evil.example")],
        &body,
    );
    assert_refused("foreign origin", &a, 403, "origin_not_allowed");
    let a = send(
        stack,
        "/admin/v1/audit",
        &[("authorization", "Bearer not-a-token")],
        b"",
    );
    assert_refused("wrong admin token", &a, 401, "unauthorized");
    // The debugger's WebSocket needs a token too.
    for (query, status, code) in [
        ("", 401, "unauthorized"),
        ("?token=wrong", 401, "unauthorized"),
        ("?token=dev-admin-token", 400, "bad_request"), // authenticated; not an upgrade
    ] {
        let (got, bytes) = stack.request("GET", &format!("/admin/v1/live{query}"), &[], b"");
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(
            (got, v["error"]["code"].as_str()),
            (status, Some(code)),
            "live{query}: {v}"
        );
    }
    ledger.never.push("h-never-auth".into());
}

fn local_credentials_are_refused_on_a_public_host(stack: &Stack, ledger: &mut Ledger) {
    let never = good("h-never-public-host");
    let a = send(
        stack,
        &batch_path(),
        &[("host", "sluice.example.com")],
        &envelope(&[never.as_bytes()], ""),
    );
    assert_refused(
        "demo key on a public host",
        &a,
        403,
        "dev_credential_refused",
    );
    let a = send(
        stack,
        "/admin/v1/audit",
        &[
            ("host", "sluice.example.com"),
            ("authorization", "Bearer dev-admin-token"),
        ],
        b"",
    );
    assert_refused(
        "dev token on a public host",
        &a,
        403,
        "dev_credential_refused",
    );
    let (status, _) = stack.request(
        "GET",
        "/admin/v1/audit",
        &[("authorization", "Bearer dev-admin-token")],
        b"",
    );
    assert_eq!(status, 200, "the dev token works on 127.0.0.1");
    ledger.never.push("h-never-public-host".into());
}

async fn stored_exactly_once(stack: &Stack, ledger: &Ledger) {
    let sentinel = good("h-sentinel");
    let a = send(
        stack,
        &batch_path(),
        &[],
        &envelope(&[sentinel.as_bytes()], ""),
    );
    assert_results("sentinel", &a, &[(Some("h-sentinel"), None)]);
    let lake = temp_dir("hostile-lake");
    let glob = format!("{}/events/**/*.ndjson.gz", lake.display());
    eventually(
        "the sentinel in D1 and in the lake",
        Duration::from_secs(60),
        || async {
            let in_d1 = !stack
                .d1("SELECT 1 FROM events WHERE message_id = 'h-sentinel'")
                .is_empty();
            let keys = stack.export_r2("sluice-lake", &lake);
            let in_lake = keys.iter().any(|k| k.starts_with("events/"))
                && duckdb(&format!(
                    "SELECT 1 FROM read_json_auto('{glob}', hive_partitioning = true) WHERE messageId = 'h-sentinel'"
                ))
                .is_empty()
                .not();
            (in_d1 && in_lake).then_some(())
        },
    )
    .await;
    let mut expected: BTreeMap<String, i64> =
        ledger.stored.iter().map(|id| (id.clone(), 1)).collect();
    expected.insert("h-sentinel".into(), 1);

    // The lake: every row of every object, counted per messageId (no key to hide a copy).
    let rows = duckdb(&format!(
        "SELECT messageId, COUNT(*) AS n FROM read_json_auto('{glob}', hive_partitioning = true) \
         GROUP BY messageId ORDER BY messageId"
    ));
    let lake_counts: BTreeMap<String, i64> = rows
        .iter()
        .map(|r| {
            (
                r["messageId"].as_str().unwrap().to_owned(),
                r["n"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        lake_counts, expected,
        "the lake holds each good event once, and nothing else"
    );

    // D1: the same ids, and none of the refused ones.
    let d1: BTreeMap<String, i64> = stack
        .d1("SELECT message_id, COUNT(*) AS n FROM events GROUP BY message_id ORDER BY message_id")
        .iter()
        .map(|r| {
            (
                r["message_id"].as_str().unwrap().to_owned(),
                r["n"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(d1, expected, "D1 holds exactly the good events");
    for id in &ledger.never {
        assert!(
            !lake_counts.contains_key(id) && !d1.contains_key(id),
            "{id} was refused but stored"
        );
    }
}
