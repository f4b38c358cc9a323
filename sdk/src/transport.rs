//! Sending: `fetch` with `keepalive` (the request outlives the page) and
//! `sendBeacon` when the page is being hidden or left.

use crate::js;
use wasm_bindgen::JsValue;

/// The answer to a request: status and `Retry-After`, or `None` on a network error.
pub struct Answer {
    pub status: u16,
    pub retry_after: Option<String>,
}

/// POST `body` with HTTP Basic auth (`authorization` is the full header value).
pub async fn post(url: &str, authorization: &str, body: &str) -> Option<Answer> {
    let window = web_sys::window()?;
    let init = web_sys::RequestInit::new();
    init.set_method("POST");
    init.set_body(&JsValue::from_str(body));
    // `keepalive` lets the request finish after the page is gone; web-sys has no setter for it.
    js::set(&init, "keepalive", true);
    let headers = web_sys::Headers::new().ok()?;
    headers.set("content-type", "text/plain").ok()?;
    headers.set("authorization", authorization).ok()?;
    init.set_headers(&headers);
    let promise = window.fetch_with_str_and_init(url, &init);
    let response = wasm_bindgen_futures::JsFuture::from(promise).await.ok()?;
    let status = js::get_f64(&response, "status")? as u16;
    // Read the body so the request (and its keepalive quota) is finished.
    if let Some(text) = js::call(&js::get(&response, "text"), &response, &[]) {
        let _ = wasm_bindgen_futures::JsFuture::from(js_sys::Promise::from(text)).await;
    }
    let retry_after = js::call(
        &js::get(&js::get(&response, "headers"), "get"),
        &js::get(&response, "headers"),
        &["retry-after".into()],
    )
    .and_then(|v| v.as_string());
    Some(Answer {
        status,
        retry_after,
    })
}

/// `navigator.sendBeacon(url, body)`: true if the browser queued it.
pub fn beacon(url: &str, body: &str) -> bool {
    web_sys::window()
        .and_then(|w| w.navigator().send_beacon_with_opt_str(url, Some(body)).ok())
        .unwrap_or(false)
}

/// `navigator.onLine` (true when unknown).
pub fn online() -> bool {
    web_sys::window().is_none_or(|w| w.navigator().on_line())
}
