//! The visitor's audiences and browser-visible traits, as the collector's
//! answers carry them (`profile: {audiences, traits}`, taken out of the
//! answer by the host): kept here, cached in the consented storage
//! (localStorage, only where the SDK may write), and given to the
//! `on("audience", cb)` listeners when the audiences change.

use crate::global::globals;
use crate::js;
use crate::js::{Array, Function, Object};
use crate::prelude::*;
use core::cell::RefCell;
use wasm_bindgen::JsValue;

/// Where the last profile is cached.
const PROFILE_KEY: &str = "sluice_profile";

globals! {
    static PROFILE: RefCell<JsValue> = RefCell::new(JsValue::UNDEFINED);
    static LISTENERS: RefCell<Vec<Function>> = RefCell::new(Vec::new());
}

/// The audiences of a profile as JSON text (`[]` when there are none).
fn names(profile: &JsValue) -> String {
    js::stringify(&js::get(profile, "audiences")).unwrap_or_else(|| "[]".to_owned())
}

/// The cached profile, at load.
pub fn restore(store: &crate::storage::Store) {
    if let Some(v) = store.local_get(PROFILE_KEY).and_then(|t| js::parse(&t)) {
        PROFILE.with(|p| p.replace(v));
    }
}

/// The profile of a collector's answer (called outside the SDK's own
/// state, so a listener may call the SDK): keep it, cache it, and tell the
/// listeners if the audiences changed.
pub fn answered(profile: JsValue) {
    if !profile.is_object() {
        return;
    }
    let old = PROFILE.with(|p| p.replace(profile.clone()));
    if let Some(text) = js::stringify(&profile) {
        crate::sdk::with(|s| s.store().local_set(PROFILE_KEY, &text));
    }
    if names(&old) == names(&profile) {
        return;
    }
    for f in LISTENERS.with(|l| l.borrow().clone()) {
        let _ = f.call1(&JsValue::NULL, &profile);
    }
}

/// The audiences the visitor is in (browser-visible ones).
pub fn audiences() -> JsValue {
    let a = PROFILE.with(|p| js::get(&p.borrow(), "audiences"));
    if Array::is_array(&a) {
        a
    } else {
        Array::new().into()
    }
}

/// The browser-visible traits (`{}` before any answer).
pub fn traits() -> JsValue {
    let t = PROFILE.with(|p| js::get(&p.borrow(), "traits"));
    if t.is_object() {
        t
    } else {
        Object::new().into()
    }
}

/// Add an `on("audience", cb)` listener.
pub fn listen(f: Function) {
    LISTENERS.with(|l| l.borrow_mut().push(f));
}
