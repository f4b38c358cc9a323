//! The vertical slice: script tag → Wasm SDK in Chromium → worker on workerd → Queue → D1.

use fantoccini::Locator;
use serde_json::{json, Value};
use sluice_e2e::{eventually, Browser, Stack};
use std::time::Duration;

const CLICKS: &str =
    "SELECT type, event, anonymous_id, properties, context, message_id FROM events WHERE event = 'Demo Clicked' ORDER BY received_at";

#[tokio::test]
async fn a_click_on_the_demo_page_lands_in_d1_with_a_stable_anonymous_id() {
    let stack = Stack::start();
    let browser = Browser::start().await;
    let c = &browser.client;

    c.goto(&stack.url("/")).await.expect("open the demo page");
    browser.wait_for_sdk().await;
    // The visitor agrees to analytics: the page view held until now is released.
    browser
        .js("sluice.consent.set({ analytics: true }); return true")
        .await;
    let anonymous_id = browser.js("return sluice.anonymousId()").await;
    let anonymous_id = anonymous_id
        .as_str()
        .expect("anonymousId is a string")
        .to_owned();
    assert_eq!(
        anonymous_id.len(),
        36,
        "anonymousId is a UUID: {anonymous_id}"
    );

    c.find(Locator::Css("#demo-button"))
        .await
        .expect("button")
        .click()
        .await
        .expect("click");
    let rows = eventually("the click to reach D1", Duration::from_secs(30), || async {
        let rows = stack.d1(CLICKS);
        (!rows.is_empty()).then_some(rows)
    })
    .await;
    assert_eq!(rows.len(), 1, "one click, one row: {rows:?}");
    let row = &rows[0];
    assert_eq!(row["type"], "track");
    assert_eq!(row["anonymous_id"], Value::from(anonymous_id.clone()));
    let props: Value =
        serde_json::from_str(row["properties"].as_str().expect("properties JSON")).unwrap();
    assert_eq!(props, json!({"button": "demo", "value": 42}));
    let context: Value =
        serde_json::from_str(row["context"].as_str().expect("context JSON")).unwrap();
    assert_eq!(context["page"]["path"], "/");

    // The page view queued by the snippet before the SDK loaded arrived too, from the same visitor.
    let pages = stack.d1("SELECT anonymous_id, name FROM events WHERE type = 'page'");
    assert!(
        pages
            .iter()
            .any(|p| p["anonymous_id"] == anonymous_id.as_str() && p["name"] == "Home"),
        "page view stored: {pages:?}"
    );

    // After a reload the visitor keeps the same anonymousId, and a second click is a second row.
    c.refresh().await.expect("reload");
    browser.wait_for_sdk().await;
    assert_eq!(
        browser.js("return sluice.anonymousId()").await,
        Value::from(anonymous_id.clone())
    );
    c.find(Locator::Css("#demo-button"))
        .await
        .expect("button")
        .click()
        .await
        .expect("click");
    let rows = eventually(
        "the second click to reach D1",
        Duration::from_secs(30),
        || async {
            let rows = stack.d1(CLICKS);
            (rows.len() >= 2).then_some(rows)
        },
    )
    .await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(rows
        .iter()
        .all(|r| r["anonymous_id"] == anonymous_id.as_str()));
    assert_ne!(
        rows[0]["message_id"], rows[1]["message_id"],
        "each event has its own messageId"
    );
}
