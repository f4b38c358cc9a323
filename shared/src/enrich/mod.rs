//! Server-side enrichment: what the browser cannot know or should not be
//! trusted with. Pure functions over the event and facts about the request;
//! the worker gathers the facts (headers, `request.cf`) and calls [`enrich`].
//!
//! Where things go (Segment's names where they exist):
//! `context.ip`, `context.location`, `context.os`, `context.browser`,
//! `context.device.type`, `context.campaign`; Sluice's own verdicts under
//! `context.sluice` (`referrer`, `bot`, and the pipeline's decisions).

pub mod bot;
pub mod botlist;
pub mod campaign;
pub mod ip;
pub mod referrer;
pub mod url;
pub mod useragent;

use crate::consent::{Consent, Source};
use crate::event::{Event, Object};
use serde::Serialize;
use serde_json::{Map, Value};
use std::cell::{OnceCell, RefCell};
use std::net::IpAddr;

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
    /// The last user agent parsed for this request, with its bot verdict: the
    /// events of one batch almost always share one, and parsing it is most
    /// of enrichment's cost. (Facts are per request, as are hints and `cf_bot`.)
    pub parsed_ua: RefCell<Option<ParsedUa>>,
    /// The last page (URL and referrer) classified for this request: a
    /// batch's events mostly come from one page view.
    pub parsed_page: RefCell<Option<ParsedPage>>,
    /// `geo` as the JSON object `context.location` takes, made once.
    pub geo_object: OnceCell<Object>,
    /// The last address written to `context.ip`, as text (a batch's events
    /// mostly share the connection's).
    pub ip_text: RefCell<Option<(IpAddr, String)>>,
}

/// A user agent string and what enrichment adds for it, ready to insert.
#[derive(Debug, Clone)]
pub struct ParsedUa {
    ua: String,
    found: UaFound,
}

/// What a user agent gives an event: `context.os`, `context.browser` (when
/// known), `context.device.type`, and the bot verdict.
#[derive(Debug, Clone)]
struct UaFound {
    os: Option<Value>,
    browser: Option<Value>,
    device_type: &'static str,
    bot: Option<bot::BotReason>,
}

/// A page URL and referrer, and what they give an event: the campaign in the
/// URL and the referrer's class (`context.sluice.referrer`).
#[derive(Debug, Clone)]
pub struct ParsedPage {
    url: Option<String>,
    referrer: Option<String>,
    campaign: Object,
    referrer_class: Value,
}

impl RequestFacts {
    /// Parse `ua` (and classify it) once per distinct string in a row.
    fn parse_ua(&self, ua: &str) -> UaFound {
        let mut memo = self.parsed_ua.borrow_mut();
        if let Some(m) = memo.as_ref().filter(|m| m.ua == ua) {
            return m.found.clone();
        }
        let parsed = useragent::parse(ua, &self.hints);
        let known = |n: &useragent::Named| (!n.name.is_empty()).then(|| to_value(n));
        let found = UaFound {
            os: known(&parsed.os),
            browser: known(&parsed.browser),
            device_type: parsed.device_type,
            bot: bot::classify(Some(ua), self.cf_bot),
        };
        *memo = Some(ParsedUa {
            ua: ua.to_owned(),
            found: found.clone(),
        });
        found
    }

    /// Classify a page once per distinct (URL, referrer) in a row.
    fn parse_page(&self, url: Option<&str>, referrer: Option<&str>) -> (Object, Value) {
        let mut memo = self.parsed_page.borrow_mut();
        if let Some(m) = memo
            .as_ref()
            .filter(|m| m.url.as_deref() == url && m.referrer.as_deref() == referrer)
        {
            return (m.campaign.clone(), m.referrer_class.clone());
        }
        let campaign = url.map(campaign::from_url).unwrap_or_default();
        let page_host = url.and_then(url::host);
        let referrer_class = to_value(&referrer::classify(referrer, page_host.as_deref()));
        *memo = Some(ParsedPage {
            url: url.map(str::to_owned),
            referrer: referrer.map(str::to_owned),
            campaign: campaign.clone(),
            referrer_class: referrer_class.clone(),
        });
        (campaign, referrer_class)
    }

    fn geo_object(&self) -> &Object {
        self.geo_object.get_or_init(|| match to_value(&self.geo) {
            Value::Object(m) => m,
            _ => Map::new(),
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
    let ctx = event.context_mut();
    let bot = user_agent(ctx, facts);
    ip_address(ctx, facts, ip_policy);

    // Geo from the edge (nothing to do without either).
    let geo = facts.geo_object();
    if !geo.is_empty() || ctx.contains_key("location") {
        geo_location(ctx, geo);
    }

    // Campaign from the page URL, and the referrer's class.
    let page = ctx.get("page").and_then(Value::as_object);
    let field = |name: &str| page.and_then(|p| p.get(name)).and_then(Value::as_str);
    let (campaign, referrer) = facts.parse_page(field("url"), field("referrer"));
    if !campaign.is_empty() {
        campaign::merge(object_at(ctx, "campaign"), campaign);
    }

    // GPC from the browser's header.
    if facts.gpc {
        let consent = object_at(ctx, "consent");
        consent.insert("gpc".into(), Value::Bool(true));
        consent
            .entry("source")
            .or_insert_with(|| to_value(&Source::Gpc));
    }

    let ns = sluice_context(event);
    ns.insert("referrer".into(), referrer);
    if let Some(reason) = bot {
        ns.insert("bot".into(), Value::from(reason.code()));
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
fn user_agent(ctx: &mut Object, facts: &RequestFacts) -> Option<bot::BotReason> {
    let (found, from_request) = match ctx.get("userAgent").and_then(Value::as_str) {
        Some(ua) => (facts.parse_ua(ua), false),
        None => match facts.user_agent.as_deref() {
            Some(ua) => (facts.parse_ua(ua), true),
            None => return bot::classify(None, facts.cf_bot),
        },
    };
    if from_request && !ctx.contains_key("userAgent") {
        ctx.insert("userAgent".into(), Value::from(facts.user_agent.clone()));
    }
    if let Some(os) = found.os.filter(|_| is_blank(ctx.get("os"))) {
        ctx.insert("os".into(), os);
    }
    if let Some(browser) = found.browser.filter(|_| is_blank(ctx.get("browser"))) {
        ctx.insert("browser".into(), browser);
    }
    let device = object_at(ctx, "device");
    if !device.contains_key("type") {
        device.insert("type".to_owned(), Value::from(found.device_type));
    }
    found.bot
}

/// The client's reported IP, else the connection's; then the policy.
fn ip_address(ctx: &mut Object, facts: &RequestFacts, policy: ip::IpPolicy) {
    let reported: Option<IpAddr> = ctx
        .get("ip")
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok());
    match ip::apply(reported.or(facts.ip), policy) {
        Some(addr) => {
            let mut memo = facts.ip_text.borrow_mut();
            let text = match memo.as_ref().filter(|(a, _)| *a == addr) {
                Some((_, text)) => text.clone(),
                None => memo.insert((addr, addr.to_string())).1.clone(),
            };
            ctx.insert("ip".into(), Value::from(text));
        }
        None => {
            ctx.remove("ip");
        }
    }
}

/// Remove everything that identifies a person, for events kept without consent:
/// userId, anonymousId, traits, IP, and identifiers in the context.
pub fn strip_identifiers(event: &mut Event) {
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
