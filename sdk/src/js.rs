//! Small helpers over `js_sys` for building and reading plain JS objects.

use js_sys::{Object, Reflect};
use wasm_bindgen::{JsCast, JsValue};

/// `obj[key] = value` (never throws on plain objects).
pub fn set(obj: &Object, key: &str, value: impl Into<JsValue>) {
    let _ = Reflect::set(obj, &JsValue::from_str(key), &value.into());
}

/// `obj[key]`, or `undefined`.
pub fn get(obj: &JsValue, key: &str) -> JsValue {
    if obj.is_object() || obj.is_function() {
        Reflect::get(obj, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
    } else {
        JsValue::UNDEFINED
    }
}

/// `obj[key]` as a string, if it is one.
pub fn get_str(obj: &JsValue, key: &str) -> Option<String> {
    get(obj, key).as_string()
}

/// `obj[key]` as a number, if it is one.
pub fn get_f64(obj: &JsValue, key: &str) -> Option<f64> {
    get(obj, key).as_f64()
}

/// `obj[key]` as a boolean, if it is one.
pub fn get_bool(obj: &JsValue, key: &str) -> Option<bool> {
    get(obj, key).as_bool()
}

/// A plain object: a non-null, non-array object.
pub fn is_plain_object(v: &JsValue) -> bool {
    v.is_object() && !js_sys::Array::is_array(v)
}

/// The global object (window).
pub fn global() -> Object {
    js_sys::global()
}

/// Call `f(args…)` if `f` is a function.
pub fn call(f: &JsValue, this: &JsValue, args: &[JsValue]) -> Option<JsValue> {
    let f = f.dyn_ref::<js_sys::Function>()?;
    let array: js_sys::Array = args.iter().collect();
    f.apply(this, &array).ok()
}

/// `JSON.stringify(v)`.
pub fn stringify(v: &JsValue) -> Option<String> {
    js_sys::JSON::stringify(v).ok().and_then(|s| s.as_string())
}

/// `Date.now()`.
pub fn now_ms() -> f64 {
    js_sys::Date::now()
}

/// ISO 8601 of a time in ms.
pub fn iso(ms: f64) -> String {
    js_sys::Date::new(&JsValue::from_f64(ms))
        .to_iso_string()
        .into()
}

/// `new Error(message)` with a stable `code`, as thrown to the page on misuse.
pub fn error(code: &str, message: &str) -> JsValue {
    let e = js_sys::Error::new(message);
    set(&e, "code", code);
    e.into()
}
