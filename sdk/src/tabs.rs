//! Which tab owns which stored queue: Web Locks (`navigator.locks`, through
//! the host, `sdk/js/host.js`). Each tab holds the lock named after its
//! queue for as long as it lives; another tab's queue may be taken only with
//! its lock, i.e. once that tab is gone, and the tab that takes it keeps that
//! lock too for its life (Web Locks do not order localStorage between tabs:
//! a third tab could otherwise take the lock before it sees the queue gone).

use wasm_bindgen::prelude::*;

#[wasm_bindgen(module = "/js/host.js")]
extern "C" {
    /// Hold `name` for the life of the page.
    #[wasm_bindgen(js_name = holdLock)]
    pub fn hold_forever(name: &str);
    #[wasm_bindgen(js_name = tryLock)]
    fn try_lock(name: &str, f: JsValue);
}

/// If `name` is free, take it for the life of the page and run `f` (asynchronously).
pub fn try_with(name: &str, f: impl FnOnce() + 'static) {
    try_lock(
        name,
        Closure::once_into_js(move |free: bool| {
            if free {
                f();
            }
        }),
    );
}
