//! The live event debugger's feed: one JSON summary per event as it moves
//! through the pipeline — what enrichment added, the consent decision,
//! validation findings, the dedup decision, and where it was delivered.
//! Summaries go to the `Live` Durable Object, which fans them out over
//! hibernating WebSockets to every open `/debugger`.

use serde_json::{json, Map, Value};
use sluice_shared::Event;

/// Binding name of the live feed's Durable Object namespace.
pub const LIVE: &str = "LIVE";

/// Context keys that enrichment adds.
const ENRICHED: [&str; 7] = [
    "ip",
    "location",
    "os",
    "browser",
    "device",
    "campaign",
    "userAgent",
];

fn pick(ctx: Option<&Map<String, Value>>, keys: &[&str]) -> Value {
    let mut out = Map::new();
    if let Some(ctx) = ctx {
        for k in keys {
            if let Some(v) = ctx.get(*k) {
                out.insert((*k).to_owned(), v.clone());
            }
        }
    }
    Value::Object(out)
}

/// The summary of an event that reached the consumer.
pub fn summary(source: &str, e: &Event, status: &str, dedup: &str, deliveries: Value) -> Value {
    let ctx = e.context.as_ref();
    let ns = ctx
        .and_then(|c| c.get("sluice"))
        .cloned()
        .unwrap_or(Value::Null);
    json!({
        "at": e.received_at,
        "source": source,
        "messageId": e.message_id,
        "type": e.kind.as_str(),
        "event": e.event,
        "name": e.name,
        "userId": e.user_id,
        "anonymousId": e.anonymous_id,
        "status": status,
        "properties": e.properties,
        "traits": e.traits,
        "enrichment": {
            "context": pick(ctx, &ENRICHED),
            "referrer": ns.get("referrer"),
            "bot": ns.get("bot"),
            "skew": ns.get("skew"),
            "timestamp": e.timestamp,
            "originalTimestamp": e.original_timestamp,
        },
        "consent": {"decision": ns.get("consent"), "given": ctx.and_then(|c| c.get("consent"))},
        "validation": {"warnings": ns.get("warnings"), "violations": ns.get("violations")},
        "dedup": dedup,
        "deliveries": deliveries,
    })
}

/// The summary of an event the collector did not accept (rejected or dropped).
pub fn refused(
    source: &str,
    at: &str,
    message_id: Option<&str>,
    status: &str,
    problems: Value,
    event: Option<&Event>,
) -> Value {
    json!({
        "at": at,
        "source": source,
        "messageId": message_id,
        "type": event.map(|e| e.kind.as_str()),
        "event": event.and_then(|e| e.event.clone()),
        "name": event.and_then(|e| e.name.clone()),
        "userId": event.and_then(|e| e.user_id.clone()),
        "anonymousId": event.and_then(|e| e.anonymous_id.clone()),
        "status": status,
        "problems": problems,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_shared::EventType;

    #[test]
    fn summaries_carry_the_pipelines_decisions() {
        let mut e = Event::new(EventType::Track, "m1");
        e.event = Some("Order Completed".into());
        e.context = Some(json!({"os": {"name": "Linux"}, "sluice": {"consent": "full", "referrer": {"medium": "direct"}}}).as_object().cloned().unwrap());
        let s = summary("web", &e, "stored", "new", json!({"d1": "written"}));
        assert_eq!(s["enrichment"]["context"]["os"]["name"], "Linux");
        assert_eq!(s["consent"]["decision"], "full");
        assert_eq!(s["deliveries"]["d1"], "written");
        assert_eq!(s["dedup"], "new");
    }
}
