//! The JavaScript surface. Misuse throws an `Error` with a stable `code`
//! (`not_loaded`, `invalid_options`, `invalid_argument`, `invalid_consent`);
//! internal failures never throw into the page.
//!
//! The page reaches every call through one export, [`op`], by its number in
//! [`OPS`] (the loader and the npm module's `index.js` name them in the same
//! order): one boundary shim instead of one per call.

use crate::consent;
use crate::host;
use crate::js::{self, set, Object};
use crate::json::cat;
use crate::options::Options;
use crate::prelude::*;
use crate::sdk::{self, Sdk};
use wasm_bindgen::prelude::*;

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
    required_js_string(v, what).map(|s| s.as_string().unwrap_or_default())
}

/// A non-blank string argument, kept as a JS string (an event name goes
/// straight back into the event: copying it into the Wasm and out again
/// would cost `track()` two string conversions).
fn required_js_string(v: &JsValue, what: &str) -> Result<js::JsStr, JsValue> {
    js::non_blank(v).ok_or_else(|| bad(&cat(&[what, " must be a non-empty string"])))
}

/// An id given as a string or a number (numbers are written by JS, keeping float formatting out of the Wasm).
fn id_string(v: &JsValue) -> Option<String> {
    v.as_string()
        .or_else(|| js::number_text(v))
        .filter(|s| !s.is_empty())
}

fn function(callback: JsValue) -> Result<js::Function, JsValue> {
    js::function(callback).ok_or_else(|| bad("the callback must be a function"))
}

/// Build, gate and queue an event of `kind`; `fill` adds the call's own
/// fields. Returns its messageId (`undefined` if its values cannot be
/// serialised), for an on-page pixel's event id. Not generic: one copy of
/// this path serves every call.
#[inline(never)]
fn emit(kind: &'static str, options: &JsValue, fill: &dyn Fn(&Object)) -> Result<JsValue, JsValue> {
    sdk::with(|s| s.record(kind, options, fill)).ok_or_else(not_loaded)
}

/// Initialise with the source's write key and options; `wake` is the
/// module's [`host::wake`] export, which the loader passes.
pub fn load(write_key: JsValue, options: JsValue, wake: JsValue) -> Result<(), JsValue> {
    let key = required_string(&write_key, "the write key")?;
    let opts = Options::parse(&options)?;
    if sdk::is_loaded() {
        return Ok(());
    }
    let track_pages = opts.track_pages;
    host::start(&wake);
    let s = Sdk::new(&key, opts);
    if let Some((endpoint, id)) = s.id_endpoint() {
        server_id(endpoint, id);
    }
    crate::audiences::restore(s.store());
    sdk::install(s);
    host::watch_cmps();
    if track_pages {
        host::watch_history();
    }
    Ok(())
}

/// An SPA navigation (`trackPages`): a page view if the URL changed.
pub fn navigated() {
    if sdk::with(Sdk::navigated) == Some(true) {
        let _ = page(
            JsValue::UNDEFINED,
            JsValue::UNDEFINED,
            JsValue::UNDEFINED,
            JsValue::UNDEFINED,
        );
    }
}

/// A consent-management platform reported (`None`: nothing to act on yet).
pub fn cmp_reported(consent: Option<sluice_shared::consent::Consent>) {
    if let Some(c) = consent {
        apply_consent(c);
    }
}

/// Ask the collector's id endpoint to (re)set the id as a server-set cookie.
fn server_id(endpoint: String, id: String) {
    let url = cat(&[
        endpoint.as_str(),
        if sluice_shared::text::has(&endpoint, b'?') {
            "&"
        } else {
            "?"
        },
        "anonymousId=",
        &id,
    ]);
    // Fire and forget; a failure is handled, not left as an unhandled rejection.
    host::id_cookie(&url);
}

/// Record an action: `track(event, properties?, options?)`; returns the messageId.
pub fn track(event: JsValue, properties: JsValue, options: JsValue) -> Result<JsValue, JsValue> {
    let name = required_js_string(&event, "the event name")?;
    let props = object_or_empty(&properties, "properties")?;
    emit("track", &options, &|e| {
        set(e, "event", name.clone());
        set(e, "properties", props.clone());
    })
}

/// Record a page view: `page(category?, name?, properties?, options?)`.
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
            Object::assign(&p, &props);
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
pub fn screen(name: JsValue, properties: JsValue, options: JsValue) -> Result<JsValue, JsValue> {
    let name = required_js_string(&name, "the screen name")?;
    let props = object_or_empty(&properties, "properties")?;
    emit("screen", &options, &|e| {
        set(e, "name", name.clone());
        set(e, "properties", props.clone());
    })
}

/// Tie the visitor to a user: `identify(userId?, traits?, options?)`.
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
    sdk::with(|s| s.set_user(uid, &traits, false)).ok_or_else(not_loaded)?;
    let all = sdk::with(|s| s.traits()).unwrap_or(JsValue::UNDEFINED);
    emit("identify", &options, &|e| set(e, "traits", all.clone()))
}

/// Associate the user with a group: `group(groupId, traits?, options?)`.
pub fn group(group_id: JsValue, traits: JsValue, options: JsValue) -> Result<JsValue, JsValue> {
    let gid = id_string(&group_id).ok_or_else(|| bad("the group id must be a string or number"))?;
    let traits = object_or_empty(&traits, "traits")?;
    emit("group", &options, &|e| {
        set(e, "groupId", gid.as_str());
        set(e, "traits", traits.clone());
    })
}

/// Merge identities: `alias(userId, previousId?, options?)` (previousId defaults to the current id).
pub fn alias(user_id: JsValue, previous_id: JsValue, options: JsValue) -> Result<JsValue, JsValue> {
    let uid = id_string(&user_id).ok_or_else(|| bad("alias needs the new user id"))?;
    let current = sdk::with(|s| s.previous_id()).ok_or_else(not_loaded)?;
    let previous = id_string(&previous_id).unwrap_or_else(|| current.clone());
    // The current user under a new id: the same person, whose traits stay.
    let same_person = previous == current;
    let id = emit("alias", &options, &|e| {
        set(e, "userId", uid.as_str());
        set(e, "previousId", previous.as_str());
    })?;
    sdk::with(|s| s.set_user(Some(uid), &JsValue::UNDEFINED, same_person));
    Ok(id)
}

/// Forget the user and start a new anonymous visitor (e.g. on sign-out).
pub fn reset() -> Result<(), JsValue> {
    sdk::with(Sdk::reset).ok_or_else(not_loaded)
}

/// `{ anonymousId, userId, traits }`.
pub fn user() -> Result<JsValue, JsValue> {
    sdk::with(|s| s.user_js().into()).ok_or_else(not_loaded)
}

/// The visitor's anonymousId.
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
pub fn consent_set(categories: JsValue) -> Result<(), JsValue> {
    let update = consent::from_js(&categories)?;
    if !sdk::is_loaded() {
        return Err(not_loaded());
    }
    apply_consent(update);
    Ok(())
}

/// `consent.get()`: the current consent, as sent in `context.consent`.
pub fn consent_get() -> Result<JsValue, JsValue> {
    sdk::with(|s| s.consent_js().into()).ok_or_else(not_loaded)
}

/// `consent.on(callback)`: called with the new consent after every change.
pub fn consent_on(callback: JsValue) -> Result<(), JsValue> {
    let f = function(callback)?;
    sdk::with(|s| s.on_consent(f)).ok_or_else(not_loaded)
}

/// `audiences()`: the (browser-visible) audiences the visitor is in, as of
/// the collector's last answer.
pub fn audiences() -> Result<JsValue, JsValue> {
    sdk::with(|_| crate::audiences::audiences()).ok_or_else(not_loaded)
}

/// `traits()`: the browser-visible computed traits.
pub fn traits() -> Result<JsValue, JsValue> {
    sdk::with(|_| crate::audiences::traits()).ok_or_else(not_loaded)
}

/// `on("audience", cb)`: `cb({audiences, traits})` after an answer in
/// which the visitor's audiences changed.
pub fn on(kind: JsValue, callback: JsValue) -> Result<(), JsValue> {
    if kind.as_string().as_deref() != Some("audience") {
        return Err(bad("on() takes \"audience\""));
    }
    let f = function(callback)?;
    sdk::with(|_| crate::audiences::listen(f)).ok_or_else(not_loaded)
}

/// `debug(true)`: log every decision to the console.
pub fn debug(on: bool) -> Result<(), JsValue> {
    sdk::with(|s| s.set_debug(on)).ok_or_else(not_loaded)
}

/// Replaying calls queued before load: events made from now on carry this
/// time (ms since the epoch) unless their options give one; `undefined` ends it.
pub fn replay_at(ms: Option<f64>) {
    sdk::set_replay_time(ms);
}

/// Send what is queued now.
pub fn flush() {
    sdk::flush();
}

/// Queue statistics: `{ queued, inflight, dropped }` (for debugging and tests).
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

/// The calls [`op`] serves, by number: the loader (`sdk/js/loader.js`) and
/// the npm module (`sdk/js/index.js`) list them in this order.
pub const OPS: [&str; 20] = [
    "load",
    "track",
    "page",
    "screen",
    "identify",
    "group",
    "alias",
    "reset",
    "user",
    "anonymousId",
    "debug",
    "flush",
    "stats",
    "audiences",
    "traits",
    "on",
    "consentSet",
    "consentGet",
    "consentOn",
    "replayAt",
];

/// Every call of the page's API: `op(n, a, b, c, d)` runs `OPS[n](a, b, c, d)`
/// (`load`'s third argument is the module's `wake` export: the loader passes it).
#[wasm_bindgen]
pub fn op(n: u32, a: JsValue, b: JsValue, c: JsValue, d: JsValue) -> Result<JsValue, JsValue> {
    let none = |r: Result<(), JsValue>| r.map(|()| JsValue::UNDEFINED);
    match n {
        0 => none(load(a, b, c)),
        1 => track(a, b, c),
        2 => page(a, b, c, d),
        3 => screen(a, b, c),
        4 => identify(a, b, c),
        5 => group(a, b, c),
        6 => alias(a, b, c),
        7 => none(reset()),
        8 => user(),
        9 => anonymous_id().map(JsValue::from),
        10 => none(debug(a.is_truthy())),
        11 => {
            flush();
            Ok(JsValue::UNDEFINED)
        }
        12 => stats(),
        13 => audiences(),
        14 => traits(),
        15 => none(on(a, b)),
        16 => none(consent_set(a)),
        17 => consent_get(),
        18 => none(consent_on(a)),
        _ => {
            replay_at(a.as_f64());
            Ok(JsValue::UNDEFINED)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::OPS;

    /// The loader and the npm module name the calls in `OPS`'s order.
    #[test]
    fn the_js_entry_points_number_the_calls_as_op_does() {
        let list = OPS.join(" ");
        for (file, text) in [
            ("loader.js", include_str!("../js/loader.js")),
            ("index.js", include_str!("../js/index.js")),
        ] {
            assert!(
                text.contains(&list),
                "{file} does not list the calls as `{list}`"
            );
        }
    }
}
