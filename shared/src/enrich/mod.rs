//! Server-side enrichment: what the browser cannot know or should not be
//! trusted with. Pure functions over the event and facts about the request;
//! the worker gathers the facts (headers, `request.cf`) and calls [`enrich`].
//!
//! Where things go (Segment's names where they exist):
//! `context.ip`, `context.location`, `context.os`, `context.browser`,
//! `context.device.type`, `context.campaign`; Sluice's own verdicts under
//! `context.sluice` (`referrer`, `bot`, and the pipeline's decisions).
//!
//! [`enrich_to`] with [`Added::lane`] (the fast lane, `crate::splice`) keeps
//! what it adds under keys the client did not send apart from the event, as
//! JSON text made once per request ([`Added`]); [`enrich`] puts everything
//! into the event. Both give the same JSON once encoded (`tests/splice.rs`).

pub mod bot;
pub mod botlist;
pub mod campaign;
pub mod ip;
pub mod referrer;
pub mod url;
pub mod useragent;

use crate::consent::{Consent, Source};
use crate::event::{Event, Object};
pub use crate::splice::{Added, Json, Sent};
use serde::Serialize;
use serde_json::{Map, Value};
use std::cell::{OnceCell, RefCell};
use std::net::IpAddr;
use std::rc::Rc;

/// Where the request came from, per `request.cf`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Geo {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub asn: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub as_organization: Option<String>,
}

/// What the worker knows about the request an event came in.
#[derive(Debug, Clone, Default)]
pub struct RequestFacts {
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
    pub hints: useragent::ClientHints,
    pub geo: Geo,
    pub cf_bot: Option<bot::CfBot>,
    /// The browser sent `Sec-GPC: 1`.
    pub gpc: bool,
    /// The last user agent parsed, with its bot verdict: the events of one
    /// batch almost always share one, and parsing it is most of
    /// enrichment's cost. The caller may carry it over from an earlier
    /// request (it is used only for the same hints and `cf_bot`).
    pub parsed_ua: RefCell<Option<ParsedUa>>,
    /// The last page (URL and referrer) classified: a batch's events mostly
    /// come from one page view (and may be carried over like `parsed_ua`).
    pub parsed_page: RefCell<Option<ParsedPage>>,
    /// `geo` as the JSON object `context.location` takes, made once (and as text).
    pub geo_object: OnceCell<(Object, Rc<str>)>,
    /// The last address written to `context.ip`, as text (a batch's events
    /// mostly share the connection's).
    pub ip_text: RefCell<Option<(IpAddr, Rc<str>)>>,
}

/// A value enrichment adds, and the same as JSON text (for [`Added`]).
#[derive(Debug, Clone)]
struct Member {
    value: Value,
    text: Rc<str>,
}

impl Member {
    fn new(value: Value) -> Member {
        let text = serde_json::to_string(&value).unwrap_or_else(|_| "null".into());
        Member {
            value,
            text: text.into(),
        }
    }
}

/// A user agent string and what enrichment adds for it, ready to insert,
/// with the client hints and `cf` bot fields it was made with (so a memo
/// carried over from another request is used only for the same three).
#[derive(Debug, Clone)]
pub struct ParsedUa {
    ua: String,
    hints: useragent::ClientHints,
    cf_bot: Option<bot::CfBot>,
    found: Rc<UaFound>,
}

/// What a user agent gives an event: `context.os`, `context.browser` (when
/// known), `context.device.type` (and `context.device` where the client
/// sent none), and the bot verdict.
#[derive(Debug)]
struct UaFound {
    os: Option<Member>,
    browser: Option<Member>,
    device_type: &'static str,
    device: Member,
    bot: Option<bot::BotReason>,
}

/// A page URL and referrer, and what they give an event: the campaign in the
/// URL and the referrer's class (`context.sluice.referrer`).
#[derive(Debug, Clone)]
pub struct ParsedPage {
    url: Option<String>,
    referrer: Option<String>,
    found: Rc<PageFound>,
}

#[derive(Debug)]
struct PageFound {
    /// Empty when the URL has no campaign.
    campaign: Object,
    campaign_text: Rc<str>,
    referrer: Member,
}

impl RequestFacts {
    /// Parse `ua` (and classify it) once per distinct string in a row.
    fn parse_ua(&self, ua: &str) -> Rc<UaFound> {
        let mut memo = self.parsed_ua.borrow_mut();
        if let Some(m) = memo
            .as_ref()
            .filter(|m| m.ua == ua && m.hints == self.hints && m.cf_bot == self.cf_bot)
        {
            return m.found.clone();
        }
        let parsed = useragent::parse(ua, &self.hints);
        let known = |n: &useragent::Named| (!n.name.is_empty()).then(|| Member::new(to_value(n)));
        let mut device = Map::new();
        device.insert("type".to_owned(), Value::from(parsed.device_type));
        let found = Rc::new(UaFound {
            os: known(&parsed.os),
            browser: known(&parsed.browser),
            device_type: parsed.device_type,
            device: Member::new(Value::Object(device)),
            bot: bot::classify(Some(ua), self.cf_bot),
        });
        *memo = Some(ParsedUa {
            ua: ua.to_owned(),
            hints: self.hints.clone(),
            cf_bot: self.cf_bot,
            found: found.clone(),
        });
        found
    }

    /// Classify a page once per distinct (URL, referrer) in a row.
    fn parse_page(&self, url: Option<&str>, referrer: Option<&str>) -> Rc<PageFound> {
        let mut memo = self.parsed_page.borrow_mut();
        if let Some(m) = memo
            .as_ref()
            .filter(|m| m.url.as_deref() == url && m.referrer.as_deref() == referrer)
        {
            return m.found.clone();
        }
        let campaign = url.map(campaign::from_url).unwrap_or_default();
        let page_host = url.and_then(url::host);
        let referrer_class = to_value(&referrer::classify(referrer, page_host.as_deref()));
        let campaign_text = serde_json::to_string(&campaign).unwrap_or_else(|_| "{}".into());
        let found = Rc::new(PageFound {
            campaign,
            campaign_text: campaign_text.into(),
            referrer: Member::new(referrer_class),
        });
        *memo = Some(ParsedPage {
            url: url.map(str::to_owned),
            referrer: referrer.map(str::to_owned),
            found: found.clone(),
        });
        found
    }

    fn geo_object(&self) -> &(Object, Rc<str>) {
        self.geo_object.get_or_init(|| {
            let geo = match to_value(&self.geo) {
                Value::Object(m) => m,
                _ => Map::new(),
            };
            let text = serde_json::to_string(&geo).unwrap_or_else(|_| "{}".into());
            (geo, text.into())
        })
    }
}

/// What enrichment found that the pipeline acts on.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Enriched {
    pub bot: Option<bot::BotReason>,
}

/// `context.sluice`, Sluice's namespace for its verdicts on an event.
pub fn sluice_context(event: &mut Event) -> &mut Object {
    object_at(event.context_mut(), "sluice")
}

/// Set `context.sluice[key]`: in `added` where it keeps the namespace (the
/// lane is on and the client sent no `context.sluice`), else in the event.
pub fn note(event: &mut Event, added: &mut Added, key: &'static str, value: Value) {
    if keeps(event.context_mut(), added, "sluice") {
        added.set_within("sluice", key, Json::Value(value));
    } else {
        sluice_context(event).insert(key.to_owned(), value);
    }
}

/// [`note`] of a code (a fixed string).
pub fn note_code(event: &mut Event, added: &mut Added, key: &'static str, code: &'static str) {
    if keeps(event.context_mut(), added, "sluice") {
        added.set_within("sluice", key, Json::Code(code));
    } else {
        sluice_context(event).insert(key.to_owned(), Value::from(code));
    }
}

/// Does `added` take `ctx[key]`? (The lane is on and the client sent none.)
fn keeps(ctx: &Object, added: &Added, key: &str) -> bool {
    added.is_on() && !ctx.contains_key(key)
}

/// `ctx[key] = member`: as text in `added` where it takes the key, else into the event.
fn put(ctx: &mut Object, added: &mut Added, key: &'static str, member: &Member) {
    if keeps(ctx, added, key) {
        added.set(key, Json::Text(member.text.clone()));
    } else {
        ctx.insert(key.to_owned(), member.value.clone());
    }
}

/// The object at `ctx[key]`, made (or replacing a non-object) if need be.
/// The key is copied only when it is inserted (`Map::entry` copies it on
/// every call, and this runs several times an event).
fn object_at<'a>(ctx: &'a mut Object, key: &str) -> &'a mut Object {
    if !ctx.get(key).is_some_and(Value::is_object) {
        ctx.insert(key.to_owned(), Value::Object(Map::new()));
    }
    match ctx.get_mut(key) {
        Some(Value::Object(m)) => m,
        _ => unreachable!("just made an object"),
    }
}

fn is_blank(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.is_empty(),
        Some(Value::Object(m)) => m.values().all(|v| is_blank(Some(v))),
        _ => false,
    }
}

fn to_value<T: Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// Enrich one event in place. The client's own values win where it sent them
/// (a server-side library reports its end user's IP and user agent), except
/// the IP policy, which always applies.
pub fn enrich(event: &mut Event, facts: &RequestFacts, ip_policy: ip::IpPolicy) -> Enriched {
    enrich_to(event, &mut Added::off(), None, facts, ip_policy)
}

/// [`enrich`], keeping in `added` (if it is on) what goes under keys the
/// client did not send, and reading `context.userAgent` and
/// `context.page` from `sent` if given (the lane's event has neither).
pub fn enrich_to(
    event: &mut Event,
    added: &mut Added,
    sent: Option<&Sent<'_>>,
    facts: &RequestFacts,
    ip_policy: ip::IpPolicy,
) -> Enriched {
    let ctx = event.context_mut();
    let bot = user_agent(ctx, added, sent, facts);
    ip_address(ctx, added, facts, ip_policy);

    // Geo from the edge (nothing to do without either).
    let (geo, geo_text) = facts.geo_object();
    if !geo.is_empty() || ctx.contains_key("location") {
        if keeps(ctx, added, "location") {
            // All of geo, which is not empty here.
            added.set("location", Json::Text(geo_text.clone()));
        } else {
            geo_location(ctx, geo);
        }
    }

    // Campaign from the page URL, and the referrer's class.
    let found = match sent {
        Some(sent) => facts.parse_page(sent.url.as_deref(), sent.referrer.as_deref()),
        None => {
            let page = ctx.get("page").and_then(Value::as_object);
            let field = |name: &str| page.and_then(|p| p.get(name)).and_then(Value::as_str);
            facts.parse_page(field("url"), field("referrer"))
        }
    };
    if !found.campaign.is_empty() {
        if keeps(ctx, added, "campaign") {
            added.set("campaign", Json::Text(found.campaign_text.clone()));
        } else {
            campaign::merge(object_at(ctx, "campaign"), found.campaign.clone());
        }
    }

    // GPC from the browser's header.
    if facts.gpc {
        if let Some(text) = consent_sent(ctx, sent) {
            // Kept as sent in the lane: decoded to be written.
            let value = serde_json::from_str(text).unwrap_or(Value::Null);
            ctx.insert("consent".into(), value);
        }
        let consent = object_at(ctx, "consent");
        consent.insert("gpc".into(), Value::Bool(true));
        consent
            .entry("source")
            .or_insert_with(|| to_value(&Source::Gpc));
    }

    let referrer = &found.referrer;
    if keeps(event.context_mut(), added, "sluice") {
        added.set_within("sluice", "referrer", Json::Text(referrer.text.clone()));
    } else {
        sluice_context(event).insert("referrer".into(), referrer.value.clone());
    }
    if let Some(reason) = bot {
        note_code(event, added, "bot", reason.code());
    }
    Enriched { bot }
}

/// `context.location`: the client's, completed from the edge's geo; none if empty.
fn geo_location(ctx: &mut Object, geo: &Object) {
    let location = object_at(ctx, "location");
    for (k, v) in geo {
        if !location.contains_key(k) {
            location.insert(k.clone(), v.clone());
        }
    }
    if location.is_empty() {
        ctx.remove("location");
    }
}

/// The user agent the client reported, else the request's: OS, browser and
/// device type where the client left them blank, and the bot verdict.
fn user_agent(
    ctx: &mut Object,
    added: &mut Added,
    sent: Option<&Sent<'_>>,
    facts: &RequestFacts,
) -> Option<bot::BotReason> {
    let (reported, present) = match sent {
        Some(sent) => (sent.user_agent.as_deref(), sent.has_user_agent),
        None => (
            ctx.get("userAgent").and_then(Value::as_str),
            ctx.contains_key("userAgent"),
        ),
    };
    let (found, from_request) = match reported {
        Some(ua) => (facts.parse_ua(ua), false),
        None => match facts.user_agent.as_deref() {
            Some(ua) => (facts.parse_ua(ua), true),
            None => return bot::classify(None, facts.cf_bot),
        },
    };
    if from_request && !present {
        let ua = Value::from(facts.user_agent.clone());
        if added.is_on() {
            added.set("userAgent", Json::Value(ua));
        } else {
            ctx.insert("userAgent".into(), ua);
        }
    }
    if let Some(os) = found.os.as_ref().filter(|_| is_blank(ctx.get("os"))) {
        put(ctx, added, "os", os);
    }
    if let Some(browser) = found
        .browser
        .as_ref()
        .filter(|_| is_blank(ctx.get("browser")))
    {
        put(ctx, added, "browser", browser);
    }
    if keeps(ctx, added, "device") {
        put(ctx, added, "device", &found.device);
    } else {
        let device = object_at(ctx, "device");
        if !device.contains_key("type") {
            device.insert("type".to_owned(), Value::from(found.device_type));
        }
    }
    found.bot
}

/// The client's reported IP, else the connection's; then the policy.
fn ip_address(ctx: &mut Object, added: &mut Added, facts: &RequestFacts, policy: ip::IpPolicy) {
    let reported: Option<IpAddr> = ctx
        .get("ip")
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok());
    match ip::apply(reported.or(facts.ip), policy) {
        Some(addr) => {
            let mut memo = facts.ip_text.borrow_mut();
            let text = match memo.as_ref().filter(|(a, _)| *a == addr) {
                Some((_, text)) => text.clone(),
                None => memo.insert((addr, addr.to_string().into())).1.clone(),
            };
            if keeps(ctx, added, "ip") {
                added.set("ip", Json::Str(text));
            } else {
                ctx.insert("ip".into(), Value::from(&*text));
            }
        }
        None => {
            ctx.remove("ip");
        }
    }
}

/// Remove everything that identifies a person, for events kept without consent:
/// userId, anonymousId, traits, IP, and identifiers in the context.
pub fn strip_identifiers(event: &mut Event) {
    strip_identifiers_to(event, &mut Added::off());
}

/// [`strip_identifiers`], from what `added` keeps too.
pub fn strip_identifiers_to(event: &mut Event, added: &mut Added) {
    // Of what it can keep, only `context.ip` identifies (`context.device` is
    // only ever `{type}` there).
    added.remove("ip");
    event.user_id = None;
    event.anonymous_id = None;
    event.traits = None;
    event.previous_id = None;
    if let Some(ctx) = event.context.as_mut() {
        for key in ["ip", "traits", "sessionId", "device_id", "externalIds"] {
            ctx.remove(key);
        }
        if let Some(Value::Object(device)) = ctx.get_mut("device") {
            device.retain(|k, _| k == "type");
        }
    }
}

/// Read `context.consent`; an invalid one counts as none (denied where required),
/// and GPC from the request is applied on top.
pub fn consent_of(event: &Event) -> Option<Consent> {
    Consent::from_context(event.context.as_ref()).ok().flatten()
}

/// `context.consent` as the client sent it (JSON text), where the lane
/// kept it so (the event's `context` has none then); else `None`, and the
/// event's own is the one.
pub fn consent_sent<'s>(ctx: &Object, sent: Option<&Sent<'s>>) -> Option<&'s str> {
    let raw = sent?.consent?;
    (!ctx.contains_key("consent")).then_some(raw)
}

/// [`consent_of`] for an event of the lane ([`consent_sent`]).
pub fn consent_of_sent(event: &Event, sent: Option<&Sent<'_>>) -> Option<Consent> {
    let empty = Object::new();
    match consent_sent(event.context.as_ref().unwrap_or(&empty), sent) {
        Some(text) => {
            let value: Option<Value> = serde_json::from_str(text).ok();
            Consent::from_value(value.as_ref()).ok().flatten()
        }
        None => consent_of(event),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::EventType;
    use serde_json::json;

    fn facts() -> RequestFacts {
        RequestFacts {
            ip: Some("203.0.113.77".parse().unwrap()),
            user_agent: Some("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36".into()),
            geo: Geo { country: Some("DE".into()), city: Some("Berlin".into()), asn: Some(3320), ..Geo::default() },
            ..RequestFacts::default()
        }
    }

    fn page(url: &str, referrer: &str) -> Event {
        let mut e = Event::new(EventType::Page, "m");
        e.anonymous_id = Some("a".into());
        e.context = Some(
            json!({"page":{"url":url,"referrer":referrer}})
                .as_object()
                .cloned()
                .unwrap(),
        );
        e
    }

    #[test]
    fn adds_what_the_browser_cannot_know() {
        let mut e = page(
            "https://shop.example.com/?utm_source=news&gclid=g1",
            "https://www.google.com/search?q=mugs",
        );
        let out = enrich(&mut e, &facts(), ip::IpPolicy::Truncate);
        assert_eq!(out.bot, None);
        let ctx = e.context.unwrap();
        assert_eq!(ctx["ip"], "203.0.113.0");
        assert_eq!(
            ctx["location"],
            json!({"country":"DE","city":"Berlin","asn":3320})
        );
        assert_eq!(ctx["os"]["name"], "Windows 10");
        assert_eq!(ctx["browser"]["name"], "Chrome");
        assert_eq!(ctx["device"]["type"], "desktop");
        assert_eq!(
            ctx["campaign"],
            json!({"source":"news","clickIds":{"gclid":"g1"}})
        );
        assert_eq!(
            ctx["sluice"]["referrer"],
            json!({"medium":"search","source":"Google","term":"mugs"})
        );
    }

    #[test]
    fn ip_policy_always_applies_even_to_a_reported_ip() {
        let mut e = page("https://a.com/", "");
        e.context_mut().insert("ip".into(), json!("198.51.100.23"));
        enrich(&mut e, &facts(), ip::IpPolicy::Drop);
        assert!(e.context.as_ref().unwrap().get("ip").is_none());
        let mut e = page("https://a.com/", "");
        e.context_mut().insert("ip".into(), json!("198.51.100.23"));
        enrich(&mut e, &facts(), ip::IpPolicy::Keep);
        assert_eq!(e.context.unwrap()["ip"], "198.51.100.23");
    }

    #[test]
    fn bots_are_flagged_and_gpc_is_recorded() {
        let mut e = page("https://a.com/", "");
        let f = RequestFacts {
            user_agent: Some("Googlebot/2.1".into()),
            gpc: true,
            ..RequestFacts::default()
        };
        let out = enrich(&mut e, &f, ip::IpPolicy::Truncate);
        assert_eq!(out.bot, Some(bot::BotReason::KnownBot));
        let ctx = e.context.as_ref().unwrap();
        assert_eq!(ctx["sluice"]["bot"], "known_bot");
        assert_eq!(ctx["consent"], json!({"gpc":true,"source":"gpc"}));
        assert!(consent_of(&e).unwrap().gpc);
    }

    #[test]
    fn one_requests_events_each_get_their_own_user_agent_parsed() {
        // Facts remember the last user agent; events that report their own must not share it.
        let f = facts();
        let chrome = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36";
        let iphone = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1";
        let mut seen = Vec::new();
        for ua in [chrome, chrome, iphone, "Googlebot/2.1", chrome] {
            let mut e = page("https://a.com/", "");
            e.context_mut().insert("userAgent".into(), json!(ua));
            let out = enrich(&mut e, &f, ip::IpPolicy::Drop);
            let ctx = Value::Object(e.context.unwrap());
            seen.push((
                ctx["os"]["name"].clone(),
                ctx["device"]["type"].clone(),
                out.bot,
            ));
        }
        assert_eq!(seen[0], seen[1]);
        assert_eq!(seen[0], seen[4]);
        assert_ne!(seen[0].0, seen[2].0, "{seen:?}");
        assert_ne!(seen[0].1, seen[2].1, "{seen:?}");
        assert_eq!(seen[3].2, Some(bot::BotReason::KnownBot));
        assert_eq!(seen[4].2, None);
        // And the same as parsing from scratch.
        let mut fresh = page("https://a.com/", "");
        fresh
            .context_mut()
            .insert("userAgent".into(), json!(iphone));
        enrich(&mut fresh, &facts(), ip::IpPolicy::Drop);
        assert_eq!(fresh.context.unwrap()["os"]["name"], seen[2].0);
    }

    /// A memo carried over from another request (the collector keeps the
    /// isolate's last) is used only for the same user agent, client hints
    /// and `cf` bot fields: it gives what parsing from scratch gives.
    #[test]
    fn a_user_agent_memo_from_another_request_is_used_only_for_the_same_hints_and_cf() {
        let ua = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36";
        let enriched = |f: &RequestFacts| {
            let mut e = page("https://a.com/", "");
            e.context_mut().insert("userAgent".into(), json!(ua));
            let out = enrich(&mut e, f, ip::IpPolicy::Drop);
            (Value::Object(e.context.unwrap()), out.bot)
        };
        let first = facts();
        enriched(&first);
        let mobile = useragent::ClientHints {
            mobile: Some(true),
            platform: Some("Android".into()),
            brand: None,
        };
        let verified = bot::CfBot {
            score: Some(1),
            verified_bot: true,
        };
        for (hints, cf_bot) in [
            (first.hints.clone(), first.cf_bot),
            (mobile, first.cf_bot),
            (first.hints.clone(), Some(verified)),
        ] {
            let fresh = RequestFacts {
                hints: hints.clone(),
                cf_bot,
                ..facts()
            };
            let carried = RequestFacts {
                hints,
                cf_bot,
                parsed_ua: first.parsed_ua.borrow().clone().into(),
                ..facts()
            };
            assert_eq!(enriched(&carried), enriched(&fresh));
        }
        let android = RequestFacts {
            hints: useragent::ClientHints {
                mobile: Some(true),
                platform: Some("Android".into()),
                brand: None,
            },
            parsed_ua: first.parsed_ua.borrow().clone().into(),
            ..facts()
        };
        assert_ne!(enriched(&android).0["os"], enriched(&first).0["os"]);
    }

    #[test]
    fn one_requests_events_each_get_their_own_page_classified() {
        // Facts remember the last page; events from another page must not share it.
        let f = facts();
        let pages = [
            (
                "https://a.com/?utm_source=news",
                "https://www.google.com/search?q=mugs",
            ),
            (
                "https://a.com/?utm_source=news",
                "https://www.google.com/search?q=mugs",
            ),
            ("https://a.com/cart", "https://a.com/"),
            ("https://a.com/?utm_source=ads", ""),
            (
                "https://a.com/?utm_source=news",
                "https://www.google.com/search?q=mugs",
            ),
        ];
        let seen: Vec<(Value, Value)> = pages
            .iter()
            .map(|(url, referrer)| {
                let mut e = page(url, referrer);
                enrich(&mut e, &f, ip::IpPolicy::Drop);
                let ctx = e.context.unwrap();
                (
                    ctx.get("campaign").cloned().unwrap_or(Value::Null),
                    ctx["sluice"]["referrer"].clone(),
                )
            })
            .collect();
        let google = json!({"medium":"search","source":"Google","term":"mugs"});
        assert_eq!(seen[0], (json!({"source":"news"}), google.clone()));
        assert_eq!(seen[1], seen[0]);
        assert_eq!(seen[2], (Value::Null, json!({"medium":"internal"})));
        assert_eq!(
            seen[3],
            (json!({"source":"ads"}), json!({"medium":"direct"}))
        );
        assert_eq!(seen[4], seen[0]);
    }

    #[test]
    fn stripping_removes_every_identifier() {
        let mut e = page("https://a.com/", "");
        e.user_id = Some("u".into());
        e.traits = Some(json!({"email":"x@y.z"}).as_object().cloned().unwrap());
        e.context_mut().insert("ip".into(), json!("1.2.3.4"));
        e.context_mut().insert(
            "device".into(),
            json!({"id":"d1","type":"mobile","advertisingId":"ad"}),
        );
        strip_identifiers(&mut e);
        assert_eq!(
            (
                e.user_id.as_ref(),
                e.anonymous_id.as_ref(),
                e.traits.as_ref()
            ),
            (None, None, None)
        );
        let ctx = e.context.unwrap();
        assert!(ctx.get("ip").is_none());
        assert_eq!(ctx["device"], json!({"type":"mobile"}));
    }
}
