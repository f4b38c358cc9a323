//! The SDK's one piece of global state (the page has one SDK instance).

use std::cell::RefCell;

/// What `load` set up.
pub struct Sdk {
    pub write_key: String,
    /// Base URL of the collector, e.g. `/v1` on the page's own origin.
    pub api_base: String,
    pub anonymous_id: String,
}

thread_local! {
    static SDK: RefCell<Option<Sdk>> = const { RefCell::new(None) };
}

/// Install the loaded SDK.
pub fn set(sdk: Sdk) {
    SDK.with(|s| *s.borrow_mut() = Some(sdk));
}

/// Run `f` with the loaded SDK, or return `None` before `load`.
pub fn with<R>(f: impl FnOnce(&Sdk) -> R) -> Option<R> {
    SDK.with(|s| s.borrow().as_ref().map(f))
}
