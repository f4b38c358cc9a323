//! Single-page apps: a page view on `pushState`, `replaceState` and `popstate`,
//! once per distinct path + query (never twice for the same URL). The host
//! reports each `history` change ([`crate::host::Wake::Navigated`]).

use crate::prelude::*;

/// The key a page view is deduplicated on: path and query.
pub fn current_key() -> String {
    let mut key = crate::js::location("pathname").unwrap_or_default();
    key.push_str(&crate::js::location("search").unwrap_or_default());
    key
}
