//! Module tests in a real browser (wasm-bindgen-test, headless Chromium).
#![allow(clippy::unwrap_used)] // test code: a panic is a failed test

use crate::options::{Options, StorageMode};
use crate::storage::{self, Store};
use crate::{api, js, sdk};
use sluice_shared::consent::{Consent, Purpose, Source, State};
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::JsValue;
use wasm_bindgen_test::wasm_bindgen_test;

fn eval(code: &str) -> JsValue {
    js_sys::eval(code).expect("test script runs")
}

fn code_of(e: JsValue) -> String {
    js::get_str(&e, "code").unwrap_or_default()
}

fn recorder() -> (
    Rc<RefCell<Vec<Consent>>>,
    impl Fn(Consent) + Clone + 'static,
) {
    let seen = Rc::new(RefCell::new(Vec::new()));
    let sink = Rc::clone(&seen);
    (seen, move |c: Consent| sink.borrow_mut().push(c))
}

#[wasm_bindgen_test]
fn unknown_or_mistyped_options_are_rejected_with_a_code() {
    let e = Options::parse(&eval("({ colour: 'red' })")).unwrap_err();
    assert_eq!(code_of(e.clone()), "invalid_options");
    assert!(js::get_str(&e, "message").unwrap().contains("colour"));
    assert_eq!(
        code_of(Options::parse(&eval("({ flushAt: 'soon' })")).unwrap_err()),
        "invalid_options"
    );
    assert_eq!(
        code_of(Options::parse(&eval("({ storage: 'disk' })")).unwrap_err()),
        "invalid_options"
    );
    assert_eq!(
        code_of(Options::parse(&eval("({ consent: { pending: 'maybe' } })")).unwrap_err()),
        "invalid_options"
    );
    let o = Options::parse(&eval(
        "({ flushAt: 5, storage: 'none', consent: { required: ['analytics', 'marketing'] } })",
    ))
    .unwrap();
    assert_eq!(
        (o.flush_at, o.storage, o.consent_required.len()),
        (5, StorageMode::None, 2)
    );
}

#[wasm_bindgen_test]
fn cookies_are_written_and_read_on_this_site() {
    let mut s = Store::new(StorageMode::Cookie, None, "Lax".into(), None);
    s.set("sluice_test", "v1");
    assert_eq!(storage::read_cookie("sluice_test").as_deref(), Some("v1"));
    assert_eq!(s.get("sluice_test").as_deref(), Some("v1"));
    s.remove("sluice_test");
    assert_eq!(storage::read_cookie("sluice_test"), None);
}

#[wasm_bindgen_test]
fn cookieless_mode_writes_nothing_until_storage_consent() {
    let mut s = Store::new(StorageMode::None, None, "Lax".into(), None);
    s.set("sluice_cookieless", "x");
    assert_eq!(storage::read_cookie("sluice_cookieless"), None);
    assert_eq!(
        eval("localStorage.getItem('sluice_cookieless')"),
        JsValue::NULL
    );
    assert_eq!(
        s.get("sluice_cookieless").as_deref(),
        Some("x"),
        "kept in memory"
    );
    s.set_enabled(true);
    assert_eq!(
        eval("localStorage.getItem('sluice_cookieless')"),
        JsValue::from("x")
    );
    s.remove("sluice_cookieless");
}

#[wasm_bindgen_test]
fn blocked_storage_falls_back_to_memory() {
    // Safari private mode / sandboxed iframes: touching localStorage throws.
    eval("window.__ls = Object.getOwnPropertyDescriptor(window, 'localStorage') || Object.getOwnPropertyDescriptor(Window.prototype, 'localStorage'); \
          Object.defineProperty(window, 'localStorage', { configurable: true, get() { throw new DOMException('blocked', 'SecurityError'); } });");
    let mut s = Store::new(StorageMode::Local, None, "Lax".into(), None);
    s.set("sluice_blocked", "kept");
    assert_eq!(s.get("sluice_blocked").as_deref(), Some("kept"));
    assert!(!s.local_set("sluice_q", "[]"));
    eval("Object.defineProperty(window, 'localStorage', window.__ls)");
}

#[wasm_bindgen_test]
fn a_tcf_cmp_is_read_and_mapped_to_purposes() {
    eval("window.__tcfapi = function (cmd, version, cb) { if (cmd === 'addEventListener') cb({ gdprApplies: true, eventStatus: 'tcloaded', tcString: 'CPtest', \
          purpose: { consents: { 1: true, 8: true, 9: true, 10: true }, legitimateInterests: {} } }, true); };");
    let (seen, on) = recorder();
    crate::host::watch_cmps_into(on);
    eval("delete window.__tcfapi");
    let c = seen.borrow()[0].clone();
    assert_eq!(c.source, Source::Tcf);
    assert_eq!(c.tc_string.as_deref(), Some("CPtest"));
    assert_eq!(c.state(&Purpose::Functional), State::Granted);
    assert_eq!(c.state(&Purpose::Analytics), State::Granted);
    assert_eq!(c.state(&Purpose::Marketing), State::Denied);
    assert_eq!(c.state(&Purpose::Personalization), State::Denied);

    // Marketing's purposes 2 and 7 may rest on legitimate interest; 3 and 4 need
    // consent. A purpose set to false is not given.
    eval("window.__tcfapi = function (cmd, version, cb) { if (cmd === 'addEventListener') cb({ gdprApplies: true, eventStatus: 'useractioncomplete', \
          purpose: { consents: { 3: true, 4: true, 5: false, 11: true }, legitimateInterests: { 2: true, 7: true, 5: true } } }, true); };");
    let (seen, on) = recorder();
    crate::host::watch_cmps_into(on);
    eval("delete window.__tcfapi");
    let c = seen.borrow()[0].clone();
    assert_eq!(c.state(&Purpose::Marketing), State::Granted);
    assert_eq!(c.state(&Purpose::Personalization), State::Denied);
    assert_eq!(c.state(&Purpose::Functional), State::Denied);
}

#[wasm_bindgen_test]
fn a_gpp_cmp_opt_out_of_sale_is_read() {
    eval("window.__gpp = function (cmd, cb) { if (cmd === 'ping') cb({ signalStatus: 'ready', gppString: 'DBABLA~x', \
          parsedSections: { usnat: { SaleOptOut: 1, SharingOptOut: 2, TargetedAdvertisingOptOut: 1 } } }, true); };");
    let (seen, on) = recorder();
    crate::host::watch_cmps_into(on);
    eval("delete window.__gpp");
    let c = seen.borrow()[0].clone();
    assert_eq!(c.source, Source::Gpp);
    assert_eq!(c.state(&Purpose::SaleSharing), State::Denied);
    assert_eq!(c.state(&Purpose::Marketing), State::Denied);
}

#[wasm_bindgen_test]
fn google_consent_mode_defaults_and_updates_are_followed() {
    eval(
        "window.dataLayer = []; window.gtag = function () { dataLayer.push(arguments); }; \
          gtag('consent', 'default', { analytics_storage: 'denied', ad_storage: 'denied' });",
    );
    let (seen, on) = recorder();
    crate::host::watch_cmps_into(on);
    eval("gtag('consent', 'update', { analytics_storage: 'granted' })");
    let seen = seen.borrow();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].state(&Purpose::Analytics), State::Denied);
    assert_eq!(seen[1].state(&Purpose::Analytics), State::Granted);
    assert_eq!(seen[1].source, Source::Gcm);
    eval("delete window.dataLayer; delete window.gtag");
}

#[wasm_bindgen_test]
fn what_the_sdk_sends_is_valid_under_the_shared_contract() {
    // A GA tag's and Meta pixel's cookies; only analytics is granted at first.
    eval("document.cookie = '_ga=GA1.1.111.222; path=/'; document.cookie = '_fbp=fb.1.1700000000000.42; path=/'");
    // A landing URL with a campaign and Google's and Meta's click ids.
    eval("history.replaceState(null, '', location.pathname + '?utm_source=news&UTM_Medium=e+mail%20list&utm_term=%E0%A4%A&gclid=G-test&fbclid=IwAR-test')");
    let opts = eval("({ flushAt: 1000, flushIntervalMs: 600000, storage: 'memory', consent: { defaultGranted: true } })");
    api::load(JsValue::from("wk-test"), opts, crate::host::test_wake()).unwrap();
    eval("history.replaceState(null, '', location.pathname)");
    assert_eq!(
        code_of(
            api::load(
                JsValue::from(""),
                JsValue::UNDEFINED,
                crate::host::test_wake()
            )
            .unwrap_err()
        ),
        "invalid_argument"
    );
    let props = eval("({ revenue: 42, products: [{ id: 'p1' }] })");
    let first_id = api::track("Order Completed".into(), props.clone(), JsValue::UNDEFINED).unwrap();
    // The event is what the page passed at the time of the call.
    js_sys::Reflect::set(&props, &"revenue".into(), &JsValue::from(0)).unwrap();
    api::page(
        "Shop".into(),
        "Product".into(),
        eval("({ sku: 'p1' })"),
        JsValue::UNDEFINED,
    )
    .unwrap();
    api::identify(
        "user-1".into(),
        eval("({ email: 'a@example.com' })"),
        JsValue::UNDEFINED,
    )
    .unwrap();
    api::group("org-1".into(), JsValue::UNDEFINED, JsValue::UNDEFINED).unwrap();
    api::alias("user-2".into(), JsValue::UNDEFINED, JsValue::UNDEFINED).unwrap();
    api::screen(
        "Home".into(),
        JsValue::UNDEFINED,
        eval("({ timestamp: 1714557600000 })"),
    )
    .unwrap();
    let given_id = api::track(
        "With Options".into(),
        JsValue::UNDEFINED,
        eval("({ messageId: 'page-id-1', timestamp: '2024-05-01T10:00:00Z', context: { locale: 'fr-FR', app: { name: 'shop' } }, integrations: { All: false } })"),
    )
    .unwrap();
    assert_eq!(
        given_id,
        JsValue::from("page-id-1"),
        "track returns the messageId"
    );
    assert_eq!(
        code_of(api::track(JsValue::from(3), JsValue::UNDEFINED, JsValue::UNDEFINED).unwrap_err()),
        "invalid_argument"
    );
    assert_eq!(
        code_of(api::track("E".into(), JsValue::from("props"), JsValue::UNDEFINED).unwrap_err()),
        "invalid_argument"
    );

    let persisted = sdk::with(|s| s.queue().persisted(0)).unwrap();
    let body = [
        "{\"batch\":",
        &persisted,
        ",\"sentAt\":\"2024-05-01T10:00:00.000Z\"}",
    ]
    .concat();
    let parsed =
        sluice_shared::parse::parse_batch(body.as_bytes(), &sluice_shared::Limits::default())
            .unwrap();
    let checked = parsed.check(
        &sluice_shared::Limits::default(),
        sluice_shared::Timestamp(js::now_ms() as i64),
    );
    assert_eq!(checked.len(), 7);
    let events: Vec<sluice_shared::Event> = checked
        .into_iter()
        .map(|c| {
            c.result
                .unwrap_or_else(|e| panic!("event {} is invalid: {e:?}", c.index))
                .into_event()
        })
        .collect();
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        ["track", "page", "identify", "group", "alias", "screen", "track"]
    );
    let given = &events[6];
    assert_eq!(
        given.message_id, "page-id-1",
        "the page's messageId is kept"
    );
    assert_eq!(given.timestamp.as_deref(), Some("2024-05-01T10:00:00Z"));
    let ctx = given.context.as_ref().unwrap();
    assert_eq!(ctx["locale"], "fr-FR", "the page's context wins");
    assert_eq!(ctx["app"]["name"], "shop");
    assert!(ctx["sessionId"].is_number() && ctx["page"].is_object());
    assert_eq!(given.integrations.as_ref().unwrap()["All"], false);
    let id = &events[0].message_id;
    assert_eq!(
        first_id.as_string().as_ref(),
        Some(id),
        "track returns the messageId"
    );
    assert!(
        sluice_shared::id::is_uuid(&id[..36]) && id[36..].starts_with('-'),
        "an automatic messageId is <page UUID>-<n>: {id}"
    );
    assert_ne!(events[0].message_id, events[1].message_id);
    assert_eq!(events[0].properties.as_ref().unwrap()["revenue"], 42);
    assert!(events[0].user_id.is_none());
    assert_eq!(
        events[3].user_id.as_deref(),
        Some("user-1"),
        "identity is added"
    );
    assert_eq!(events[1].category.as_deref(), Some("Shop"));
    assert_eq!(events[2].user_id.as_deref(), Some("user-1"));
    assert_eq!(events[4].previous_id.as_deref(), Some("user-1"));
    assert_eq!(
        events[4].user_id.as_deref(),
        Some("user-2"),
        "alias carries the new id"
    );
    assert_eq!(
        events[5].timestamp.as_deref(),
        Some("2024-05-01T10:00:00.000Z"),
        "an explicit time is kept"
    );
    let ctx = events[0].context.as_ref().unwrap();
    assert_eq!(
        ctx["ga"]["clientId"], "111.222",
        "analytics granted: the _ga client id"
    );
    assert!(
        ctx.get("fbp").is_none(),
        "marketing not granted: no Meta id"
    );
    assert_eq!(ctx["library"]["name"], "sluice.js");
    assert_eq!(ctx["consent"]["categories"]["analytics"], "granted");
    assert!(ctx["sessionId"].is_number());
    assert!(sluice_shared::id::is_uuid(
        events[0].anonymous_id.as_deref().unwrap()
    ));
    assert!(events
        .iter()
        .all(|e| e.anonymous_id == events[0].anonymous_id));

    // A change of consent emits one `Consent Updated` and tells listeners once;
    // the same consent reported again (CMPs re-report) emits nothing.
    let updates = || {
        sdk::with(|s| s.queue().persisted(0))
            .unwrap()
            .matches("Consent Updated")
            .count()
    };
    let before = updates();
    api::consent_on(eval(
        "window.__heard = 0; (function () { window.__heard++; })",
    ))
    .unwrap();
    assert_eq!(
        ctx["campaign"],
        serde_json::json!({"source": "news", "medium": "e mail list", "term": "%E0%A4%A"}),
        "utm_* is analytics attribution (form-decoded; kept as written where malformed); \
         a click id needs marketing consent"
    );
    assert!(ctx.get("gclid").is_none(), "{ctx:?}");
    let stored = || sdk::with(|s| s.store().get("sluice_clk")).unwrap();
    assert_eq!(
        stored(),
        None,
        "no click is stored without marketing consent"
    );
    // The landing URL's click ids: sent and kept once marketing is granted.
    api::consent_set(eval("({ marketing: true })")).unwrap();
    api::consent_set(eval("({ marketing: 'granted' })")).unwrap();
    assert_eq!(updates(), before + 1);
    assert_eq!(eval("window.__heard"), 1);
    api::track(
        "With Marketing".into(),
        JsValue::UNDEFINED,
        JsValue::UNDEFINED,
    )
    .unwrap();
    let kept = stored().unwrap();
    assert!(
        kept.starts_with("gclid=")
            && kept.contains(".G-test&fbclid=")
            && kept.ends_with(".IwAR-test"),
        "{kept}"
    );
    api::consent_set(eval("({ marketing: false })")).unwrap();
    assert_eq!(stored(), None, "withdrawn: the clicks are removed");
    assert_eq!(updates(), before + 2);
    assert_eq!(eval("window.__heard"), 2);
    api::track(
        "Without Marketing".into(),
        JsValue::UNDEFINED,
        JsValue::UNDEFINED,
    )
    .unwrap();
    let queued = |name: &str| {
        let all: Vec<serde_json::Value> =
            serde_json::from_str(&sdk::with(|s| s.queue().persisted(0)).unwrap()).unwrap();
        all.into_iter().rev().find(|e| e["event"] == name).unwrap()["context"].clone()
    };
    let with = queued("With Marketing");
    assert_eq!(with["fbp"], "fb.1.1700000000000.42");
    let fbc = with["fbc"].as_str().unwrap();
    assert!(
        fbc.starts_with("fb.1.") && fbc.ends_with(".IwAR-test"),
        "{fbc}"
    );
    assert_eq!(with["ga"]["clientId"], "111.222");
    assert_eq!(with["gclid"], "G-test");
    let without = queued("Without Marketing");
    for key in ["fbp", "fbc", "gclid"] {
        assert!(
            without.get(key).is_none(),
            "{key} without marketing: {without}"
        );
    }
    assert_eq!(without["ga"]["clientId"], "111.222");
    eval(
        "document.cookie = '_ga=; max-age=0; path=/'; document.cookie = '_fbp=; max-age=0; path=/'",
    );

    api::reset().unwrap();
    assert_ne!(
        api::anonymous_id().unwrap(),
        events[0].anonymous_id.clone().unwrap(),
        "reset starts a new visitor"
    );
    every_call_is_reached_by_its_number_in_ops();
}

/// The page reaches each call as `op(n, …)`, `n` its place in `api::OPS`
/// (the loader's and index.js's numbering): each number runs its own call.
fn every_call_is_reached_by_its_number_in_ops() {
    let u = || JsValue::UNDEFINED;
    let op = |name: &str, a: JsValue| {
        let n = api::OPS.iter().position(|o| *o == name).unwrap() as u32;
        api::op(n, a, u(), u(), u())
    };
    let message = |name: &str, a: JsValue| {
        let e = op(name, a).unwrap_err();
        [code_of(e.clone()), js::get_str(&e, "message").unwrap()].join(": ")
    };
    for (name, bad, says) in [
        ("load", JsValue::from(""), "the write key"),
        ("track", JsValue::from(3), "the event name"),
        ("page", JsValue::from(3), "properties must be"),
        ("screen", JsValue::from(3), "the screen name"),
        ("identify", JsValue::TRUE, "identify takes"),
        ("group", JsValue::TRUE, "the group id"),
        ("alias", JsValue::TRUE, "alias needs"),
        ("on", JsValue::from("x"), "on() takes"),
        ("consentSet", JsValue::from(3), "invalid_consent"),
        ("consentOn", JsValue::from(3), "the callback"),
    ] {
        assert!(
            message(name, bad).contains(says),
            "{name}: {}",
            message(name, JsValue::from(3))
        );
    }
    let id = op("anonymousId", u()).unwrap();
    assert_eq!(id, JsValue::from(api::anonymous_id().unwrap()));
    assert_eq!(js::get(&op("user", u()).unwrap(), "anonymousId"), id);
    assert!(js::get_f64(&op("stats", u()).unwrap(), "queued").is_some());
    assert!(js_sys::Array::is_array(&op("audiences", u()).unwrap()));
    assert!(js::is_plain_object(&op("traits", u()).unwrap()));
    assert_eq!(
        js::get_bool(&op("consentGet", u()).unwrap(), "known"),
        Some(true)
    );
    for quiet in ["debug", "flush", "replayAt"] {
        assert_eq!(op(quiet, u()).unwrap(), u(), "{quiet}");
    }
    op("reset", u()).unwrap();
    assert_ne!(
        op("anonymousId", u()).unwrap(),
        id,
        "reset starts a new visitor"
    );
}

#[wasm_bindgen_test]
fn ids_are_v4_uuids_with_and_without_random_uuid() {
    assert!(sluice_shared::id::is_uuid(&storage::uuid()));
    // Outside secure contexts there is no `crypto.randomUUID`.
    eval("window.__ru = Crypto.prototype.randomUUID; delete Crypto.prototype.randomUUID");
    let made = storage::uuid();
    eval("Crypto.prototype.randomUUID = window.__ru");
    assert!(sluice_shared::id::is_uuid(&made), "{made}");
    assert_eq!(made.as_bytes()[14], b'4', "{made}");
    assert_ne!(made, storage::uuid());
}
