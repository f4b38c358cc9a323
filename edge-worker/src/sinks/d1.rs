//! D1, the embedded default store: the `events` table (typed columns for the
//! common fields, JSON for the rest; `message_id` is the primary key, so a
//! re-delivered event is ignored) and the `counters` table.

use super::SinkError;
use sluice_shared::QueuedEvent;

/// A value bound to a statement.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlValue {
    Null,
    Text(String),
    Int(i64),
}

/// One SQL statement with its parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    pub sql: String,
    pub params: Vec<SqlValue>,
}

impl Statement {
    pub fn new(sql: &str, params: Vec<SqlValue>) -> Statement {
        Statement {
            sql: sql.to_owned(),
            params,
        }
    }
}

/// A SQL database (D1).
#[allow(async_fn_in_trait)]
pub trait Sql {
    /// Run the statements in order, atomically.
    async fn run(&self, statements: Vec<Statement>) -> Result<(), String>;
    /// The rows of a query, as JSON objects.
    async fn query(
        &self,
        sql: &str,
        params: Vec<SqlValue>,
    ) -> Result<Vec<serde_json::Value>, String>;
}

/// A text parameter.
pub fn text_value(s: &str) -> SqlValue {
    SqlValue::Text(s.to_owned())
}

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
pub fn row(q: &QueuedEvent) -> Vec<SqlValue> {
    let e = &q.event;
    vec![
        SqlValue::Text(e.message_id.clone()),
        SqlValue::Text(q.source.clone()),
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

/// Write events, their identity-graph updates and `counters`, in one atomic
/// batch (idempotent for the rows; the counters count every write).
pub async fn write(
    db: &impl Sql,
    events: &[QueuedEvent],
    counters: &[Counter],
) -> Result<(), SinkError> {
    if events.is_empty() {
        return Ok(());
    }
    let mut statements: Vec<Statement> = events
        .iter()
        .map(|q| Statement::new(INSERT, row(q)))
        .collect();
    for q in events {
        statements.extend(crate::identity::statements(q));
    }
    statements.extend(counters.iter().map(count_statement));
    db.run(statements)
        .await
        .map_err(|e| SinkError::Retryable(format!("D1 write failed: {e}")))
}

fn count_statement(c: &Counter) -> Statement {
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

/// Add counters.
pub async fn count(db: &impl Sql, counters: &[Counter]) -> Result<(), SinkError> {
    if counters.is_empty() {
        return Ok(());
    }
    let statements = counters.iter().map(count_statement).collect();
    db.run(statements)
        .await
        .map_err(|e| SinkError::Retryable(format!("D1 count failed: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_shared::{Event, EventType};

    #[test]
    fn rows_have_typed_columns_and_json() {
        let mut e = Event::new(EventType::Track, "m1");
        e.event = Some("E".into());
        e.received_at = Some("2024-05-01T00:00:00.000Z".into());
        e.properties = Some(serde_json::json!({"a": 1}).as_object().cloned().unwrap());
        let r = row(&QueuedEvent {
            source: "web".into(),
            event: e,
        });
        assert_eq!(r.len(), 14);
        assert_eq!(r[0], SqlValue::Text("m1".into()));
        assert_eq!(r[2], SqlValue::Text("track".into()));
        assert_eq!(r[6], SqlValue::Null);
        assert_eq!(r[10], SqlValue::Text("{\"a\":1}".into()));
    }
}
