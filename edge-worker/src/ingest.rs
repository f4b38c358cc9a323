//! The accept path, top to bottom:
//! decode (gzip, size) → parse → authenticate (write key) → origin → rate limit
//! → per event: validate → normalise (ids, clock skew) → tracking plan
//! → enrich → consent → bot policy → audiences (the people's states fed
//! these events) → Queue (up to 100 events a message)
//! → 200 with per-event results and the visitor's audiences.
//!
//! A batch's events are split, not decoded, before the write key is checked.
//! Each then takes the fast lane where it can (`sluice_shared::splice`: only
//! what the pipeline reads is decoded, the rest is written back as sent),
//! else the full decode; both run the same `process`. The lane is off when a
//! tracking plan or audiences read the whole event.
//!
//! Delivery guarantee: at-least-once. Events are on the Queue before the 200;
//! if the Queue send fails the client gets a retryable 503 and nothing is
//! reported accepted (its retry is deduplicated downstream by `messageId`).

use crate::auth;
use crate::config::Source;
use crate::decode;
use crate::error::ApiError;
use crate::http::{HttpRequest, HttpResponse};
use crate::ports::Platform;
use crate::services::Services;
use serde::Serialize;
use serde_json::Value;
use sluice_shared::consent::{self, Collect};
use sluice_shared::enrich::bot::BotPolicy;
use sluice_shared::enrich::useragent::ClientHints;
use sluice_shared::enrich::{self, Added, ParsedPage, ParsedUa, RequestFacts, Sent};
use sluice_shared::parse::{self, Checked, ParsedBatch, Slot};
use sluice_shared::pipeline::DropCount;
use sluice_shared::plan::Mode;
use sluice_shared::skew::{self, SkewRules};
use sluice_shared::splice::{self, Passed};
use sluice_shared::{Event, EventType, Limits, QueueMessage, Timestamp, ValidEvent};
use std::collections::BTreeMap;

/// Which kind of body the endpoint takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `{ batch: [...] }`: `/v1/batch`, `/v1/b`, `/beacon/v1/batch`.
    Batch,
    /// One event: `/v1/track`, `/v1/t`, …
    Single(EventType),
}

/// A problem with one event, as reported to the client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub code: String,
    pub message: String,
}

impl Problem {
    fn new(code: &str, message: impl ToString) -> Problem {
        Problem {
            code: code.to_owned(),
            message: message.to_string(),
        }
    }
}

/// An event's fate at the collector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EventStatus {
    /// On the Queue: it will be delivered.
    Accepted,
    /// Invalid: do not retry it.
    Rejected,
    /// Refused by policy (consent, bots): do not retry it.
    Dropped,
}

impl EventStatus {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            EventStatus::Accepted => "accepted",
            EventStatus::Rejected => "rejected",
            EventStatus::Dropped => "dropped",
        }
    }
}

/// What happened to one event of the request.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventResult {
    pub index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    pub status: EventStatus,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<Problem>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<Problem>,
    /// Accepted with findings: absurd timestamps, flagged plan violations.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<Problem>,
}

/// The 200 body.
#[derive(Debug, Serialize)]
pub struct BatchResponse {
    pub accepted: usize,
    pub rejected: usize,
    pub dropped: usize,
    pub results: Vec<EventResult>,
    /// Envelope fields that were ignored (a bad `sentAt`, …): the events are kept.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<Problem>,
    /// The visitor's audiences and browser-visible traits, these events
    /// included (when audiences are configured and the visitor has a state).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<sluice_shared::audience::View>,
}

enum Disposition {
    /// An event of the request's source, with what the fast lane's
    /// pipeline added (nothing off the lane).
    Accept(Box<Event>, Vec<Problem>, Added),
    Reject(Vec<Problem>),
    Drop(Problem),
}

/// Accept a request's events: admit the request, judge each event, show
/// the refused ones in the debugger, put the rest on the Queue, answer.
pub async fn accept<P: Platform>(
    req: &HttpRequest,
    endpoint: Endpoint,
    s: &Services<'_, P>,
) -> Result<HttpResponse, ApiError> {
    let limits = Limits::default();
    let body = decode::body(req, limits.max_batch_bytes)?;
    let (admitted, source) = admit(req, endpoint, &body, &limits, s).await?;
    let envelope_warnings: Vec<Problem> = admitted
        .envelope
        .warnings
        .iter()
        .map(|w| Problem::new(w.code(), w))
        .collect();
    let keep = !s.config.audiences.is_empty();
    let facts = facts(req);
    let judged = judge(admitted, source, &facts, &limits, s.now, keep);
    remember(facts);
    let mut judged = judged?;
    s.platform.observe(refused(&judged.results, source, s.now));
    let profile = audiences(&mut judged, s).await?;
    // Many events a Queue message: Queues bill and limit per message.
    let mut messages = sluice_shared::pipeline::pack_events(&source.name, &judged.events);
    let day = s.now.day();
    for (reason, count) in judged.dropped {
        let m = QueueMessage::Dropped(DropCount {
            source: source.name.clone(),
            reason,
            day: day.clone(),
            count,
        });
        messages.push(serde_json::to_string(&m).map_err(|e| ApiError::Unavailable(e.to_string()))?);
    }
    if !messages.is_empty() {
        s.platform.enqueue(messages).await?;
    }
    let results = judged.results;
    let count = |status| results.iter().filter(|r| r.status == status).count();
    Ok(HttpResponse::json(
        200,
        &BatchResponse {
            accepted: count(EventStatus::Accepted),
            rejected: count(EventStatus::Rejected),
            dropped: count(EventStatus::Dropped),
            results,
            warnings: envelope_warnings,
            profile,
        },
    ))
}

/// Feed the accepted events to their people's audience states (the
/// visitor's view goes in the answer), then encode them for the Queue,
/// marked as fed (`context.sluice.audiences: "fed"`) so the consumer does
/// not feed them again. If feeding fails they go unmarked: the consumer
/// feeds them after they are stored, and the answer has no profile.
async fn audiences<P: Platform>(
    judged: &mut Judged,
    s: &Services<'_, P>,
) -> Result<Option<sluice_shared::audience::View>, ApiError> {
    let fed = std::mem::take(&mut judged.fed);
    if fed.is_empty() {
        return Ok(None);
    }
    let (view, marked) =
        match crate::audience::feed(s.platform, &s.config.audiences, fed.clone()).await {
            Ok(view) => (view, true),
            Err(e) => {
                crate::delivery::log(
                    &["sluice: audiences at the collector: ", &e.to_string()].concat(),
                );
                (None, false)
            }
        };
    for mut f in fed {
        if marked {
            crate::audience::feed::mark_fed(&mut f.event);
        }
        judged.events.push(encode(&f.event, None, &Added::off())?);
    }
    Ok(view)
}

fn encode(
    event: &sluice_shared::Event,
    passed: Option<&Passed<'_>>,
    added: &Added,
) -> Result<String, ApiError> {
    match passed {
        Some(p) => p.encode(event, added),
        None => serde_json::to_string(event),
    }
    .map_err(|e| ApiError::Unavailable(format!("event cannot be encoded: {e}")))
}

/// A request's events as admitted: the envelope, and each event's bytes (a
/// batch body, split but not decoded) or its decoded slot (a single-event body).
struct Admitted<'b> {
    envelope: ParsedBatch,
    events: Vec<Item<'b>>,
}

enum Item<'b> {
    Raw(&'b [u8]),
    Parsed(Box<Slot>),
}

/// The whole request: parse (split) → authenticate → origin → rate limit.
async fn admit<'b, 'c, P: Platform>(
    req: &HttpRequest,
    endpoint: Endpoint,
    body: &'b [u8],
    limits: &Limits,
    s: &Services<'c, P>,
) -> Result<(Admitted<'b>, &'c Source), ApiError> {
    let admitted = match endpoint {
        Endpoint::Batch => {
            let split = parse::split_batch(body, limits).map_err(ApiError::Parse)?;
            Admitted {
                envelope: split.envelope,
                events: split.events.into_iter().map(Item::Raw).collect(),
            }
        }
        Endpoint::Single(kind) => {
            let mut envelope = parse::parse_single(body, kind, limits).map_err(ApiError::Parse)?;
            let slots = std::mem::take(&mut envelope.events);
            Admitted {
                envelope,
                events: slots
                    .into_iter()
                    .map(|s| Item::Parsed(Box::new(s)))
                    .collect(),
            }
        }
    };
    let source = auth::source(req, admitted.envelope.write_key.as_deref(), s.config)?;
    let origin = req.header("origin").filter(|o| !is_same_origin(req, o));
    if !source.allows_origin(origin) {
        return Err(ApiError::OriginNotAllowed(
            origin.unwrap_or_default().to_owned(),
        ));
    }
    let client = req
        .client
        .ip
        .map_or_else(|| "unknown".to_owned(), |ip| ip.to_string());
    let limit_key = [source.write_key.as_str(), ":", client.as_str()].concat();
    s.limiter
        .borrow_mut()
        .check(&limit_key, source.rate_limit, s.now.0 as f64)
        .map_err(|retry_after_s| ApiError::RateLimited { retry_after_s })?;
    // Fails open: if the shared limiter cannot answer, the per-isolate limit still holds.
    if let Ok(Some(false)) = s.platform.shared_rate_limit(&limit_key).await {
        return Err(ApiError::RateLimited {
            retry_after_s: crate::ratelimit::SHARED_RETRY_AFTER_S,
        });
    }
    Ok((admitted, source))
}

/// Every event judged: the accepted events (JSON), the drop counts by
/// reason, and one result per event.
struct Judged {
    events: Vec<String>,
    /// Accepted events are kept decoded for the audiences, not encoded.
    keep_for_audiences: bool,
    /// The accepted events, for the audiences.
    fed: Vec<crate::audience::person::Fed>,
    dropped: BTreeMap<String, u32>,
    results: Vec<EventResult>,
}

fn judge(
    admitted: Admitted<'_>,
    source: &Source,
    facts: &RequestFacts,
    limits: &Limits,
    now: Timestamp,
    keep_for_audiences: bool,
) -> Result<Judged, ApiError> {
    let Admitted { envelope, events } = admitted;
    let received = skew::Received::new(now);
    let consent = consent::Collector::new(&source.consent);
    // Nothing reads the passed-through parts, and the envelope adds nothing to them.
    let lane = !keep_for_audiences
        && source.tracking_plan.is_none()
        && envelope.context.is_none()
        && envelope.integrations.is_none();
    let mut judged = Judged {
        events: Vec::with_capacity(events.len()),
        keep_for_audiences,
        fed: Vec::new(),
        dropped: BTreeMap::new(),
        results: Vec::with_capacity(events.len()),
    };
    for (index, item) in events.into_iter().enumerate() {
        let slot = match item {
            Item::Raw(raw) => match lane.then(|| fast(raw, &envelope, limits, now)).flatten() {
                Some((valid, passed)) => {
                    let message_id = Some(valid.event().message_id.clone());
                    let lane = (Added::lane(), Some(passed.sent()));
                    let disposition = process(valid, source, facts, &received, &consent, lane);
                    judged.take(index, message_id, disposition, Some(&passed), source)?;
                    continue;
                }
                None => parse::parse_event(index, raw, None),
            },
            Item::Parsed(slot) => *slot,
        };
        let Checked {
            index,
            message_id,
            result,
        } = envelope.check_one(slot, limits, now);
        let disposition = match result {
            Err(errors) => {
                Disposition::Reject(errors.iter().map(|e| Problem::new(e.code(), e)).collect())
            }
            Ok(valid) => {
                let off = (Added::off(), None);
                process(valid, source, facts, &received, &consent, off)
            }
        };
        judged.take(index, message_id, disposition, None, source)?;
    }
    Ok(judged)
}

/// The fast lane for one event of a batch, or `None` for the full decode:
/// decoded where the pipeline reads, given the envelope's `sentAt`, valid.
fn fast<'b>(
    raw: &'b [u8],
    envelope: &ParsedBatch,
    limits: &Limits,
    now: Timestamp,
) -> Option<(ValidEvent, Passed<'b>)> {
    let (mut event, passed) = splice::decode(raw, limits)?;
    if event.sent_at.is_none() {
        event.sent_at.clone_from(&envelope.sent_at);
    }
    let valid = sluice_shared::validate::validate(event, raw.len(), limits, now).ok()?;
    Some((valid, passed))
}

impl Judged {
    /// Record one event's fate: encoded for the Queue, kept for the
    /// audiences, or counted as dropped.
    fn take(
        &mut self,
        index: usize,
        message_id: Option<String>,
        disposition: Disposition,
        passed: Option<&Passed<'_>>,
        source: &Source,
    ) -> Result<(), ApiError> {
        let mut r = EventResult {
            index,
            message_id,
            status: EventStatus::Accepted,
            errors: vec![],
            reason: None,
            warnings: vec![],
        };
        match disposition {
            Disposition::Accept(event, warnings, added) => {
                r.warnings = warnings;
                match passed {
                    // Encoded once fed (see `audiences`); the lane is off then.
                    None if self.keep_for_audiences => {
                        self.fed.push(crate::audience::person::Fed {
                            source: source.name.clone(),
                            regime: source.consent.regime,
                            event: *event,
                        })
                    }
                    _ => self.events.push(encode(&event, passed, &added)?),
                }
            }
            Disposition::Reject(errors) => {
                r.status = EventStatus::Rejected;
                r.errors = errors;
            }
            Disposition::Drop(reason) => {
                r.status = EventStatus::Dropped;
                *self.dropped.entry(reason.code.clone()).or_default() += 1;
                r.reason = Some(reason);
            }
        }
        self.results.push(r);
        Ok(())
    }
}

/// The live debugger's summaries of the events not accepted.
fn refused(results: &[EventResult], source: &Source, now: Timestamp) -> Vec<Value> {
    let now_text = now.to_rfc3339();
    results
        .iter()
        .filter(|r| r.status != EventStatus::Accepted)
        .map(|r| {
            let problems = if r.errors.is_empty() {
                serde_json::to_value(&r.reason).unwrap_or_default()
            } else {
                serde_json::to_value(&r.errors).unwrap_or_default()
            };
            crate::live::refused(
                &source.name,
                &now_text,
                r.message_id.as_deref(),
                r.status.as_str(),
                problems,
                None,
            )
        })
        .collect()
}

/// A page on the collector's own host is first-party: always allowed.
fn is_same_origin(req: &HttpRequest, origin: &str) -> bool {
    let host = origin.split_once("://").map_or("", |(_, h)| h);
    req.header("host")
        .is_some_and(|h| h.eq_ignore_ascii_case(host))
}

thread_local! {
    /// The last user agent and page this isolate's requests were enriched
    /// with: a visitor's next request (and a site's most common browser)
    /// brings the same ones, and parsing them is most of a small request's
    /// enrichment. The memo holds only what enrichment derives from the two
    /// strings, and is used only for the same strings, client hints and `cf`
    /// bot fields.
    static LAST_PARSED: std::cell::RefCell<(Option<ParsedUa>, Option<ParsedPage>)> =
        const { std::cell::RefCell::new((None, None)) };
}

/// Keep what this request's enrichment parsed last (the memos [`facts`]
/// took, where it parsed nothing new) for the next request.
fn remember(facts: RequestFacts) {
    let parsed = (facts.parsed_ua.into_inner(), facts.parsed_page.into_inner());
    LAST_PARSED.with(|last| *last.borrow_mut() = parsed);
}

/// What the request says about the client, with the memos of the isolate's
/// last request taken over (no `await` comes between this and [`remember`],
/// so no other request finds them gone).
fn facts(req: &HttpRequest) -> RequestFacts {
    let (parsed_ua, parsed_page) = LAST_PARSED.with(|last| std::mem::take(&mut *last.borrow_mut()));
    RequestFacts {
        ip: req.client.ip,
        user_agent: req.header("user-agent").map(str::to_owned),
        hints: ClientHints::from_headers(
            req.header("sec-ch-ua"),
            req.header("sec-ch-ua-mobile"),
            req.header("sec-ch-ua-platform"),
        ),
        geo: req.client.geo.clone(),
        cf_bot: req.client.bot,
        gpc: req.header("sec-gpc").is_some_and(|v| v.trim() == "1"),
        parsed_ua: parsed_ua.into(),
        parsed_page: parsed_page.into(),
        ..RequestFacts::default()
    }
}

fn problems_value(problems: &[Problem]) -> Value {
    serde_json::to_value(problems).unwrap_or(Value::Null)
}

/// Normalise, check the plan, enrich, and apply the consent and bot policies.
/// In the fast lane (`lane`: [`Added::lane`] and what was sent of the
/// members enrichment only reads), what goes under `context` keys the
/// client did not send is kept apart from the event; else all is in it.
fn process(
    valid: ValidEvent,
    source: &Source,
    facts: &RequestFacts,
    received: &skew::Received,
    consent: &consent::Collector<'_>,
    lane: (Added, Option<&Sent<'_>>),
) -> Disposition {
    let (mut added, sent) = lane;
    let validation: Vec<Problem> = valid
        .warnings()
        .iter()
        .map(|w| Problem::new(w.code(), w))
        .collect();
    let mut warnings = validation.clone();
    let times = valid.times();
    let mut event = valid.into_event();
    event.normalize_ids();
    let skew = skew::apply_parsed(&mut event, times, received, SkewRules::default());

    if let Some(plan) = &source.tracking_plan {
        let verdict = plan.check(&event);
        let problems: Vec<Problem> = verdict
            .violations
            .iter()
            .map(|v| Problem::new(v.code(), v))
            .collect();
        match verdict.action {
            Mode::Block => return Disposition::Reject(problems),
            Mode::Flag => {
                enrich::note(
                    &mut event,
                    &mut added,
                    "violations",
                    problems_value(&problems),
                );
                warnings.extend(problems);
            }
            Mode::Allow => {}
        }
    }

    let enriched = enrich::enrich_to(&mut event, &mut added, sent, facts, source.ip);
    if enriched.bot.is_some() && source.bots == BotPolicy::Drop {
        let reason = enriched.bot.map_or("bot", |b| b.code());
        return Disposition::Drop(Problem::new(
            "bot",
            format!("dropped by the source's bot policy ({reason})"),
        ));
    }

    let held = event.context.as_ref();
    let decision = match held.and_then(|ctx| enrich::consent_sent(ctx, sent)) {
        Some(text) => consent.collect_sent(text),
        None => consent.collect(held),
    };
    match decision {
        Collect::Drop => {
            return Disposition::Drop(Problem::new(
                "consent_required",
                "the visitor has not consented to the purposes this source requires",
            ))
        }
        Collect::Anonymous => enrich::strip_identifiers_to(&mut event, &mut added),
        Collect::Full => {}
    }
    enrich::note_code(&mut event, &mut added, "consent", decision.code());
    enrich::note_code(&mut event, &mut added, "skew", skew.code());
    if !validation.is_empty() {
        enrich::note(
            &mut event,
            &mut added,
            "warnings",
            problems_value(&validation),
        );
    }
    Disposition::Accept(Box::new(event), warnings, added)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use serde_json::json;

    fn admitted(body: &[u8]) -> Admitted<'_> {
        let split = parse::split_batch(body, &Limits::default()).unwrap();
        Admitted {
            envelope: split.envelope,
            events: split.events.into_iter().map(Item::Raw).collect(),
        }
    }

    fn outcome(r: &EventResult) -> Value {
        serde_json::to_value(r).unwrap()
    }

    /// Judged both ways: with audiences configured every event is decoded
    /// whole (and kept decoded); without, the fast lane encodes it.
    #[test]
    fn the_fast_lane_judges_and_encodes_every_event_as_the_full_decode_does() {
        let config = Config::from_sources_json(
            r#"[{"name":"web","write_key":"wk","allowed_origins":["*"],"bots":"drop",
                 "consent":{"regime":"opt_in","without_consent":"anonymize"}}]"#,
        )
        .unwrap();
        let source = config.source_by_write_key("wk").unwrap();
        let granted = json!({"categories": {"analytics": "granted"}});
        let event = |id: &str, extra: Value| {
            let mut e = json!({"type": "track", "messageId": id, "anonymousId": "a1", "userId": "u1",
                "event": "Product Viewed", "timestamp": "2024-05-01T10:00:00.000Z",
                "properties": {"sku": "MUG-001", "price": 12, "tags": ["a", {"b": null}]},
                "context": {"page": {"url": "https://shop.example.com/p?utm_source=news", "referrer": "https://www.google.com/search?q=mug", "title": "Mug"},
                            "locale": "en-US", "library": {"name": "analytics.js", "version": "1"},
                            "traits": {"email": "a@b.c"}, "device": {"id": "d1"}, "consent": granted}});
            for (k, v) in extra.as_object().unwrap() {
                e[k] = v.clone();
            }
            e
        };
        let body = json!({"sentAt": "2024-05-01T10:00:01.000Z", "batch": [
            event("m1", json!({})),
            event("m2", json!({"userId": ""})),
            event("m3", json!({"context": {"userAgent": "Googlebot/2.1"}})),
            event("m4", json!({"context": {"consent": {"categories": {"analytics": "denied"}}, "ip": "198.51.100.9", "traits": {"x": 1}}})),
            event("m5", json!({"timestamp": "1999-01-01T00:00:00.000Z"})),
            event("m6", json!({"anonymousId": null, "userId": null})),
            event("m7", json!({"properties": "not an object"})),
            event("", json!({})),
            json!({"type": "identify", "messageId": "m9", "userId": "u1", "traits": {"plan": "pro"}, "channel": "web"}),
        ]})
        .to_string();
        let facts = RequestFacts {
            ip: Some("203.0.113.7".parse().unwrap()),
            user_agent: Some(
                "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0".into(),
            ),
            ..RequestFacts::default()
        };
        let now = Timestamp(1_714_557_601_000);
        let limits = Limits::default();
        let lane = judge(
            admitted(body.as_bytes()),
            source,
            &facts,
            &limits,
            now,
            false,
        )
        .unwrap();
        let full = judge(
            admitted(body.as_bytes()),
            source,
            &facts,
            &limits,
            now,
            true,
        )
        .unwrap();
        assert_eq!(
            lane.results.iter().map(outcome).collect::<Vec<_>>(),
            full.results.iter().map(outcome).collect::<Vec<_>>()
        );
        assert_eq!(lane.dropped, full.dropped);
        let statuses: Vec<&str> = lane.results.iter().map(|r| r.status.as_str()).collect();
        assert_eq!(
            statuses,
            [
                "accepted", "accepted", "dropped", "accepted", "accepted", "rejected", "rejected",
                "accepted", "accepted"
            ]
        );
        let encoded: Vec<Value> = lane
            .events
            .iter()
            .map(|e| serde_json::from_str(e).unwrap())
            .collect();
        let decoded: Vec<Value> = full
            .fed
            .iter()
            .map(|f| serde_json::to_value(&f.event).unwrap())
            .collect();
        assert_eq!(encoded.len(), 6);
        assert_eq!(encoded, decoded);
    }
}
