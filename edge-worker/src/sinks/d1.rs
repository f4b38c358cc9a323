//! D1, the hot window: the `events` table (typed columns for the common
//! fields, `properties`/`traits`/`context` as JSON and the remaining fields in
//! `extra`, so each event is stored once; keyed by `(person, message_id)`, so a
//! re-delivered event is ignored and every query by person reads the key) and
//! the `counters` table. See `migrations/0004_lean_rows.sql` for why the rows
//! are shaped so: D1 bills each row and each index entry written.

use super::{DeliveryBatch, Encoded, Part, Sink};
use crate::db::{SqlValue, Statement};
use crate::identity;
use crate::ports::{PortError, Sql};
use sluice_shared::dest::Verdict;
use sluice_shared::{Event, Timestamp};

/// Insert an event, ignoring one already stored.
pub const INSERT: &str =
    "INSERT INTO events (message_id, person, source, type, event, name, anonymous_id, user_id, \
     timestamp, sent_at, received_at, properties, traits, context, extra) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15) \
     ON CONFLICT (person, message_id) DO NOTHING";

/// The columns [`event_of`] rebuilds an event from.
pub const COLUMNS: &str = "message_id, source, type, event, name, anonymous_id, user_id, \
     timestamp, sent_at, received_at, properties, traits, context, extra";

/// The key an event is stored under beside its `message_id`: whose it is.
pub fn person(e: &Event) -> &str {
    e.anonymous_id
        .as_deref()
        .or(e.user_id.as_deref())
        .unwrap_or_default()
}

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

/// The event's fields that have no column of their own, or `None`.
fn extra(e: &Event) -> Option<serde_json::Map<String, serde_json::Value>> {
    use serde_json::Value;
    let mut m = e.extra.clone();
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            m.insert(k.to_owned(), v);
        }
    };
    put("category", e.category.clone().map(Value::String));
    put("groupId", e.group_id.clone().map(Value::String));
    put("previousId", e.previous_id.clone().map(Value::String));
    put(
        "originalTimestamp",
        e.original_timestamp.clone().map(Value::String),
    );
    put("integrations", e.integrations.clone().map(Value::Object));
    (!m.is_empty()).then_some(m)
}

/// The `events` row of an event.
pub fn row(source: &str, e: &Event) -> Vec<SqlValue> {
    vec![
        SqlValue::Text(e.message_id.clone()),
        SqlValue::Text(person(e).to_owned()),
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
        json(&extra(e)),
    ]
}

/// The event a row of [`COLUMNS`] holds, as it was accepted (`source` beside it).
pub fn event_of(row: &serde_json::Value) -> Option<serde_json::Value> {
    use serde_json::Value;
    let mut e = serde_json::Map::new();
    let fields = [
        ("message_id", "messageId"),
        ("type", "type"),
        ("anonymous_id", "anonymousId"),
        ("user_id", "userId"),
        ("event", "event"),
        ("name", "name"),
        ("timestamp", "timestamp"),
        ("sent_at", "sentAt"),
        ("received_at", "receivedAt"),
        ("source", "source"),
    ];
    for (column, field) in fields {
        if let Some(v) = row.get(column).filter(|v| !v.is_null()) {
            e.insert(field.to_owned(), v.clone());
        }
    }
    for (column, field) in [
        ("properties", "properties"),
        ("traits", "traits"),
        ("context", "context"),
    ] {
        if let Some(text) = row.get(column).and_then(Value::as_str) {
            e.insert(field.to_owned(), serde_json::from_str(text).ok()?);
        }
    }
    if let Some(text) = row.get("extra").and_then(Value::as_str) {
        let Value::Object(rest) = serde_json::from_str(text).ok()? else {
            return None;
        };
        e.extend(rest);
    }
    e.contains_key("messageId").then_some(Value::Object(e))
}

/// The D1 sink: events and their identity-graph updates, in one atomic
/// statement batch per delivery batch (idempotent).
pub struct D1<'a, S> {
    pub db: &'a S,
    /// Count the rows written (`d1_written`) in the same atomic batch.
    pub count_written: bool,
    /// Write the event rows (`false`: lake-only, or D1 full): the identity
    /// graph's statements are written either way.
    pub events: bool,
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
            .filter(|_| self.events)
            .map(|e| Statement::new(INSERT, row(&batch.source, e)))
            .collect();
        // In time order: a consent snapshot is judged against the record
        // before it (the other identity statements do not depend on order).
        let mut by_time: Vec<&Event> = batch.events.iter().collect();
        by_time.sort_by(|a, b| {
            (identity::at(a), &a.message_id).cmp(&(identity::at(b), &b.message_id))
        });
        for e in by_time {
            statements.extend(identity::statements(e));
        }
        if self.count_written && self.events && !batch.events.is_empty() {
            statements.push(count_statement(&Counter {
                day: now.day(),
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
/// The same increments, one per counter (`day`, `source`, `name`), in the
/// order each first appears: an upsert is a row written, so ten `+1`s to one
/// counter cost ten rows and one `+10` costs one.
pub fn merged(counters: &[Counter]) -> Vec<Counter> {
    let mut out: Vec<Counter> = Vec::with_capacity(counters.len());
    for c in counters {
        let same = |o: &&mut Counter| o.day == c.day && o.source == c.source && o.name == c.name;
        match out.iter_mut().find(same) {
            Some(o) => o.count = o.count.saturating_add(c.count),
            None => out.push(c.clone()),
        }
    }
    out
}

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
    fn increments_of_one_counter_are_one_upsert() {
        let c = |day: &str, name: &str, count: u32| Counter {
            day: day.into(),
            source: "web".into(),
            name: name.into(),
            count,
        };
        let merged = merged(&[
            c("2024-05-01", "delivered_lake", 50),
            c("2024-05-01", "delivered_hook", 50),
            c("2024-05-01", "delivered_lake", 50),
            c("2024-05-02", "delivered_lake", 1),
        ]);
        assert_eq!(
            merged,
            [
                c("2024-05-01", "delivered_lake", 100),
                c("2024-05-01", "delivered_hook", 50),
                c("2024-05-02", "delivered_lake", 1),
            ]
        );
    }

    #[test]
    fn rows_have_typed_columns_and_json() {
        let mut e = Event::new(EventType::Track, "m1");
        e.event = Some("E".into());
        e.received_at = Some("2024-05-01T00:00:00.000Z".into());
        e.properties = Some(serde_json::json!({"a": 1}).as_object().cloned().unwrap());
        e.anonymous_id = Some("a1".into());
        e.integrations = Some(
            serde_json::json!({"All": false})
                .as_object()
                .cloned()
                .unwrap(),
        );
        let r = row("web", &e);
        assert_eq!(r.len(), 15);
        assert_eq!(r[0], SqlValue::Text("m1".into()));
        assert_eq!(r[1], SqlValue::Text("a1".into()), "the person");
        assert_eq!(r[3], SqlValue::Text("track".into()));
        assert_eq!(r[7], SqlValue::Null);
        assert_eq!(r[11], SqlValue::Text("{\"a\":1}".into()));
        assert_eq!(
            r[14],
            SqlValue::Text("{\"integrations\":{\"All\":false}}".into()),
            "only what has no column of its own"
        );
    }

    #[test]
    fn an_event_comes_back_from_its_row_as_it_was_accepted() {
        let raw = r#"{"type":"track","messageId":"m2","userId":"u","event":"E","category":"c",
            "properties":{"p":[1,2]},"context":{"ip":"1.2.3.0"},"integrations":{"All":true},
            "timestamp":"2024-05-01T00:00:00.000Z","originalTimestamp":"2024-05-01T00:00:00.000Z",
            "receivedAt":"2024-05-01T00:00:01.000Z","custom":7}"#;
        let e: Event = serde_json::from_str(raw).unwrap();
        let names = COLUMNS.split(',').map(str::trim);
        let values = row("web", &e)
            .into_iter()
            .enumerate()
            .filter(|(i, _)| *i != 1);
        let as_json: serde_json::Map<String, serde_json::Value> = names
            .zip(values)
            .map(|(n, (_, v))| {
                let v = match v {
                    SqlValue::Null => serde_json::Value::Null,
                    SqlValue::Text(t) => serde_json::Value::String(t),
                    SqlValue::Int(i) => i.into(),
                };
                (n.to_owned(), v)
            })
            .collect();
        let mut want: serde_json::Value = serde_json::from_str(raw).unwrap();
        want["source"] = "web".into();
        assert_eq!(event_of(&serde_json::Value::Object(as_json)), Some(want));
    }
}
