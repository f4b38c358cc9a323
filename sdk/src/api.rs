//! The JavaScript surface. Misuse throws an `Error` with a stable `code`
//! (`not_loaded`, `invalid_options`, `invalid_argument`, `invalid_consent`);
//! internal failures never throw into the page.

use crate::consent;
use crate::js::{self, set};
use crate::json::cat;
use crate::options::Options;
use crate::prelude::*;
use crate::sdk::{self, Sdk};
use crate::transport;
use js_sys::Object;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

fn not_loaded() -> JsValue {
    js::error("not_loaded", "call sluice.load(writeKey) first")
}

fn bad(message: &str) -> JsValue {
    js::error("invalid_argument", message)
}

fn opt_object(v: &JsValue, what: &str) -> Result<JsValue, JsValue> {
    if v.is_undefined() || v.is_null() || js::is_plain_object(v) {
        Ok(v.clone())
    } else {
        Err(bad(&cat(&[what, " must be an object"])))
    }
}

/// An optional object argument, `{}` when absent.
fn object_or_empty(v: &JsValue, what: &str) -> Result<JsValue, JsValue> {
    let v = opt_object(v, what)?;
    Ok(if v.is_object() {
        v
    } else {
        Object::new().into()
    })
}

fn required_string(v: &JsValue, what: &str) -> Result<String, JsValue> {
    required_js_string(v, what).map(|s| String::from(&s))
}

/// A non-blank string argument, kept as a JS string (an event name goes
/// straight back into the event: copying it into the Wasm and out again
/// would cost `track()` two string conversions).
fn required_js_string(v: &JsValue, what: &str) -> Result<js_sys::JsString, JsValue> {
    match v.dyn_ref::<js_sys::JsString>() {
        Some(s) if s.trim().length() > 0 => Ok(s.clone()),
        _ => Err(bad(&cat(&[what, " must be a non-empty string"]))),
    }
}

/// An id given as a string or a number (numbers are written by JS, keeping float formatting out of the Wasm).
fn id_string(v: &JsValue) -> Option<String> {
    let number = || {
        v.as_f64()
            .and_then(|_| {
                js_sys::Number::from(v.clone())
                    .to_string_with_radix(10)
                    .ok()
            })
            .map(String::from)
    };
    v.as_string().or_else(number).filter(|s| !s.is_empty())
}

/// Build, gate and queue an event of `kind`; `fill` adds the call's own
/// fields. Returns its messageId (`undefined` if its values cannot be
/// serialised), for an on-page pixel's event id. Not generic: one copy of
/// this path serves every call.
#[inline(never)]
fn emit(kind: &'static str, options: &JsValue, fill: &dyn Fn(&Object)) -> Result<JsValue, JsValue> {
    sdk::with(|s| s.record(kind, options, fill)).ok_or_else(not_loaded)
}

/// Initialise with the source's write key and options.
#[wasm_bindgen]
pub fn load(write_key: JsValue, options: JsValue) -> Result<(), JsValue> {
    let key = required_string(&write_key, "the write key")?;
    let opts = Options::parse(&options)?;
    if sdk::is_loaded() {
        return Ok(());
    }
    let track_pages = opts.track_pages;
    let s = Sdk::new(&key, opts);
    if let Some((endpoint, id)) = s.id_endpoint() {
        server_id(endpoint, id);
    }
    crate::audiences::restore(s.store());
    sdk::install(s);
    consent::watch_cmps(apply_consent);
    if track_pages {
        crate::pages::watch(|| {
            if sdk::with(Sdk::navigated) == Some(true) {
                let _ = page(
                    JsValue::UNDEFINED,
                    JsValue::UNDEFINED,
                    JsValue::UNDEFINED,
                    JsValue::UNDEFINED,
                );
            }
        });
    }
    Ok(())
}

/// Ask the collector's id endpoint to (re)set the id as a server-set cookie.
fn server_id(endpoint: String, id: String) {
    let url = cat(&[
        endpoint.as_str(),
        if endpoint.contains('?') { "&" } else { "?" },
        "anonymousId=",
        &id,
    ]);
    let init = Object::new();
    set(&init, "credentials", "include");
    // Fire and forget; a failure is handled, not left as an unhandled rejection.
    if let Some(response) = transport::fetch(&url, &init) {
        let ignore = Closure::once_into_js(|_: JsValue| {});
        transport::settle(&response, &ignore);
    }
}

/// Record an action: `track(event, properties?, options?)`; returns the messageId.
#[wasm_bindgen]
pub fn track(event: JsValue, properties: JsValue, options: JsValue) -> Result<JsValue, JsValue> {
    let name = required_js_string(&event, "the event name")?;
    let props = object_or_empty(&properties, "properties")?;
    emit("track", &options, &|e| {
        set(e, "event", name.clone());
        set(e, "properties", props.clone());
    })
}

/// Record a page view: `page(category?, name?, properties?, options?)`.
#[wasm_bindgen]
pub fn page(a: JsValue, b: JsValue, c: JsValue, d: JsValue) -> Result<JsValue, JsValue> {
    let (category, name, props, options) = match (a.as_string(), b.as_string()) {
        (Some(cat), Some(name)) => (Some(cat), Some(name), c, d),
        (Some(name), None) => (None, Some(name), b, c),
        _ => (None, None, a, b),
    };
    let props = opt_object(&props, "properties")?;
    let ctx_page = sdk::with(Sdk::page_viewed).ok_or_else(not_loaded)?;
    emit("page", &options, &|e| {
        let p = Object::assign(&Object::new(), &ctx_page);
        if props.is_object() {
            Object::assign(&p, &Object::from(props.clone()));
        }
        if let Some(n) = &name {
            set(e, "name", n.as_str());
            set(&p, "name", n.as_str());
        }
        if let Some(c) = &category {
            set(e, "category", c.as_str());
            set(&p, "category", c.as_str());
        }
        set(e, "properties", p);
    })
}

/// Record a screen view (apps in web views): `screen(name, properties?, options?)`.
#[wasm_bindgen]
pub fn screen(name: JsValue, properties: JsValue, options: JsValue) -> Result<JsValue, JsValue> {
    let name = required_js_string(&name, "the screen name")?;
    let props = object_or_empty(&properties, "properties")?;
    emit("screen", &options, &|e| {
        set(e, "name", name.clone());
        set(e, "properties", props.clone());
    })
}

/// Tie the visitor to a user: `identify(userId?, traits?, options?)`.
#[wasm_bindgen]
pub fn identify(user_id: JsValue, traits: JsValue, options: JsValue) -> Result<JsValue, JsValue> {
    let absent = user_id.is_undefined() || user_id.is_null();
    let (uid, traits, options) = if js::is_plain_object(&user_id) {
        (None, user_id, traits)
    } else {
        (id_string(&user_id), traits, options)
    };
    if uid.is_none() && !absent && !js::is_plain_object(&traits) {
        return Err(bad(
            "identify takes a user id (string) and/or traits (object)",
        ));
    }
    let traits = opt_object(&traits, "traits")?;
    sdk::with(|s| s.set_user(uid, &traits)).ok_or_else(not_loaded)?;
    let all = sdk::with(|s| s.traits()).unwrap_or(JsValue::UNDEFINED);
    emit("identify", &options, &|e| set(e, "traits", all.clone()))
}

/// Associate the user with a group: `group(groupId, traits?, options?)`.
#[wasm_bindgen]
pub fn group(group_id: JsValue, traits: JsValue, options: JsValue) -> Result<JsValue, JsValue> {
    let gid = id_string(&group_id).ok_or_else(|| bad("the group id must be a string or number"))?;
    let traits = object_or_empty(&traits, "traits")?;
    emit("group", &options, &|e| {
        set(e, "groupId", gid.as_str());
        set(e, "traits", traits.clone());
    })
}

/// Merge identities: `alias(userId, previousId?, options?)` (previousId defaults to the current id).
#[wasm_bindgen]
pub fn alias(user_id: JsValue, previous_id: JsValue, options: JsValue) -> Result<JsValue, JsValue> {
    let uid = id_string(&user_id).ok_or_else(|| bad("alias needs the new user id"))?;
    let previous = id_string(&previous_id)
        .or_else(|| sdk::with(|s| s.previous_id()))
        .ok_or_else(not_loaded)?;
    let id = emit("alias", &options, &|e| {
        set(e, "userId", uid.as_str());
        set(e, "previousId", previous.as_str());
    })?;
    sdk::with(|s| s.set_user(Some(uid), &JsValue::UNDEFINED));
    Ok(id)
}

/// Forget the user and start a new anonymous visitor (e.g. on sign-out).
#[wasm_bindgen]
pub fn reset() -> Result<(), JsValue> {
    sdk::with(Sdk::reset).ok_or_else(not_loaded)
}

/// `{ anonymousId, userId, traits }`.
#[wasm_bindgen]
pub fn user() -> Result<JsValue, JsValue> {
    sdk::with(|s| s.user_js().into()).ok_or_else(not_loaded)
}

/// The visitor's anonymousId.
#[wasm_bindgen(js_name = anonymousId)]
pub fn anonymous_id() -> Result<String, JsValue> {
    sdk::with(|s| s.anonymous_id()).ok_or_else(not_loaded)
}

fn apply_consent(update: sluice_shared::consent::Consent) {
    let Some(Some((listeners, now))) = sdk::with(|s| s.consent_changed(update)) else {
        return; // not loaded, or nothing changed
    };
    let cats = js::get(&now, "categories");
    let _ = emit("track", &JsValue::UNDEFINED, &|e| {
        set(e, "event", "Consent Updated");
        let p = Object::new();
        set(&p, "categories", cats.clone());
        set(&p, "source", js::get(&now, "source"));
        set(e, "properties", p);
    });
    for f in listeners {
        let _ = f.call1(&JsValue::NULL, &now);
    }
}

/// `consent.set({ analytics: true, marketing: false, … })`: the visitor's choice.
#[wasm_bindgen(js_name = consentSet)]
pub fn consent_set(categories: JsValue) -> Result<(), JsValue> {
    let update = consent::from_js(&categories)?;
    if !sdk::is_loaded() {
        return Err(not_loaded());
    }
    apply_consent(update);
    Ok(())
}

/// `consent.get()`: the current consent, as sent in `context.consent`.
#[wasm_bindgen(js_name = consentGet)]
pub fn consent_get() -> Result<JsValue, JsValue> {
    sdk::with(|s| s.consent_js().into()).ok_or_else(not_loaded)
}

/// `consent.on(callback)`: called with the new consent after every change.
#[wasm_bindgen(js_name = consentOn)]
pub fn consent_on(callback: js_sys::Function) -> Result<(), JsValue> {
    sdk::with(|s| s.on_consent(callback)).ok_or_else(not_loaded)
}

/// `audiences()`: the (browser-visible) audiences the visitor is in, as of
/// the collector's last answer.
#[wasm_bindgen]
pub fn audiences() -> Result<JsValue, JsValue> {
    sdk::with(|_| crate::audiences::audiences()).ok_or_else(not_loaded)
}

/// `traits()`: the browser-visible computed traits.
#[wasm_bindgen]
pub fn traits() -> Result<JsValue, JsValue> {
    sdk::with(|_| crate::audiences::traits()).ok_or_else(not_loaded)
}

/// `on("audience", cb)`: `cb({audiences, traits})` after an answer in
/// which the visitor's audiences changed.
#[wasm_bindgen]
pub fn on(kind: JsValue, callback: JsValue) -> Result<(), JsValue> {
    if kind.as_string().as_deref() != Some("audience") {
        return Err(bad("on() takes \"audience\""));
    }
    let f = callback
        .dyn_into::<js_sys::Function>()
        .map_err(|_| bad("the callback must be a function"))?;
    sdk::with(|_| crate::audiences::listen(f)).ok_or_else(not_loaded)
}

/// `debug(true)`: log every decision to the console.
#[wasm_bindgen]
pub fn debug(on: bool) -> Result<(), JsValue> {
    sdk::with(|s| s.set_debug(on)).ok_or_else(not_loaded)
}

/// Replaying calls queued before load: events made from now on carry this
/// time (ms since the epoch) unless their options give one; `undefined` ends it.
#[wasm_bindgen(js_name = replayAt)]
pub fn replay_at(ms: Option<f64>) {
    sdk::set_replay_time(ms);
}

/// Send what is queued now.
#[wasm_bindgen]
pub fn flush() {
    sdk::flush();
}

/// Queue statistics: `{ queued, inflight, dropped }` (for debugging and tests).
#[wasm_bindgen]
pub fn stats() -> Result<JsValue, JsValue> {
    sdk::with(|s| {
        let (queued, inflight, dropped) = s.stats();
        let o = Object::new();
        set(&o, "queued", queued as u32);
        set(&o, "inflight", inflight as u32);
        set(&o, "dropped", dropped);
        o.into()
    })
    .ok_or_else(not_loaded)
}
