//! `suppress` and `opt_out` data-subject requests end to end: through the
//! admin API, the jobs Queue, the `suppressions` table, and their effect on
//! the person's later events (all linked ids) in D1, the lake and the
//! destinations.
#![allow(clippy::unwrap_used)] // test code: a panic is a failed test

use serde_json::{json, Value};
use sluice_e2e::stores::{lake_lines, post, tally};
use sluice_e2e::{eventually, Behaviour, Receiver, Stack};
use std::time::Duration;

const SECRET: &str = "privacy-requests-secret";

/// File a request and wait until its job is done; returns the finished request.
async fn request(stack: &Stack, kind: &str, user_id: &str) -> Value {
    let (status, filed) = stack.admin(
        "POST",
        "/admin/v1/requests",
        "t-dpo",
        Some(json!({"type": kind, "userId": user_id})),
    );
    assert_eq!(status, 202, "{filed}");
    assert_eq!(filed["status"], "pending", "{filed}");
    let id = filed["id"].as_str().unwrap().to_owned();
    let done = eventually(
        &format!("{kind} request {id}"),
        Duration::from_secs(60),
        || async {
            let (_, r) = stack.admin("GET", &format!("/admin/v1/requests/{id}"), "t-dpo", None);
            (r["status"] == "done" || r["status"] == "failed").then_some(r)
        },
    )
    .await;
    assert_eq!(done["status"], "done", "{done}");
    done
}

/// An event of a person, with consent to analytics and marketing.
fn of(id: &str, kind: &str, user: Option<&str>, anon: &str) -> Value {
    let mut e = json!({"type": kind, "messageId": id, "anonymousId": anon,
        "context": {"consent": {"categories": {"analytics": "granted", "marketing": "granted"}, "source": "explicit"}}});
    if kind == "track" {
        e["event"] = json!("Product Viewed");
    }
    if let Some(u) = user {
        e["userId"] = json!(u);
    }
    e
}

#[tokio::test]
async fn suppressed_people_are_dropped_and_opted_out_people_kept_from_marketing_on_every_linked_id()
{
    let hook = Receiver::start(SECRET, Behaviour::Healthy);
    let ads = Receiver::start(SECRET, Behaviour::Healthy);
    let tokens = json!([{"name": "dpo", "sha256": sluice_e2e::sha256_hex("t-dpo"), "scopes": ["export", "delete"]},
                        {"name": "root", "sha256": sluice_e2e::sha256_hex("t-root"), "scopes": ["admin"]}]);
    let destinations = json!([
        {"name": "lake", "kind": "r2", "purposes": ["analytics"]},
        {"name": "hook", "kind": "webhook", "url": hook.url(), "secret_var": "HOOK_SECRET", "purposes": ["analytics"]},
        {"name": "ads", "kind": "webhook", "url": ads.url(), "secret_var": "HOOK_SECRET", "purposes": ["marketing"]}
    ]);
    let sources = json!([{"name": "demo", "write_key": "demo-write-key", "allowed_origins": [],
                          "consent": {"regime": "opt_in"}, "destinations": ["lake", "hook", "ads"]}]);
    let stack = Stack::start_with(&[
        ("SLUICE_SOURCES", &sources.to_string()),
        ("SLUICE_DESTINATIONS", &destinations.to_string()),
        ("SLUICE_ADMIN_TOKENS", &tokens.to_string()),
        ("HOOK_SECRET", SECRET),
    ]);

    // Two people, each signing in on a device: the identify links the ids.
    post(
        &stack,
        vec![
            of("s-login", "identify", Some("user-s"), "anon-s"),
            of("o-login", "identify", Some("user-o"), "anon-o"),
        ],
    );
    eventually("both links in D1", Duration::from_secs(30), || async {
        (stack
            .d1("SELECT 1 FROM identity_links WHERE user_id IN ('user-s', 'user-o')")
            .len()
            == 2)
            .then_some(())
    })
    .await;

    // The requests: by userId; every linked id is covered.
    let suppress = request(&stack, "suppress", "user-s").await;
    assert_eq!(
        suppress["result"],
        json!({"ids": ["user-s", "anon-s"], "kind": "suppress"})
    );
    let opt_out = request(&stack, "opt_out", "user-o").await;
    assert_eq!(
        opt_out["result"],
        json!({"ids": ["user-o", "anon-o"], "kind": "opt_out"})
    );
    assert_eq!(
        stack.d1("SELECT id, kind, request_id FROM suppressions ORDER BY id"),
        vec![
            json!({"id": "anon-o", "kind": "opt_out", "request_id": opt_out["id"]}),
            json!({"id": "anon-s", "kind": "suppress", "request_id": suppress["id"]}),
            json!({"id": "user-o", "kind": "opt_out", "request_id": opt_out["id"]}),
            json!({"id": "user-s", "kind": "suppress", "request_id": suppress["id"]}),
        ]
    );
    // An opt-out never weakens a suppression.
    request(&stack, "opt_out", "user-s").await;
    assert_eq!(
        stack.d1("SELECT id, kind FROM suppressions WHERE id IN ('user-s', 'anon-s') ORDER BY id"),
        vec![
            json!({"id": "anon-s", "kind": "suppress"}),
            json!({"id": "user-s", "kind": "suppress"})
        ]
    );

    // Their later events, by userId and by the linked device alone, and a
    // bystander's; the bystander's is last, so its arrival everywhere means
    // the others have been through the consumer too.
    post(
        &stack,
        vec![
            of("s-1", "track", Some("user-s"), "anon-s"),
            of("s-2", "track", None, "anon-s"),
            of("o-1", "track", Some("user-o"), "anon-o"),
            of("o-2", "track", None, "anon-o"),
        ],
    );
    post(&stack, vec![of("bystander", "track", None, "anon-b")]);
    eventually(
        "the bystander everywhere",
        Duration::from_secs(60),
        || async {
            let lake = lake_lines(&stack)
                .iter()
                .any(|e| e["messageId"] == "bystander");
            let hooks = hook.accepted_ids().contains(&"bystander".to_owned())
                && ads.accepted_ids().contains(&"bystander".to_owned());
            (lake && hooks).then_some(())
        },
    )
    .await;

    let ids = |rows: Vec<Value>, key: &str| -> Vec<String> {
        let mut v: Vec<String> = rows
            .iter()
            .filter_map(|r| r[key].as_str().map(str::to_owned))
            .filter(|id| !id.ends_with("-login"))
            .collect();
        v.sort();
        v
    };
    let expected = ["bystander", "o-1", "o-2"];
    assert_eq!(
        ids(stack.d1("SELECT message_id FROM events"), "message_id"),
        expected,
        "D1"
    );
    assert_eq!(ids(lake_lines(&stack), "messageId"), expected, "lake");
    let hooked = |r: &Receiver| {
        let mut v: Vec<String> = tally(r.accepted_ids())
            .into_iter()
            .map(|(id, n)| {
                assert_eq!(n, 1, "{id} delivered {n} times");
                id
            })
            .filter(|id| !id.ends_with("-login"))
            .collect();
        v.sort();
        v
    };
    assert_eq!(hooked(&hook), expected, "the analytics webhook");
    assert_eq!(
        hooked(&ads),
        ["bystander"],
        "the marketing webhook gets no opted-out event"
    );
    assert_eq!(
        stack.counter("dropped_suppressed"),
        2,
        "s-1 and s-2, counted"
    );
    assert_eq!(
        stack.counter("withheld_ads"),
        2,
        "o-1 and o-2, withheld from ads"
    );
    let opted: Vec<Value> = stack.d1(
        "SELECT message_id, json_extract(context, '$.sluice.optOut') AS opt_out FROM events \
         WHERE message_id IN ('o-1', 'o-2', 'bystander') ORDER BY message_id",
    );
    assert_eq!(
        opted,
        vec![
            json!({"message_id": "bystander", "opt_out": null}),
            json!({"message_id": "o-1", "opt_out": 1}),
            json!({"message_id": "o-2", "opt_out": 1}),
        ],
        "stored opted-out events say so"
    );

    // The audit log records each request as done, with the ids covered.
    let (status, audit) = stack.admin("GET", "/admin/v1/audit?limit=100", "t-root", None);
    assert_eq!(status, 200);
    let done: Vec<(String, i64)> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["actor"] == "dpo" && e["outcome"] == "done")
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_owned(),
                e["records"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        done,
        [
            ("opt_out".to_owned(), 2),
            ("opt_out".to_owned(), 2),
            ("suppress".to_owned(), 2)
        ],
        "newest first"
    );
}
