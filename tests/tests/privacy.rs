//! Privacy rights end to end: one person on two devices, their profile,
//! export, deletion (D1, R2, destinations), suppression, scopes, audit, retention.
#![allow(clippy::unwrap_used)] // test code: a panic is a failed test

use serde_json::{json, Value};
use sluice_e2e::stores::lake_lines;
use sluice_e2e::{eventually, temp_dir, Behaviour, Browser, Receiver, Stack};
use std::time::Duration;

const SECRET: &str = "privacy-hook-secret";

async fn wait_request(stack: &Stack, id: &str) -> Value {
    eventually(
        &format!("request {id} to finish"),
        Duration::from_secs(60),
        || async {
            let (_, r) = stack.admin("GET", &format!("/admin/v1/requests/{id}"), "t-dpo", None);
            (r["status"] == "done" || r["status"] == "failed").then_some(r)
        },
    )
    .await
}

async fn device(stack: &Stack, plan: &str) -> (Browser, String) {
    let b = Browser::start().await;
    b.client.goto(&stack.url("/")).await.unwrap();
    b.wait_for_sdk().await;
    b.js("sluice.consent.set({ analytics: true }); return true")
        .await;
    b.js(&format!("sluice.track('Device Event'); sluice.identify('user-42', {{ email: 'ada@example.com', plan: '{plan}' }}); sluice.track('After Login'); return true")).await;
    let anon = b
        .js("return sluice.anonymousId()")
        .await
        .as_str()
        .unwrap()
        .to_owned();
    (b, anon)
}

#[tokio::test]
async fn a_person_is_linked_exported_deleted_and_stays_deleted() {
    let hook = Receiver::start(SECRET, Behaviour::Healthy);
    let tokens = json!([
        {"name": "dpo", "sha256": sluice_e2e::sha256_hex("t-dpo"), "scopes": ["export", "delete", "read:profiles", "read:events"]},
        {"name": "analyst", "sha256": sluice_e2e::sha256_hex("t-analyst"), "scopes": ["read:events"]},
        {"name": "root", "sha256": sluice_e2e::sha256_hex("t-root"), "scopes": ["admin"]}
    ]);
    let sources = json!([{"name": "demo", "write_key": "demo-write-key", "allowed_origins": [], "consent": {"regime": "opt_out"},
                          "destinations": ["lake", "hook"], "retention_days": 30}]);
    let destinations = json!([
        {"name": "lake", "kind": "r2"},
        {"name": "hook", "kind": "webhook", "url": hook.url(), "secret_var": "HOOK_SECRET"}
    ]);
    let stack = Stack::start_with(&[
        ("SLUICE_SOURCES", &sources.to_string()),
        ("SLUICE_DESTINATIONS", &destinations.to_string()),
        ("SLUICE_ADMIN_TOKENS", &tokens.to_string()),
        ("HOOK_SECRET", SECRET),
    ]);

    // One person, two devices (two browser profiles), signing in on both.
    let (laptop, a1) = device(&stack, "pro").await;
    let (phone, a2) = device(&stack, "enterprise").await;
    assert_ne!(a1, a2);
    let person_sql = format!("SELECT COUNT(*) AS n FROM events WHERE user_id = 'user-42' OR anonymous_id IN ('{a1}', '{a2}')");
    let stored = eventually(
        "both devices' events in D1",
        Duration::from_secs(45),
        || async {
            let n = stack.d1(&person_sql)[0]["n"].as_i64().unwrap();
            (n >= 8).then_some(n)
        },
    )
    .await;
    eventually("the lake to hold them", Duration::from_secs(45), || async {
        (lake_lines(&stack)
            .iter()
            .filter(|e| e["userId"] == "user-42")
            .count()
            >= 4)
            .then_some(())
    })
    .await;

    // The profile links both anonymousIds.
    let (status, profile) = stack.admin("GET", "/admin/v1/profiles/user-42", "t-dpo", None);
    assert_eq!(status, 200, "{profile}");
    let anon_ids: Vec<&str> = profile["anonymousIds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        anon_ids.contains(&a1.as_str()) && anon_ids.contains(&a2.as_str()),
        "{profile}"
    );
    assert_eq!(profile["traits"]["email"], "ada@example.com");
    assert_eq!(
        profile["traits"]["plan"], "enterprise",
        "the latest value by event time wins: the phone signed in last"
    );
    assert!(!profile["consentHistory"].as_array().unwrap().is_empty());
    let (_, by_device) = stack.admin(
        "GET",
        &format!("/admin/v1/profiles?anonymousId={a2}"),
        "t-dpo",
        None,
    );
    assert_eq!(by_device["userId"], "user-42", "a device finds its person");

    // Scopes: an analyst may read events but not delete.
    let (status, body) = stack.admin(
        "POST",
        "/admin/v1/requests",
        "t-analyst",
        Some(json!({"type": "delete", "userId": "user-42"})),
    );
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("forbidden"))
    );
    assert_eq!(
        stack
            .admin("GET", "/admin/v1/events?userId=user-42", "t-analyst", None)
            .0,
        200
    );
    assert_eq!(
        stack
            .admin("GET", "/admin/v1/profiles/user-42", "nope", None)
            .0,
        401
    );

    // Access: everything about the person, from D1 and the lake.
    let (status, req) = stack.admin(
        "POST",
        "/admin/v1/requests",
        "t-dpo",
        Some(json!({"type": "access", "anonymousId": a1})),
    );
    assert_eq!(status, 202, "{req}");
    let done = wait_request(&stack, req["id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "done", "{done}");
    let (_, export) = stack.admin(
        "GET",
        &format!("/admin/v1/requests/{}/export", req["id"].as_str().unwrap()),
        "t-dpo",
        None,
    );
    assert_eq!(
        export["events"].as_array().unwrap().len() as i64,
        stored,
        "every stored event, from both devices"
    );
    assert_eq!(export["profile"]["userId"], "user-42");
    let lake_stored: usize = export["lake"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["events"].as_array().unwrap().len())
        .sum();
    assert_eq!(
        lake_stored as i64, stored,
        "the lake holds every stored event of the person, once"
    );

    // Delete: gone from D1 and R2, destinations told, future events suppressed.
    let (_, req) = stack.admin(
        "POST",
        "/admin/v1/requests",
        "t-dpo",
        Some(json!({"type": "delete", "userId": "user-42"})),
    );
    let deletion = wait_request(&stack, req["id"].as_str().unwrap()).await;
    assert_eq!(deletion["status"], "done", "{deletion}");
    assert_eq!(stack.d1(&person_sql)[0]["n"], 0);
    let lake = lake_lines(&stack);
    assert!(
        lake.iter().all(|e| e["userId"] != "user-42"
            && e["anonymousId"] != a1.as_str()
            && e["anonymousId"] != a2.as_str()),
        "the lake still holds them"
    );
    let notice = hook
        .received()
        .into_iter()
        .find(|r| r.body["type"] == "delete")
        .expect("a deletion notice");
    assert!(notice.signature_valid);
    assert_eq!(notice.body["userIds"], json!(["user-42"]));
    laptop
        .js("sluice.track('After Deletion'); sluice.flush(); return true")
        .await;
    let (status, _) = stack.post_json("/v1/batch?writeKey=demo-write-key", &[], &json!({"batch": [{"type": "track", "messageId": "someone-else", "anonymousId": "other", "event": "Sentinel"}]}));
    assert_eq!(status, 200);
    eventually("the sentinel", Duration::from_secs(30), || async {
        (!stack
            .d1("SELECT 1 FROM events WHERE message_id = 'someone-else'")
            .is_empty())
        .then_some(())
    })
    .await;
    eventually(
        "the suppressed event to be counted",
        Duration::from_secs(30),
        || async {
            (!stack
                .d1("SELECT 1 FROM counters WHERE name = 'dropped_suppressed'")
                .is_empty())
            .then_some(())
        },
    )
    .await;
    assert_eq!(
        stack.d1(&person_sql)[0]["n"],
        0,
        "a deleted person stays deleted"
    );
    // Proof of deletion: a new export is empty.
    let (_, req) = stack.admin(
        "POST",
        "/admin/v1/requests",
        "t-dpo",
        Some(json!({"type": "access", "userId": "user-42"})),
    );
    wait_request(&stack, req["id"].as_str().unwrap()).await;
    let (_, export) = stack.admin(
        "GET",
        &format!("/admin/v1/requests/{}/export", req["id"].as_str().unwrap()),
        "t-dpo",
        None,
    );
    assert_eq!(export["events"], json!([]));
    assert_eq!(export["profile"], Value::Null);
    drop(phone);

    // The audit log has it all, refusals included.
    let (status, audit) = stack.admin("GET", "/admin/v1/audit?limit=200", "t-root", None);
    assert_eq!(status, 200);
    let entries = audit["entries"].as_array().unwrap();
    let has = |actor: &str, action: &str, outcome: &str| {
        entries.iter().any(|e| {
            e["actor"] == actor
                && e["action"].as_str().unwrap().contains(action)
                && e["outcome"] == outcome
        })
    };
    assert!(
        has("analyst", "POST /admin/v1/requests", "forbidden"),
        "{entries:?}"
    );
    assert!(has("dpo", "delete", "done"));
    let deleted = &deletion["result"];
    assert_eq!(deleted["events"].as_i64(), Some(stored), "{deletion}");
    let lake_removed = deleted["lakeEvents"].as_i64().unwrap();
    assert_eq!(lake_removed, lake_stored as i64, "{deletion}");
    assert!(
        entries.iter().any(|e| e["actor"] == "dpo"
            && e["action"] == "delete"
            && e["records"].as_i64() == Some(stored + lake_removed)),
        "{entries:?}"
    );
    assert!(has("dpo", "access", "done"));
    assert_eq!(
        stack.admin("GET", "/admin/v1/audit", "t-dpo", None).0,
        403,
        "the audit log needs the admin scope"
    );

    // Retention: events and lake objects older than 30 days go; recent ones stay.
    stack.d1_write(
        "INSERT INTO events (person, message_id, source, type, received_at) VALUES ('', 'ancient', 'demo', 'track', '2020-01-01T00:00:00.000Z')",
    );
    let old = temp_dir("old").join("old.ndjson.gz");
    std::fs::write(&old, b"").unwrap();
    stack.wrangler(&[
        "r2",
        "object",
        "put",
        "sluice-lake/events/source=demo/dt=2020-01-01/hour=00/old.ndjson.gz",
        "--file",
        old.to_str().unwrap(),
    ]);
    assert_eq!(stack.run_cron("17 3 * * *"), 200);
    eventually(
        "retention to remove the old event",
        Duration::from_secs(20),
        || async {
            stack
                .d1("SELECT 1 FROM events WHERE message_id = 'ancient'")
                .is_empty()
                .then_some(())
        },
    )
    .await;
    assert!(
        !stack
            .d1("SELECT 1 FROM events WHERE message_id = 'someone-else'")
            .is_empty(),
        "recent events stay"
    );
    let keys = stack.export_r2("sluice-lake", &temp_dir("after"));
    assert!(
        !keys.iter().any(|k| k.contains("dt=2020-01-01")),
        "{keys:?}"
    );
    assert!(
        keys.iter().any(|k| k.starts_with("events/source=demo/dt=")),
        "recent lake objects stay"
    );
}
