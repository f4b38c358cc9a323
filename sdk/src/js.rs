//! The JavaScript built-ins the core uses (`Object`, `Array`, `JSON`,
//! `Reflect`, …), declared here, and small helpers over them for building
//! and reading plain JS objects. Declared here rather than taken from
//! `js_sys`: linking js-sys left its closure shims (typed arrays' `forEach`
//! callbacks, its futures' wakers) in the Wasm's function table, 2.8 KB of
//! code nothing calls, and these are the few the SDK needs.

use crate::global::globals;
use crate::prelude::*;
use core::cell::RefCell;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

#[wasm_bindgen]
extern "C" {
    /// A plain object.
    #[derive(Clone)]
    pub type Object;
    /// `new Object()`: `{}`.
    #[wasm_bindgen(constructor)]
    pub fn new() -> Object;
    /// `Object.assign(target, source)`.
    #[wasm_bindgen(static_method_of = Object)]
    pub fn assign(target: &Object, source: &JsValue) -> Object;
    /// `Object.keys(o)`.
    #[wasm_bindgen(static_method_of = Object)]
    pub fn keys(o: &JsValue) -> Array;
    /// `Object.entries(o)`: `[key, value]` pairs.
    #[wasm_bindgen(static_method_of = Object)]
    pub fn entries(o: &JsValue) -> Array;

    /// An array.
    #[derive(Clone)]
    pub type Array;
    /// `new Array()`: `[]`.
    #[wasm_bindgen(constructor)]
    pub fn new() -> Array;
    #[wasm_bindgen(static_method_of = Array, js_name = isArray)]
    pub fn is_array(v: &JsValue) -> bool;
    #[wasm_bindgen(method, getter)]
    fn length(this: &Array) -> u32;
    #[wasm_bindgen(method, indexing_getter)]
    fn get(this: &Array, i: u32) -> JsValue;

    /// A function the page gave (a listener).
    #[derive(Clone)]
    pub type Function;
    /// `f.call(this_arg, arg)`; what it throws is returned.
    #[wasm_bindgen(method, catch, js_name = call)]
    pub fn call1(this: &Function, this_arg: &JsValue, arg: &JsValue) -> Result<JsValue, JsValue>;

    /// A JS string, kept in JS.
    #[derive(Clone)]
    #[wasm_bindgen(js_name = String)]
    pub type JsStr;
    #[wasm_bindgen(method)]
    fn trim(this: &JsStr) -> JsStr;
    #[wasm_bindgen(method, getter, js_name = length)]
    fn str_length(this: &JsStr) -> u32;

    #[wasm_bindgen(js_name = Error)]
    type ErrorObject;
    #[wasm_bindgen(constructor, js_class = "Error")]
    fn new(message: &str) -> ErrorObject;

    #[wasm_bindgen(js_namespace = Reflect, js_name = get, catch)]
    fn reflect_get(target: &JsValue, key: &JsValue) -> Result<JsValue, JsValue>;
    #[wasm_bindgen(js_namespace = Reflect, js_name = set)]
    fn reflect_set(target: &JsValue, key: &JsValue, value: &JsValue) -> bool;

    #[wasm_bindgen(js_namespace = JSON, js_name = stringify, catch)]
    fn json_stringify(v: &JsValue) -> Result<JsValue, JsValue>;
    #[wasm_bindgen(js_namespace = JSON, js_name = parse, catch)]
    fn json_parse(text: &str) -> Result<JsValue, JsValue>;

    /// `Date.now()`.
    #[wasm_bindgen(js_namespace = Date, js_name = now)]
    pub fn now_ms() -> f64;
    /// `Math.random()`.
    #[wasm_bindgen(js_namespace = Math)]
    pub fn random() -> f64;
    /// `String(v)`: a number as JS writes it.
    #[wasm_bindgen(js_name = String)]
    fn js_string(v: &JsValue) -> JsValue;

    /// One import, where `js_sys::global()` probes four names.
    #[wasm_bindgen(thread_local_v2, js_name = globalThis)]
    static GLOBAL_THIS: Object;
}

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
pub fn set(obj: &JsValue, key: &'static str, value: impl Into<JsValue>) {
    set_value(obj, key, &value.into());
}

#[inline(never)]
fn set_value(obj: &JsValue, key: &'static str, value: &JsValue) {
    reflect_set(obj, &st(key), value);
}

/// `obj[key] = value` for a key made at run time.
pub fn set_dyn(obj: &JsValue, key: &str, value: impl Into<JsValue>) {
    reflect_set(obj, &JsValue::from_str(key), &value.into());
}

/// `obj[key]`, or `undefined` (also where a getter throws).
pub fn get(obj: &JsValue, key: &'static str) -> JsValue {
    if obj.is_object() || obj.is_function() {
        reflect_get(obj, &st(key)).unwrap_or(JsValue::UNDEFINED)
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
    v.is_object() && !Array::is_array(v)
}

/// `v` as an object (for values checked to be one, or made by the SDK).
pub fn object(v: JsValue) -> Object {
    v.unchecked_into()
}

/// The elements of an array (none for anything else).
pub fn items(v: &JsValue) -> impl Iterator<Item = JsValue> + '_ {
    let a: &Array = v.unchecked_ref();
    let n = if Array::is_array(v) { a.length() } else { 0 };
    (0..n).map(move |i| a.get(i))
}

/// A non-blank string, kept as a JS string.
pub fn non_blank(v: &JsValue) -> Option<JsStr> {
    let s: &JsStr = v.unchecked_ref();
    (v.is_string() && s.trim().str_length() > 0).then(|| s.clone())
}

/// A number as JS writes it (`String(n)`).
pub fn number_text(v: &JsValue) -> Option<String> {
    v.as_f64().and_then(|_| js_string(v).as_string())
}

/// A function, if `v` is one.
pub fn function(v: JsValue) -> Option<Function> {
    v.is_function().then(|| v.unchecked_into())
}

/// The global object (window).
pub fn global() -> Object {
    GLOBAL_THIS.with(Object::clone)
}

/// `location[key]` as a string (`origin`, `hostname`, `pathname`, …).
pub fn location(key: &'static str) -> Option<String> {
    get_str(&get(&global(), "location"), key)
}

/// `JSON.stringify(v)` (`None` for what it cannot write, or does not: `undefined`).
pub fn stringify(v: &JsValue) -> Option<String> {
    json_stringify(v).ok()?.as_string()
}

/// `JSON.parse(text)`.
pub fn parse(text: &str) -> Option<JsValue> {
    json_parse(text).ok()
}

/// ISO 8601 of now (`Date.toISOString`).
pub fn iso_now() -> String {
    crate::host::iso_at(now_ms())
}

/// `new Error(message)` with a stable `code`, as thrown to the page on misuse.
pub fn error(code: &'static str, message: &str) -> JsValue {
    let e: JsValue = ErrorObject::new(message).into();
    set(&e, "code", code);
    e
}
