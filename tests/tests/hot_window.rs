//! D1 as a hot window, on workerd: a D1 that reaches its configured capacity
//! stops taking event rows with a clear error while the lake and the
//! webhook keep receiving every event (nothing lost, nothing stalls), and a
//! lake-only deployment keeps no event rows in D1 while export and deletion
//! work from the lake.
#![allow(clippy::unwrap_used)] // test code: a panic is a failed test

use serde_json::{json, Value};
use sluice_e2e::stores::{event, lake_lines, once, post, tally};
use sluice_e2e::{eventually, Behaviour, Receiver, Stack};
use std::time::Duration;

const SECRET: &str = "hot-window-secret";

fn vars(hook: &Receiver, extra: &[(&'static str, String)]) -> Vec<(&'static str, String)> {
    let tokens =
        json!([{"name": "root", "sha256": sluice_e2e::sha256_hex("t-root"), "scopes": ["admin"]}]);
    let destinations = json!([
        {"name": "lake", "kind": "r2"},
        {"name": "hook", "kind": "webhook", "url": hook.url(), "secret_var": "HOOK_SECRET"}
    ]);
    let sources = json!([{"name": "demo", "write_key": "demo-write-key", "allowed_origins": [],
                          "consent": {"regime": "opt_in"}, "destinations": ["lake", "hook"]}]);
    let mut v = vec![
        ("SLUICE_SOURCES", sources.to_string()),
        ("SLUICE_DESTINATIONS", destinations.to_string()),
        ("SLUICE_ADMIN_TOKENS", tokens.to_string()),
        ("HOOK_SECRET", SECRET.to_owned()),
    ];
    v.extend_from_slice(extra);
    v
}

fn borrowed<'a>(v: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    v.iter().map(|(k, s)| (*k, s.as_str())).collect()
}

/// The local D1 database's size in bytes, from its SQLite file.
fn d1_size(stack: &Stack) -> i64 {
    stack.d1("SELECT page_count * page_size AS b FROM pragma_page_count(), pragma_page_size()")[0]
        ["b"]
        .as_i64()
        .unwrap()
}

fn status(stack: &Stack) -> Value {
    let (code, body) = stack.admin("GET", "/admin/v1/status", "t-root", None);
    assert_eq!(code, 200, "{body}");
    body["d1"].clone()
}

/// Wait until the lake and the webhook hold every id.
async fn delivered(stack: &Stack, hook: &Receiver, ids: &[String]) {
    eventually(
        &format!("{} events in the lake and at the webhook", ids.len()),
        Duration::from_secs(120),
        || async {
            let lake = tally(
                lake_lines(stack)
                    .iter()
                    .filter_map(|e| e["messageId"].as_str().map(str::to_owned)),
            );
            let at_hook = tally(hook.accepted_ids());
            ids.iter()
                .all(|id| lake.contains_key(id) && at_hook.contains_key(id))
                .then_some(())
        },
    )
    .await;
}

#[tokio::test]
async fn a_full_d1_reports_it_and_the_lake_and_the_webhook_still_get_every_event() {
    let hook = Receiver::start(SECRET, Behaviour::Healthy);
    let mut stack = Stack::start_with(&borrowed(&vars(&hook, &[])));
    // A capacity 48 KB above the freshly migrated database: a few dozen
    // event rows fill it.
    let capacity = d1_size(&stack) + 48 * 1024;
    stack.restart_with(&borrowed(&vars(
        &hook,
        &[("SLUICE_D1_CAPACITY_BYTES", capacity.to_string())],
    )));
    let mut ids = Vec::new();
    for r in 0..30 {
        let batch: Vec<String> = (0..10).map(|i| format!("full-{r:02}-{i}")).collect();
        post(
            &stack,
            batch
                .iter()
                .map(|id| {
                    let mut e = event(id, &format!("visitor-{r}"));
                    e["properties"]["padding"] = json!("x".repeat(400));
                    e
                })
                .collect(),
        );
        // Each request in a consumer batch of its own: D1 reports its size
        // after each, so the guard sees it fill up part-way through, however
        // many requests a consumer batch may hold.
        delivered(&stack, &hook, &batch).await;
        ids.extend(batch);
    }
    // The sentinel goes last through the same path: once it is everywhere,
    // everything before it has been handled.
    post(&stack, vec![event("full-sentinel", "visitor-s")]);
    ids.push("full-sentinel".into());
    delivered(&stack, &hook, &ids).await;

    let all: Vec<&str> = ids.iter().map(String::as_str).collect();
    let lake = tally(
        lake_lines(&stack)
            .iter()
            .filter_map(|e| e["messageId"].as_str().map(str::to_owned)),
    );
    assert_eq!(lake, once(&all), "every event in the lake, once");
    assert_eq!(tally(hook.accepted_ids()), once(&all), "and at the webhook");
    let in_d1 = stack.d1("SELECT COUNT(*) AS n FROM events")[0]["n"]
        .as_i64()
        .unwrap();
    let refused = stack.counter("d1_full");
    assert!(in_d1 > 0, "D1 took events until it was full");
    assert!(refused > 0, "then refused the rest");
    assert_eq!(
        in_d1 + refused,
        all.len() as i64,
        "each event either in D1 or counted as refused"
    );
    assert_eq!(stack.counter("d1_written"), in_d1);
    let s = status(&stack);
    assert_eq!(s["state"], "full", "{s}");
    assert_eq!(s["capacityBytes"], capacity, "{s}");
    assert!(s["warning"].as_str().unwrap().contains("D1 is full"), "{s}");
    assert!(
        stack.log().contains("D1 is full"),
        "the worker logged the typed error"
    );
}

#[tokio::test]
async fn lake_only_keeps_no_event_rows_and_export_and_deletion_work_from_the_lake() {
    let hook = Receiver::start(SECRET, Behaviour::Healthy);
    let stack = Stack::start_with(&borrowed(&vars(
        &hook,
        &[("SLUICE_D1_EVENTS", "off".to_owned())],
    )));
    let mut login = event("lo-login", "anon-lo");
    login["type"] = json!("identify");
    login.as_object_mut().unwrap().remove("event");
    login["userId"] = json!("user-lo");
    login["traits"] = json!({"plan": "pro"});
    post(
        &stack,
        vec![
            login,
            event("lo-view", "anon-lo"),
            event("other-view", "anon-other"),
        ],
    );
    let ids: Vec<String> = ["lo-login", "lo-view", "other-view"]
        .map(String::from)
        .to_vec();
    delivered(&stack, &hook, &ids).await;
    assert!(
        stack.d1("SELECT 1 FROM events").is_empty(),
        "no event rows in D1"
    );
    assert_eq!(
        stack.d1("SELECT anonymous_id, user_id FROM identity_links"),
        [json!({"anonymous_id": "anon-lo", "user_id": "user-lo"})],
        "the identity graph (the profile's sightings) is kept"
    );
    assert_eq!(status(&stack)["events"], "lake_only");

    let job = |kind: &str| {
        let (code, filed) = stack.admin(
            "POST",
            "/admin/v1/requests",
            "t-root",
            Some(json!({"type": kind, "userId": "user-lo"})),
        );
        assert_eq!(code, 202, "{filed}");
        filed["id"].as_str().unwrap().to_owned()
    };
    let done = |id: String| {
        let stack = &stack;
        async move {
            eventually("the request done", Duration::from_secs(60), || async {
                let (_, r) =
                    stack.admin("GET", &format!("/admin/v1/requests/{id}"), "t-root", None);
                (r["status"] == "done").then_some(id.clone())
            })
            .await
        }
    };
    let access = done(job("access")).await;
    let (code, export) = stack.admin(
        "GET",
        &format!("/admin/v1/requests/{access}/export"),
        "t-root",
        None,
    );
    assert_eq!(code, 200, "{export}");
    let mut exported: Vec<&str> = export["lake"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|o| o["events"].as_array().unwrap())
        .filter_map(|e| e["messageId"].as_str())
        .collect();
    exported.sort_unstable();
    assert_eq!(
        exported,
        ["lo-login", "lo-view"],
        "their events, from the lake"
    );
    assert_eq!(export["events"], json!([]), "none from D1");

    done(job("delete")).await;
    let left: Vec<String> = lake_lines(&stack)
        .iter()
        .filter_map(|e| e["messageId"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(left, ["other-view"], "their lines are cut from the lake");
    let indexed = stack.d1("SELECT p.value AS person FROM lake_objects o, json_each(o.people) p");
    assert_eq!(
        indexed,
        [json!({"person": "anon-other"})],
        "and from the lake index"
    );
}
