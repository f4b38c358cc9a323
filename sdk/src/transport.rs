//! Sending: `fetch` with `keepalive` (the request outlives the page), the
//! body gzipped by the browser's `CompressionStream` where there is one, and
//! `sendBeacon` (plain: compression is asynchronous and may not finish) when
//! the page is being hidden or left. The host does the sending
//! ([`crate::host::post`]); this module reads what comes back.

use crate::prelude::*;

/// The answer to a request: status and `Retry-After`, or `None` on a network error.
pub struct Answer {
    pub status: u16,
    pub retry_after: Option<String>,
}

/// `navigator.sendBeacon(url, body)`: true if the browser queued it.
pub fn beacon(url: &str, body: &str) -> bool {
    crate::host::beacon(url, body)
}

/// `navigator.onLine` (true when unknown).
pub fn online() -> bool {
    crate::js::get_bool(&crate::js::get(&crate::js::global(), "navigator"), "onLine") != Some(false)
}
