//! Fan-out: which destinations of its source an event may go to (consent,
//! opt-out), grouped into delivery batches per destination, source and
//! partition hour, each within the Queue's message limit as sent (sealed by
//! [`super::wire`] when its JSON is over one 64 KB Queue operation).

use super::Settings;
use crate::delivery::config::{Destination, Kind};
use crate::sinks::DeliveryBatch;
use sluice_shared::consent;
use sluice_shared::QueuedEvent;
use std::collections::BTreeMap;

/// Largest delivery batch message as sent, sealed or not (the Queue's
/// message limit is 128 KB): a batch over it is split in two.
pub const MAX_DELIVERY_BYTES: usize = 100 * 1024;
/// Most events in one delivery batch.
pub const MAX_DELIVERY_EVENTS: usize = 100;
/// Largest delivery batch JSON before sealing: what a destination receives
/// in one go at most.
pub const MAX_DELIVERY_JSON_BYTES: usize = 512 * 1024;
/// The same for an R2 lake, which the worker writes itself: bigger batches
/// are fewer objects (one R2 write, one index row, fewer Queue messages);
/// the sealed message limit still halves a batch that compresses badly.
pub const MAX_LAKE_EVENTS: usize = 500;
pub const MAX_LAKE_JSON_BYTES: usize = 1024 * 1024;

/// A destination's batch limits: most events, most JSON bytes.
pub fn limits(dest: &Destination) -> (usize, usize) {
    match dest.kind {
        Kind::R2 { .. } => (MAX_LAKE_EVENTS, MAX_LAKE_JSON_BYTES),
        _ => (MAX_DELIVERY_EVENTS, MAX_DELIVERY_JSON_BYTES),
    }
}

/// Whether an event goes to a destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Send,
    /// Its consent does not cover the destination's purposes.
    WithheldConsent,
    /// The person opted out of sale/sharing, and the destination's purposes include it.
    WithheldOptOut,
}

impl Route {
    /// What the live debugger shows.
    pub fn label(self) -> &'static str {
        match self {
            Route::Send => "queued",
            Route::WithheldConsent => "withheld: no consent for its purposes",
            Route::WithheldOptOut => "withheld: opted out of sale/sharing",
        }
    }
}

/// The destinations an event goes to: its source's, or for an `Audience
/// Entered` / `Audience Exited` of an audience that names `destinations`,
/// those.
fn destination_names<'a>(q: &QueuedEvent, s: &Settings<'a>, source: &'a [String]) -> &'a [String] {
    sluice_shared::dest::audience::membership(&q.event)
        .and_then(|m| s.config.audiences.routes_of(m.audience))
        .unwrap_or(source)
}

/// Each destination of the event (its source's, or its audience's), and
/// whether the event may go there.
pub fn routes<'a>(q: &QueuedEvent, s: &Settings<'a>) -> Vec<(&'a Destination, Route)> {
    let Some(source) = s.config.sources.iter().find(|src| src.name == q.source) else {
        return Vec::new();
    };
    let consent = sluice_shared::enrich::consent_of(&q.event);
    let opted_out = q
        .event
        .context_value("sluice")
        .and_then(|s| s.get("optOut"))
        .is_some_and(|v| v == &serde_json::Value::Bool(true));
    destination_names(q, s, &source.destinations)
        .iter()
        .filter_map(|name| s.destinations.iter().find(|d| &d.name == name))
        .map(|dest| {
            let route = if opted_out && dest.purposes.iter().any(consent::gpc_denies) {
                Route::WithheldOptOut
            } else if consent::may_forward(consent.as_ref(), &dest.purposes, source.consent.regime)
            {
                Route::Send
            } else {
                Route::WithheldConsent
            };
            (dest, route)
        })
        .collect()
}

/// Group events into delivery batches (JSON) per destination (consent
/// permitting), source and partition hour; count what consent withheld, by
/// `(source, "withheld_<destination>")`.
pub fn fan_out<'e>(
    events: impl IntoIterator<Item = &'e QueuedEvent>,
    s: &Settings<'_>,
) -> (Vec<String>, BTreeMap<(String, String), u32>) {
    let mut groups: BTreeMap<(String, String, String), (&Destination, Vec<&QueuedEvent>)> =
        BTreeMap::new();
    let mut withheld: BTreeMap<(String, String), u32> = BTreeMap::new();
    for q in events {
        for (dest, route) in routes(q, s) {
            if route != Route::Send {
                *withheld
                    .entry((q.source.clone(), ["withheld_", dest.name.as_str()].concat()))
                    .or_default() += 1;
                continue;
            }
            let hour = q
                .event
                .received_at
                .as_deref()
                .map_or("", |t| t.get(..13).unwrap_or(""));
            groups
                .entry((dest.name.clone(), q.source.clone(), hour.to_owned()))
                .or_insert((dest, Vec::new()))
                .1
                .push(q);
        }
    }
    let mut out = Vec::new();
    for ((destination, source, _), (dest, members)) in groups {
        let (max_events, max_bytes) = limits(dest);
        let mut chunk: Vec<&QueuedEvent> = Vec::new();
        let mut bytes = 0;
        for q in members {
            let size = serde_json::to_string(&q.event).map_or(0, |t| t.len());
            if !chunk.is_empty() && (chunk.len() == max_events || bytes + size > max_bytes) {
                push_sealed(&destination, &source, &std::mem::take(&mut chunk), &mut out);
                bytes = 0;
            }
            bytes += size;
            chunk.push(q);
        }
        if !chunk.is_empty() {
            push_sealed(&destination, &source, &chunk, &mut out);
        }
    }
    (out, withheld)
}

/// The batch's message, sealed; halved until each half is within
/// [`MAX_DELIVERY_BYTES`] as sent (a single event always goes).
fn push_sealed(destination: &str, source: &str, events: &[&QueuedEvent], out: &mut Vec<String>) {
    let message = super::wire::seal(encode_batch(destination, source, events));
    if message.len() > MAX_DELIVERY_BYTES && events.len() > 1 {
        let (a, b) = events.split_at(events.len() / 2);
        push_sealed(destination, source, a, out);
        push_sealed(destination, source, b, out);
    } else {
        out.push(message);
    }
}

/// A deterministic id for a batch: the same events for the same destination give the same id.
pub fn batch_id(destination: &str, ids: &[&str]) -> String {
    let mut sorted = ids.to_vec();
    sorted.sort_unstable();
    let key = [destination, "|", &sorted.join(",")].concat();
    sluice_shared::parse::derive_message_id(key.as_bytes())
        .trim_start_matches("sluice-")
        .to_owned()
}

fn encode_batch(destination: &str, source: &str, events: &[&QueuedEvent]) -> String {
    let ids: Vec<&str> = events.iter().map(|q| q.event.message_id.as_str()).collect();
    let batch = DeliveryBatch {
        destination: destination.to_owned(),
        source: source.to_owned(),
        batch_id: batch_id(destination, &ids),
        attempt: 1,
        events: events.iter().map(|q| q.event.clone()).collect(),
    };
    serde_json::to_string(&batch).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use serde_json::json;
    use sluice_shared::audience::Catalog;
    use sluice_shared::{Event, EventType};

    fn event(name: &str, audience: &str) -> QueuedEvent {
        let mut e = Event::new(EventType::Track, "m1");
        e.event = Some(name.into());
        e.anonymous_id = Some("d1".into());
        e.properties = json!({"audience": audience}).as_object().cloned();
        e.context = json!({"consent": {"categories": {"personalization": "granted"}}})
            .as_object()
            .cloned();
        QueuedEvent {
            source: "web".into(),
            event: e,
        }
    }

    #[test]
    fn an_audiences_events_go_to_its_destinations_and_the_rest_to_the_sources() {
        let mut config = Config::from_sources_json(
            r#"[{"name":"web","write_key":"k","allowed_origins":[],"destinations":["hook"]}]"#,
        )
        .unwrap();
        config.audiences = Catalog::parse(Some(
            &json!({"audiences": [
                {"name": "routed", "purposes": ["personalization"], "destinations": ["crm"],
                 "when": {"did": {"event": "Product Viewed"}}},
                {"name": "plain", "purposes": ["personalization"],
                 "when": {"did": {"event": "Product Viewed"}}}]})
            .to_string(),
        ))
        .unwrap();
        let destinations = crate::delivery::config::parse(Some(
            &json!([{"name": "hook", "kind": "webhook", "url": "https://a.example/h", "secret_var": "S"},
                    {"name": "crm", "kind": "webhook", "url": "https://b.example/h", "secret_var": "S"}])
            .to_string(),
        ))
        .unwrap();
        let s = Settings {
            config: &config,
            destinations: &destinations,
            shards: 1,
            faults: Default::default(),
        };
        let names = |q: &QueuedEvent| -> Vec<String> {
            routes(q, &s)
                .into_iter()
                .map(|(d, r)| format!("{}:{}", d.name, r.label()))
                .collect()
        };
        assert_eq!(names(&event("Audience Entered", "routed")), ["crm:queued"]);
        assert_eq!(names(&event("Audience Exited", "routed")), ["crm:queued"]);
        assert_eq!(names(&event("Audience Entered", "plain")), ["hook:queued"]);
        assert_eq!(
            names(&event("Product Viewed", "routed")),
            ["hook:queued"],
            "only the audience's own events are routed"
        );
        let (batches, _) = fan_out([&event("Audience Entered", "routed")], &s);
        assert_eq!(batches.len(), 1);
        assert!(
            batches[0].contains(r#""destination":"crm""#),
            "{}",
            batches[0]
        );
    }
}
