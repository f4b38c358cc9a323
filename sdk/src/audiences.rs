//! The visitor's audiences and browser-visible traits, as the collector's
//! answers carry them (`profile: {audiences, traits}`): kept here, cached
//! in the consented storage (localStorage, only where the SDK may write),
//! and announced to `on("audience", cb)` listeners when an audience is
//! entered or left.

use crate::global::globals;
use crate::js::{self, set};
use crate::prelude::*;
use crate::storage::Store;
use core::cell::RefCell;
use js_sys::{Array, Function, Object};
use wasm_bindgen::prelude::*;

/// Where the last profile is cached.
const PROFILE_KEY: &str = "sluice_profile";

struct Profile {
    audiences: Vec<String>,
    /// The traits object, as JSON text (`{}` before any answer).
    traits: String,
    listeners: Vec<Function>,
}

globals! {
    static PROFILE: RefCell<Profile> = RefCell::new(Profile {
        audiences: Vec::new(),
        traits: String::new(),
        listeners: Vec::new(),
    });
}

fn names(v: &JsValue) -> Vec<String> {
    Array::from(v)
        .iter()
        .filter_map(|n| n.as_string())
        .collect()
}

/// Take a profile object in: returns (entered, exited) if it is one.
fn take(profile: &JsValue) -> Option<(Vec<String>, Vec<String>)> {
    if !profile.is_object() {
        return None;
    }
    let now = names(&js::get(profile, "audiences"));
    let traits = js::stringify(&js::get(profile, "traits")).unwrap_or_default();
    PROFILE.with(|p| {
        let mut p = p.borrow_mut();
        let entered = now
            .iter()
            .filter(|a| !p.audiences.contains(a))
            .cloned()
            .collect();
        let exited = p
            .audiences
            .iter()
            .filter(|a| !now.contains(a))
            .cloned()
            .collect();
        p.audiences = now;
        p.traits = traits;
        Some((entered, exited))
    })
}

/// The cached profile, at load.
pub fn restore(store: &Store) {
    if let Some(text) = store.local_get(PROFILE_KEY) {
        if let Ok(v) = js_sys::JSON::parse(&text) {
            take(&v);
        }
    }
}

/// A collector's answer (its body): take its profile, cache it, and tell the
/// listeners what changed (after the current call returns, so a listener
/// may call the SDK).
pub fn answered(store: &Store, body: &str) {
    let Ok(answer) = js_sys::JSON::parse(body) else {
        return;
    };
    let profile = js::get(&answer, "profile");
    let Some((entered, exited)) = take(&profile) else {
        return;
    };
    if let Some(text) = js::stringify(&profile) {
        store.local_set(PROFILE_KEY, &text);
    }
    if entered.is_empty() && exited.is_empty() {
        return;
    }
    let listeners = PROFILE.with(|p| p.borrow().listeners.clone());
    if listeners.is_empty() {
        return;
    }
    let change = Object::new();
    set(&change, "audiences", audiences());
    set(
        &change,
        "entered",
        entered
            .iter()
            .map(|s| JsValue::from(s.as_str()))
            .collect::<Array>(),
    );
    set(
        &change,
        "exited",
        exited
            .iter()
            .map(|s| JsValue::from(s.as_str()))
            .collect::<Array>(),
    );
    set(&change, "traits", traits());
    let call = Closure::once_into_js(move |_: JsValue| {
        for f in listeners {
            let _ = f.call1(&JsValue::NULL, &change);
        }
    });
    crate::transport::settle(&js_sys::Promise::resolve(&JsValue::UNDEFINED), &call);
}

/// The audiences the visitor is in (browser-visible ones).
pub fn audiences() -> JsValue {
    PROFILE.with(|p| {
        p.borrow()
            .audiences
            .iter()
            .map(|s| JsValue::from(s.as_str()))
            .collect::<Array>()
            .into()
    })
}

/// The browser-visible traits (`{}` before any answer).
pub fn traits() -> JsValue {
    PROFILE.with(|p| {
        let p = p.borrow();
        js_sys::JSON::parse(&p.traits).unwrap_or_else(|_| Object::new().into())
    })
}

/// Add an `on("audience", cb)` listener.
pub fn listen(f: Function) {
    PROFILE.with(|p| p.borrow_mut().listeners.push(f));
}
