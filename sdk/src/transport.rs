//! Sends a batch to the collector with `fetch` + `keepalive`.

use wasm_bindgen::JsValue;

/// POST `body` (JSON text) to `url`, authenticated with the write key.
/// Never throws into the page: failures are returned for the caller to handle.
pub fn send(
    window: &web_sys::Window,
    url: &str,
    write_key: &str,
    body: &str,
) -> Result<js_sys::Promise, JsValue> {
    let init = web_sys::RequestInit::new();
    init.set_method("POST");
    // `keepalive` lets the request outlive the page; web-sys has no setter for it.
    js_sys::Reflect::set(&init, &JsValue::from_str("keepalive"), &JsValue::TRUE)?;
    init.set_body(&JsValue::from_str(body));
    let headers = web_sys::Headers::new()?;
    headers.set("content-type", "text/plain")?;
    let auth = [write_key, ":"].concat();
    let token = window.btoa(&auth)?;
    headers.set("authorization", &["Basic ", &token].concat())?;
    init.set_headers(&headers);
    Ok(window.fetch_with_str_and_init(url, &init))
}
