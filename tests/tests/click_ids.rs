//! An ad click carried to the page where the conversion happens, in real
//! headless Chromium against the worker on workerd, checked in D1: the
//! landing URL's `gclid` is kept (first-party) only with marketing consent,
//! sent from a later page (a full load), and removed with the consent.
#![allow(clippy::unwrap_used)] // test code: a panic is a failed test

use serde_json::Value;
use sluice_e2e::{eventually, Browser, Stack};
use std::time::Duration;

/// The stored context of the one event named `name`.
async fn context_of(stack: &Stack, name: &str) -> Value {
    let rows = eventually(
        &format!("{name} in D1"),
        Duration::from_secs(30),
        || async {
            let rows = stack.d1(&format!(
                "SELECT context FROM events WHERE event = '{name}'"
            ));
            (!rows.is_empty()).then_some(rows)
        },
    )
    .await;
    assert_eq!(rows.len(), 1, "{name}: {rows:?}");
    serde_json::from_str(rows[0]["context"].as_str().unwrap()).unwrap()
}

/// `localStorage` and the cookie the SDK keeps the clicks in.
async fn kept(b: &Browser) -> Value {
    b.js("return [localStorage.getItem('sluice_clk'), document.cookie.split('; ').filter(c => c.startsWith('sluice_clk=')).length]")
        .await
}

#[tokio::test]
async fn a_click_id_reaches_a_later_page_only_with_marketing_consent() {
    let stack = Stack::start();
    let b = Browser::start().await;
    b.client
        .goto(&stack.url("/?utm_source=ads&gclid=G-landing"))
        .await
        .unwrap();
    b.wait_for_sdk().await;
    b.js("sluice.consent.set({ analytics: true, marketing: false }); return true")
        .await;
    assert_eq!(
        kept(&b).await,
        serde_json::json!([null, 0]),
        "no marketing consent: nothing kept"
    );
    b.js("sluice.track('Landed Without Marketing'); sluice.flush(); return true")
        .await;
    // (The collector itself reads `campaign.clickIds` from `page.url` on
    // this landing page; the SDK sends no click id of its own.)
    let ctx = context_of(&stack, "Landed Without Marketing").await;
    assert!(ctx.get("gclid").is_none(), "{ctx}");
    b.js("sluice.consent.set({ marketing: true }); return true")
        .await;
    let stored = kept(&b).await;
    let record = stored[0].as_str().unwrap();
    assert!(
        record.starts_with("gclid=") && record.ends_with(".G-landing") && stored[1] == 1,
        "kept in localStorage and the first-party cookie: {stored}"
    );

    // The conversion, pages later: a full load of a URL without the click id.
    b.client.goto(&stack.url("/cart.html")).await.unwrap();
    b.wait_for_sdk().await;
    b.js("sluice.track('Converted With Marketing'); sluice.flush(); return true")
        .await;
    let ctx = context_of(&stack, "Converted With Marketing").await;
    assert_eq!(ctx["gclid"], "G-landing", "{ctx}");
    assert!(
        ctx["page"]["url"].as_str().unwrap().contains("/cart"),
        "{ctx}"
    );

    // Marketing withdrawn: the record goes, and so does the id, on later pages too.
    b.js("sluice.consent.set({ marketing: false }); return true")
        .await;
    assert_eq!(
        kept(&b).await,
        serde_json::json!([null, 0]),
        "withdrawn: removed"
    );
    b.client.goto(&stack.url("/product.html")).await.unwrap();
    b.wait_for_sdk().await;
    b.js("sluice.track('Converted Without Marketing'); sluice.flush(); return true")
        .await;
    let ctx = context_of(&stack, "Converted Without Marketing").await;
    assert!(ctx.get("gclid").is_none(), "{ctx}");
    assert!(ctx["campaign"].get("clickIds").is_none(), "{ctx}");
}
