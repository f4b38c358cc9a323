//! Sending: `fetch` with `keepalive` (the request outlives the page), the
//! body gzipped by the browser's `CompressionStream` where there is one, and
//! `sendBeacon` (plain: compression is asynchronous and may not finish) when
//! the page is being hidden or left.

use crate::js;
use crate::prelude::*;
use wasm_bindgen::prelude::*;

/// The answer to a request: status and `Retry-After`, or `None` on a network error.
pub struct Answer {
    pub status: u16,
    pub retry_after: Option<String>,
}

#[wasm_bindgen(module = "/js/host.js")]
extern "C" {
    /// The host's `post` (see `sdk/js/host.js`): `fetch` with `keepalive`,
    /// the body gzipped where the browser can; calls `wired()` when `fetch`
    /// has it; returns `withdraw()`.
    #[wasm_bindgen(js_name = post)]
    fn host_post(
        url: &str,
        authorization: &str,
        body: &str,
        wired: JsValue,
        done: JsValue,
    ) -> js_sys::Function;
}

/// POST `body` with HTTP Basic auth (`authorization` is the full header value),
/// gzipped where the browser can; call `wired` once `fetch` has it (the
/// browser then completes it even if the page goes) and `done` with the
/// answer (its `profile`, the visitor's audiences, is taken first). Returns
/// `withdraw()`: true if it cancelled the request while its body was still
/// being compressed (`done` is then never called).
pub fn post(
    url: &str,
    authorization: &str,
    body: &str,
    wired: impl FnOnce() + 'static,
    done: impl FnOnce(Option<Answer>) + 'static,
) -> js_sys::Function {
    let wired = Closure::once_into_js(wired);
    let done = Closure::once_into_js(
        move |status: f64, retry_after: Option<String>, profile: JsValue| {
            crate::audiences::answered(profile);
            done((status > 0.0).then_some(Answer {
                status: status as u16,
                retry_after,
            }));
        },
    );
    host_post(url, authorization, body, wired, done)
}

/// `fetch(url, init)`: the response promise (`None` if `fetch` threw).
pub fn fetch(url: &str, init: &js_sys::Object) -> Option<JsValue> {
    let w = js::global();
    js::call(&js::get(&w, "fetch"), &w, &[url.into(), init.into()])
}

/// `promise.then(f, f)`: one handler for both outcomes, so it is always
/// called (a `once` closure that is never called is never freed).
pub fn settle(promise: &JsValue, f: &JsValue) -> JsValue {
    js::call(&js::get(promise, "then"), promise, &[f.clone(), f.clone()])
        .unwrap_or(JsValue::UNDEFINED)
}

/// `navigator.sendBeacon(url, body)`: true if the browser queued it.
pub fn beacon(url: &str, body: &str) -> bool {
    crate::js::window()
        .navigator()
        .send_beacon_with_opt_str(url, Some(body))
        .unwrap_or(false)
}

/// `navigator.onLine` (true when unknown).
pub fn online() -> bool {
    crate::js::get_bool(&crate::js::get(&crate::js::global(), "navigator"), "onLine") != Some(false)
}
