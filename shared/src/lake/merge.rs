//! Merging files without decoding them into one table: a file's pages are
//! self-contained (v1 pages carry their own levels and are compressed one by
//! one), so the merged file's column chunk is the inputs' pages of that
//! column, copied in order, with the footer's counts summed and statistics
//! combined. Memory is the output plus one input, whatever the row count.

use super::format::{Codec, MAGIC};
use super::read::{footer, read, schema};
use super::table::{Field, Kind, Table};
use super::thrift::{Struct, Value};
use super::write::{finish, footer as write_footer, offset, write, Chunk};
use super::LakeError;

/// One input column chunk: its pages' bytes and what its footer says of them.
struct Part<'a> {
    pages: &'a [u8],
    uncompressed: i64,
    values: i64,
    nulls: i64,
    min_max: Option<(Vec<u8>, Vec<u8>)>,
}

/// The parts of every column (across the file's row groups), and their codec.
fn parts<'a>(
    bytes: &'a [u8],
    meta: &Struct,
    columns: usize,
) -> Result<(Option<Codec>, Vec<Vec<Part<'a>>>), LakeError> {
    let mut codec = None;
    let mut out: Vec<Vec<Part<'a>>> = (0..columns).map(|_| Vec::new()).collect();
    for group in meta.list(4).unwrap_or_default() {
        let Value::Struct(group) = group else {
            return Err(LakeError::Corrupt("a row group is not a struct"));
        };
        for (i, chunk) in group.list(1).unwrap_or_default().iter().enumerate() {
            let chunk = match chunk {
                Value::Struct(c) => c.strukt(3),
                _ => None,
            }
            .ok_or(LakeError::Corrupt("a column chunk without metadata"))?;
            if chunk.get(11).is_some() {
                return Err(LakeError::Unsupported("dictionary pages"));
            }
            let this = Codec::from_id(chunk.need_int(4, "a column without codec")?)?;
            if codec.is_some_and(|c| c != this) {
                return Err(LakeError::Unsupported("merging files of different codecs"));
            }
            codec = Some(this);
            let start = usize::try_from(chunk.need_int(9, "a column without data_page_offset")?);
            let len = usize::try_from(chunk.need_int(7, "a column without compressed size")?);
            let pages = match (start, len) {
                (Ok(s), Ok(l)) => s.checked_add(l).and_then(|e| bytes.get(s..e)),
                _ => None,
            }
            .ok_or(LakeError::Corrupt(
                "a column chunk runs past the end of the file",
            ))?;
            let stats = chunk.strukt(12);
            let nulls = stats.and_then(|s| s.int(3)).ok_or(LakeError::Unsupported(
                "merging columns without null counts",
            ))?;
            let min_max = stats.and_then(|s| Some((s.binary(6)?.to_vec(), s.binary(5)?.to_vec())));
            out.get_mut(i)
                .ok_or(LakeError::Corrupt(
                    "a row group's columns differ from the schema",
                ))?
                .push(Part {
                    pages,
                    uncompressed: chunk.need_int(6, "a column without uncompressed size")?,
                    values: chunk.need_int(5, "a column without num_values")?,
                    nulls,
                    min_max,
                });
        }
    }
    Ok((codec, out))
}

/// `a < b` in the column order of `kind` (signed for integers, bytes otherwise).
fn less(kind: Kind, a: &[u8], b: &[u8]) -> bool {
    let int = |v: &[u8]| <[u8; 8]>::try_from(v).map(i64::from_le_bytes).unwrap_or(0);
    match kind {
        Kind::Int64 | Kind::TimestampMillis => int(a) < int(b),
        Kind::Text | Kind::Json | Kind::Bool => a < b,
    }
}

/// Merge files of one schema and codec into one, rows in the order given,
/// by copying their pages. Every input is decoded once first (one at a
/// time), so a damaged input is an error and never copied into the output.
pub fn merge<B: AsRef<[u8]>>(objects: &[B]) -> Result<Vec<u8>, LakeError> {
    let mut fields: Option<Vec<Field>> = None;
    let mut codec = None;
    let mut inputs = Vec::with_capacity(objects.len());
    let mut rows = 0i64;
    for object in objects {
        let bytes = object.as_ref();
        read(bytes)?;
        let meta = footer(bytes)?;
        let these = schema(&meta)?;
        if fields.as_ref().is_some_and(|f| *f != these) {
            return Err(LakeError::SchemaMismatch);
        }
        let (this, cols) = parts(bytes, &meta, these.len())?;
        if let (Some(a), Some(b)) = (codec, this) {
            if a != b {
                return Err(LakeError::Unsupported("merging files of different codecs"));
            }
        }
        codec = codec.or(this);
        rows = rows.saturating_add(meta.need_int(3, "a file without num_rows")?);
        fields = Some(these);
        inputs.push(cols);
    }
    let fields = fields.ok_or(LakeError::NoObjects)?;
    let Some(codec) = codec.filter(|_| rows > 0) else {
        return write(&Table::empty(fields), Codec::Uncompressed);
    };
    let mut out = MAGIC.to_vec();
    let mut chunks = Vec::with_capacity(fields.len());
    for (c, field) in fields.iter().enumerate() {
        let mut chunk = Chunk {
            data_page_offset: offset(&out)?,
            uncompressed: 0,
            compressed: 0,
            nulls: 0,
            min_max: None,
        };
        let mut known = field.kind != Kind::Json;
        for part in inputs.iter().flat_map(|cols| &cols[c]) {
            out.extend_from_slice(part.pages);
            chunk.uncompressed += part.uncompressed;
            chunk.compressed += i64::try_from(part.pages.len()).map_err(|_| LakeError::TooLarge)?;
            chunk.nulls += part.nulls;
            if part.values == part.nulls {
                continue; // all null: says nothing of min and max
            }
            match (&part.min_max, chunk.min_max.take()) {
                (None, _) => known = false,
                (Some(this), None) => chunk.min_max = Some(this.clone()),
                (Some((lo, hi)), Some((min, max))) => {
                    let min = if less(field.kind, lo, &min) {
                        lo.clone()
                    } else {
                        min
                    };
                    let max = if less(field.kind, &max, hi) {
                        hi.clone()
                    } else {
                        max
                    };
                    chunk.min_max = Some((min, max));
                }
            }
        }
        if !known {
            chunk.min_max = None;
        }
        chunks.push(chunk);
    }
    let footer = write_footer(&fields, rows, &chunks, codec)?;
    finish(out, &footer)
}

/// [`compact`] re-encodes inputs together while their decoded rows stay
/// under this many bytes of memory (~15,000 typical events), then merges
/// those runs page by page.
pub const COMPACT_RUN_BYTES: usize = 16 << 20;

/// Merge objects of one schema into one file, rows in the order given:
/// inputs are decoded and re-encoded together in runs of up to
/// [`COMPACT_RUN_BYTES`] (bigger pages compress better), and the runs are
/// then [`merge`]d by copying pages, so memory stays near the output's size.
pub fn compact<B: AsRef<[u8]>>(objects: &[B], codec: Codec) -> Result<Vec<u8>, LakeError> {
    compact_in_runs(objects, codec, COMPACT_RUN_BYTES)
}

/// [`compact`] with runs of `run_bytes` of decoded rows.
pub fn compact_in_runs<B: AsRef<[u8]>>(
    objects: &[B],
    codec: Codec,
    run_bytes: usize,
) -> Result<Vec<u8>, LakeError> {
    let mut runs = Vec::new();
    let mut run: Option<(Table, usize)> = None;
    for object in objects {
        let (table, _) = read(object.as_ref())?;
        let bytes = table.heap_bytes();
        run = Some(match run.take() {
            Some((mut acc, size)) => {
                acc.append(table)?;
                (acc, size + bytes)
            }
            None => (table, bytes),
        });
        if run.as_ref().is_some_and(|(_, size)| *size >= run_bytes) {
            if let Some((table, _)) = run.take() {
                runs.push(write(&table, codec)?);
            }
        }
    }
    if let Some((table, _)) = run {
        runs.push(write(&table, codec)?);
    }
    match runs.len() {
        0 => Err(LakeError::NoObjects),
        1 => Ok(runs.swap_remove(0)),
        _ => merge(&runs),
    }
}
