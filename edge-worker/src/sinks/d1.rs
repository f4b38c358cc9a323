//! D1, the embedded default store: the `events` table (typed columns for the
//! common fields, JSON for the rest; `message_id` is the primary key, so a
//! re-delivered event is ignored) and the `counters` table.

use super::{DeliveryBatch, Encoded, Part, Sink};
use crate::db::{SqlValue, Statement};
use crate::ports::{PortError, Sql};
use sluice_shared::dest::Verdict;
use sluice_shared::{Event, Timestamp};

/// Insert an event, ignoring one already stored.
pub const INSERT: &str =
    "INSERT INTO events (message_id, source, type, event, name, anonymous_id, user_id, \
     timestamp, sent_at, received_at, properties, traits, context, raw) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14) \
     ON CONFLICT (message_id) DO NOTHING";

/// Add to a counter.
pub const COUNT: &str = "INSERT INTO counters (day, source, name, count) VALUES (?1, ?2, ?3, ?4) \
     ON CONFLICT (day, source, name) DO UPDATE SET count = count + excluded.count";

/// A counter increment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counter {
    pub day: String,
    pub source: String,
    pub name: String,
    pub count: u32,
}

fn text(v: &Option<String>) -> SqlValue {
    v.clone().map_or(SqlValue::Null, SqlValue::Text)
}

fn json<T: serde::Serialize>(v: &Option<T>) -> SqlValue {
    v.as_ref()
        .and_then(|v| serde_json::to_string(v).ok())
        .map_or(SqlValue::Null, SqlValue::Text)
}

/// The `events` row of an event.
pub fn row(source: &str, e: &Event) -> Vec<SqlValue> {
    vec![
        SqlValue::Text(e.message_id.clone()),
        SqlValue::Text(source.to_owned()),
        SqlValue::Text(e.kind.as_str().to_owned()),
        text(&e.event),
        text(&e.name),
        text(&e.anonymous_id),
        text(&e.user_id),
        text(&e.timestamp),
        text(&e.sent_at),
        SqlValue::Text(e.received_at.clone().unwrap_or_default()),
        json(&e.properties),
        json(&e.traits),
        json(&e.context),
        SqlValue::Text(serde_json::to_string(e).unwrap_or_default()),
    ]
}

/// The D1 sink: events and their identity-graph updates, in one atomic
/// statement batch per delivery batch (idempotent).
pub struct D1<'a, S> {
    pub db: &'a S,
    /// Count the rows written (`d1_written`) in the same atomic batch.
    pub count_written: bool,
}

impl<S: Sql> Sink for D1<'_, S> {
    type Request = Vec<Statement>;
    type Answer = ();

    fn encode(
        &self,
        batch: &DeliveryBatch,
        now: Timestamp,
    ) -> Result<Encoded<Vec<Statement>>, super::SinkError> {
        let mut statements: Vec<Statement> = batch
            .events
            .iter()
            .map(|e| Statement::new(INSERT, row(&batch.source, e)))
            .collect();
        for e in &batch.events {
            statements.extend(crate::identity::statements(e));
        }
        if self.count_written && !batch.events.is_empty() {
            statements.push(count_statement(&Counter {
                day: now.to_rfc3339()[..10].to_owned(),
                source: batch.source.clone(),
                name: "d1_written".into(),
                count: u32::try_from(batch.events.len()).unwrap_or(u32::MAX),
            }));
        }
        Ok(Encoded::whole(statements, batch))
    }

    async fn send(&self, statements: &Vec<Statement>) -> Result<(), PortError> {
        self.db.run(statements.clone()).await
    }

    fn classify(&self, part: &Part<Vec<Statement>>, answer: Result<(), PortError>) -> Vec<Verdict> {
        super::unit_verdicts("D1 write", &part.events, answer)
    }
}

/// Add counters.
pub async fn count(db: &impl Sql, counters: &[Counter]) -> Result<(), PortError> {
    if counters.is_empty() {
        return Ok(());
    }
    db.run(counters.iter().map(count_statement).collect()).await
}

/// The statement that adds a counter.
pub fn count_statement(c: &Counter) -> Statement {
    Statement::new(
        COUNT,
        vec![
            SqlValue::Text(c.day.clone()),
            SqlValue::Text(c.source.clone()),
            SqlValue::Text(c.name.clone()),
            SqlValue::Int(i64::from(c.count)),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_shared::EventType;

    #[test]
    fn rows_have_typed_columns_and_json() {
        let mut e = Event::new(EventType::Track, "m1");
        e.event = Some("E".into());
        e.received_at = Some("2024-05-01T00:00:00.000Z".into());
        e.properties = Some(serde_json::json!({"a": 1}).as_object().cloned().unwrap());
        let r = row("web", &e);
        assert_eq!(r.len(), 14);
        assert_eq!(r[0], SqlValue::Text("m1".into()));
        assert_eq!(r[2], SqlValue::Text("track".into()));
        assert_eq!(r[6], SqlValue::Null);
        assert_eq!(r[10], SqlValue::Text("{\"a\":1}".into()));
    }
}
