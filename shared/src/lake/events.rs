//! Segment Spec events as lake rows: the column schema, events → Parquet,
//! Parquet → events, and the row-level operations privacy and compaction need.
//!
//! One row per event. Ids and names are `STRING`; `timestamp` and
//! `receivedAt` are `TIMESTAMP(MILLIS, UTC)` (the collector writes both in
//! the canonical `YYYY-MM-DDTHH:MM:SS.mmmZ` form); `sentAt` and
//! `originalTimestamp` stay the client's text; `properties`, `traits`,
//! `context`, `integrations` and the fields the Spec does not name (`extra`)
//! are `JSON`. `dt` and `hour` are in the object's path, not in the file.
//!
//! Nothing is lost: a `timestamp`/`receivedAt` that is not canonical (the
//! collector never writes one) is kept as its text in `extra` under its wire
//! name, with the timestamp column null, and read back into its field; so
//! write → read is the identity on every event (a property test checks it).

use super::format::Codec;
use super::table::{Column, Field, Kind, Table};
use super::{read, write, LakeError};
use crate::event::{Event, EventType, Object};
use crate::Timestamp;
use serde_json::Value;

/// The columns of an events file, in file order: (name, kind, optional).
/// Text columns are read back by their position among the text columns
/// (`table_events`): keep the two in step.
pub const EVENT_COLUMNS: [(&str, Kind, bool); 19] = [
    ("message_id", Kind::Text, false),
    ("source", Kind::Text, false),
    ("type", Kind::Text, false),
    ("event", Kind::Text, true),
    ("name", Kind::Text, true),
    ("category", Kind::Text, true),
    ("anonymous_id", Kind::Text, true),
    ("user_id", Kind::Text, true),
    ("group_id", Kind::Text, true),
    ("previous_id", Kind::Text, true),
    ("timestamp", Kind::TimestampMillis, true),
    ("received_at", Kind::TimestampMillis, true),
    ("sent_at", Kind::Text, true),
    ("original_timestamp", Kind::Text, true),
    ("properties", Kind::Json, true),
    ("traits", Kind::Json, true),
    ("context", Kind::Json, true),
    ("integrations", Kind::Json, true),
    ("extra", Kind::Json, true),
];

/// The schema of an events file.
pub fn event_schema() -> Vec<Field> {
    EVENT_COLUMNS
        .iter()
        .map(|(name, kind, optional)| Field::new(*name, *kind, *optional))
        .collect()
}

/// An event read back from the lake, with the source it was collected for.
#[derive(Debug, Clone, PartialEq)]
pub struct LakeEvent {
    pub source: String,
    pub event: Event,
}

/// The two timestamp fields that have their own columns, by wire name.
const TIME_FIELDS: [&str; 2] = ["timestamp", "receivedAt"];

/// Milliseconds of a canonical timestamp (`None` for any other text).
fn canonical_ms(s: &str) -> Option<i64> {
    Timestamp::parse(s)
        .ok()
        .filter(|t| t.to_rfc3339() == s)
        .map(|t| t.0)
}

fn json(object: Option<&Object>) -> Option<String> {
    // Serialising a `Map<String, Value>` cannot fail (string keys only).
    object.map(|o| serde_json::to_string(o).unwrap_or_default())
}

/// The table of `events`, all collected for `source`.
pub fn events_table(events: &[Event], source: &str) -> Result<Table, LakeError> {
    let n = events.len();
    let mut text: Vec<Vec<Option<String>>> = vec![Vec::with_capacity(n); EVENT_COLUMNS.len()];
    let mut times: [Vec<Option<i64>>; 2] = [Vec::with_capacity(n), Vec::with_capacity(n)];
    for (row, e) in events.iter().enumerate() {
        let mut extra = e.extra.clone();
        for (i, (key, value)) in TIME_FIELDS
            .iter()
            .zip([&e.timestamp, &e.received_at])
            .enumerate()
        {
            if extra.contains_key(*key) {
                return Err(LakeError::ReservedKey { row, key });
            }
            let ms = value.as_deref().and_then(canonical_ms);
            if let (None, Some(raw)) = (ms, value) {
                extra.insert((*key).to_owned(), Value::String(raw.clone()));
            }
            times[i].push(ms);
        }
        let owned = |s: &Option<String>| s.clone();
        let cells = [
            Some(e.message_id.clone()),
            Some(source.to_owned()),
            Some(e.kind.as_str().to_owned()),
            owned(&e.event),
            owned(&e.name),
            owned(&e.category),
            owned(&e.anonymous_id),
            owned(&e.user_id),
            owned(&e.group_id),
            owned(&e.previous_id),
            None,
            None,
            owned(&e.sent_at),
            owned(&e.original_timestamp),
            json(e.properties.as_ref()),
            json(e.traits.as_ref()),
            json(e.context.as_ref()),
            json(e.integrations.as_ref()),
            json(Some(&extra).filter(|x| !x.is_empty())),
        ];
        for (col, cell) in text.iter_mut().zip(cells) {
            col.push(cell);
        }
    }
    let [timestamp, received_at] = times;
    let columns = EVENT_COLUMNS
        .iter()
        .zip(text)
        .map(|((name, _, _), values)| match *name {
            "timestamp" => Column::Int64(timestamp.clone()),
            "received_at" => Column::Int64(received_at.clone()),
            _ => Column::Text(values),
        })
        .collect();
    let table = Table {
        fields: event_schema(),
        columns,
    };
    table.check()?;
    Ok(table)
}

/// One Parquet file of `events`, all collected for `source`. Fails only for
/// an event no parser produces (`extra` holding `timestamp`/`receivedAt`,
/// [`LakeError::ReservedKey`]); a sink can write such a batch as NDJSON.
pub fn events_to_parquet(
    events: &[Event],
    source: &str,
    codec: Codec,
) -> Result<Vec<u8>, LakeError> {
    write(&events_table(events, source)?, codec)
}

fn text_columns(table: &Table) -> Result<Vec<&[Option<String>]>, LakeError> {
    if table.fields != event_schema() {
        return Err(LakeError::SchemaMismatch);
    }
    Ok(table
        .columns
        .iter()
        .filter_map(|c| match c {
            Column::Text(v) => Some(v.as_slice()),
            _ => None,
        })
        .collect())
}

fn int_column<'a>(table: &'a Table, name: &str) -> Result<&'a [Option<i64>], LakeError> {
    match table.column(name) {
        Some(Column::Int64(v)) => Ok(v),
        _ => Err(LakeError::SchemaMismatch),
    }
}

/// The events of a table of [`event_schema`].
pub fn table_events(table: &Table) -> Result<Vec<LakeEvent>, LakeError> {
    let t = text_columns(table)?;
    let times = [
        int_column(table, "timestamp")?,
        int_column(table, "received_at")?,
    ];
    let bad = |column: &str, row| LakeError::BadValue {
        column: column.to_owned(),
        row,
    };
    let object = |col: usize, row: usize| -> Result<Option<Object>, LakeError> {
        t[col][row]
            .as_deref()
            .map(|s| {
                serde_json::from_str::<Object>(s).map_err(|_| bad(EVENT_COLUMNS[col + 2].0, row))
            })
            .transpose()
    };
    (0..table.rows())
        .map(|row| {
            let get = |col: usize| t[col][row].clone();
            let kind = t[2][row]
                .as_deref()
                .and_then(EventType::from_name)
                .ok_or_else(|| bad("type", row))?;
            let mut e = Event::new(kind, get(0).unwrap_or_default());
            e.event = get(3);
            e.name = get(4);
            e.category = get(5);
            e.anonymous_id = get(6);
            e.user_id = get(7);
            e.group_id = get(8);
            e.previous_id = get(9);
            e.sent_at = get(10);
            e.original_timestamp = get(11);
            e.properties = object(12, row)?;
            e.traits = object(13, row)?;
            e.context = object(14, row)?;
            e.integrations = object(15, row)?;
            e.extra = object(16, row)?.unwrap_or_default();
            for (key, (column, field)) in TIME_FIELDS
                .iter()
                .zip(times.iter().zip([&mut e.timestamp, &mut e.received_at]))
            {
                *field = match column[row] {
                    Some(ms) => Some(Timestamp(ms).to_rfc3339()),
                    None => match e.extra.remove(*key) {
                        Some(Value::String(raw)) => Some(raw),
                        Some(_) => return Err(bad("extra", row)),
                        None => None,
                    },
                };
            }
            Ok(LakeEvent {
                source: get(1).unwrap_or_default(),
                event: e,
            })
        })
        .collect()
}

/// Every event of an events file, in file order.
pub fn parquet_to_events(object: &[u8]) -> Result<Vec<LakeEvent>, LakeError> {
    table_events(&read(object)?.0)
}

/// Which rows belong to any of `people` (by `user_id` or `anonymous_id`).
fn theirs(table: &Table, people: &[String]) -> Result<Vec<bool>, LakeError> {
    let t = text_columns(table)?;
    let is = |id: &Option<String>| id.as_ref().is_some_and(|id| people.contains(id));
    Ok((0..table.rows())
        .map(|row| is(&t[6][row]) || is(&t[7][row]))
        .collect())
}

/// The events of an object that belong to any of `people` (for an export).
pub fn events_of(object: &[u8], people: &[String]) -> Result<Vec<Event>, LakeError> {
    let (mut table, _) = read(object)?;
    let mine = theirs(&table, people)?;
    table.retain(&mine);
    Ok(table_events(&table)?.into_iter().map(|r| r.event).collect())
}

/// The object without the rows of `people`: the new object (`None` if no
/// row is left; the same bytes if none was theirs) and how many rows went.
/// The rewrite keeps the object's codec.
pub fn filter_out(object: &[u8], people: &[String]) -> Result<(Option<Vec<u8>>, usize), LakeError> {
    let (mut table, codec) = read(object)?;
    let mine = theirs(&table, people)?;
    let removed = mine.iter().filter(|m| **m).count();
    if removed == 0 {
        return Ok((Some(object.to_vec()), 0));
    }
    if removed == mine.len() {
        return Ok((None, removed));
    }
    let keep: Vec<bool> = mine.iter().map(|m| !m).collect();
    table.retain(&keep);
    Ok((Some(write(&table, codec)?), removed))
}
