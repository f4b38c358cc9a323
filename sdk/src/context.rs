//! Context collected automatically: page, campaign, locale, timezone, screen,
//! user agent and its low-entropy client hints, library.

use crate::js::{set, Object};
use sluice_shared::campaign::utm_key;
use sluice_shared::text::{split, split_once, trim_start};

/// `context.campaign` from a search string (its `utm_*` fields), or `None`.
/// Click ids are not campaign fields here: they go with marketing consent
/// only (`sluice_shared::match_keys`).
pub fn campaign(search: &str) -> Option<Object> {
    let c = Object::new();
    let mut any = false;
    for pair in split(trim_start(search, b'?'), b'&') {
        let (k, v) = split_once(pair, b'=').unwrap_or((pair, ""));
        if let Some(key) = utm_key(&k.to_ascii_lowercase()).filter(|_| !v.is_empty()) {
            set(&c, key, crate::host::form_decode(v));
            any = true;
        }
    }
    any.then_some(c)
}

/// `context.page` (path, referrer, search, title, url, canonicalUrl),
/// read by the host (see `sdk/js/host.js`): one call, not one per property.
pub fn page() -> Object {
    crate::host::page_context()
}

/// The parts of the context that do not change during a page's life
/// (library, user agent and client hints, locale, timezone, screen).
pub fn stable() -> Object {
    crate::host::stable_context(env!("CARGO_PKG_VERSION"))
}
