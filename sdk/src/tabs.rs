//! Which tab owns which stored queue: Web Locks (`navigator.locks`). Each tab
//! holds the lock named after its queue for as long as it lives; another
//! tab's queue may be taken only with its lock, i.e. once that tab is gone.

use crate::js;
use js_sys::{Array, Function, Object};
use wasm_bindgen::prelude::*;

fn locks() -> Option<JsValue> {
    let l = js::get(&js::get(&js::global(), "navigator"), "locks");
    l.is_object().then_some(l)
}

/// Hold `name` for the life of the page.
pub fn hold_forever(name: &str) {
    let Some(locks) = locks() else { return };
    // The lock is held until the callback's promise settles. `Promise.race([])`
    // never settles, and bound to `[]` it is that callback with no Rust closure.
    let promise = js::get(&js::global(), "Promise");
    let never = Function::from(js::get(&promise, "race")).bind1(&promise, &Array::new());
    js::call(
        &js::get(&locks, "request"),
        &locks,
        &[name.into(), never.into()],
    );
}

/// If `name` is free, run `f` while holding it (asynchronously).
pub fn try_with(name: &str, f: impl FnOnce() + 'static) {
    let Some(locks) = locks() else { return };
    let options = Object::new();
    js::set(&options, "ifAvailable", true);
    let cb = Closure::once_into_js(move |lock: JsValue| -> JsValue {
        if !lock.is_null() {
            f();
        }
        JsValue::UNDEFINED
    });
    let _ = Function::from(js::get(&locks, "request")).call3(&locks, &name.into(), &options, &cb);
}
