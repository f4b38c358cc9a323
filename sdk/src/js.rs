//! Small helpers over `js_sys` for building and reading plain JS objects.

use crate::global::globals;
use crate::prelude::*;
use core::cell::RefCell;
use js_sys::{Object, Reflect};
use wasm_bindgen::prelude::*;

globals! {
    /// JS strings for the SDK's own `'static` strings (property names, fixed
    /// values), each made once. Passing a Rust string to JS decodes it every
    /// time, which was a quarter of `track()`'s main-thread time.
    static STATIC: RefCell<Vec<(usize, usize, JsValue)>> = RefCell::new(Vec::new());
}

/// A `'static` string as a JS string, made once. Keyed by address and
/// length: a `'static` string's bytes never change or move.
#[inline(never)]
pub fn st(s: &'static str) -> JsValue {
    let (ptr, len) = (s.as_ptr() as usize, s.len());
    STATIC.with(|cache| {
        let Ok(mut cache) = cache.try_borrow_mut() else {
            return JsValue::from_str(s);
        };
        if let Some((_, _, v)) = cache.iter().find(|(p, l, _)| *p == ptr && *l == len) {
            return v.clone();
        }
        let v = JsValue::from_str(s);
        cache.push((ptr, len, v.clone()));
        v
    })
}

/// `obj[key] = value` (never throws on plain objects).
pub fn set(obj: &Object, key: &'static str, value: impl Into<JsValue>) {
    set_value(obj, key, &value.into());
}

#[inline(never)]
fn set_value(obj: &Object, key: &'static str, value: &JsValue) {
    let _ = Reflect::set(obj, &st(key), value);
}

/// `obj[key] = value` for a key made at run time.
pub fn set_dyn(obj: &Object, key: &str, value: impl Into<JsValue>) {
    let _ = Reflect::set(obj, &JsValue::from_str(key), &value.into());
}

/// `obj[key]`, or `undefined`.
pub fn get(obj: &JsValue, key: &'static str) -> JsValue {
    if obj.is_object() || obj.is_function() {
        Reflect::get(obj, &st(key)).unwrap_or(JsValue::UNDEFINED)
    } else {
        JsValue::UNDEFINED
    }
}

/// `obj[key]` as a string, if it is one.
pub fn get_str(obj: &JsValue, key: &'static str) -> Option<String> {
    get(obj, key).as_string()
}

/// `obj[key]` as a number, if it is one.
pub fn get_f64(obj: &JsValue, key: &'static str) -> Option<f64> {
    get(obj, key).as_f64()
}

/// `obj[key]` as a boolean, if it is one.
pub fn get_bool(obj: &JsValue, key: &'static str) -> Option<bool> {
    get(obj, key).as_bool()
}

/// A plain object: a non-null, non-array object.
pub fn is_plain_object(v: &JsValue) -> bool {
    v.is_object() && !js_sys::Array::is_array(v)
}

#[wasm_bindgen]
extern "C" {
    /// One import, where `js_sys::global()` probes four names.
    #[wasm_bindgen(thread_local_v2, js_name = globalThis)]
    static GLOBAL_THIS: Object;
}

/// The global object (window).
pub fn global() -> Object {
    GLOBAL_THIS.with(Object::clone)
}

/// `location[key]` as a string (`origin`, `hostname`, `pathname`, …).
pub fn location(key: &'static str) -> Option<String> {
    get_str(&get(&global(), "location"), key)
}

/// `JSON.stringify(v)`.
pub fn stringify(v: &JsValue) -> Option<String> {
    js_sys::JSON::stringify(v).ok().and_then(|s| s.as_string())
}

/// `Date.now()`.
pub fn now_ms() -> f64 {
    js_sys::Date::now()
}

/// ISO 8601 of now, as `Date.toISOString` writes it (formatted in Rust:
/// no `Date` object, no string crossing from JS).
pub fn iso_now() -> String {
    sluice_shared::Timestamp(now_ms() as i64).to_rfc3339()
}

/// `new Error(message)` with a stable `code`, as thrown to the page on misuse.
pub fn error(code: &'static str, message: &str) -> JsValue {
    let e = js_sys::Error::new(message);
    set(&e, "code", code);
    e.into()
}
