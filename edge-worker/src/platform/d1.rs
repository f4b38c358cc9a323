//! The D1 events table.

use crate::consumer::EventStore;
use sluice_shared::pipeline::DropCount;
use sluice_shared::QueuedEvent;
use wasm_bindgen::JsValue;

pub struct D1Store(pub worker::D1Database);

const INSERT: &str =
    "INSERT INTO events (message_id, source, type, event, name, anonymous_id, user_id, \
     timestamp, sent_at, received_at, properties, traits, context, raw) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14) \
     ON CONFLICT (message_id) DO NOTHING";

fn opt(s: &Option<String>) -> JsValue {
    s.as_deref().map_or(JsValue::NULL, JsValue::from_str)
}

fn json_opt<T: serde::Serialize>(v: &Option<T>) -> JsValue {
    v.as_ref()
        .and_then(|v| serde_json::to_string(v).ok())
        .map_or(JsValue::NULL, |s| JsValue::from_str(&s))
}

impl EventStore for D1Store {
    async fn write(&self, events: &[QueuedEvent]) -> Result<(), String> {
        let mut statements = Vec::with_capacity(events.len());
        for q in events {
            let e = &q.event;
            let raw = serde_json::to_string(e).map_err(|err| err.to_string())?;
            let stmt = self
                .0
                .prepare(INSERT)
                .bind(&[
                    JsValue::from_str(&e.message_id),
                    JsValue::from_str(&q.source),
                    JsValue::from_str(e.kind.as_str()),
                    opt(&e.event),
                    opt(&e.name),
                    opt(&e.anonymous_id),
                    opt(&e.user_id),
                    opt(&e.timestamp),
                    opt(&e.sent_at),
                    opt(&e.received_at),
                    json_opt(&e.properties),
                    json_opt(&e.traits),
                    json_opt(&e.context),
                    JsValue::from_str(&raw),
                ])
                .map_err(|err| err.to_string())?;
            statements.push(stmt);
        }
        self.0
            .batch(statements)
            .await
            .map(|_| ())
            .map_err(|e| format!("D1 write failed: {e}"))
    }

    async fn count(&self, drops: &[DropCount]) -> Result<(), String> {
        let mut statements = Vec::with_capacity(drops.len());
        for d in drops {
            let stmt = self
                .0
                .prepare(COUNT)
                .bind(&[
                    JsValue::from_str(&d.day),
                    JsValue::from_str(&d.source),
                    JsValue::from_str(&["dropped_", d.reason.as_str()].concat()),
                    JsValue::from_f64(f64::from(d.count)),
                ])
                .map_err(|err| err.to_string())?;
            statements.push(stmt);
        }
        self.0
            .batch(statements)
            .await
            .map(|_| ())
            .map_err(|e| format!("D1 count failed: {e}"))
    }
}

const COUNT: &str = "INSERT INTO counters (day, source, name, count) VALUES (?1, ?2, ?3, ?4) \
     ON CONFLICT (day, source, name) DO UPDATE SET count = count + excluded.count";
