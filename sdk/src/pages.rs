//! Single-page apps: a page view on `pushState`, `replaceState` and `popstate`,
//! once per distinct path + query (never twice for the same URL).

use crate::prelude::*;
use wasm_bindgen::prelude::*;

#[wasm_bindgen(module = "/js/host.js")]
extern "C" {
    #[wasm_bindgen(js_name = watchHistory)]
    fn watch_history(changed: &JsValue);
}

/// Call `on_change` after every history change.
pub fn watch(on_change: impl Fn() + 'static) {
    let changed = Closure::<dyn FnMut()>::new(on_change);
    watch_history(changed.as_ref());
    changed.forget();
}

/// The key a page view is deduplicated on: path and query.
pub fn current_key() -> String {
    let mut key = crate::js::location("pathname").unwrap_or_default();
    key.push_str(&crate::js::location("search").unwrap_or_default());
    key
}
