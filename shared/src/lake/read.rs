//! A minimal Parquet reader for what [`super::write`] writes (and other flat
//! files made the same way): flat required/optional columns of the kinds in
//! [`Kind`], data pages v1, PLAIN values, RLE/bit-packed definition levels,
//! UNCOMPRESSED or GZIP, any number of row groups. Anything else (nesting,
//! dictionary pages, other codecs) is a typed `Unsupported` error. Every
//! offset and length is checked: a damaged object is an error, not a panic.

use super::format::*;
use super::table::{Column, Field, Kind, Table};
use super::thrift::{self, Struct, Value};
use super::LakeError;

/// Decode a whole file: its table, and the codec its pages use (for rewriting
/// it the same way).
pub fn read(bytes: &[u8]) -> Result<(Table, Codec), LakeError> {
    let meta = footer(bytes)?;
    let fields = schema(&meta)?;
    let mut table = Table::empty(fields);
    let mut codec = Codec::Uncompressed;
    for group in meta.list(4).ok_or(LakeError::Corrupt("no row groups"))? {
        let Value::Struct(group) = group else {
            return Err(LakeError::Corrupt("a row group is not a struct"));
        };
        let chunks = group
            .list(1)
            .ok_or(LakeError::Corrupt("a row group without columns"))?;
        if chunks.len() != table.fields.len() {
            return Err(LakeError::Corrupt(
                "a row group's columns differ from the schema",
            ));
        }
        let rows = group.need_int(3, "a row group without num_rows")?;
        for (i, chunk) in chunks.iter().enumerate() {
            let Value::Struct(chunk) = chunk else {
                return Err(LakeError::Corrupt("a column chunk is not a struct"));
            };
            let meta = chunk
                .strukt(3)
                .ok_or(LakeError::Unsupported("column metadata outside the footer"))?;
            codec = Codec::from_id(meta.need_int(4, "a column without codec")?)?;
            let column = read_chunk(bytes, &table.fields[i], meta, codec)?;
            if i64::try_from(column.len()).ok() != Some(rows) {
                return Err(LakeError::Corrupt(
                    "a column chunk's rows differ from its row group's",
                ));
            }
            if !table.columns[i].append(column) {
                return Err(LakeError::Corrupt("a column chunk of the wrong type"));
            }
        }
    }
    table.check()?;
    Ok((table, codec))
}

/// The decoded `FileMetaData` of a file.
pub(super) fn footer(bytes: &[u8]) -> Result<Struct, LakeError> {
    let n = bytes.len();
    if n < 12 || &bytes[..4] != MAGIC || &bytes[n - 4..] != MAGIC {
        return Err(LakeError::NotParquet);
    }
    let mut len = [0u8; 4];
    len.copy_from_slice(&bytes[n - 8..n - 4]);
    let len = usize::try_from(u32::from_le_bytes(len)).map_err(|_| LakeError::TooLarge)?;
    let start = (n - 8)
        .checked_sub(len)
        .filter(|s| *s >= 4)
        .ok_or(LakeError::Corrupt("footer length runs past the start"))?;
    Ok(thrift::read_struct(&bytes[start..n - 8])?.0)
}

/// The flat schema of a `FileMetaData`.
pub(super) fn schema(meta: &Struct) -> Result<Vec<Field>, LakeError> {
    let elements = meta.list(2).ok_or(LakeError::Corrupt("no schema"))?;
    let (root, leaves) = elements
        .split_first()
        .ok_or(LakeError::Corrupt("an empty schema"))?;
    let Value::Struct(root) = root else {
        return Err(LakeError::Corrupt("a schema element is not a struct"));
    };
    if usize::try_from(root.int(5).unwrap_or(-1)).ok() != Some(leaves.len()) {
        return Err(LakeError::Unsupported("a nested schema"));
    }
    leaves
        .iter()
        .map(|leaf| match leaf {
            Value::Struct(s) => field(s),
            _ => Err(LakeError::Corrupt("a schema element is not a struct")),
        })
        .collect()
}

fn field(s: &Struct) -> Result<Field, LakeError> {
    if s.get(5).is_some() {
        return Err(LakeError::Unsupported("a nested schema"));
    }
    let name = s
        .binary(4)
        .and_then(|b| std::str::from_utf8(b).ok())
        .ok_or(LakeError::Corrupt("a column without a UTF-8 name"))?;
    let optional = match s.need_int(3, "a column without repetition")? {
        0 => false,
        1 => true,
        _ => return Err(LakeError::Unsupported("a repeated column")),
    };
    let logical = s.strukt(10);
    let has = |id: i16| logical.is_some_and(|l| l.get(id).is_some());
    let converted = s.int(6);
    let kind = match i32::try_from(s.need_int(1, "a column without type")?).unwrap_or(-1) {
        BYTE_ARRAY if has(LOGICAL_JSON) || converted == Some(i64::from(CONVERTED_JSON)) => {
            Kind::Json
        }
        BYTE_ARRAY => Kind::Text,
        INT64 if has(LOGICAL_TIMESTAMP) || converted.is_some() => {
            let millis = logical
                .and_then(|l| l.strukt(LOGICAL_TIMESTAMP))
                .and_then(|t| t.strukt(2))
                .map_or(
                    converted == Some(i64::from(CONVERTED_TIMESTAMP_MILLIS)),
                    |unit| unit.get(UNIT_MILLIS).is_some(),
                );
            if !millis {
                return Err(LakeError::Unsupported(
                    "an INT64 column other than TIMESTAMP(MILLIS)",
                ));
            }
            Kind::TimestampMillis
        }
        INT64 => Kind::Int64,
        BOOLEAN => Kind::Bool,
        _ => {
            return Err(LakeError::Unsupported(
                "a physical type other than BYTE_ARRAY, INT64, BOOLEAN",
            ))
        }
    };
    Ok(Field::new(name, kind, optional))
}

fn at(bytes: &[u8], from: i64, len: usize) -> Result<&[u8], LakeError> {
    let from = usize::try_from(from).map_err(|_| LakeError::Corrupt("a negative offset"))?;
    from.checked_add(len)
        .and_then(|end| bytes.get(from..end))
        .ok_or(LakeError::Corrupt("a page runs past the end of the file"))
}

fn read_chunk(
    bytes: &[u8],
    field: &Field,
    meta: &Struct,
    codec: Codec,
) -> Result<Column, LakeError> {
    if meta.get(11).is_some() {
        return Err(LakeError::Unsupported("dictionary pages"));
    }
    let values = meta.need_int(5, "a column without num_values")?;
    // Every row of a file this writer makes takes at least 4 bytes (its
    // message id); a footer claiming far more rows than the file could hold
    // is damaged, and would only make us allocate for nothing.
    if values < 0
        || values
            > i64::try_from(bytes.len())
                .unwrap_or(i64::MAX)
                .saturating_mul(64)
    {
        return Err(LakeError::Corrupt("more values than the file could hold"));
    }
    let mut pos = meta.need_int(9, "a column without data_page_offset")?;
    let mut column = Column::empty_for(field.kind);
    while i64::try_from(column.len()).unwrap_or(i64::MAX) < values {
        let rest = usize::try_from(pos)
            .ok()
            .and_then(|p| bytes.get(p..))
            .ok_or(LakeError::Corrupt("a page offset past the end of the file"))?;
        let (header, used) = thrift::read_struct(rest)?;
        if header.int(1) != Some(i64::from(DATA_PAGE)) {
            return Err(LakeError::Unsupported("a page other than a v1 data page"));
        }
        let size = |id, what| {
            header
                .int(id)
                .and_then(|n| usize::try_from(n).ok())
                .ok_or(LakeError::Corrupt(what))
        };
        let raw_size = size(2, "a page without uncompressed size")?;
        let stored = size(3, "a page without compressed size")?;
        let body_at = pos + i64::try_from(used).map_err(|_| LakeError::TooLarge)?;
        let body = codec.decompress(at(bytes, body_at, stored)?, raw_size)?;
        if body.len() != raw_size {
            return Err(LakeError::Corrupt("a page's size differs from its header"));
        }
        let data = header
            .strukt(5)
            .ok_or(LakeError::Corrupt("a data page without header"))?;
        if data.int(2) != Some(i64::from(PLAIN)) {
            return Err(LakeError::Unsupported("a value encoding other than PLAIN"));
        }
        let left = values - i64::try_from(column.len()).unwrap_or(i64::MAX);
        let n = data.need_int(1, "a page without num_values")?;
        if !(1..=left).contains(&n) {
            return Err(LakeError::Corrupt("a page's num_values is out of range"));
        }
        let n = usize::try_from(n).map_err(|_| LakeError::TooLarge)?;
        let page = decode_page(field, &body, n)?;
        column.append(page);
        pos = body_at + i64::try_from(stored).map_err(|_| LakeError::TooLarge)?;
    }
    if i64::try_from(column.len()).ok() != Some(values) {
        return Err(LakeError::Corrupt(
            "pages hold more values than their column",
        ));
    }
    Ok(column)
}

fn decode_page(field: &Field, body: &[u8], n: usize) -> Result<Column, LakeError> {
    let (present, mut values) = if field.optional {
        let len = body
            .get(..4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .and_then(|l| usize::try_from(l).ok())
            .ok_or(LakeError::Corrupt("definition levels truncated"))?;
        let levels = body
            .get(4..4 + len)
            .ok_or(LakeError::Corrupt("definition levels truncated"))?;
        (hybrid_levels(levels, n)?, &body[4 + len..])
    } else {
        (vec![true; n], body)
    };
    let truncated = LakeError::Corrupt("page values truncated");
    Ok(match field.kind {
        Kind::Text | Kind::Json => {
            let mut out = Vec::with_capacity(n);
            for &p in &present {
                out.push(if p {
                    let len = values.get(..4).ok_or(truncated.clone())?;
                    let len = usize::try_from(u32::from_le_bytes([len[0], len[1], len[2], len[3]]))
                        .map_err(|_| LakeError::TooLarge)?;
                    let s = values.get(4..4 + len).ok_or(truncated.clone())?;
                    values = &values[4 + len..];
                    Some(
                        String::from_utf8(s.to_vec())
                            .map_err(|_| LakeError::Corrupt("text that is not UTF-8"))?,
                    )
                } else {
                    None
                });
            }
            Column::Text(out)
        }
        Kind::TimestampMillis | Kind::Int64 => {
            let mut out = Vec::with_capacity(n);
            for &p in &present {
                out.push(if p {
                    let b = values.get(..8).ok_or(truncated.clone())?;
                    values = &values[8..];
                    let mut le = [0u8; 8];
                    le.copy_from_slice(b);
                    Some(i64::from_le_bytes(le))
                } else {
                    None
                });
            }
            Column::Int64(out)
        }
        Kind::Bool => {
            let mut out = Vec::with_capacity(n);
            let mut bit = 0usize;
            for &p in &present {
                out.push(if p {
                    let byte = values.get(bit / 8).ok_or(truncated.clone())?;
                    bit += 1;
                    Some(byte >> ((bit - 1) % 8) & 1 == 1)
                } else {
                    None
                });
            }
            Column::Bool(out)
        }
    })
}

/// `n` bit-width-1 levels of the RLE/bit-packed hybrid: RLE runs
/// (`varint(count << 1)`, one value byte) and bit-packed runs
/// (`varint(groups << 1 | 1)`, `groups` bytes of 8 levels each, LSB first).
pub fn hybrid_levels(mut data: &[u8], n: usize) -> Result<Vec<bool>, LakeError> {
    let truncated = LakeError::Corrupt("definition levels truncated");
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let mut header = 0u64;
        let mut shift = 0;
        loop {
            let (&b, rest) = data.split_first().ok_or(truncated.clone())?;
            data = rest;
            header |= u64::from(b & 0x7F) << shift;
            if b & 0x80 == 0 {
                break;
            }
            shift += 7;
            if shift > 63 {
                return Err(LakeError::Corrupt("definition levels: varint too long"));
            }
        }
        let count = usize::try_from(header >> 1).map_err(|_| LakeError::TooLarge)?;
        let left = n - out.len();
        if header & 1 == 0 {
            let (&v, rest) = data.split_first().ok_or(truncated.clone())?;
            data = rest;
            if v > 1 {
                return Err(LakeError::Corrupt("a definition level above 1"));
            }
            out.extend(std::iter::repeat_n(v == 1, count.min(left)));
        } else {
            let packed = data.get(..count).ok_or(truncated.clone())?;
            data = &data[count..];
            let bits = packed
                .iter()
                .flat_map(|b| (0..8).map(move |i| b >> i & 1 == 1));
            out.extend(bits.take(left));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_decode_from_rle_and_bit_packed_runs() {
        // RLE: 3 × 1; bit-packed: 1 group = 0b0000_0101; RLE: 2 × 0.
        let data = [3 << 1, 1, (1 << 1) | 1, 0b0000_0101, 2 << 1, 0];
        let levels = hybrid_levels(&data, 13).unwrap();
        let want = [
            true, true, true, true, false, true, false, false, false, false, false, false, false,
        ];
        assert_eq!(levels, want);
        // A bit-packed group is 8 levels; trailing padding past `n` is ignored.
        assert_eq!(
            hybrid_levels(&[(1 << 1) | 1, 0xFF], 3).unwrap(),
            vec![true; 3]
        );
        assert!(
            hybrid_levels(&[5 << 1], 5).is_err(),
            "a run without its value"
        );
        assert!(hybrid_levels(&[5 << 1, 2], 5).is_err(), "a level above 1");
    }

    #[test]
    fn written_levels_read_back() {
        let levels: Vec<bool> = (0..300).map(|i| i % 7 != 0 && i < 200).collect();
        let data = super::super::write::rle_levels(levels.iter().copied());
        assert_eq!(hybrid_levels(&data, levels.len()).unwrap(), levels);
    }
}
