//! Sending: `fetch` with `keepalive` (the request outlives the page) and
//! `sendBeacon` when the page is being hidden or left.

use crate::js;
use crate::prelude::*;
use core::cell::Cell;
use wasm_bindgen::prelude::*;

/// The answer to a request: status and `Retry-After`, or `None` on a network error.
pub struct Answer {
    pub status: u16,
    pub retry_after: Option<String>,
}

/// POST `body` with HTTP Basic auth (`authorization` is the full header value)
/// and call `done` with the answer. Plain promise callbacks rather than an
/// async executor: the SDK pays for every byte of code.
pub fn post(
    url: &str,
    authorization: &str,
    body: &str,
    done: impl FnOnce(Option<Answer>) + 'static,
) {
    // A plain init object: typed `RequestInit` / `Headers` bindings cost a glue function per setter.
    let headers = js_sys::Object::new();
    js::set(&headers, "content-type", "text/plain");
    js::set(&headers, "authorization", authorization);
    let init = js_sys::Object::new();
    js::set(&init, "method", "POST");
    js::set(&init, "body", body);
    js::set(&init, "headers", headers);
    // `keepalive` lets the request finish after the page is gone.
    js::set(&init, "keepalive", true);
    let Some(response) = fetch(url, &init) else {
        return done(None);
    };
    let answer = Rc::new(Cell::new(None));
    let seen = answer.clone();
    let on_response = Closure::once_into_js(move |response: JsValue| -> JsValue {
        // A network error arrives here too (no `status`): the answer stays `None`.
        let Some(status) = js::get_f64(&response, "status") else {
            return JsValue::UNDEFINED;
        };
        let headers = js::get(&response, "headers");
        let retry_after = js::call(&js::get(&headers, "get"), &headers, &["retry-after".into()])
            .and_then(|v| v.as_string());
        seen.set(Some(Answer {
            status: status as u16,
            retry_after,
        }));
        // Read the body so the request (and its keepalive quota) is finished.
        js::call(&js::get(&response, "text"), &response, &[]).unwrap_or(JsValue::UNDEFINED)
    });
    let on_done = Closure::once_into_js(move |_: JsValue| done(answer.take()));
    settle(&settle(&response, &on_response), &on_done);
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
