//! Context collected automatically: page, campaign, locale, timezone, screen,
//! user agent and its low-entropy client hints, library.

use crate::js::{self, set};
use crate::prelude::*;
use js_sys::Object;
use sluice_shared::campaign::{utm_key, CLICK_IDS};
use wasm_bindgen::JsValue;

/// Decode one `application/x-www-form-urlencoded` component.
fn decode(s: &str) -> String {
    js_sys::decode_uri_component(&s.replace('+', " "))
        .ok()
        .and_then(|d| d.as_string())
        .unwrap_or_else(|| s.to_owned())
}

/// `context.campaign` from a search string (`utm_*` and click ids), or `None`.
pub fn campaign(search: &str) -> Option<Object> {
    let c = Object::new();
    let clicks = Object::new();
    let mut any = false;
    let mut any_click = false;
    for pair in search.trim_start_matches('?').split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if v.is_empty() {
            continue;
        }
        let k = k.to_ascii_lowercase();
        let Some(key) = utm_key(&k) else {
            if let Some(name) = CLICK_IDS.iter().find(|c| **c == k) {
                set(&clicks, name, decode(v));
                any_click = true;
            }
            continue;
        };
        set(&c, key, decode(v));
        any = true;
    }
    if any_click {
        set(&c, "clickIds", clicks);
    }
    (any || any_click).then_some(c)
}

// The page's own values are copied from JS object to JS object with
// `Reflect.get`: never through Rust strings, and without one typed binding
// (a glue function each) per property.

/// `context.page`.
pub fn page(window: &JsValue) -> Object {
    let p = Object::new();
    let location = js::get(window, "location");
    let doc = js::get(window, "document");
    let canonical = js::call(
        &js::get(&doc, "querySelector"),
        &doc,
        &[js::st("link[rel=canonical]")],
    )
    .and_then(|link| js::call(&js::get(&link, "getAttribute"), &link, &[js::st("href")]))
    .filter(JsValue::is_string);
    set(&p, "path", js::get(&location, "pathname"));
    set(&p, "referrer", js::get(&doc, "referrer"));
    set(&p, "search", js::get(&location, "search"));
    set(&p, "title", js::get(&doc, "title"));
    match canonical {
        Some(c) => {
            set(&p, "url", c.clone());
            set(&p, "canonicalUrl", c);
        }
        None => {
            let href = js::get_str(&location, "href").unwrap_or_default();
            set(&p, "url", href.split('#').next().unwrap_or_default());
        }
    }
    p
}

/// The parts of the context that do not change during a page's life.
pub fn stable(window: &JsValue) -> Object {
    let ctx = Object::new();
    let navigator = js::get(window, "navigator");
    let library = Object::new();
    set(&library, "name", "sluice.js");
    set(&library, "version", env!("CARGO_PKG_VERSION"));
    set(&ctx, "library", library);
    set(&ctx, "userAgent", js::get(&navigator, "userAgent"));
    set(&ctx, "locale", js::get(&navigator, "language"));
    let tz = js::get(
        &js_sys::Intl::DateTimeFormat::new(&js_sys::Array::new(), &Object::new())
            .resolved_options(),
        "timeZone",
    );
    if tz.is_string() {
        set(&ctx, "timezone", tz);
    }
    let screen = js::get(window, "screen");
    if screen.is_object() {
        let s = Object::new();
        set(&s, "width", js::get(&screen, "width"));
        set(&s, "height", js::get(&screen, "height"));
        set(&s, "density", js::get(window, "devicePixelRatio"));
        set(&ctx, "screen", s);
    }
    // Low-entropy User-Agent Client Hints (Chromium): brands, mobile, platform.
    let uad = js::get(&navigator, "userAgentData");
    if uad.is_object() {
        let hints = Object::new();
        set(&hints, "brands", js::get(&uad, "brands"));
        set(&hints, "mobile", js::get(&uad, "mobile"));
        set(&hints, "platform", js::get(&uad, "platform"));
        set(&ctx, "userAgentData", hints);
    }
    ctx
}
