//! The columnar lake: Parquet files of events, written by the worker
//! (wasm32) with a small hand-written encoder instead of the `parquet` and
//! `arrow` crates (which would not fit the worker's size budget).
//!
//! # What is written
//!
//! One file per delivery batch, one row group per file, one column chunk per
//! column, data pages v1 (about 1 MiB each), PLAIN values, definition levels
//! as RLE runs, pages compressed with [`Codec::Gzip`] (or left
//! [`Codec::Uncompressed`]), column statistics (null counts; min/max for
//! timestamps and short text), a Thrift compact footer. The columns are in
//! [`events::EVENT_COLUMNS`]. DuckDB, Spark, ClickHouse, and BigQuery /
//! Snowflake external tables read these files as they are; `dt` and `hour`
//! come from the Hive-style path
//! (`<prefix>/source=<s>/dt=YYYY-MM-DD/hour=HH/<batch_id>.parquet`):
//!
//! ```sql
//! SELECT event, count(*) FROM read_parquet('lake/**/*.parquet', hive_partitioning = true)
//! WHERE dt = '2024-05-01' GROUP BY event;
//! ```
//!
//! # API
//!
//! - [`events_to_parquet`]: a batch of events → one file.
//! - [`parquet_to_events`], [`events_of`] (a person's rows, for an export),
//!   [`filter_out`] (an object without a person's rows, for a deletion):
//!   decode → filter → re-encode, over files of this writer.
//! - [`compact`]: many small files of one schema → one file (re-encoded in
//!   runs, the runs merged page by page with [`merge`]).
//! - Underneath, [`write`] and [`read`] over a flat [`Table`] of typed
//!   [`Column`]s, for any other flat schema.
//!
//! # File sizes and compaction
//!
//! Every file carries ~1.7 KB of footer (schema, statistics) and a gzip
//! stream per column, so small files pay for their shape. Measured on the
//! analytics.js/RudderStack fixtures after skew correction
//! (`cargo test -p sluice-shared --features lake --test lake parquet_beats -- --nocapture`):
//!
//! | events | Parquet, gzip pages | Parquet, uncompressed | NDJSON.gz |
//! | ---: | ---: | ---: | ---: |
//! | 100 | 6.3 KB | 87 KB | 4.6 KB |
//! | 1,000 | 24.1 KB | 853 KB | 32.4 KB |
//!
//! A delivery batch holds up to ~100 events, and a busy hour makes
//! thousands of such objects: each costs an R2 class A write, a class B read
//! per query, and a query engine's per-file overhead (open, footer fetch).
//! Recommended: an hourly compaction job (a Cron Trigger, once the hour is
//! closed plus the queue's longest redelivery delay) that lists
//! `dt=…/hour=HH/`, merges its objects with [`compact`] into
//! `hour=HH/compacted-<n>.parquet`, then deletes the merged inputs and
//! points their `lake_index` rows at the new key. Target: files of ≥ 8 MB
//! (≥ 64 MB where an hour holds that much; at most ~64 MB per output, as the
//! worker holds the output in memory and 128 MB is its limit), so an hour is
//! a handful of objects. [`compact`] decodes and re-encodes inputs in runs of
//! [`COMPACT_RUN_BYTES`] of decoded rows (~15,000 typical events: big pages
//! compress better, 24 KB per 1,000 events above), and joins the runs with
//! [`merge`], which copies pages without decoding them: memory stays near the
//! output's size plus one run. Writing the output before deleting the inputs
//! makes the job safe to rerun: a reader may briefly see a row twice
//! (de-duplicate on `message_id`), never zero times. A compacted file's
//! statistics let engines skip whole files by `received_at`.
//!
//! Objects are `application/vnd.apache.parquet`, keyed
//! `<prefix>/source=<s>/dt=YYYY-MM-DD/hour=HH/<batch_id>.parquet`.

mod events;
mod format;
mod merge;
mod read;
mod table;
mod thrift;
mod write;

use core::fmt;

pub use events::{
    event_schema, events_of, events_table, events_to_parquet, filter_out, parquet_to_events,
    table_events, LakeEvent, EVENT_COLUMNS,
};
pub use format::Codec;
pub use merge::{compact, compact_in_runs, merge, COMPACT_RUN_BYTES};
pub use read::read;
pub use table::{Column, Field, Kind, Table};
pub use write::{write, PAGE_BYTES};

/// Why a lake file could not be written or read.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LakeError {
    /// Not a Parquet file (no `PAR1` at both ends).
    NotParquet,
    /// A Parquet file whose structure is damaged (what is wrong, in words).
    Corrupt(&'static str),
    /// Valid Parquet this reader does not handle (nesting, dictionaries, codecs…).
    Unsupported(&'static str),
    /// A page could not be (de)compressed.
    Compression,
    /// A size past what Parquet's 32-bit fields hold.
    TooLarge,
    /// A table with a different number of fields and columns.
    ColumnCount { fields: usize, columns: usize },
    /// A column whose values are not of its field's kind.
    ColumnType { column: String },
    /// A column of another length than the first.
    RaggedColumns {
        column: String,
        rows: usize,
        expected: usize,
    },
    /// A null in a required column.
    NullInRequired { column: String, row: usize },
    /// Files or tables of different schemas (or not the events schema).
    SchemaMismatch,
    /// A cell that does not decode to its event field (JSON that is not an
    /// object, an unknown `type`).
    BadValue { column: String, row: usize },
    /// An event whose `extra` holds a key with a column of its own.
    ReservedKey { row: usize, key: &'static str },
    /// [`compact`] of no object.
    NoObjects,
}

impl LakeError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            LakeError::NotParquet => "lake_not_parquet",
            LakeError::Corrupt(_) => "lake_corrupt",
            LakeError::Unsupported(_) => "lake_unsupported",
            LakeError::Compression => "lake_compression",
            LakeError::TooLarge => "lake_too_large",
            LakeError::ColumnCount { .. } => "lake_column_count",
            LakeError::ColumnType { .. } => "lake_column_type",
            LakeError::RaggedColumns { .. } => "lake_ragged_columns",
            LakeError::NullInRequired { .. } => "lake_null_in_required",
            LakeError::SchemaMismatch => "lake_schema_mismatch",
            LakeError::BadValue { .. } => "lake_bad_value",
            LakeError::ReservedKey { .. } => "lake_reserved_key",
            LakeError::NoObjects => "lake_no_objects",
        }
    }
}

impl fmt::Display for LakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LakeError::NotParquet => f.write_str("not a Parquet file"),
            LakeError::Corrupt(what) => write!(f, "damaged Parquet file: {what}"),
            LakeError::Unsupported(what) => write!(f, "unsupported Parquet: {what}"),
            LakeError::Compression => f.write_str("a page could not be (de)compressed"),
            LakeError::TooLarge => f.write_str("too large for a Parquet file"),
            LakeError::ColumnCount { fields, columns } => {
                write!(f, "{fields} fields but {columns} columns")
            }
            LakeError::ColumnType { column } => {
                write!(f, "column {column}: values of another kind than its field")
            }
            LakeError::RaggedColumns {
                column,
                rows,
                expected,
            } => write!(f, "column {column} has {rows} rows, expected {expected}"),
            LakeError::NullInRequired { column, row } => {
                write!(f, "column {column} is required but row {row} is null")
            }
            LakeError::SchemaMismatch => f.write_str("the files' schemas differ"),
            LakeError::BadValue { column, row } => {
                write!(f, "column {column}, row {row}: not a valid event field")
            }
            LakeError::ReservedKey { row, key } => {
                write!(
                    f,
                    "row {row}: `extra` holds `{key}`, which has a column of its own"
                )
            }
            LakeError::NoObjects => f.write_str("nothing to compact"),
        }
    }
}

impl std::error::Error for LakeError {}
