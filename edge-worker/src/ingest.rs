//! The accept path, top to bottom:
//! decode (gzip, size) → parse → authenticate (write key) → origin → rate limit
//! → per event: validate → normalise (ids, clock skew) → tracking plan
//! → enrich → consent → bot policy → audiences (the people's states fed
//! these events) → Queue (up to 100 events a message)
//! → 200 with per-event results and the visitor's audiences.
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
use sluice_shared::enrich::{self, RequestFacts};
use sluice_shared::parse::{self, Checked, ParsedBatch};
use sluice_shared::pipeline::DropCount;
use sluice_shared::plan::Mode;
use sluice_shared::skew::{self, SkewRules};
use sluice_shared::{EventType, Limits, QueueMessage, QueuedEvent, Timestamp, ValidEvent};
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
    Accept(Box<QueuedEvent>, Vec<Problem>),
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
    let (parsed, source) = admit(req, endpoint, &limits, s).await?;
    let envelope_warnings: Vec<Problem> = parsed
        .warnings
        .iter()
        .map(|w| Problem::new(w.code(), w))
        .collect();
    let keep = !s.config.audiences.is_empty();
    let mut judged = judge(parsed, source, &facts(req), &limits, s.now, keep)?;
    s.platform.observe(refused(&judged.results, source, s.now));
    let profile = audiences(&mut judged, s).await?;
    // Many events a Queue message: Queues bill and limit per message.
    let mut messages = sluice_shared::pipeline::pack_events(&source.name, &judged.events);
    let day = s.now.to_rfc3339()[..10].to_owned();
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
        judged.events.push(encode(&f.event)?);
    }
    Ok(view)
}

fn encode(event: &sluice_shared::Event) -> Result<String, ApiError> {
    serde_json::to_string(event)
        .map_err(|e| ApiError::Unavailable(format!("event cannot be encoded: {e}")))
}

/// The whole request: decode (gzip, size) → parse → authenticate → origin → rate limit.
async fn admit<'c, P: Platform>(
    req: &HttpRequest,
    endpoint: Endpoint,
    limits: &Limits,
    s: &Services<'c, P>,
) -> Result<(ParsedBatch, &'c Source), ApiError> {
    let body = decode::body(req, limits.max_batch_bytes)?;
    let parsed: ParsedBatch = match endpoint {
        Endpoint::Batch => parse::parse_batch(&body, limits),
        Endpoint::Single(kind) => parse::parse_single(&body, kind, limits),
    }
    .map_err(ApiError::Parse)?;
    let source = auth::source(req, parsed.write_key.as_deref(), s.config)?;
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
    Ok((parsed, source))
}

/// Every event judged: the accepted events (JSON), the drop counts by
/// reason, and one result per event.
struct Judged {
    events: Vec<String>,
    /// The accepted events, for the audiences.
    fed: Vec<crate::audience::person::Fed>,
    dropped: BTreeMap<String, u32>,
    results: Vec<EventResult>,
}

fn judge(
    parsed: ParsedBatch,
    source: &Source,
    facts: &RequestFacts,
    limits: &Limits,
    now: Timestamp,
    keep_for_audiences: bool,
) -> Result<Judged, ApiError> {
    let mut judged = Judged {
        events: Vec::new(),
        fed: Vec::new(),
        dropped: BTreeMap::new(),
        results: Vec::new(),
    };
    for Checked {
        index,
        message_id,
        result,
    } in parsed.check(limits, now)
    {
        let disposition = match result {
            Err(errors) => {
                Disposition::Reject(errors.iter().map(|e| Problem::new(e.code(), e)).collect())
            }
            Ok(valid) => process(valid, source, facts, now),
        };
        let mut r = EventResult {
            index,
            message_id,
            status: EventStatus::Accepted,
            errors: vec![],
            reason: None,
            warnings: vec![],
        };
        match disposition {
            Disposition::Accept(queued, warnings) => {
                r.warnings = warnings;
                if keep_for_audiences {
                    // Encoded once fed (see `audiences`).
                    judged.fed.push(crate::audience::person::Fed {
                        source: queued.source,
                        regime: source.consent.regime,
                        event: queued.event,
                    });
                } else {
                    judged.events.push(encode(&queued.event)?);
                }
            }
            Disposition::Reject(errors) => {
                r.status = EventStatus::Rejected;
                r.errors = errors;
            }
            Disposition::Drop(reason) => {
                r.status = EventStatus::Dropped;
                *judged.dropped.entry(reason.code.clone()).or_default() += 1;
                r.reason = Some(reason);
            }
        }
        judged.results.push(r);
    }
    Ok(judged)
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

/// What the request says about the client.
fn facts(req: &HttpRequest) -> RequestFacts {
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
        ..RequestFacts::default()
    }
}

fn problems_value(problems: &[Problem]) -> Value {
    serde_json::to_value(problems).unwrap_or(Value::Null)
}

/// Normalise, check the plan, enrich, and apply the consent and bot policies.
fn process(
    valid: ValidEvent,
    source: &Source,
    facts: &RequestFacts,
    now: Timestamp,
) -> Disposition {
    let validation: Vec<Problem> = valid
        .warnings()
        .iter()
        .map(|w| Problem::new(w.code(), w))
        .collect();
    let mut warnings = validation.clone();
    let mut event = valid.into_event();
    event.normalize_ids();
    let skew = skew::apply(&mut event, now, SkewRules::default());

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
                enrich::sluice_context(&mut event)
                    .insert("violations".into(), problems_value(&problems));
                warnings.extend(problems);
            }
            Mode::Allow => {}
        }
    }

    let enriched = enrich::enrich(&mut event, facts, source.ip);
    if enriched.bot.is_some() && source.bots == BotPolicy::Drop {
        let reason = enriched.bot.map_or("bot", |b| b.code());
        return Disposition::Drop(Problem::new(
            "bot",
            format!("dropped by the source's bot policy ({reason})"),
        ));
    }

    let decision = consent::collect(enrich::consent_of(&event).as_ref(), &source.consent);
    match decision {
        Collect::Drop => {
            return Disposition::Drop(Problem::new(
                "consent_required",
                "the visitor has not consented to the purposes this source requires",
            ))
        }
        Collect::Anonymous => enrich::strip_identifiers(&mut event),
        Collect::Full => {}
    }
    let ns = enrich::sluice_context(&mut event);
    ns.insert("consent".into(), Value::from(decision.code()));
    ns.insert("skew".into(), Value::from(skew.code()));
    if !validation.is_empty() {
        ns.insert("warnings".into(), problems_value(&validation));
    }
    Disposition::Accept(
        Box::new(QueuedEvent {
            source: source.name.clone(),
            event,
        }),
        warnings,
    )
}
