//! Audiences end to end: the demo page in headless Chromium, the SDK, the
//! worker on workerd with a person's Durable Object, checked in the page
//! (the collector's answers, `sluice.audiences()`), in D1 (the emitted
//! `Audience Entered` / `Audience Exited` events) and in the Durable
//! Objects' own storage.
#![allow(clippy::unwrap_used)] // test code: a panic is a failed test

use serde_json::{json, Value};
use sluice_e2e::{eventually, Browser, Stack};
use std::time::Duration;

const TOKEN: &str = "dev-admin-token";

/// Three product views within the window and no order in it; the view
/// count is a browser-visible trait.
fn definitions(window_s: u64) -> String {
    json!({
        "traits": [{"name": "views", "kind": "count", "event": "Product Viewed",
                    "purposes": ["personalization"], "browser_visible": true}],
        "audiences": [{"name": "hot_shoppers", "purposes": ["personalization"], "browser_visible": true,
            "when": {"all": [
                {"did": {"event": "Product Viewed", "times": 3, "within_s": window_s}},
                {"did_not": {"event": "Order Completed", "within_s": window_s}}
            ]}}]
    })
    .to_string()
}

fn stack(window_s: u64) -> Stack {
    Stack::start_with(&[("SLUICE_AUDIENCES", &definitions(window_s))])
}

/// Record every collector answer's body in `window.__answers`, and every
/// `on("audience")` call in `window.__changes`.
const RECORD: &str = "
    window.__answers = []; window.__changes = [];
    const f = window.fetch;
    window.fetch = (url, init) => f(url, init).then(r => {
        if (String(url).includes('/v1/batch')) r.clone().text().then(t => window.__answers.push(JSON.parse(t)));
        return r;
    });
    sluice.on('audience', c => window.__changes.push(c));
    return true";

/// Open the demo page as a new visitor with this consent; returns their anonymousId.
async fn visitor(stack: &Stack, browser: &Browser, personalization: bool) -> String {
    browser.client.goto(&stack.url("/")).await.unwrap();
    browser.wait_for_sdk().await;
    browser.js(RECORD).await;
    browser
        .js(&format!(
            "sluice.consent.set({{ analytics: true, personalization: {personalization} }}); return true"
        ))
        .await;
    settled(browser).await;
    browser
        .js("return sluice.anonymousId()")
        .await
        .as_str()
        .unwrap()
        .to_owned()
}

/// Wait until nothing is queued or in flight and every answer is recorded.
async fn settled(browser: &Browser) -> usize {
    eventually(
        "the SDK to send everything",
        Duration::from_secs(20),
        || async {
            let v = browser
                .js("return [sluice.stats().queued, window.__answers.length]")
                .await;
            (v[0] == 0).then(|| v[1].as_u64().unwrap() as usize)
        },
    )
    .await
}

/// Run a call in the page and return the profile of the collector's answer to it.
async fn answer_to(browser: &Browser, call: &str) -> Value {
    let before = settled(browser).await;
    browser.js(&format!("{call}; return true")).await;
    eventually("the answer", Duration::from_secs(20), || async {
        let v = browser
            .js("return [sluice.stats().queued, window.__answers]")
            .await;
        let answers = v[1].as_array().unwrap();
        (v[0] == 0 && answers.len() > before).then(|| answers.last().unwrap()["profile"].clone())
    })
    .await
}

fn view(i: u32) -> String {
    format!("sluice.track('Product Viewed', {{ sku: 'p{i}' }})")
}

/// The emitted audience events of a person in D1: (event, timestamp).
fn audience_events(stack: &Stack, anon: &str) -> Vec<(String, String)> {
    stack
        .d1(&format!(
            "SELECT event, timestamp FROM events WHERE anonymous_id = '{anon}' AND event LIKE 'Audience %' ORDER BY timestamp, event"
        ))
        .iter()
        .map(|r| (r["event"].as_str().unwrap().to_owned(), r["timestamp"].as_str().unwrap().to_owned()))
        .collect()
}

/// How many person objects hold a record (their own SQLite files, read directly).
fn person_records(stack: &Stack) -> usize {
    let rows = sluice_e2e::stack::python_json(
        r#"
import glob, json, sqlite3, sys
n = 0
for f in glob.glob(sys.argv[1] + "/v3/do/*Person*/*.sqlite"):
    if f.endswith("metadata.sqlite"):
        continue
    db = sqlite3.connect(f, timeout=30)
    try:
        n += db.execute("SELECT COUNT(*) FROM _cf_KV WHERE key = 'record'").fetchone()[0]
    except sqlite3.OperationalError:
        pass
print(json.dumps([{"n": n}]))
"#,
        &[&stack.state.display().to_string()],
    );
    rows[0]["n"].as_u64().unwrap() as usize
}

fn profile(stack: &Stack, id: &str) -> (u16, Value) {
    stack.admin("GET", &format!("/v1/profiles/{id}"), TOKEN, None)
}

#[tokio::test]
async fn three_views_enter_the_audience_in_the_third_answer_and_buying_leaves_it() {
    let stack = stack(3600);
    let browser = Browser::start().await;
    let anon = visitor(&stack, &browser, true).await;
    let first = answer_to(&browser, &view(1)).await;
    assert_eq!(first["audiences"], json!([]), "{first}");
    assert_eq!(first["traits"]["views"], 1, "{first}");
    let second = answer_to(&browser, &view(2)).await;
    assert_eq!(second["audiences"], json!([]), "{second}");
    let third = answer_to(&browser, &view(3)).await;
    assert_eq!(third["audiences"], json!(["hot_shoppers"]), "{third}");
    assert_eq!(third["traits"]["views"], 3, "{third}");
    assert_eq!(
        browser.js("return sluice.audiences()").await,
        json!(["hot_shoppers"])
    );
    assert_eq!(
        browser.js("return sluice.traits()").await,
        json!({"views": 3})
    );
    let changes = eventually("the audience callback", Duration::from_secs(10), || async {
        let c = browser.js("return window.__changes").await;
        (c.as_array().unwrap().len() == 1).then_some(c)
    })
    .await;
    assert_eq!(changes[0]["audiences"], json!(["hot_shoppers"]));

    let bought = answer_to(&browser, "sluice.track('Order Completed', { revenue: 40 })").await;
    assert_eq!(bought["audiences"], json!([]), "{bought}");
    assert_eq!(browser.js("return sluice.audiences()").await, json!([]));
    let (status, p) = profile(&stack, &anon);
    assert_eq!(status, 200, "{p}");
    assert_eq!(p["audiences"][0]["name"], "hot_shoppers");
    assert_eq!(p["audiences"][0]["member"], false, "{p}");
    assert_eq!(p["traits"]["views"]["value"], 3, "{p}");
    // Activation: both changes went through the pipeline into storage, once each.
    let events = eventually(
        "the two audience events in D1",
        Duration::from_secs(30),
        || async {
            let e = audience_events(&stack, &anon);
            (e.len() >= 2).then_some(e)
        },
    )
    .await;
    let names: Vec<&str> = events.iter().map(|(e, _)| e.as_str()).collect();
    assert_eq!(names, ["Audience Entered", "Audience Exited"]);
    // The cache in the consented storage survives a reload.
    browser.client.goto(&stack.url("/")).await.unwrap();
    browser.wait_for_sdk().await;
    assert_eq!(
        browser
            .js("return JSON.parse(localStorage.getItem('sluice_profile')).traits.views")
            .await,
        json!(3)
    );
}

#[tokio::test]
async fn a_short_window_expiring_leaves_the_audience_when_the_first_view_falls_out() {
    const WINDOW_S: u64 = 6;
    let stack = stack(WINDOW_S);
    let browser = Browser::start().await;
    let anon = visitor(&stack, &browser, true).await;
    for i in 1..=2 {
        answer_to(&browser, &view(i)).await;
    }
    let third = answer_to(&browser, &view(3)).await;
    assert_eq!(third["audiences"], json!(["hot_shoppers"]), "{third}");
    // No event arrives: the alarm alone takes the visitor out.
    let events = eventually(
        "the exit by the window's end",
        Duration::from_secs(40),
        || async {
            let e = audience_events(&stack, &anon);
            (e.len() >= 2).then_some(e)
        },
    )
    .await;
    assert_eq!(events[1].0, "Audience Exited");
    let first_view = stack.d1(&format!(
        "SELECT MIN(timestamp) AS t FROM events WHERE anonymous_id = '{anon}' AND event = 'Product Viewed'"
    ))[0]["t"]
        .as_str()
        .unwrap()
        .to_owned();
    let ms = |t: &str| sluice_shared::Timestamp::parse(t).unwrap().0;
    assert!(
        ms(&events[1].1) >= ms(&first_view) + WINDOW_S as i64 * 1000,
        "left at {} although the first view ({first_view}) was still in the window",
        events[1].1
    );
    let (_, p) = profile(&stack, &anon);
    assert_eq!(p["audiences"][0]["member"], false, "{p}");
    assert_eq!(p["audiences"][0]["changedAt"], events[1].1.as_str(), "{p}");
    // The page learns it with its next answer.
    let next = answer_to(&browser, "sluice.track('Ping')").await;
    assert_eq!(next["audiences"], json!([]), "{next}");
    assert_eq!(next["traits"]["views"], 3, "the lifetime count stays");
}

#[tokio::test]
async fn refusing_the_purpose_keeps_no_state_and_activates_nothing() {
    let stack = stack(3600);
    let browser = Browser::start().await;
    let anon = visitor(&stack, &browser, false).await;
    for i in 1..=3 {
        let answer = answer_to(&browser, &view(i)).await;
        assert_eq!(answer["audiences"], json!([]), "{answer}");
        assert_eq!(answer["traits"], json!({}), "{answer}");
    }
    assert_eq!(browser.js("return sluice.audiences()").await, json!([]));
    // The views are stored (analytics was granted) ...
    eventually("the three views in D1", Duration::from_secs(30), || async {
        let n = stack.d1(&format!(
            "SELECT COUNT(*) AS n FROM events WHERE anonymous_id = '{anon}' AND event = 'Product Viewed'"
        ))[0]["n"]
            .as_i64();
        (n == Some(3)).then_some(())
    })
    .await;
    // ... and a sentinel sent after them is stored too: an audience event
    // emitted for them would have been queued before it.
    let (status, _) = stack.post_json(
        "/v1/batch?writeKey=demo-write-key",
        &[],
        &json!({"batch": [{"type": "track", "messageId": "aud-sentinel", "anonymousId": "s", "event": "Sentinel"}]}),
    );
    assert_eq!(status, 200);
    eventually("the sentinel in D1", Duration::from_secs(30), || async {
        (!stack
            .d1("SELECT 1 FROM events WHERE message_id = 'aud-sentinel'")
            .is_empty())
        .then_some(())
    })
    .await;
    assert_eq!(audience_events(&stack, &anon), vec![]);
    assert_eq!(person_records(&stack), 0, "no person object holds a state");
    let (status, p) = profile(&stack, &anon);
    assert_eq!(status, 404, "{p}");
    assert_eq!(p["error"]["code"], "profile_not_found");
}

#[tokio::test]
async fn deleting_a_person_removes_their_audience_state() {
    let stack = stack(3600);
    let browser = Browser::start().await;
    let anon = visitor(&stack, &browser, true).await;
    for i in 1..=3 {
        answer_to(&browser, &view(i)).await;
    }
    assert_eq!(profile(&stack, &anon).0, 200);
    assert_eq!(person_records(&stack), 1);
    let (status, filed) = stack.admin(
        "POST",
        "/admin/v1/requests",
        TOKEN,
        Some(json!({"type": "delete", "anonymousId": anon})),
    );
    assert_eq!(status, 202, "{filed}");
    let id = filed["id"].as_str().unwrap().to_owned();
    let done = eventually("the deletion", Duration::from_secs(60), || async {
        let (_, r) = stack.admin("GET", &format!("/admin/v1/requests/{id}"), TOKEN, None);
        (r["status"] == "done" || r["status"] == "failed").then_some(r)
    })
    .await;
    assert_eq!(done["status"], "done", "{done}");
    assert_eq!(done["result"]["audienceStates"], 1, "{done}");
    assert_eq!(person_records(&stack), 0, "the person's object is empty");
    assert_eq!(profile(&stack, &anon).0, 404);
    // Suppressed from now on: a further view feeds no state.
    let after = answer_to(&browser, &view(4)).await;
    assert!(after.is_null(), "no profile for a deleted person: {after}");
    assert_eq!(person_records(&stack), 0);
}

#[tokio::test]
async fn two_devices_linked_by_identify_share_one_state() {
    let stack = stack(3600);
    let phone = Browser::start().await;
    let laptop = Browser::start().await;
    let phone_id = visitor(&stack, &phone, true).await;
    let laptop_id = visitor(&stack, &laptop, true).await;
    assert_ne!(phone_id, laptop_id);
    answer_to(&phone, &view(1)).await;
    answer_to(&phone, &view(2)).await;
    answer_to(&phone, "sluice.identify('user-42')").await;
    let linked = answer_to(&laptop, "sluice.identify('user-42')").await;
    assert_eq!(
        linked["traits"]["views"], 2,
        "the laptop sees the phone's views: {linked}"
    );
    let third = answer_to(&laptop, &view(3)).await;
    assert_eq!(third["audiences"], json!(["hot_shoppers"]), "{third}");
    let (status, p) = profile(&stack, "user-42");
    assert_eq!(status, 200, "{p}");
    assert_eq!(p["person"], "u:user-42");
    let (_, by_device) = profile(&stack, &phone_id);
    assert_eq!(
        by_device["person"], "u:user-42",
        "a linked device reads its user's state"
    );
}

/// The audience events a receiver accepted, as (event, audience, anonymousId).
fn audience_events_at(hook: &sluice_e2e::Receiver) -> Vec<(String, String, String)> {
    let s = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    hook.received()
        .iter()
        .filter(|r| r.status == 200 && r.signature_valid)
        .flat_map(|r| r.body["batch"].as_array().cloned().unwrap_or_default())
        .filter(|e| s(&e["event"]).starts_with("Audience "))
        .map(|e| {
            (
                s(&e["event"]),
                s(&e["properties"]["audience"]),
                s(&e["anonymousId"]),
            )
        })
        .collect()
}

#[tokio::test]
async fn entering_an_audience_reaches_a_webhook_once_and_a_routed_audience_only_its_own() {
    use sluice_e2e::{Behaviour, Receiver};
    const SECRET: &str = "aud-hook-secret";
    let hook = Receiver::start(SECRET, Behaviour::Healthy);
    let crm = Receiver::start(SECRET, Behaviour::Healthy);
    let retry = json!({"initial_delay_s": 1, "max_delay_s": 2, "max_attempts": 6});
    let destinations = json!([
        {"name": "hook", "kind": "webhook", "url": hook.url(), "secret_var": "HOOK_SECRET", "retry": retry},
        {"name": "crm", "kind": "webhook", "url": crm.url(), "secret_var": "HOOK_SECRET", "retry": retry}]);
    let sources = json!([{"name": "server", "write_key": "server-key", "allowed_origins": [],
                          "consent": {"regime": "opt_in"}, "destinations": ["hook"]}]);
    // A second audience, one view, whose events go to `crm` instead of the source's `hook`.
    let mut audiences: Value = serde_json::from_str(&definitions(3600)).unwrap();
    audiences["audiences"].as_array_mut().unwrap().push(json!(
        {"name": "viewers", "purposes": ["personalization"], "destinations": ["crm"],
         "when": {"did": {"event": "Product Viewed"}}}));
    let stack = Stack::start_with(&[
        ("SLUICE_SOURCES", &sources.to_string()),
        ("SLUICE_DESTINATIONS", &destinations.to_string()),
        ("SLUICE_AUDIENCES", &audiences.to_string()),
        ("HOOK_SECRET", SECRET),
    ]);
    let consent = json!({"categories": {"analytics": "granted", "personalization": "granted"}});
    let views: Vec<Value> = (1..=3)
        .map(|i| {
            json!({"type": "track", "messageId": format!("w-view-{i}"), "anonymousId": "w1",
                        "event": "Product Viewed", "context": {"consent": consent}})
        })
        .collect();
    let (status, answer) = stack.post_json(
        "/v1/batch?writeKey=server-key",
        &[],
        &json!({"batch": views}),
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer["profile"]["audiences"],
        json!(["hot_shoppers"]),
        "{answer}"
    );
    // The same batch again (a client retry) changes nothing.
    let (_, again) = stack.post_json(
        "/v1/batch?writeKey=server-key",
        &[],
        &json!({"batch": views}),
    );
    assert_eq!(again["profile"]["traits"]["views"], 3, "{again}");
    let entered = |hook: &Receiver| -> Vec<Value> {
        hook.received()
            .iter()
            .filter(|r| r.status == 200 && r.signature_valid)
            .flat_map(|r| r.body["batch"].as_array().cloned().unwrap_or_default())
            .filter(|e| e["event"] == "Audience Entered")
            .collect()
    };
    let got = eventually(
        "Audience Entered at the webhook",
        Duration::from_secs(40),
        || async {
            let e = entered(&hook);
            (!e.is_empty()).then_some(e)
        },
    )
    .await;
    assert_eq!(got[0]["anonymousId"], "w1");
    assert_eq!(got[0]["properties"]["audience"], "hot_shoppers");
    // A sentinel through the same paths: once it has arrived (its view at
    // `hook`, w2's `viewers` entry at `crm`), a second copy or a misrouted
    // audience event would have too.
    let sentinel = json!({"type": "track", "messageId": "w-sentinel", "anonymousId": "w2", "event": "Product Viewed",
                          "context": {"consent": consent}});
    stack.post_json(
        "/v1/batch?writeKey=server-key",
        &[],
        &json!({"batch": [sentinel]}),
    );
    eventually(
        "the sentinel at the webhook",
        Duration::from_secs(40),
        || async {
            hook.accepted_ids()
                .contains(&"w-sentinel".to_owned())
                .then_some(())
        },
    )
    .await;
    let viewers = |id: &str| {
        (
            "Audience Entered".to_owned(),
            "viewers".to_owned(),
            id.to_owned(),
        )
    };
    eventually(
        "the sentinel's entry at the routed destination",
        Duration::from_secs(40),
        || async {
            audience_events_at(&crm)
                .contains(&viewers("w2"))
                .then_some(())
        },
    )
    .await;
    assert_eq!(
        entered(&hook).len(),
        1,
        "entered once, for a batch sent twice"
    );
    assert_eq!(
        audience_events_at(&hook),
        [(
            "Audience Entered".to_owned(),
            "hot_shoppers".to_owned(),
            "w1".to_owned()
        )],
        "the source's destination gets the unrouted audience's events only"
    );
    let mut routed = audience_events_at(&crm);
    routed.sort();
    assert_eq!(
        routed,
        [viewers("w1"), viewers("w2")],
        "the routed destination gets its audience's events only"
    );
    assert!(
        crm.accepted_ids().iter().all(|id| id.starts_with("aud-")),
        "and no other event: {:?}",
        crm.accepted_ids()
    );
}

/// The demo source writing to the R2 lake too, with these definitions.
fn lake_vars(audiences: &str) -> Vec<(&'static str, String)> {
    let sources = json!([{"name": "demo", "write_key": "demo-write-key", "allowed_origins": [],
                          "consent": {"regime": "opt_in"}, "destinations": ["lake"]}]);
    vec![
        ("SLUICE_SOURCES", sources.to_string()),
        (
            "SLUICE_DESTINATIONS",
            json!([{"name": "lake", "kind": "r2"}]).to_string(),
        ),
        ("SLUICE_AUDIENCES", audiences.to_owned()),
    ]
}

fn borrowed<'a>(v: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    v.iter().map(|(k, s)| (*k, s.as_str())).collect()
}

fn viewed(id: &str, anon: &str, personalization: bool) -> Value {
    let p = if personalization { "granted" } else { "denied" };
    json!({"type": "track", "messageId": id, "anonymousId": anon, "event": "Product Viewed",
           "properties": {"sku": id},
           "context": {"consent": {"categories": {"analytics": "granted", "personalization": p}}}})
}

/// Wait until the lake holds exactly these events (by messageId, or
/// `event` for Sluice's own audience events, whose ids are derived).
async fn lake_holds(stack: &Stack, mut want: Vec<&str>) {
    want.sort_unstable();
    eventually(
        &format!("the lake to hold {want:?}"),
        Duration::from_secs(30),
        || async {
            let lake = sluice_e2e::stores::lake_lines(stack);
            let mut held: Vec<&str> = lake
                .iter()
                .filter_map(|e| match e["messageId"].as_str() {
                    Some(id) if id.starts_with("aud-") => e["event"].as_str(),
                    id => id,
                })
                .collect();
            held.sort_unstable();
            (held == want).then_some(())
        },
    )
    .await;
}

/// Create a backfill and poll it until it ends; returns its final state.
async fn backfill(stack: &Stack, body: Value) -> Value {
    let (status, job) = stack.admin("POST", "/admin/v1/audiences/backfill", TOKEN, Some(body));
    assert_eq!(status, 202, "{job}");
    assert_eq!(job["status"], "queued");
    let id = job["id"].as_str().unwrap().to_owned();
    eventually("the backfill to end", Duration::from_secs(30), || async {
        let (_, j) = stack.admin(
            "GET",
            &format!("/admin/v1/audiences/backfill/{id}"),
            TOKEN,
            None,
        );
        (j["status"] == "done" || j["status"] == "failed").then_some(j)
    })
    .await
}

#[tokio::test]
async fn a_backfill_computes_stored_events_then_live_events_count_once() {
    // Stored while no audience is defined: five views by one visitor over
    // three requests (several lake objects), two by one who refused personalization.
    let mut stack = Stack::start_with(&borrowed(&lake_vars("")));
    let ids = ["v1", "v2", "v3", "v4", "v5", "r1", "r2"];
    for batch in [&ids[..2], &ids[2..4], &ids[4..]] {
        let events = batch
            .iter()
            .map(|id| match id.strip_prefix('r') {
                Some(_) => viewed(id, "bf-refuser", false),
                None => viewed(id, "bf-visitor", true),
            })
            .collect();
        sluice_e2e::stores::post(&stack, events);
    }
    lake_holds(&stack, ids.to_vec()).await;
    let objects = stack.d1("SELECT COUNT(*) AS n FROM lake_objects")[0]["n"]
        .as_i64()
        .unwrap();
    // Now the definitions are added.
    stack.restart_with(&borrowed(&lake_vars(&definitions(3600))));
    assert_eq!(profile(&stack, "bf-visitor").0, 404, "nothing computed yet");
    let (status, refused) = stack.admin(
        "POST",
        "/admin/v1/audiences/backfill",
        TOKEN,
        Some(json!({"definitions": ["views", "nope"]})),
    );
    assert_eq!(
        (status, &refused["error"]["code"]),
        (400, &json!("unknown_definition")),
        "{refused}"
    );
    let done = backfill(&stack, json!({"definitions": ["views", "hot_shoppers"]})).await;
    assert_eq!(done["status"], "done", "{done}");
    assert_eq!(
        done["objects"],
        json!({"total": objects, "done": objects}),
        "{done}"
    );
    assert_eq!(done["events"], json!({"read": 7, "fed": 7}), "{done}");
    assert_eq!(done["errors"], 0);
    let (status, p) = profile(&stack, "bf-visitor");
    assert_eq!(status, 200, "{p}");
    assert_eq!(p["traits"]["views"]["value"], 5, "{p}");
    assert_eq!(p["audiences"][0]["name"], "hot_shoppers");
    assert_eq!(p["audiences"][0]["member"], true, "{p}");
    assert_eq!(profile(&stack, "bf-refuser").0, 404, "no consent, no state");
    // A live view counts once, and its answer already says so.
    let (status, answer) = stack.post_json(
        "/v1/batch?writeKey=demo-write-key",
        &[],
        &json!({"batch": [viewed("v6", "bf-visitor", true)]}),
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["profile"]["traits"]["views"], 6, "{answer}");
    // Entering was emitted once, by the backfill. Once the live view and
    // it are in the lake too, backfilling the same definitions again reads
    // them and the others, and counts none twice.
    let mut all = ids.to_vec();
    all.extend(["v6", "Audience Entered"]);
    lake_holds(&stack, all).await;
    let again = backfill(&stack, json!({"all": true})).await;
    assert_eq!(again["status"], "done", "{again}");
    assert_eq!(again["events"], json!({"read": 9, "fed": 8}), "{again}");
    let (_, p) = profile(&stack, "bf-visitor");
    assert_eq!(p["traits"]["views"]["value"], 6, "{p}");
}
