//! The SDK's state, wired to the host: build events, pass them through the
//! consent gate ([`crate::gate`]), queue, send when the scheduler says
//! ([`crate::schedule`]), retry, persist. Who the visitor is lives in
//! [`crate::identity`]. Those decide and are tested natively; this module
//! carries their decisions out (storage, timers, requests, logs). One
//! instance per page; `api.rs` reaches it only through its methods.

use crate::consent;
use crate::context;
use crate::gate::{Gate, Verdict as Gated};
use crate::global::globals;
use crate::host::{self, Wake};
use crate::identity::{Identity, Write};
use crate::js::{self, set, Object};
use crate::json;
use crate::json::cat;
use crate::options::{Options, StorageMode};
use crate::prelude::*;
use crate::queue::{self, Item, Queue};
use crate::retry::{self, Verdict};
use crate::schedule::{Decision, Policy, Scheduler};
use crate::session::{self, Session};
use crate::storage::{self, Store};
use crate::{pages, transport};
use core::cell::{Cell, RefCell};
use sluice_shared::consent::{Consent, Purpose, Source};
use sluice_shared::text::decimal;
use wasm_bindgen::prelude::*;

use crate::identity::{ANON_KEY, TRAITS_KEY, USER_KEY};
const SESSION_KEY: &str = "sluice_session";
const CONSENT_KEY: &str = "sluice_consent";
/// The ad clicks kept for later pages (`sluice_shared::match_keys::clicks`).
const CLICKS_KEY: &str = "sluice_clk";
/// How often the vendors' cookies are read again (a pixel may set them late).
const MATCH_KEYS_EVERY_MS: f64 = 1000.0;
/// A queue this long is persisted at most once per `PERSIST_LARGE_EVERY_MS`.
const LARGE_QUEUE: usize = 200;
const PERSIST_LARGE_EVERY_MS: f64 = 1000.0;
/// Shortest interval between writes of the session to storage.
const SESSION_SAVE_EVERY_MS: f64 = 5000.0;
/// How often other tabs' abandoned queues are looked for.
const ADOPT_EVERY_MS: i32 = 5000;

pub struct Sdk {
    opts: Options,
    url: String,
    beacon_url: String,
    auth: String,
    store: Store,
    /// anonymousId, userId, traits.
    identity: Identity,
    /// A per-page id for events sent without identifiers (never stored).
    page_id: String,
    /// messageIds are `<a random UUID of this page>-<n>`: unique like a UUID
    /// per event, at the cost of one string concatenation instead of a
    /// `crypto.randomUUID()` call.
    id_prefix: String,
    id_seq: u32,
    /// The last automatic timestamp: events made in the same millisecond share it.
    last_time: (f64, String),
    session: Option<Session>,
    /// The consent, whether it is known, and the events waiting for it.
    gate: Gate<Draft>,
    listeners: Vec<js::Function>,
    queue: Queue,
    tab_key: String,
    /// When to send (the request in flight, backoff, the flush timer).
    sched: Scheduler,
    policy: Policy,
    /// The request in flight (the SDK withdraws it at `pagehide` while its
    /// body is still being compressed, and sends its events by beacon).
    /// The request in flight may still be withdrawn ([`host::withdraw`]).
    withdrawable: bool,
    /// The request in flight is on the wire: `fetch` has it (`keepalive`),
    /// so the browser completes it even if this page goes, and its events
    /// are left out of the stored queue (see [`Sdk::persist`]).
    on_wire: bool,
    /// The page is hidden (or being left): events go by beacon as they are made.
    hidden: bool,
    /// The consent as sent in `context.consent` (JSON), built once per change.
    consent_json: Option<String>,
    /// When the session was last written to storage.
    session_saved_ms: f64,
    persist_scheduled: bool,
    stable: Object,
    page_ctx: Object,
    campaign: Option<Object>,
    /// `stable`, `page_ctx` and `campaign` as JSON members, made once per page.
    context_json: Rc<String>,
    last_page: String,
    debug: bool,
    /// The match keys the consent allows (`sluice_shared::match_keys`), as
    /// JSON members, and when they were read.
    keys_json: String,
    keys_at: f64,
    /// The ad clicks of this visit (`sluice_shared::match_keys::clicks`):
    /// the stored record, read once per page load, with the landing URL's.
    clicks: String,
}

/// An event as a call made it: what the call gave and the automatic context
/// at that moment, as JSON text. Identity, session and consent are added when
/// it is released (it may wait for consent first).
pub struct Draft {
    kind: &'static str,
    /// Its messageId (returned to the page).
    id: JsValue,
    /// `,"messageId":…,"timestamp":…` and the call's own fields, each after a comma.
    members: String,
    /// The automatic context (library, page, campaign, …) when the call was made.
    context: Rc<String>,
    viewport: (u64, u64),
    /// The call set `userId` itself (`alias`: the new id), so the current one is not added.
    own_user_id: bool,
    /// `options.context`: merged over the automatic context.
    extra_context: Option<JsValue>,
}

/// `s` as JSON (escaped by `JSON.stringify`).
fn json_string(s: &str) -> Option<String> {
    js::stringify(&JsValue::from_str(s))
}

globals! {
    static SDK: RefCell<Option<Sdk>> = RefCell::new(None);
    static REPLAY_AT: Cell<Option<f64>> = Cell::new(None);
}

/// The time of the queued call being replayed (see `api::replay_at`).
pub fn set_replay_time(ms: Option<f64>) {
    REPLAY_AT.with(|r| r.set(ms));
}

/// Run `f` on the loaded SDK (`None` before `load`).
pub fn with<R>(f: impl FnOnce(&mut Sdk) -> R) -> Option<R> {
    SDK.with(|s| s.try_borrow_mut().ok()?.as_mut().map(f))
}

pub fn is_loaded() -> bool {
    SDK.with(|s| s.try_borrow().map(|b| b.is_some()).unwrap_or(false))
}

/// Log a decision when `debug(true)`.
pub fn log(debug: bool, what: &str, detail: &JsValue) {
    if debug {
        host::log(what, detail);
    }
}

/// Carry out what an identity transition asks of storage.
fn apply(store: &mut Store, writes: &[Write]) {
    for w in writes {
        match w {
            Write::Set(k, v) => store.set(k, v),
            Write::Remove(k) => store.remove(k),
        }
    }
}

impl Sdk {
    /// Set up from `load(writeKey, options)`.
    pub fn new(write_key: &str, mut opts: Options) -> Sdk {
        let origin = js::location("origin").unwrap_or_default();
        let host = if opts.api_host.is_empty() {
            origin
        } else {
            opts.api_host.clone()
        };
        let url = cat(&[host.as_str(), opts.api_path.as_str()]);
        let beacon_url = cat(&[
            url.as_str(),
            if sluice_shared::text::has(&url, b'?') {
                "&"
            } else {
                "?"
            },
            "writeKey=",
            write_key,
        ]);
        let mut store = Store::new(
            opts.storage,
            opts.cookie_domain.clone(),
            opts.cookie_same_site.clone(),
            opts.cookie_secure,
        );
        // A choice stored by an earlier visit (only where storage was allowed then).
        let stored = store
            .get(CONSENT_KEY)
            .and_then(|s| js::parse(&s))
            .and_then(|saved| consent::from_js(&saved).ok());
        let gate = Gate::new(
            Consent {
                gpc: consent::gpc(),
                policy_version: opts.policy_version.clone(),
                ..Consent::default()
            },
            opts.consent_default_granted,
            stored,
            opts.consent_pending,
            core::mem::take(&mut opts.consent_required),
        );
        if opts.storage == StorageMode::None {
            store.set_enabled(gate.storage_allowed());
        }
        let (identity, write) = Identity::restore(
            store.get(ANON_KEY),
            storage::uuid(),
            match store.get(USER_KEY) {
                Some(u) => {
                    let json = json_string(&u);
                    (Some(u), json)
                }
                None => (None, None),
            },
            store.get(TRAITS_KEY),
        );
        apply(&mut store, &[write]);
        let session = store.get(SESSION_KEY).and_then(|s| Session::parse(&s));
        let tab_key = cat(&[queue::KEY_PREFIX, &storage::uuid()]);
        let stable = context::stable();
        let page_ctx = context::page();
        let search = js::location("search").unwrap_or_default();
        let campaign = context::campaign(&search);
        let clicks = sluice_shared::match_keys::clicks(
            &store.get(CLICKS_KEY).unwrap_or_default(),
            &search,
            js::now_ms() as u64,
        );
        let mut sdk = Sdk {
            url,
            beacon_url,
            auth: host::basic_auth(write_key),
            store,
            identity,
            page_id: storage::uuid(),
            id_prefix: cat(&[storage::uuid().as_str(), "-"]),
            id_seq: 0,
            last_time: (f64::NAN, String::new()),
            session,
            gate,
            listeners: Vec::new(),
            queue: Queue::new(opts.max_queue_events),
            tab_key,
            sched: Scheduler::default(),
            policy: Policy::from(&opts),
            withdrawable: false,
            on_wire: false,
            hidden: false,
            consent_json: None,
            session_saved_ms: 0.0,
            persist_scheduled: false,
            stable,
            page_ctx,
            campaign,
            context_json: Rc::default(),
            last_page: pages::current_key(),
            debug: opts.debug,
            keys_json: String::new(),
            keys_at: f64::NEG_INFINITY,
            clicks,
            opts,
        };
        if sdk.gate.known() {
            sdk.keep_clicks();
        }
        sdk.rebuild_context();
        sdk
    }

    /// Build, gate and queue an event of `kind` (`fill` adds the call's own
    /// fields): its messageId, `undefined` if it cannot be serialised.
    pub fn record(
        &mut self,
        kind: &'static str,
        options: &JsValue,
        fill: &dyn Fn(&Object),
    ) -> JsValue {
        match self.draft(kind, options, fill) {
            Some(d) => {
                let id = d.id.clone();
                self.submit(d);
                id
            }
            None => JsValue::UNDEFINED,
        }
    }

    /// A new event of `kind`: the call's own fields (set by `fill`), its
    /// options and the automatic context, as JSON. `None` when the page's
    /// values cannot be serialised (a cycle, a BigInt).
    fn draft(
        &mut self,
        kind: &'static str,
        options: &JsValue,
        fill: &dyn Fn(&Object),
    ) -> Option<Draft> {
        // What the page gave, serialised by JSON.stringify; a messageId it
        // gave goes first (`queue::Item::message_id` reads the first one).
        let given = Object::new();
        let mut members = String::with_capacity(96);
        let mut id = js::get(options, "messageId");
        if id.is_string() {
            set(&given, "messageId", id.clone());
        } else {
            self.id_seq += 1;
            let n = decimal(self.id_seq.into());
            json::push_all(
                &mut members,
                &[",\"messageId\":\"", &self.id_prefix, &n, "\""],
            );
            id = JsValue::from_str(&cat(&[self.id_prefix.as_str(), n.as_str()]));
        }
        let ts = js::get(options, "timestamp");
        if ts.is_string() {
            set(&given, "timestamp", ts);
        } else {
            let ms = ts
                .as_f64()
                .or_else(|| REPLAY_AT.with(|r| r.get()))
                .unwrap_or_else(js::now_ms);
            let iso = self.iso(ms);
            json::push_all(&mut members, &[",\"timestamp\":\"", iso, "\""]);
        }
        fill(&given);
        let integrations = js::get(options, "integrations");
        if js::is_plain_object(&integrations) {
            set(&given, "integrations", integrations);
        }
        let own_user_id = !js::get(&given, "userId").is_undefined();
        let Some(given) = js::stringify(&given.into()) else {
            log(
                self.debug,
                "dropped (its values cannot be serialised)",
                options,
            );
            return None;
        };
        json::push_members(&mut members, json::members(&given));
        let window = js::global();
        let extra = js::get(options, "context");
        Some(Draft {
            kind,
            id,
            members,
            context: self.context_json.clone(),
            viewport: (
                js::get_f64(&window, "innerWidth").unwrap_or(0.0) as u64,
                js::get_f64(&window, "innerHeight").unwrap_or(0.0) as u64,
            ),
            own_user_id,
            extra_context: js::is_plain_object(&extra).then_some(extra),
        })
    }

    /// ISO 8601 of a time in ms (a time a JS `Date` cannot hold is taken as
    /// now); events made in the same millisecond share the text.
    fn iso(&mut self, ms: f64) -> &str {
        // ±8.64e15 ms is the range of a JS Date.
        let ms = if ms.is_finite() && ms.abs() <= 8.64e15 {
            // Whole milliseconds (`f64::trunc` is not in `core`).
            ms as i64 as f64
        } else {
            js::now_ms()
        };
        if ms != self.last_time.0 {
            self.last_time = (ms, host::iso_at(ms));
        }
        &self.last_time.1
    }

    /// The automatic context as JSON members, after a navigation.
    fn rebuild_context(&mut self) {
        let ctx = Object::assign(&Object::new(), &self.stable);
        set(&ctx, "page", self.page_ctx.clone());
        if let Some(c) = &self.campaign {
            set(&ctx, "campaign", c.clone());
        }
        let text = js::stringify(&ctx.into()).unwrap_or_default();
        self.context_json = Rc::new(json::members(&text).to_owned());
    }

    /// Log `draft` when debugging.
    fn log_draft(&self, what: &str, d: &Draft) {
        if self.debug {
            let text = cat(&["{\"type\":\"", d.kind, "\"", &d.members, "}"]);
            log(true, what, &js::parse(&text).unwrap_or_default());
        }
    }

    /// Decide what happens to a new event: send, hold for consent, or drop.
    fn submit(&mut self, d: Draft) {
        match self.gate.verdict() {
            Gated::Release => self.release(d, false),
            Gated::Anonymous => self.release(d, true),
            Gated::Hold => {
                self.log_draft("consent-gated (waiting for consent)", &d);
                self.gate.hold(d);
            }
            Gated::Drop(why) => self.log_draft(why, &d),
        }
    }

    /// Add identity, session and consent; queue it.
    fn release(&mut self, d: Draft, anonymous: bool) {
        let mut out = String::with_capacity(d.members.len() + d.context.len() + 400);
        let mut ctx = String::with_capacity(d.context.len() + 300);
        let (width, height) = (decimal(d.viewport.0), decimal(d.viewport.1));
        json::push_all(
            &mut ctx,
            &[
                "{",
                &d.context,
                ",\"viewport\":{\"width\":",
                &width,
                ",\"height\":",
                &height,
                "}",
            ],
        );
        let anonymous_id = if anonymous {
            &self.page_id
        } else {
            self.identity.anonymous_id()
        };
        json::push_all(
            &mut out,
            &[
                "{\"type\":\"",
                d.kind,
                "\"",
                &d.members,
                ",\"anonymousId\":\"",
                anonymous_id,
                "\"",
            ],
        );
        if !anonymous {
            match self.identity.user_id_json() {
                Some(u) if !d.own_user_id => json::push_all(&mut out, &[",\"userId\":", u]),
                _ => {}
            }
            let now = js::now_ms();
            let (s, started) = session::touch(self.session, now, self.opts.session_timeout_ms);
            self.session = Some(s);
            // Storage writes (a cookie) are slow: at most every few seconds, and at once for a new session.
            if started || now - self.session_saved_ms > SESSION_SAVE_EVERY_MS {
                self.store.set(SESSION_KEY, &s.encode());
                self.session_saved_ms = now;
            }
            let id = decimal(s.id as u64);
            json::push_all(&mut ctx, &[",\"sessionId\":", &id]);
            if started {
                ctx.push_str(",\"sessionStart\":true");
            }
            if now - self.keys_at >= MATCH_KEYS_EVERY_MS {
                self.read_match_keys(now);
            }
            json::push_members(&mut ctx, &self.keys_json);
        }
        let consent = self.gate.consent();
        let consent = self.consent_json.get_or_insert_with(|| {
            js::stringify(&consent::to_js(consent).into()).unwrap_or_else(|| "{}".into())
        });
        json::push_all(&mut ctx, &[",\"consent\":", consent, "}"]);
        if let Some(extra) = &d.extra_context {
            // The page's context wins over the automatic one, key by key.
            if let Some(merged) = js::parse(&ctx)
                .map(|c| Object::assign(&js::object(c), extra))
                .and_then(|c| js::stringify(&c.into()))
            {
                ctx = merged;
            }
        }
        json::push_all(&mut out, &[",\"context\":", &ctx, "}"]);
        if self.debug {
            log(true, "queued", &js::parse(&out).unwrap_or_default());
        }
        match self.queue.push(Item { json: out }) {
            Some(evicted) if self.debug => log(
                true,
                "dropped (queue full, oldest evicted)",
                &evicted.message_id().unwrap_or_default().into(),
            ),
            _ => {}
        }
        // Hidden, the page may be gone before a timer fires (sites track
        // on their way out, from their own `visibilitychange` listener):
        // by beacon now; what a beacon refused is sent as usual.
        if self.hidden {
            self.beacon_all();
        } else {
            self.schedule_persist();
        }
        self.queued();
    }

    /// The consent is known: store the clicks with marketing consent,
    /// remove them without it.
    fn keep_clicks(&mut self) {
        if self.gate.allows(&Purpose::Marketing) && !self.clicks.is_empty() {
            let clicks = self.clicks.clone();
            self.store.set(CLICKS_KEY, &clicks);
        } else {
            self.store.remove(CLICKS_KEY);
        }
    }

    /// Read the vendors' cookies again and decide, by the consent, which
    /// ids and clicks go with the events (`sluice_shared::match_keys`).
    fn read_match_keys(&mut self, now: f64) {
        use sluice_shared::match_keys::{decide, Seen};
        self.keys_at = now;
        let cookies = host::cookies();
        self.keys_json = decide(
            &Seen {
                cookies: cookies.as_deref().unwrap_or_default(),
                clicks: &self.clicks,
            },
            self.gate.allows(&Purpose::Marketing),
            self.gate.allows(&Purpose::Analytics),
        );
    }

    /// Events were queued: let the scheduler decide when they go.
    fn queued(&mut self) {
        let now = js::now_ms();
        let timer = self.sched.queued(now, self.queue.waiting(), &self.policy);
        arm(now, timer);
    }

    /// Consent reported: remember it, release or drop what was waiting, start
    /// or stop storage. False when it changed nothing already known (CMPs
    /// report the same choice again), and then nothing is done.
    fn update_consent(&mut self, update: Consent) -> bool {
        let Some(held) = self.gate.update(update, js::iso_now()) else {
            return false;
        };
        self.consent_json = None;
        self.keys_at = f64::NEG_INFINITY; // what may be sent changed
        if self.opts.storage == StorageMode::None {
            self.store.set_enabled(self.gate.storage_allowed());
            if self.store.writes_allowed() {
                apply(&mut self.store, &[self.identity.anonymous_write()]);
            }
        }
        self.keep_clicks();
        if self.gate.consent().source == Source::Explicit {
            let cats = Object::new();
            for (p, s) in self.gate.consent().categories.iter() {
                js::set_dyn(
                    &cats,
                    p.as_str(),
                    *s == sluice_shared::consent::State::Granted,
                );
            }
            if let Some(text) = js::stringify(&cats.into()) {
                self.store.set(CONSENT_KEY, &text);
            }
        }
        for d in held {
            self.submit(d);
        }
        true
    }

    /// Consent reported: if it changed anything, the consent listeners and
    /// the consent as the page sees it (for them and the `Consent Updated` event).
    pub fn consent_changed(&mut self, update: Consent) -> Option<(Vec<js::Function>, Object)> {
        self.update_consent(update)
            .then(|| (self.listeners.clone(), consent::to_js(self.gate.consent())))
    }

    /// `consent.get()`: the consent as sent, and whether it is known.
    pub fn consent_js(&self) -> Object {
        let c = consent::to_js(self.gate.consent());
        set(&c, "known", self.gate.known());
        c
    }

    /// `consent.on(callback)`.
    pub fn on_consent(&mut self, f: js::Function) {
        self.listeners.push(f);
    }

    pub fn set_debug(&mut self, on: bool) {
        self.debug = on;
    }

    #[cfg(all(test, target_arch = "wasm32"))]
    pub fn queue(&self) -> &Queue {
        &self.queue
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// `idEndpoint` and the anonymousId it is to set as a cookie.
    pub fn id_endpoint(&self) -> Option<(String, String)> {
        let e = self.opts.id_endpoint.clone()?;
        Some((e, self.identity.anonymous_id().to_owned()))
    }

    pub fn anonymous_id(&self) -> String {
        self.identity.anonymous_id().to_owned()
    }

    /// `alias`'s default previousId: the userId, else the anonymousId.
    pub fn previous_id(&self) -> String {
        self.identity.previous_id().to_owned()
    }

    /// The traits, as a new object (none if what was stored is not an object).
    pub fn traits(&self) -> JsValue {
        js::parse(self.identity.traits())
            .filter(js::is_plain_object)
            .unwrap_or_else(|| Object::new().into())
    }

    /// `user()`: `{ anonymousId, userId, traits }`.
    pub fn user_js(&self) -> Object {
        let u = Object::new();
        set(&u, "anonymousId", self.identity.anonymous_id());
        set(
            &u,
            "userId",
            self.identity.user_id().map_or(JsValue::NULL, JsValue::from),
        );
        set(&u, "traits", self.traits());
        u
    }

    /// A page view: the current page is seen, and its context for the event.
    pub fn page_viewed(&mut self) -> Object {
        self.last_page = pages::current_key();
        self.page_ctx.clone()
    }

    /// `stats()`: queued, in flight, dropped.
    pub fn stats(&self) -> (usize, usize, u32) {
        (self.queue.len(), self.queue.inflight, self.queue.dropped)
    }

    /// Persist soon: at the end of this task for a small queue; at most once
    /// per second for a large one (each write copies the whole queue). The
    /// page being hidden or left always persists at once.
    fn schedule_persist(&mut self) {
        if self.persist_scheduled {
            return;
        }
        self.persist_scheduled = true;
        let delay = if self.queue.len() > LARGE_QUEUE {
            PERSIST_LARGE_EVERY_MS
        } else {
            0.0
        };
        host::timer(Wake::PersistTimer, delay);
    }

    /// Write the queue to this tab's key (or remove it when empty), less the
    /// request on the wire: the browser owns that one now, and storing its
    /// events too would have the tab that adopts this queue (or this page
    /// after a reload, or after a crash) send them a second time. If the
    /// request fails, its events are back in the queue and stored again.
    pub fn persist(&mut self) {
        let from = if self.on_wire { self.queue.inflight } else { 0 };
        self.save(from);
    }

    /// The request in flight was handed to `fetch`: its events leave the
    /// stored queue now, unless a write is already due (a large queue's,
    /// at most once a second; the page being hidden or left writes at once).
    /// A timer set now may never fire (the page may be going), and then the
    /// tab that adopts the stored queue, or the next page, would send them
    /// again.
    fn wired(&mut self) {
        self.on_wire = self.sched.in_flight();
        if !self.persist_scheduled {
            self.persist();
        }
    }

    fn save(&mut self, from: usize) {
        if self.queue.len() <= from {
            self.store.local_remove(&self.tab_key);
        } else if !self
            .store
            .local_set(&self.tab_key, &self.queue.persisted(from))
        {
            log(
                self.debug,
                "not persisted (storage unavailable or full)",
                &JsValue::from(self.queue.len() as u32),
            );
        }
    }

    /// The next request, if one should go now (the timer fired, or `flush()`).
    fn next_request(&mut self, timer: bool) -> Option<Request> {
        let now = js::now_ms();
        let waiting = self.queue.waiting();
        let decision = if timer {
            self.sched.timer_fired(now, waiting, &self.policy)
        } else {
            self.sched.flush(now, waiting, &self.policy)
        };
        match decision {
            Decision::Wait => None,
            Decision::TimerAt(at) => {
                arm(now, Some(at));
                None
            }
            Decision::Send => {
                let Some(body) = self.queue.next_batch() else {
                    // `waiting` > 0 was checked: not reached. Nothing is in flight.
                    self.sched.withdrawn();
                    return None;
                };
                Some(Request {
                    url: self.url.clone(),
                    auth: self.auth.clone(),
                    body: queue::finish_body(body, &js::iso_now()),
                })
            }
        }
    }

    /// What came back for the request in flight.
    fn answered(&mut self, answer: Option<transport::Answer>) {
        self.withdrawable = false;
        self.on_wire = false;
        let n = self.queue.inflight as u32;
        let verdict = match &answer {
            Some(a) => retry::verdict(a.status, a.retry_after.as_deref()),
            None => Verdict::Retry(None),
        };
        match verdict {
            Verdict::Done => {
                self.queue.sent();
                log(self.debug, "sent", &JsValue::from(n));
            }
            Verdict::Drop => {
                self.queue.sent();
                let status = answer.map_or(0, |a| a.status);
                log(
                    self.debug,
                    "dropped (the collector refused the request; not retried)",
                    &JsValue::from(status),
                );
            }
            Verdict::Retry(_) => self.queue.failed(),
        }
        let now = js::now_ms();
        let a = self.sched.answered(
            now,
            verdict,
            self.queue.waiting(),
            js::random(),
            &self.policy,
        );
        if a.paused {
            log(
                self.debug,
                "retries paused until the browser is online again or the next page load",
                &JsValue::from(n),
            );
        }
        if let Some(wait) = a.retry_in {
            log(self.debug, "retry scheduled (ms)", &JsValue::from(wait));
        }
        self.schedule_persist();
        arm(now, a.timer_at);
    }

    /// The page is being hidden or left: send everything not in flight by beacon.
    pub fn beacon_all(&mut self) {
        // Written below, so a request wired from now on (the page may be
        // gone before a timer fires) is written at once (`wired`).
        self.persist_scheduled = false;
        // A request whose body is still being compressed may not leave
        // before the page does: its events go by beacon with the rest.
        let withdrawn = core::mem::take(&mut self.withdrawable) && host::withdraw();
        if withdrawn {
            self.queue.failed();
            self.sched.withdrawn();
        }
        if !transport::online() {
            // Offline, the request on the wire cannot succeed: keep it all.
            self.save(0);
            return;
        }
        let sent_at = js::iso_now();
        for (body, n) in self.queue.beacon_bodies() {
            if transport::beacon(&self.beacon_url, &queue::finish_body(body, &sent_at)) {
                self.queue.remove_after_inflight(n);
                log(self.debug, "sent by beacon", &JsValue::from(n as u32));
            } else {
                break;
            }
        }
        self.persist();
    }

    /// The browser is back online: retry at once.
    pub fn online(&mut self) {
        let now = js::now_ms();
        let timer = self.sched.online(now, self.queue.waiting(), &self.policy);
        arm(now, timer);
    }

    /// Take over stored queues of tabs that are gone. Which tab owns which
    /// stored queue is kept by Web Locks: each tab holds the lock named
    /// after its queue for as long as it lives; another tab's queue may be
    /// taken only with its lock, i.e. once that tab is gone, and the tab
    /// that takes it keeps that lock too for its life (Web Locks do not
    /// order localStorage between tabs: a third tab could otherwise take the
    /// lock before it sees the queue gone). The host reports each lock it
    /// got ([`Wake::Lock`]) to [`adopt`].
    pub fn adopt_orphans(&mut self) {
        for key in self.store.local_keys(queue::KEY_PREFIX) {
            if key != self.tab_key {
                host::try_lock(&key);
            }
        }
    }

    /// The lock of the stored queue `key` is ours: take its events.
    fn adopt(&mut self, key: &str) {
        // Re-read under the lock: another tab may have taken it meanwhile.
        let Some(text) = self.store.local_get(key) else {
            return;
        };
        let mut items = Vec::new();
        let stored = js::parse(&text).unwrap_or_default();
        for json in js::items(&stored).filter_map(|e| js::stringify(&e)) {
            items.push(Item { json });
        }
        let added = self.queue.adopt(items);
        self.persist();
        self.store.local_remove(key);
        log(
            self.debug,
            "adopted events of a closed tab",
            &JsValue::from(added as u32),
        );
        self.queued();
    }

    pub fn tab_key(&self) -> &str {
        &self.tab_key
    }

    /// SPA navigation: refresh the page context; a page view if the URL changed.
    pub fn navigated(&mut self) -> bool {
        let key = pages::current_key();
        if key == self.last_page {
            return false;
        }
        self.last_page = key;
        self.page_ctx = context::page();
        self.campaign = js::location("search")
            .and_then(|s| context::campaign(&s))
            .or(self.campaign.take());
        self.rebuild_context();
        self.opts.track_pages
    }

    /// `identify` (or `alias`, `same_person`: the user under a new id):
    /// remember the user and their traits.
    pub fn set_user(&mut self, user: Option<String>, traits: &JsValue, same_person: bool) {
        if let Some(u) = user {
            let json = json_string(&u);
            let writes = self.identity.identify(u, json, same_person);
            apply(&mut self.store, &writes);
        }
        if js::is_plain_object(traits) {
            let merged = Object::assign(&js::object(self.traits()), traits);
            if let Some(t) = js::stringify(&merged.into()) {
                let w = self.identity.set_traits(t);
                apply(&mut self.store, &[w]);
            }
        }
    }

    /// `reset`: forget the user, start a new anonymous visitor.
    pub fn reset(&mut self) {
        self.session = None;
        self.store.remove(SESSION_KEY);
        let writes = self.identity.reset(storage::uuid());
        apply(&mut self.store, &writes);
    }
}

/// Install the SDK and start its page-level listeners.
pub fn install(sdk: Sdk) {
    let tab = sdk.tab_key().to_owned();
    let has_pending_storage = !sdk.store.local_keys(queue::KEY_PREFIX).is_empty();
    SDK.with(|s| *s.borrow_mut() = Some(sdk));
    host::hold_lock(&tab);
    if has_pending_storage {
        with(Sdk::adopt_orphans);
    }
    host::listen(ADOPT_EVERY_MS);
}

/// The host got the lock of another tab's stored queue `key`.
pub fn adopt(key: String) {
    with(|s| s.adopt(&key));
}

/// The page was hidden or left (`hidden`), or is visible again.
pub fn visibility(hidden: bool) {
    with(|s| {
        s.hidden = hidden;
        if hidden {
            s.beacon_all();
        }
    });
}

/// What the host reported that the SDK's own state decides on.
pub fn woken(kind: Wake) {
    match kind {
        Wake::Wired => {
            with(Sdk::wired);
        }
        Wake::Online => {
            with(Sdk::online);
        }
        Wake::Tick => {
            with(Sdk::adopt_orphans);
        }
        Wake::SendTimer => send(true),
        Wake::PersistTimer => {
            with(|s| {
                s.persist_scheduled = false;
                s.persist();
            });
        }
        _ => {}
    }
}

/// What came back for the request in flight.
pub fn answered(answer: Option<transport::Answer>) {
    with(|s| s.answered(answer));
}

/// A request the scheduler let go.
struct Request {
    url: String,
    auth: String,
    body: String,
}

/// Set a timer for `at` (ms since the epoch), if the scheduler asked for one.
fn arm(now: f64, at: Option<f64>) {
    if let Some(at) = at {
        host::timer(Wake::SendTimer, at - now);
    }
}

/// `flush()`: send the next batch now if a request may go.
pub fn flush() {
    send(false);
}

/// Send the next batch if the scheduler says so (outside the SDK's borrow:
/// the answer may come back at once).
fn send(timer: bool) {
    let Some(Some(r)) = with(|s| s.next_request(timer)) else {
        return;
    };
    host::post(&r.url, &r.auth, &r.body);
    // Withdrawable only while the request is in flight (it may have been answered already).
    with(|s| s.withdrawable = s.sched.in_flight());
}
