//! The visitor's consent: the site's own choice (`consent.set`), IAB TCF v2
//! (`__tcfapi`), IAB GPP (`__gpp`), Google Consent Mode v2 (the `dataLayer`),
//! and Global Privacy Control. Mapped to purposes with `sluice_shared::consent`.

use crate::js::{self, set, Object};
use crate::json::cat;
use crate::prelude::*;
use sluice_shared::consent::gpp::{opt_out_code, GppSignals};
use sluice_shared::consent::{Consent, Purpose, Source, State};
use sluice_shared::text::{parse_u64, split, split_once};
use wasm_bindgen::JsValue;

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
    let entries = Object::entries(v);
    for entry in js::items(&entries) {
        let mut pair = js::items(&entry);
        let key = pair.next().and_then(|k| k.as_string()).unwrap_or_default();
        let value = pair.next().unwrap_or_default();
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

/// `navigator.globalPrivacyControl`.
pub fn gpc() -> bool {
    let nav = js::get(&js::global(), "navigator");
    js::get_bool(&nav, "globalPrivacyControl").unwrap_or(false)
}

/// Consent from a TCF `tcData`, as the host reports it (see `watchCmps` in
/// `sdk/js/host.js`): `None` when TCF does not apply or is not ready.
pub fn from_tcf(data: &str, tc_string: Option<String>) -> Option<Consent> {
    let mut fields = split(data, b';');
    let applies = fields.next()?;
    let status = fields.next()?;
    let mut bits = || {
        fields
            .next()
            // One integer parser in the Wasm (the session's too).
            .and_then(parse_u64)
            .and_then(|b| u32::try_from(b).ok())
            .unwrap_or(0)
    };
    let (consents, interests) = (bits(), bits());
    if applies == "0" || (status != "tcloaded" && status != "useractioncomplete") {
        return None;
    }
    Some(sluice_shared::consent::tcf::consent_from_bits(
        consents, interests, 0, tc_string,
    ))
}

/// Consent from GPP `pingData`, as the host reports it: `None` until the
/// CMP is ready or without `parsedSections`.
pub fn from_gpp(data: &str, gpp_string: Option<String>) -> Option<Consent> {
    let (status, sections) = split_once(data, b'|')?;
    if status != "ready" || sections == "-" {
        return None;
    }
    let mut signals = GppSignals::default();
    for part in split(sections, b';').filter(|p| !p.is_empty()) {
        let mut f = split(part, b',');
        let mut code = || {
            f.next()
                .and_then(parse_u64)
                .and_then(|n| u8::try_from(n).ok())
                .and_then(opt_out_code)
        };
        let (sale, sharing, targeted) = (code(), code(), code());
        let gpc = match f.next() {
            Some("true") => Some(true),
            Some("false") => Some(false),
            _ => None,
        };
        signals.merge_section([sale, sharing, targeted, gpc]);
    }
    Some(signals.to_consent(gpp_string))
}

/// Consent from a Google Consent Mode `gtag('consent', …, settings)`, as the
/// host reports it (`key=value;…`): `None` when it names no known purpose.
pub fn from_gcm(data: &str) -> Option<Consent> {
    // Read once into a list: the mapping walks the pairs once per purpose,
    // and walking a slice is less code than splitting the text again.
    let mut pairs = Vec::new();
    for pair in split(data, b';') {
        if let Some((k, v)) = split_once(pair, b'=') {
            if let Some(granted) = sluice_shared::consent::gcm::is_granted(v) {
                pairs.push((k, granted));
            }
        }
    }
    let c = sluice_shared::consent::gcm::to_consent(pairs.iter().copied());
    (!c.categories.is_empty()).then_some(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcf_is_read_only_when_it_applies_and_is_ready() {
        // Consent for purposes 1, 8, 9 and 10 (bits 1, 8, 9, 10): analytics.
        let c = from_tcf("1;tcloaded;1794;0", Some("TC".into())).unwrap();
        assert_eq!(c.source, Source::Tcf);
        assert_eq!(c.tc_string.as_deref(), Some("TC"));
        assert_eq!(c.state(&Purpose::Analytics), State::Granted);
        assert!(
            from_tcf("0;tcloaded;1794;0", None).is_none(),
            "gdprApplies false"
        );
        assert!(from_tcf("1;cmpuishown;1794;0", None).is_none(), "not ready");
        assert!(from_tcf("", None).is_none());
        // Bits beyond a u32 read as none granted.
        let over = from_tcf("1;tcloaded;4294968090;0", None).unwrap();
        assert_ne!(over.state(&Purpose::Analytics), State::Granted);
        let denied = from_tcf("1;useractioncomplete;0;0", None).unwrap();
        assert_ne!(denied.state(&Purpose::Analytics), State::Granted);
    }

    #[test]
    fn gpp_sections_are_merged_and_need_a_ready_cmp() {
        // A US section opting out of sale (1 = opted out), beside one that did not.
        let c = from_gpp("ready|2,2,2,;1,2,2,false", Some("GPP".into())).unwrap();
        assert_eq!(c.source, Source::Gpp);
        assert_eq!(c.state(&Purpose::SaleSharing), State::Denied);
        assert_eq!(c.gpp_string.as_deref(), Some("GPP"));
        assert!(from_gpp("loaded|1,1,1,", None).is_none(), "not ready");
        assert!(from_gpp("ready|-", None).is_none(), "no parsedSections");
        assert!(from_gpp("nonsense", None).is_none());
    }

    #[test]
    fn gcm_settings_are_mapped_and_unknown_ones_ignored() {
        let c = from_gcm("analytics_storage=granted;ad_storage=denied").unwrap();
        assert_eq!(c.state(&Purpose::Analytics), State::Granted);
        assert_eq!(c.state(&Purpose::Marketing), State::Denied);
        assert!(from_gcm("wait_for_update=500").is_none());
        assert!(from_gcm("").is_none());
    }
}
