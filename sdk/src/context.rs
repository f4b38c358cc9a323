//! Context collected automatically: page, campaign, locale, timezone, screen,
//! user agent and its low-entropy client hints, library.

use crate::js::{self, set};
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

/// `context.page`.
pub fn page(window: &web_sys::Window) -> Object {
    let p = Object::new();
    let location = window.location();
    let doc = window.document();
    let href = location.href().unwrap_or_default();
    let canonical = doc
        .as_ref()
        .and_then(|d| d.query_selector("link[rel=canonical]").ok().flatten())
        .and_then(|l| l.get_attribute("href"));
    let url = canonical
        .clone()
        .unwrap_or_else(|| href.split('#').next().unwrap_or_default().to_owned());
    set(&p, "path", location.pathname().unwrap_or_default());
    set(
        &p,
        "referrer",
        doc.as_ref().map(|d| d.referrer()).unwrap_or_default(),
    );
    set(&p, "search", location.search().unwrap_or_default());
    set(
        &p,
        "title",
        doc.as_ref().map(|d| d.title()).unwrap_or_default(),
    );
    set(&p, "url", url);
    if let Some(c) = canonical {
        set(&p, "canonicalUrl", c);
    }
    p
}

/// The parts of the context that do not change during a page's life.
pub fn stable(window: &web_sys::Window) -> Object {
    let ctx = Object::new();
    let navigator = window.navigator();
    let library = Object::new();
    set(&library, "name", "sluice.js");
    set(&library, "version", env!("CARGO_PKG_VERSION"));
    set(&ctx, "library", library);
    set(
        &ctx,
        "userAgent",
        navigator.user_agent().unwrap_or_default(),
    );
    set(&ctx, "locale", navigator.language().unwrap_or_default());
    let tz = js::get(
        &js_sys::Intl::DateTimeFormat::new(&js_sys::Array::new(), &Object::new())
            .resolved_options(),
        "timeZone",
    );
    if tz.is_string() {
        set(&ctx, "timezone", tz);
    }
    if let Ok(screen) = window.screen() {
        let s = Object::new();
        set(&s, "width", screen.width().unwrap_or(0));
        set(&s, "height", screen.height().unwrap_or(0));
        set(&s, "density", window.device_pixel_ratio());
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

/// The viewport, read per event (it changes).
pub fn viewport(window: &web_sys::Window) -> JsValue {
    let v = Object::new();
    set(
        &v,
        "width",
        window.inner_width().unwrap_or(JsValue::from(0)),
    );
    set(
        &v,
        "height",
        window.inner_height().unwrap_or(JsValue::from(0)),
    );
    v.into()
}
