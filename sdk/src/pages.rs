//! Single-page apps: a page view on `pushState`, `replaceState` and `popstate`,
//! once per distinct path + query (never twice for the same URL).

use crate::js;
use crate::prelude::*;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

/// Call `on_change` after every history change.
pub fn watch(on_change: impl Fn() + Clone + 'static) {
    let window = js::window();
    let history = js::get(&window, "history");
    for method in ["pushState", "replaceState"] {
        let Some(original) = js::get(&history, method)
            .dyn_ref::<js_sys::Function>()
            .cloned()
        else {
            continue;
        };
        let target = history.clone();
        let notify = on_change.clone();
        let wrapped = Closure::<dyn FnMut(JsValue, JsValue, JsValue) -> JsValue>::new(
            move |a: JsValue, b: JsValue, c: JsValue| {
                let args: js_sys::Array = if c.is_undefined() {
                    [a, b].iter().collect()
                } else {
                    [a, b, c].iter().collect()
                };
                let result = original.apply(&target, &args).unwrap_or(JsValue::UNDEFINED);
                notify();
                result
            },
        );
        js::set(
            &js_sys::Object::from(history.clone()),
            method,
            wrapped.as_ref().clone(),
        );
        wrapped.forget();
    }
    let notify = on_change;
    let pop = Closure::<dyn FnMut()>::new(notify);
    let _ = window.add_event_listener_with_callback("popstate", pop.as_ref().unchecked_ref());
    pop.forget();
}

/// The key a page view is deduplicated on: path and query.
pub fn current_key() -> String {
    let mut key = crate::js::location("pathname").unwrap_or_default();
    key.push_str(&crate::js::location("search").unwrap_or_default());
    key
}
