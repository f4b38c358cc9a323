//! The Parquet writer: one row group per file, one column chunk per field,
//! data pages v1 of about [`PAGE_BYTES`] each, PLAIN values, definition
//! levels (optional columns only) as RLE runs of the RLE/bit-packed hybrid,
//! column statistics (null count always; min/max for timestamps, integers,
//! booleans and short text), and a Thrift compact `FileMetaData` footer.
//!
//! File layout: `PAR1`, for each column its pages (page header, page body),
//! the footer, the footer's length (4 bytes, little-endian), `PAR1`.

use super::format::*;
use super::table::{Column, Field, Kind, Table};
use super::thrift::{self, Writer};
use super::LakeError;
use std::ops::Range;

/// A data page is cut once its PLAIN values reach this size (readers fetch
/// and decompress a page at a time; 1 MiB is what parquet-mr and arrow use).
pub const PAGE_BYTES: usize = 1 << 20;

/// Text statistics are written only when min and max are at most this long
/// (a long max would bloat the footer, and truncating a max is not a bound).
const TEXT_STAT_BYTES: usize = 64;

/// What the footer needs to know about a written column chunk.
pub(super) struct Chunk {
    pub data_page_offset: i64,
    pub uncompressed: i64,
    pub compressed: i64,
    pub nulls: i64,
    pub min_max: Option<(Vec<u8>, Vec<u8>)>,
}

/// Encode `table` as one Parquet file. Checks the table first (see [`Table::check`]).
pub fn write(table: &Table, codec: Codec) -> Result<Vec<u8>, LakeError> {
    table.check()?;
    let rows = table.rows();
    let mut out = MAGIC.to_vec();
    let mut chunks = Vec::with_capacity(table.fields.len());
    if rows > 0 {
        for (field, column) in table.fields.iter().zip(&table.columns) {
            chunks.push(write_chunk(&mut out, field, column, codec)?);
        }
    }
    let rows = i64::try_from(rows).map_err(|_| LakeError::TooLarge)?;
    let footer = footer(&table.fields, rows, &chunks, codec)?;
    finish(out, &footer)
}

/// Append the footer, its length and the closing `PAR1`.
pub(super) fn finish(mut out: Vec<u8>, footer: &[u8]) -> Result<Vec<u8>, LakeError> {
    let len = u32::try_from(footer.len()).map_err(|_| LakeError::TooLarge)?;
    out.extend_from_slice(footer);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(MAGIC);
    Ok(out)
}

pub(super) fn offset(out: &[u8]) -> Result<i64, LakeError> {
    i64::try_from(out.len()).map_err(|_| LakeError::TooLarge)
}

fn size32(n: usize) -> Result<i32, LakeError> {
    i32::try_from(n).map_err(|_| LakeError::TooLarge)
}

fn write_chunk(
    out: &mut Vec<u8>,
    field: &Field,
    column: &Column,
    codec: Codec,
) -> Result<Chunk, LakeError> {
    let data_page_offset = offset(out)?;
    let (mut uncompressed, mut compressed) = (0usize, 0usize);
    for rows in page_ranges(column) {
        let raw = page_body(field, column, rows.clone());
        let raw_len = raw.len();
        let body = codec.compress(raw)?;
        let mut h = Writer::new();
        h.i32(1, DATA_PAGE);
        h.i32(2, size32(raw_len)?);
        h.i32(3, size32(body.len())?);
        h.begin(5);
        h.i32(1, size32(rows.len())?);
        h.i32(2, PLAIN);
        h.i32(3, RLE);
        h.i32(4, RLE);
        h.end();
        h.end();
        uncompressed += h.buf.len() + raw_len;
        compressed += h.buf.len() + body.len();
        out.extend_from_slice(&h.buf);
        out.extend_from_slice(&body);
    }
    let nulls = (0..column.len()).filter(|&i| column.is_null(i)).count();
    Ok(Chunk {
        data_page_offset,
        uncompressed: i64::try_from(uncompressed).map_err(|_| LakeError::TooLarge)?,
        compressed: i64::try_from(compressed).map_err(|_| LakeError::TooLarge)?,
        nulls: i64::try_from(nulls).map_err(|_| LakeError::TooLarge)?,
        min_max: min_max(field.kind, column),
    })
}

/// Rows per page: a new page once the values so far reach [`PAGE_BYTES`].
fn page_ranges(column: &Column) -> Vec<Range<usize>> {
    let size = |i: usize| match column {
        Column::Text(v) => v[i].as_ref().map_or(0, |s| 4 + s.len()),
        Column::Int64(_) => 8,
        Column::Bool(_) => 1,
    };
    let mut ranges = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for i in 0..column.len() {
        bytes += size(i);
        if bytes >= PAGE_BYTES {
            ranges.push(start..i + 1);
            (start, bytes) = (i + 1, 0);
        }
    }
    if start < column.len() {
        ranges.push(start..column.len());
    }
    ranges
}

/// A v1 page body: definition levels (length-prefixed, optional columns
/// only), then the non-null values PLAIN-encoded.
fn page_body(field: &Field, column: &Column, rows: Range<usize>) -> Vec<u8> {
    let mut body = Vec::new();
    if field.optional {
        let levels = rle_levels(rows.clone().map(|i| !column.is_null(i)));
        body.extend_from_slice(
            &u32::try_from(levels.len())
                .unwrap_or(u32::MAX)
                .to_le_bytes(),
        );
        body.extend_from_slice(&levels);
    }
    match column {
        Column::Text(v) => {
            for s in v[rows].iter().flatten() {
                body.extend_from_slice(&u32::try_from(s.len()).unwrap_or(u32::MAX).to_le_bytes());
                body.extend_from_slice(s.as_bytes());
            }
        }
        Column::Int64(v) => {
            for n in v[rows].iter().flatten() {
                body.extend_from_slice(&n.to_le_bytes());
            }
        }
        Column::Bool(v) => {
            // PLAIN booleans: one bit each, least significant bit first.
            let bits: Vec<bool> = v[rows].iter().flatten().copied().collect();
            for group in bits.chunks(8) {
                body.push(
                    group
                        .iter()
                        .enumerate()
                        .fold(0u8, |b, (i, &on)| b | (u8::from(on) << i)),
                );
            }
        }
    }
    body
}

/// Bit-width-1 levels as RLE runs: `varint(run << 1)` then the value byte.
pub fn rle_levels(levels: impl Iterator<Item = bool>) -> Vec<u8> {
    let mut out = Vec::new();
    let mut run: Option<(bool, u64)> = None;
    let flush = |out: &mut Vec<u8>, (value, count): (bool, u64)| {
        let mut header = count << 1;
        while header >= 0x80 {
            out.push((header as u8) | 0x80);
            header >>= 7;
        }
        out.push(header as u8);
        out.push(u8::from(value));
    };
    for level in levels {
        run = match run {
            Some((v, n)) if v == level => Some((v, n + 1)),
            Some(done) => {
                flush(&mut out, done);
                Some((level, 1))
            }
            None => Some((level, 1)),
        };
    }
    if let Some(done) = run {
        flush(&mut out, done);
    }
    out
}

/// Min and max as the statistics store them (PLAIN bytes of the value).
fn min_max(kind: Kind, column: &Column) -> Option<(Vec<u8>, Vec<u8>)> {
    match column {
        Column::Int64(v) => {
            let (lo, hi) = (v.iter().flatten().min()?, v.iter().flatten().max()?);
            Some((lo.to_le_bytes().to_vec(), hi.to_le_bytes().to_vec()))
        }
        Column::Bool(v) => {
            let (lo, hi) = (v.iter().flatten().min()?, v.iter().flatten().max()?);
            Some((vec![u8::from(*lo)], vec![u8::from(*hi)]))
        }
        Column::Text(_) if kind == Kind::Json => None,
        Column::Text(v) => {
            let lo = v
                .iter()
                .flatten()
                .min_by(|a, b| a.as_bytes().cmp(b.as_bytes()))?;
            let hi = v
                .iter()
                .flatten()
                .max_by(|a, b| a.as_bytes().cmp(b.as_bytes()))?;
            (lo.len() <= TEXT_STAT_BYTES && hi.len() <= TEXT_STAT_BYTES)
                .then(|| (lo.as_bytes().to_vec(), hi.as_bytes().to_vec()))
        }
    }
}

fn physical(kind: Kind) -> i32 {
    match kind {
        Kind::Text | Kind::Json => BYTE_ARRAY,
        Kind::TimestampMillis | Kind::Int64 => INT64,
        Kind::Bool => BOOLEAN,
    }
}

fn schema_element(w: &mut Writer, field: &Field) {
    w.begin_element();
    w.i32(1, physical(field.kind));
    w.i32(3, if field.optional { OPTIONAL } else { REQUIRED });
    w.binary(4, field.name.as_bytes());
    match field.kind {
        Kind::Text => {
            w.i32(6, CONVERTED_UTF8);
            w.begin(10);
            w.empty(LOGICAL_STRING);
            w.end();
        }
        Kind::Json => {
            w.i32(6, CONVERTED_JSON);
            w.begin(10);
            w.empty(LOGICAL_JSON);
            w.end();
        }
        Kind::TimestampMillis => {
            w.i32(6, CONVERTED_TIMESTAMP_MILLIS);
            w.begin(10);
            w.begin(LOGICAL_TIMESTAMP);
            w.bool(1, true); // isAdjustedToUTC
            w.begin(2);
            w.empty(UNIT_MILLIS);
            w.end();
            w.end();
            w.end();
        }
        Kind::Int64 | Kind::Bool => {}
    }
    w.end();
}

fn column_meta(w: &mut Writer, field: &Field, chunk: &Chunk, rows: i64, codec: Codec) {
    w.begin_element();
    w.i64(2, 0); // file_offset: deprecated, 0 when no metadata sits outside the footer
    w.begin(3);
    w.i32(1, physical(field.kind));
    let encodings: &[i32] = if field.optional {
        &[PLAIN, RLE]
    } else {
        &[PLAIN]
    };
    w.list(2, thrift::I32, encodings.len());
    for e in encodings {
        w.element_i32(*e);
    }
    w.list(3, thrift::BINARY, 1);
    w.element_binary(field.name.as_bytes());
    w.i32(4, codec.id());
    w.i64(5, rows);
    w.i64(6, chunk.uncompressed);
    w.i64(7, chunk.compressed);
    w.i64(9, chunk.data_page_offset);
    w.begin(12);
    w.i64(3, chunk.nulls);
    if let Some((min, max)) = &chunk.min_max {
        w.binary(5, max);
        w.binary(6, min);
    }
    w.end();
    w.end();
    w.end();
}

/// The Thrift `FileMetaData` of a file of `rows` rows whose column chunks
/// (one row group, or none if `chunks` is empty) are written.
pub(super) fn footer(
    fields: &[Field],
    rows: i64,
    chunks: &[Chunk],
    codec: Codec,
) -> Result<Vec<u8>, LakeError> {
    let children = size32(fields.len())?;
    let mut w = Writer::new();
    w.i32(1, 1); // version
    w.list(2, thrift::STRUCT, fields.len() + 1);
    w.begin_element();
    w.binary(4, b"schema");
    w.i32(5, children);
    w.end();
    for field in fields {
        schema_element(&mut w, field);
    }
    w.i64(3, rows);
    w.list(4, thrift::STRUCT, usize::from(!chunks.is_empty()));
    if !chunks.is_empty() {
        w.begin_element();
        w.list(1, thrift::STRUCT, chunks.len());
        for (field, chunk) in fields.iter().zip(chunks) {
            column_meta(&mut w, field, chunk, rows, codec);
        }
        w.i64(2, chunks.iter().map(|c| c.uncompressed).sum());
        w.i64(3, rows);
        w.i64(5, chunks[0].data_page_offset);
        w.i64(6, chunks.iter().map(|c| c.compressed).sum());
        w.end();
    }
    w.binary(
        6,
        concat!("sluice version ", env!("CARGO_PKG_VERSION")).as_bytes(),
    );
    w.list(7, thrift::STRUCT, fields.len());
    for _ in fields {
        w.begin_element();
        w.empty(1); // TYPE_ORDER
        w.end();
    }
    w.end();
    Ok(w.buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_cut_at_the_target_size_and_cover_every_row() {
        let column = Column::Text(
            (0..3000)
                .map(|i| (i % 4 != 0).then(|| "y".repeat(1000)))
                .collect(),
        );
        let ranges = page_ranges(&column);
        assert_eq!(ranges.len(), 3000 * 3 / 4 * 1004 / PAGE_BYTES + 1);
        assert_eq!(ranges.first().map(|r| r.start), Some(0));
        assert_eq!(ranges.last().map(|r| r.end), Some(3000));
        assert!(ranges.windows(2).all(|w| w[0].end == w[1].start));
        assert!(page_ranges(&Column::Int64(vec![])).is_empty());
    }
}
