//! The visitor's consent: the site's own choice (`consent.set`), IAB TCF v2
//! (`__tcfapi`), IAB GPP (`__gpp`), Google Consent Mode v2 (the `dataLayer`),
//! and Global Privacy Control. Mapped to purposes with `sluice_shared::consent`.

use crate::js::{self, set};
use crate::json::cat;
use crate::prelude::*;
use js_sys::Object;
use sluice_shared::consent::gpp::{opt_out_code, GppSignals};
use sluice_shared::consent::tcf::TcfSignals;
use sluice_shared::consent::{Consent, Purpose, Source, State};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

/// `context.consent` for an event.
pub fn to_js(c: &Consent) -> Object {
    let o = Object::new();
    let cats = Object::new();
    for (p, s) in c.categories.iter() {
        js::set_dyn(&cats, p.as_str(), state_str(*s));
    }
    set(&o, "categories", cats);
    set(&o, "source", source_str(c.source));
    if let Some(v) = &c.policy_version {
        set(&o, "policyVersion", v.as_str());
    }
    if let Some(v) = &c.updated_at {
        set(&o, "updatedAt", v.as_str());
    }
    if c.gpc {
        set(&o, "gpc", true);
    }
    if let Some(v) = &c.tc_string {
        set(&o, "tcString", v.as_str());
    }
    if let Some(v) = &c.gpp_string {
        set(&o, "gppString", v.as_str());
    }
    o
}

fn state_str(s: State) -> &'static str {
    match s {
        State::Granted => "granted",
        State::Denied => "denied",
        State::Unknown => "unknown",
    }
}

fn source_str(s: Source) -> &'static str {
    match s {
        Source::Explicit => "explicit",
        Source::Tcf => "tcf",
        Source::Gpp => "gpp",
        Source::Gcm => "gcm",
        Source::Gpc => "gpc",
        Source::Default => "default",
    }
}

/// Read `{ analytics: true | "granted" | "denied", … }` as given to `consent.set`.
pub fn from_js(v: &JsValue) -> Result<Consent, JsValue> {
    if !js::is_plain_object(v) {
        return Err(js::error(
            "invalid_consent",
            "consent.set takes an object of purpose → true/false",
        ));
    }
    let mut c = Consent {
        source: Source::Explicit,
        ..Consent::default()
    };
    let entries = Object::entries(&Object::from(v.clone()));
    for entry in entries.iter() {
        let pair = js_sys::Array::from(&entry);
        let key = pair.get(0).as_string().unwrap_or_default();
        let value = pair.get(1);
        let state = match (value.as_bool(), value.as_string().as_deref()) {
            (Some(true), _) | (_, Some("granted")) => State::Granted,
            (Some(false), _) | (_, Some("denied")) => State::Denied,
            _ => {
                return Err(js::error(
                    "invalid_consent",
                    &cat(&[
                        "consent for `",
                        &key,
                        "` must be true, false, \"granted\" or \"denied\"",
                    ]),
                ))
            }
        };
        c.set(Purpose::parse(&key), state);
    }
    Ok(c)
}

/// Merge `update` into `current`: its purposes replace the old ones.
pub fn merge(current: &mut Consent, update: Consent) {
    for (p, s) in update.categories {
        current.categories.insert(p, s);
    }
    current.source = update.source;
    if update.tc_string.is_some() {
        current.tc_string = update.tc_string;
    }
    if update.gpp_string.is_some() {
        current.gpp_string = update.gpp_string;
    }
}

/// `navigator.globalPrivacyControl`.
pub fn gpc() -> bool {
    let nav = js::get(&js::global(), "navigator");
    js::get_bool(&nav, "globalPrivacyControl").unwrap_or(false)
}

/// TCF purposes `{ "1": true, … }` → the ids set to true, of purposes 1–11
/// (all that the mapping to Sluice's purposes reads).
fn ids(obj: &JsValue) -> Vec<u16> {
    const KEYS: [&str; 11] = ["1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11"];
    (1..=11)
        .zip(KEYS)
        .filter(|(_, k)| js::get_bool(obj, k) == Some(true))
        .map(|(id, _)| id)
        .collect()
}

/// Consent from a TCF `tcData` object (`None` when TCF does not apply or is not ready).
pub fn from_tcdata(tc: &JsValue) -> Option<Consent> {
    if js::get_bool(tc, "gdprApplies") == Some(false) {
        return None;
    }
    let status = js::get_str(tc, "eventStatus").unwrap_or_default();
    if status != "tcloaded" && status != "useractioncomplete" {
        return None;
    }
    let purpose = js::get(tc, "purpose");
    let signals = TcfSignals {
        purpose_consents: ids(&js::get(&purpose, "consents")),
        purpose_legitimate_interests: ids(&js::get(&purpose, "legitimateInterests")),
        ..TcfSignals::default()
    };
    Some(signals.to_consent(js::get_str(tc, "tcString")))
}

/// Consent from GPP `pingData` (`parsedSections`; `None` until the CMP is ready).
pub fn from_gpp_ping(ping: &JsValue) -> Option<Consent> {
    let ready = js::get_str(ping, "signalStatus").is_none_or(|s| s == "ready");
    let sections = js::get(ping, "parsedSections");
    if !ready || !sections.is_object() {
        return None;
    }
    let mut signals = GppSignals::default();
    for value in Object::values(&Object::from(sections)).iter() {
        // A section is an object, or an array of sub-section objects.
        let parts: Vec<JsValue> = if js_sys::Array::is_array(&value) {
            js_sys::Array::from(&value).to_vec()
        } else {
            vec![value]
        };
        for part in parts {
            let code = |k: &'static str| js::get_f64(&part, k).and_then(|n| opt_out_code(n as u8));
            signals.merge(&GppSignals {
                sale_opt_out: code("SaleOptOut"),
                sharing_opt_out: code("SharingOptOut"),
                targeted_advertising_opt_out: code("TargetedAdvertisingOptOut"),
                gpc: js::get_bool(&part, "Gpc"),
                section_ids: Vec::new(),
            });
        }
    }
    Some(signals.to_consent(js::get_str(ping, "gppString")))
}

/// Consent from Google Consent Mode `gtag('consent', 'default'|'update', {...})` entries in the data layer.
pub fn from_gcm_entry(entry: &JsValue) -> Option<Consent> {
    if js::get_str(entry, "0").as_deref() != Some("consent") {
        return None;
    }
    let settings = js::get(entry, "2");
    if !settings.is_object() {
        return None;
    }
    let mut pairs: Vec<(String, bool)> = Vec::new();
    for e in Object::entries(&Object::from(settings)).iter() {
        let pair = js_sys::Array::from(&e);
        if let (Some(k), Some(v)) = (pair.get(0).as_string(), pair.get(1).as_string()) {
            if let Some(granted) = sluice_shared::consent::gcm::is_granted(&v) {
                pairs.push((k, granted));
            }
        }
    }
    let c = sluice_shared::consent::gcm::to_consent(pairs.iter().map(|(k, g)| (k.as_str(), *g)));
    (!c.categories.is_empty()).then_some(c)
}

/// Subscribe to every CMP on the page; `on` is called with each consent they report.
pub fn watch_cmps(on: impl Fn(Consent) + Clone + 'static) {
    let w = js::global();
    let tcfapi = js::get(&w, "__tcfapi");
    if tcfapi.is_function() {
        let f = on.clone();
        let cb = Closure::<dyn FnMut(JsValue, JsValue)>::new(move |tc: JsValue, ok: JsValue| {
            if ok.as_bool() != Some(false) {
                if let Some(c) = from_tcdata(&tc) {
                    f(c);
                }
            }
        });
        js::call(
            &tcfapi,
            &JsValue::NULL,
            &["addEventListener".into(), 2.into(), cb.as_ref().clone()],
        );
        cb.forget();
    }
    let gpp = js::get(&w, "__gpp");
    if gpp.is_function() {
        let f = on.clone();
        let cb = Closure::<dyn FnMut(JsValue, JsValue)>::new(move |data: JsValue, ok: JsValue| {
            if ok.as_bool() != Some(false) {
                // addEventListener passes {eventName, pingData}; ping passes pingData itself.
                let ping = if js::get(&data, "pingData").is_object() {
                    js::get(&data, "pingData")
                } else {
                    data
                };
                if let Some(c) = from_gpp_ping(&ping) {
                    f(c);
                }
            }
        });
        js::call(
            &gpp,
            &JsValue::NULL,
            &["addEventListener".into(), cb.as_ref().clone()],
        );
        js::call(&gpp, &JsValue::NULL, &["ping".into(), cb.as_ref().clone()]);
        cb.forget();
    }
    // Google Consent Mode: what is already in the data layer, then every push.
    let dl = js::get(&w, "dataLayer");
    if js_sys::Array::is_array(&dl) {
        let array = js_sys::Array::from(&dl);
        for entry in array.iter() {
            if let Some(c) = from_gcm_entry(&entry) {
                on(c);
            }
        }
        let original = js::get(&dl, "push");
        if let Some(original) = original.dyn_ref::<js_sys::Function>().cloned() {
            let target = dl.clone();
            let f = on;
            let push = Closure::<dyn FnMut(JsValue) -> JsValue>::new(move |entry: JsValue| {
                let result = original
                    .call1(&target, &entry)
                    .unwrap_or(JsValue::UNDEFINED);
                if let Some(c) = from_gcm_entry(&entry) {
                    f(c);
                }
                result
            });
            set(&Object::from(dl), "push", push.as_ref().clone());
            push.forget();
        }
    }
}
