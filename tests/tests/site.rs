//! The demo site in real headless Chromium: the shop flow in the live
//! debugger, the consent banner (by keyboard too), marketing destinations
//! kept empty without marketing consent, and hostile payloads shown as text.
//! Screenshots go to `target/test-artifacts/`.
#![allow(clippy::unwrap_used)] // test code: a panic is a failed test

use fantoccini::Locator;
use serde_json::{json, Value};
use sluice_e2e::{eventually, root, Behaviour, Browser, Receiver, Stack};
use std::time::Duration;

const TAB: &str = "\u{E004}";
const ENTER: &str = "\u{E007}";

async fn screenshot(browser: &Browser, name: &str) {
    let dir = root().join("target/test-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    let png = browser.client.screenshot().await.unwrap();
    std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
}

async fn click(browser: &Browser, css: &str) {
    browser
        .client
        .wait()
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .click()
        .await
        .unwrap();
}

async fn open_debugger(stack: &Stack, browser: &Browser) {
    browser.client.goto(&stack.url("/debugger")).await.unwrap();
    browser
        .client
        .find(Locator::Css("#token"))
        .await
        .unwrap()
        .send_keys("dev-admin-token")
        .await
        .unwrap();
    click(browser, "#connect button").await;
    eventually(
        "the debugger to go live",
        Duration::from_secs(20),
        || async {
            (browser
                .js("return document.getElementById('status').textContent")
                .await
                == "live")
                .then_some(())
        },
    )
    .await;
}

fn stack(ads: &Receiver) -> Stack {
    stack_with(ads, &[])
}

/// Three product views within an hour make a hot shopper; views are counted.
const AUDIENCES: &str = r#"{"traits": [{"name": "views", "kind": "count", "event": "Product Viewed", "purposes": ["personalization"]}],
    "audiences": [{"name": "hot_shoppers", "purposes": ["personalization"],
                   "when": {"did": {"event": "Product Viewed", "times": 3, "within_s": 3600}}}]}"#;

fn stack_with(ads: &Receiver, vars: &[(&str, &str)]) -> Stack {
    let sources = json!([{"name": "demo", "write_key": "demo-write-key", "allowed_origins": [], "consent": {"regime": "opt_in"},
                          "destinations": ["lake", "ads"]}]);
    let destinations = json!([
        {"name": "lake", "kind": "r2", "purposes": ["analytics"]},
        {"name": "ads", "kind": "webhook", "url": ads.url(), "secret_var": "ADS_SECRET", "purposes": ["marketing"]}
    ]);
    let (sources, destinations) = (sources.to_string(), destinations.to_string());
    let mut all = vec![
        ("SLUICE_SOURCES", sources.as_str()),
        ("SLUICE_DESTINATIONS", destinations.as_str()),
        ("ADS_SECRET", "s"),
    ];
    all.extend_from_slice(vars);
    Stack::start_with(&all)
}

/// The debugger's profile panel: (the views trait's value, the audiences the person is in).
async fn panel(debugger: &Browser) -> (Value, Value) {
    let v = debugger
        .js("const t = document.querySelector('#profile-traits tr[data-trait=views] .value'); \
             return [t ? t.textContent : null, \
                     [...document.querySelectorAll('#profile-audiences li[data-member=true]')].map(l => l.dataset.audience)]")
        .await;
    (v[0].clone(), v[1].clone())
}

/// Wait until the panel shows this many views, and return the audiences it shows.
async fn panel_at(debugger: &Browser, views: u32) -> Value {
    let want = json!(views.to_string());
    eventually(
        "the profile panel to show the new view count",
        Duration::from_secs(30),
        || async {
            let (v, audiences) = panel(debugger).await;
            (v == want).then_some(audiences)
        },
    )
    .await
}

/// Search, view a product, add it, view the cart, check out, order, sign in.
async fn shop(stack: &Stack, b: &Browser) {
    let c = &b.client;
    c.find(Locator::Css("#q"))
        .await
        .unwrap()
        .send_keys("mug")
        .await
        .unwrap();
    click(b, "#search button").await;
    click(b, "#products a").await;
    click(b, "#add-to-cart").await;
    c.goto(&stack.url("/cart.html")).await.unwrap();
    b.wait_for_sdk().await;
    click(b, "#to-checkout").await;
    click(b, "#place-order").await;
    c.goto(&stack.url("/signin.html")).await.unwrap();
    c.find(Locator::Css("#email"))
        .await
        .unwrap()
        .send_keys("ada@example.com")
        .await
        .unwrap();
    c.find(Locator::Css("#name"))
        .await
        .unwrap()
        .send_keys("Ada")
        .await
        .unwrap();
    click(b, "#signin-form button").await;
    b.js("sluice.flush(); return true").await;
}

#[tokio::test]
async fn the_whole_shop_flow_appears_in_the_debugger() {
    let ads = Receiver::start("s", Behaviour::Healthy);
    let stack = stack_with(&ads, &[("SLUICE_AUDIENCES", AUDIENCES)]);
    let debugger = Browser::start().await;
    open_debugger(&stack, &debugger).await;

    let shopper = Browser::start().await;
    shopper.client.goto(&stack.url("/")).await.unwrap();
    shopper.wait_for_sdk().await;
    click(&shopper, "#consent-accept").await;
    shop(&stack, &shopper).await;

    let names = [
        "Products Searched",
        "Product Viewed",
        "Product Added",
        "Cart Viewed",
        "Checkout Started",
        "Order Completed",
        "Signed In",
    ];
    let shown = eventually(
        "every shop event in the debugger",
        Duration::from_secs(45),
        || async {
            let text = debugger
                .js("return document.getElementById('events').innerText")
                .await
                .as_str()
                .unwrap()
                .to_owned();
            names.iter().all(|n| text.contains(n)).then_some(text)
        },
    )
    .await;
    assert!(shown.contains("identify"), "the sign-in identify is shown");
    let order = debugger
        .js("const li = [...document.querySelectorAll('#events li')].find(l => l.querySelector('.name').textContent === 'Order Completed'); \
             li.querySelectorAll('details').forEach(d => d.open = true); return li.innerText")
        .await;
    let order = order.as_str().unwrap();
    for expected in [
        "order_id",
        "revenue",
        "products",
        "Delivered to",
        "\"d1\": \"written\"",
        "\"lake\": \"queued\"",
        "Consent: full",
    ] {
        assert!(
            order.contains(expected),
            "{expected} in the Order Completed card:\n{order}"
        );
    }
    screenshot(&debugger, "debugger").await;

    let rows = stack.d1("SELECT properties FROM events WHERE event = 'Order Completed'");
    let props: Value = serde_json::from_str(rows[0]["properties"].as_str().unwrap()).unwrap();
    assert_eq!(props["currency"], "EUR");
    assert!(
        props["products"].as_array().unwrap().len() == 1
            && props["revenue"].as_f64().unwrap() > 0.0,
        "{props}"
    );
    let who = stack.d1("SELECT user_id FROM events WHERE type = 'identify'");
    assert_eq!(who[0]["user_id"], "user-ada");

    // The profile panel follows the shopper: the live feed's events of
    // theirs refresh their audiences and traits, with no click.
    // Clicked in the page: a card re-rendered by a late event cannot go stale between find and click.
    debugger
        .js("document.querySelector('#events button.who').click(); return true")
        .await;
    assert_eq!(
        panel_at(&debugger, 1).await,
        json!([]),
        "one view (before sign-in, handed over to the user)"
    );
    let view = |sku: &str| {
        format!("sluice.track('Product Viewed', {{ sku: '{sku}' }}); sluice.flush(); return true")
    };
    shopper.js(&view("p2")).await;
    assert_eq!(panel_at(&debugger, 2).await, json!([]), "two views");
    shopper.js(&view("p3")).await;
    assert_eq!(
        panel_at(&debugger, 3).await,
        json!(["hot_shoppers"]),
        "the third view makes a hot shopper"
    );
    let text = debugger
        .js("return document.getElementById('profile').innerText")
        .await;
    assert!(text.as_str().unwrap().contains("u:user-ada"), "{text}");
    screenshot(&debugger, "debugger-profile").await;
}

#[tokio::test]
async fn refusing_marketing_consent_keeps_the_marketing_destination_empty() {
    let ads = Receiver::start("s", Behaviour::Healthy);
    let stack = stack(&ads);
    let b = Browser::start().await;
    b.client.goto(&stack.url("/")).await.unwrap();
    b.wait_for_sdk().await;
    click(&b, "#consent-customize").await;
    click(&b, "#consent-analytics").await;
    screenshot(&b, "banner-customize").await;
    click(&b, "#consent-save").await;
    assert_eq!(
        b.js("return sluice.consent.get().categories").await,
        json!({"analytics": "granted", "personalization": "denied", "marketing": "denied"})
    );
    shop(&stack, &b).await;
    eventually("the order in D1", Duration::from_secs(30), || async {
        (!stack
            .d1("SELECT 1 FROM events WHERE event = 'Order Completed'")
            .is_empty())
        .then_some(())
    })
    .await;
    // Every stored event was withheld from the ads destination (no marketing
    // consent) and delivered to the lake (analytics): the three counts agree.
    let counter = |name: &str| {
        stack.d1(&format!(
            "SELECT SUM(count) AS n FROM counters WHERE name = '{name}'"
        ))[0]["n"]
            .as_i64()
            .unwrap_or(0)
    };
    let (stored, withheld, delivered) = eventually(
        "every stored event withheld from ads and delivered to the lake",
        Duration::from_secs(45),
        || async {
            let stored = stack.d1("SELECT COUNT(*) AS n FROM events")[0]["n"]
                .as_i64()
                .unwrap();
            let (withheld, delivered) = (counter("withheld_ads"), counter("delivered_lake"));
            (stored >= 7 && withheld == stored && delivered == stored)
                .then_some((stored, withheld, delivered))
        },
    )
    .await;
    assert_eq!((withheld, delivered), (stored, stored));
    assert!(
        ads.received().is_empty(),
        "the marketing webhook received {:?}",
        ads.received()
    );
}

#[tokio::test]
async fn the_banner_works_by_keyboard_alone() {
    let ads = Receiver::start("s", Behaviour::Healthy);
    let stack = stack(&ads);
    let b = Browser::start().await;
    b.client.goto(&stack.url("/")).await.unwrap();
    b.wait_for_sdk().await;
    let focused = || async {
        b.js("return document.activeElement.id")
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    let client = &b.client;
    let press = |key: &'static str| async move {
        client
            .active_element()
            .await
            .unwrap()
            .send_keys(key)
            .await
            .unwrap()
    };
    eventually(
        "focus to move into the banner",
        Duration::from_secs(10),
        || async { (focused().await == "consent-accept").then_some(()) },
    )
    .await;
    assert_eq!(
        b.js("return document.getElementById('consent-banner').getAttribute('role')")
            .await,
        "dialog"
    );
    press(TAB).await;
    assert_eq!(focused().await, "consent-reject");
    press(TAB).await;
    assert_eq!(focused().await, "consent-customize");
    press(ENTER).await;
    assert_eq!(
        focused().await,
        "consent-analytics",
        "the choices open and take focus"
    );
    assert_eq!(
        b.js("return document.getElementById('consent-customize').getAttribute('aria-expanded')")
            .await,
        "true"
    );
    press(" ").await; // check analytics
    for expected in [
        "consent-personalization",
        "consent-marketing",
        "consent-accept",
        "consent-reject",
        "consent-customize",
        "consent-save",
    ] {
        press(TAB).await;
        assert_eq!(focused().await, expected);
    }
    screenshot(&b, "banner-keyboard").await;
    press(ENTER).await;
    assert_eq!(
        b.js("return document.getElementById('consent-banner').hidden")
            .await,
        true
    );
    assert_eq!(
        b.js("return sluice.consent.get().categories").await,
        json!({"analytics": "granted", "personalization": "denied", "marketing": "denied"})
    );
    // Privacy settings reopens it, by keyboard too.
    b.js("document.getElementById('privacy-settings').focus(); return true")
        .await;
    press(ENTER).await;
    assert_eq!(focused().await, "consent-accept");
    press(TAB).await;
    press(ENTER).await; // Reject all
    assert_eq!(
        b.js("return sluice.consent.get().categories.analytics")
            .await,
        "denied"
    );
    assert_eq!(
        focused().await,
        "privacy-settings",
        "focus returns where it was"
    );
}

#[tokio::test]
async fn hostile_event_content_renders_as_text() {
    let ads = Receiver::start("s", Behaviour::Healthy);
    let stack = stack(&ads);
    let debugger = Browser::start().await;
    open_debugger(&stack, &debugger).await;
    let hostile = r#"<img src=x onerror="window.__pwned=1">"#;
    let breaker = r#""><script>window.__pwned=2</script><a href="javascript:alert(1)">"#;
    let long = "Ω".repeat(5000);
    let (status, body) = stack.post_json(
        "/v1/batch?writeKey=demo-write-key",
        &[],
        &json!({"batch": [
            {"type": "track", "messageId": "hostile-1", "anonymousId": breaker, "event": hostile,
             "properties": {"attr": breaker, "long": long, "<b>key</b>": "v"},
             "context": {"consent": {"categories": {"analytics": "granted"}}}},
            {"type": "track", "messageId": "hostile-2", "anonymousId": "x", "event": breaker}
        ]}),
    );
    assert_eq!(status, 200, "{body}");
    eventually("the hostile events in the debugger", Duration::from_secs(30), || async {
        let names = debugger.js("return [...document.querySelectorAll('#events .name')].map(n => n.textContent)").await;
        (names.as_array().unwrap().len() >= 2).then_some(names)
    })
    .await;
    let names = debugger
        .js("return [...document.querySelectorAll('#events .name')].map(n => n.textContent)")
        .await;
    assert!(
        names.as_array().unwrap().contains(&json!(hostile)),
        "shown literally: {names}"
    );
    debugger
        .js("document.querySelectorAll('#events details').forEach(d => d.open = true); return true")
        .await;
    assert_eq!(
        debugger.js("return typeof window.__pwned").await,
        "undefined",
        "no payload ran"
    );
    assert_eq!(debugger.js("return document.querySelectorAll('#events img, #events script, #events a[href^=javascript], #events b').length").await, 0);
    let text = debugger
        .js("return document.getElementById('events').innerText")
        .await;
    assert!(
        text.as_str().unwrap().contains("window.__pwned=2"),
        "the attribute breaker is shown as text"
    );
    screenshot(&debugger, "debugger-hostile").await;
}
