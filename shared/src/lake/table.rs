//! The in-memory shape the Parquet writer takes and the reader gives back: a
//! flat schema of named, typed, required-or-optional columns, and one vector
//! of values per column.

use super::LakeError;

/// What a column holds, and how it is annotated in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// UTF-8 text: `BYTE_ARRAY` with the `STRING` logical type.
    Text,
    /// JSON text: `BYTE_ARRAY` with the `JSON` logical type (DuckDB reads it
    /// as `JSON`; Spark, ClickHouse and BigQuery as a string).
    Json,
    /// Milliseconds since the epoch, UTC: `INT64` with `TIMESTAMP(MILLIS, UTC)`.
    TimestampMillis,
    /// A plain `INT64`.
    Int64,
    /// A `BOOLEAN`.
    Bool,
}

/// One column of a flat schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub name: String,
    pub kind: Kind,
    /// Optional columns may hold nulls (definition level 0); required ones may not.
    pub optional: bool,
}

impl Field {
    pub fn new(name: impl Into<String>, kind: Kind, optional: bool) -> Field {
        Field {
            name: name.into(),
            kind,
            optional,
        }
    }
}

/// One column's values, row by row (`None` is null).
#[derive(Debug, Clone, PartialEq)]
pub enum Column {
    /// For [`Kind::Text`] and [`Kind::Json`].
    Text(Vec<Option<String>>),
    /// For [`Kind::TimestampMillis`] and [`Kind::Int64`].
    Int64(Vec<Option<i64>>),
    /// For [`Kind::Bool`].
    Bool(Vec<Option<bool>>),
}

impl Column {
    pub fn len(&self) -> usize {
        match self {
            Column::Text(v) => v.len(),
            Column::Int64(v) => v.len(),
            Column::Bool(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// An empty column of the physical type `kind` uses.
    pub fn empty_for(kind: Kind) -> Column {
        match kind {
            Kind::Text | Kind::Json => Column::Text(Vec::new()),
            Kind::TimestampMillis | Kind::Int64 => Column::Int64(Vec::new()),
            Kind::Bool => Column::Bool(Vec::new()),
        }
    }

    /// Whether this column's variant is the one `kind` uses.
    pub fn fits(&self, kind: Kind) -> bool {
        matches!(
            (self, kind),
            (Column::Text(_), Kind::Text | Kind::Json)
                | (Column::Int64(_), Kind::TimestampMillis | Kind::Int64)
                | (Column::Bool(_), Kind::Bool)
        )
    }

    /// Is row `i` null?
    pub fn is_null(&self, i: usize) -> bool {
        match self {
            Column::Text(v) => v[i].is_none(),
            Column::Int64(v) => v[i].is_none(),
            Column::Bool(v) => v[i].is_none(),
        }
    }

    /// Keep the rows where `keep` is true.
    pub fn retain(&mut self, keep: &[bool]) {
        fn go<T>(v: &mut Vec<T>, keep: &[bool]) {
            let mut i = 0;
            v.retain(|_| {
                i += 1;
                keep[i - 1]
            });
        }
        match self {
            Column::Text(v) => go(v, keep),
            Column::Int64(v) => go(v, keep),
            Column::Bool(v) => go(v, keep),
        }
    }

    /// Append `other`'s rows (same variant, else `false` and nothing changes).
    pub fn append(&mut self, other: Column) -> bool {
        match (self, other) {
            (Column::Text(a), Column::Text(b)) => a.extend(b),
            (Column::Int64(a), Column::Int64(b)) => a.extend(b),
            (Column::Bool(a), Column::Bool(b)) => a.extend(b),
            _ => return false,
        }
        true
    }
}

/// A flat table: a schema and one column per field, all of the same length.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub fields: Vec<Field>,
    pub columns: Vec<Column>,
}

impl Table {
    /// An empty table of this schema.
    pub fn empty(fields: Vec<Field>) -> Table {
        let columns = fields.iter().map(|f| Column::empty_for(f.kind)).collect();
        Table { fields, columns }
    }

    /// The number of rows (of the first column; [`Table::check`] enforces the rest).
    pub fn rows(&self) -> usize {
        self.columns.first().map_or(0, Column::len)
    }

    /// The column named `name`.
    pub fn column(&self, name: &str) -> Option<&Column> {
        let i = self.fields.iter().position(|f| f.name == name)?;
        self.columns.get(i)
    }

    /// Every column fits its field, all have the same length, and required
    /// columns hold no null.
    pub fn check(&self) -> Result<(), LakeError> {
        if self.fields.len() != self.columns.len() {
            return Err(LakeError::ColumnCount {
                fields: self.fields.len(),
                columns: self.columns.len(),
            });
        }
        let rows = self.rows();
        for (f, c) in self.fields.iter().zip(&self.columns) {
            if !c.fits(f.kind) {
                return Err(LakeError::ColumnType {
                    column: f.name.clone(),
                });
            }
            if c.len() != rows {
                return Err(LakeError::RaggedColumns {
                    column: f.name.clone(),
                    rows: c.len(),
                    expected: rows,
                });
            }
            if let Some(row) = (!f.optional)
                .then(|| (0..rows).find(|&i| c.is_null(i)))
                .flatten()
            {
                return Err(LakeError::NullInRequired {
                    column: f.name.clone(),
                    row,
                });
            }
        }
        Ok(())
    }

    /// Append `other`'s rows; its schema must be the same.
    pub fn append(&mut self, other: Table) -> Result<(), LakeError> {
        if other.fields != self.fields {
            return Err(LakeError::SchemaMismatch);
        }
        for (a, b) in self.columns.iter_mut().zip(other.columns) {
            if !a.append(b) {
                return Err(LakeError::SchemaMismatch);
            }
        }
        Ok(())
    }

    /// Roughly the memory the rows take (cells and text).
    pub fn heap_bytes(&self) -> usize {
        self.columns
            .iter()
            .map(|c| match c {
                Column::Text(v) => v
                    .iter()
                    .map(|s| 24 + s.as_ref().map_or(0, String::len))
                    .sum(),
                Column::Int64(v) => v.len() * 16,
                Column::Bool(v) => v.len() * 2,
            })
            .sum()
    }

    /// Keep the rows where `keep` is true (`keep.len()` must be [`Table::rows`]).
    pub fn retain(&mut self, keep: &[bool]) {
        for c in &mut self.columns {
            c.retain(keep);
        }
    }
}
