//! The JavaScript host (`sdk/js/host.js`): every import the core makes of
//! it, and the one callback it wakes the core with. The host decides
//! nothing; it reports what happened as a [`Wake`] number and up to three
//! values, and [`wake`] hands each to the module that decides. One callback
//! instead of one closure per listener, timer and request; and that callback
//! is an export of the module (the loader hands it to `load`), not a
//! `Closure`: a closure costs the Wasm and the glue their closure machinery
//! (its shims, its destructor, a `FinalizationRegistry`).

use crate::prelude::*;
use wasm_bindgen::prelude::*;

/// What the host reports to [`wake`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Wake {
    /// `fetch` has the request in flight with `keepalive` (the browser
    /// completes it now). A body too large for keepalive is never reported
    /// wired: its events stay in the stored queue until it is answered.
    Wired = 1,
    /// The request in flight was answered: (status, 0 on a network error;
    /// `Retry-After`; the answer's `profile`).
    Answered = 2,
    /// A TCF tcData, as text: (data, tcString) (see `consent::from_tcf`).
    Tcf = 3,
    /// A GPP pingData, as text: (data, gppString).
    Gpp = 4,
    /// A Google Consent Mode `consent` command, as text: (data).
    Gcm = 5,
    /// The page is hidden or left (a truthy), or visible again (falsy).
    Hidden = 6,
    /// The browser is back online.
    Online = 7,
    /// The periodic tick (other tabs' abandoned queues).
    Tick = 8,
    /// `history` changed (an SPA navigation).
    Navigated = 9,
    /// A lock asked for with [`try_lock`]: (name, whether it was free).
    Lock = 10,
    /// The send timer ([`timer`]) fired.
    SendTimer = 11,
    /// The persist timer fired.
    PersistTimer = 12,
}

impl Wake {
    /// In number order (`Wake` is numbered from 1).
    const ALL: [Wake; 12] = [
        Wake::Wired,
        Wake::Answered,
        Wake::Tcf,
        Wake::Gpp,
        Wake::Gcm,
        Wake::Hidden,
        Wake::Online,
        Wake::Tick,
        Wake::Navigated,
        Wake::Lock,
        Wake::SendTimer,
        Wake::PersistTimer,
    ];

    fn from_u32(n: u32) -> Option<Wake> {
        Wake::ALL.get((n as usize).wrapping_sub(1)).copied()
    }
}

#[wasm_bindgen(module = "/js/host.js")]
extern "C" {
    /// Give the host the callback it reports with.
    fn init(wake: &JsValue);
    /// POST a batch (`fetch` with `keepalive`, gzipped where the browser
    /// can); reports [`Wake::Wired`], then [`Wake::Answered`].
    pub fn post(url: &str, authorization: &str, body: &str);
    /// Cancel the request in flight if its body is still being compressed
    /// (true: it never goes, and is never answered).
    pub fn withdraw() -> bool;
    /// `navigator.sendBeacon(url, body)`: true if the browser queued it.
    pub fn beacon(url: &str, body: &str) -> bool;
    /// A fire-and-forget `GET` with credentials (the id endpoint's cookie).
    #[wasm_bindgen(js_name = idCookie)]
    pub fn id_cookie(url: &str);
    /// Report every CMP on the page ([`Wake::Tcf`], [`Wake::Gpp`], [`Wake::Gcm`]).
    #[wasm_bindgen(js_name = watchCmps)]
    pub fn watch_cmps();
    /// Report [`Wake::Hidden`], [`Wake::Online`], and [`Wake::Tick`] every `every_ms`.
    pub fn listen(every_ms: i32);
    /// Report [`Wake::Navigated`] after every `history` change.
    #[wasm_bindgen(js_name = watchHistory)]
    pub fn watch_history();
    /// Hold the Web Lock `name` for the life of the page.
    #[wasm_bindgen(js_name = holdLock)]
    pub fn hold_lock(name: &str);
    /// Take `name` for the life of the page if it is free; reports [`Wake::Lock`].
    #[wasm_bindgen(js_name = tryLock)]
    pub fn try_lock(name: &str);
    /// Report `kind` in `ms`.
    #[wasm_bindgen(js_name = timer)]
    fn host_timer(kind: u32, ms: i32);
    /// `console.log("[sluice]", what, detail)`.
    pub fn log(what: &str, detail: &JsValue);
    /// [`cookies`].
    #[wasm_bindgen(js_name = cookies)]
    fn cookies_js() -> JsValue;
    /// `document.cookie = text` (nothing where it throws).
    #[wasm_bindgen(js_name = setCookie)]
    pub fn set_cookie(text: &str);
    /// [`ls_get`].
    #[wasm_bindgen(js_name = lsGet)]
    fn ls_get_js(key: &str) -> JsValue;
    /// `localStorage.setItem(key, value)`: false where it threw (quota, blocked).
    #[wasm_bindgen(js_name = lsSet)]
    pub fn ls_set(key: &str, value: &str) -> bool;
    /// `localStorage.removeItem(key)`.
    #[wasm_bindgen(js_name = lsRemove)]
    pub fn ls_remove(key: &str);
    /// [`ls_keys`].
    #[wasm_bindgen(js_name = lsKeys)]
    fn ls_keys_js(prefix: &str) -> JsValue;
    /// [`form_decode`].
    #[wasm_bindgen(js_name = formDecode)]
    fn form_decode_js(s: &str) -> JsValue;
    /// [`uuid`].
    #[wasm_bindgen(js_name = uuid)]
    fn uuid_js() -> JsValue;
    /// [`iso_at`].
    #[wasm_bindgen(js_name = isoAt)]
    fn iso_at_js(ms: f64) -> JsValue;
    /// [`basic_auth`].
    #[wasm_bindgen(js_name = basicAuth)]
    fn basic_auth_js(write_key: &str) -> JsValue;
    /// `context.page`, read again after an SPA navigation.
    #[wasm_bindgen(js_name = pageContext)]
    pub fn page_context() -> crate::js::Object;
    /// The parts of the context that do not change during a page's life.
    #[wasm_bindgen(js_name = stableContext)]
    pub fn stable_context(version: &str) -> crate::js::Object;
}

// The host's text answers come back as JS values, read by
// `JsValue::as_string` (one conversion the Wasm has anyway): an import
// declared to return a `String` has its own copy of that conversion, in the
// Wasm at every call and in the glue (67 B gzipped for these seven).

/// A text answer (empty if the host gave none).
fn text(v: JsValue) -> String {
    v.as_string().unwrap_or_default()
}

/// `document.cookie` (`None` where reading it throws: cookies blocked).
pub fn cookies() -> Option<String> {
    cookies_js().as_string()
}

/// `localStorage.getItem(key)` (`None` where storage is blocked or the key absent).
pub fn ls_get(key: &str) -> Option<String> {
    ls_get_js(key).as_string()
}

/// The localStorage keys that start with `prefix`, one per line.
pub fn ls_keys(prefix: &str) -> String {
    text(ls_keys_js(prefix))
}

/// One `application/x-www-form-urlencoded` component decoded (`+` is a
/// space), or `s` itself where it is malformed.
pub fn form_decode(s: &str) -> String {
    text(form_decode_js(s))
}

/// A v4 UUID from the browser's `crypto`.
pub fn uuid() -> String {
    text(uuid_js())
}

/// `new Date(ms).toISOString()`: `ms` a whole number within a `Date`'s range.
pub fn iso_at(ms: f64) -> String {
    text(iso_at_js(ms))
}

/// `"Basic " + btoa(writeKey + ":")` (`"Basic "` where `btoa` throws).
pub fn basic_auth(write_key: &str) -> String {
    text(basic_auth_js(write_key))
}

/// Report `kind` in `ms` (clamped to what `setTimeout` takes).
pub fn timer(kind: Wake, ms: f64) {
    host_timer(kind as u32, ms.clamp(0.0, 2_147_483_647.0) as i32);
}

/// Start the host: from now on it reports through `callback`, the module's
/// [`wake`] export as the loader (or the npm module) passed it to `load`.
pub fn start(callback: &JsValue) {
    init(callback);
}

/// The callback the host reports through (not part of the page's API: the
/// loader and the npm module hand it to `load`): what happened, to the
/// module that decides on it. Left out of the npm package's `sdk.d.ts`
/// (`skip_typescript`): pages never call it.
#[wasm_bindgen(skip_typescript)]
pub fn wake(kind: u32, a: JsValue, b: JsValue, c: JsValue) {
    let Some(kind) = Wake::from_u32(kind) else {
        return;
    };
    let text = |v: &JsValue| v.as_string().unwrap_or_default();
    match kind {
        Wake::Tcf => cmp(crate::consent::from_tcf(&text(&a), b.as_string())),
        Wake::Gpp => cmp(crate::consent::from_gpp(&text(&a), b.as_string())),
        Wake::Gcm => cmp(crate::consent::from_gcm(&text(&a))),
        Wake::Navigated => crate::api::navigated(),
        Wake::Answered => {
            // Outside the SDK's state: a listener may call the SDK.
            crate::audiences::answered(c);
            let status = a.as_f64().unwrap_or(0.0);
            crate::sdk::answered((status > 0.0).then(|| crate::transport::Answer {
                status: status as u16,
                retry_after: b.as_string(),
            }));
        }
        Wake::Hidden => crate::sdk::visibility(a.is_truthy()),
        Wake::Lock => {
            if a.is_string() && b.is_truthy() {
                crate::sdk::adopt(text(&a));
            }
        }
        other => crate::sdk::woken(other),
    }
}

/// A CMP reported (`None`: nothing to act on yet).
fn cmp(consent: Option<sluice_shared::consent::Consent>) {
    #[cfg(all(test, target_arch = "wasm32"))]
    if let Some(c) = &consent {
        if CMP_SEEN
            .with(|f| f.borrow().as_ref().map(|f| f(c.clone())))
            .is_some()
        {
            return;
        }
    }
    crate::api::cmp_reported(consent);
}

/// Browser tests: a CMP report's recipient.
#[cfg(all(test, target_arch = "wasm32"))]
type Seen = Option<Box<dyn Fn(sluice_shared::consent::Consent)>>;

#[cfg(all(test, target_arch = "wasm32"))]
std::thread_local! {
    /// Browser tests: where the CMPs' reports go instead of the SDK.
    static CMP_SEEN: core::cell::RefCell<Seen> = const { core::cell::RefCell::new(None) };
}

/// Browser tests: watch the page's CMPs (as `load` does) and give what they
/// report to `on` instead of the SDK.
#[cfg(all(test, target_arch = "wasm32"))]
pub fn watch_cmps_into(on: impl Fn(sluice_shared::consent::Consent) + 'static) {
    CMP_SEEN.with(|f| *f.borrow_mut() = Some(Box::new(on)));
    start(&test_wake());
    watch_cmps();
}

/// Browser tests: [`wake`] as a JS function (what the loader passes to
/// `load` as the module's export).
#[cfg(all(test, target_arch = "wasm32"))]
pub fn test_wake() -> JsValue {
    let cb = Closure::<dyn FnMut(u32, JsValue, JsValue, JsValue)>::new(wake);
    let f = cb.as_ref().clone();
    cb.forget();
    f
}

#[cfg(test)]
mod tests {
    use super::Wake;

    #[test]
    fn every_wake_number_is_read_back() {
        for n in 1..=12 {
            assert_eq!(Wake::from_u32(n).map(|w| w as u32), Some(n));
        }
        assert_eq!(Wake::from_u32(0), None);
        assert_eq!(Wake::from_u32(13), None);
    }
}
