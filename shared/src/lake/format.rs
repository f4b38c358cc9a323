//! Parquet's numbers (from `parquet.thrift` of apache/parquet-format): enum
//! values and the field ids of the structs this writer emits and this reader
//! needs, and the page codecs.

use super::LakeError;
use std::io::{Read, Write};

/// `PAR1`, at the start and the end of every file.
pub const MAGIC: &[u8; 4] = b"PAR1";

/// Physical types (`enum Type`).
pub const BOOLEAN: i32 = 0;
pub const INT64: i32 = 2;
pub const BYTE_ARRAY: i32 = 6;

/// `enum FieldRepetitionType`.
pub const REQUIRED: i32 = 0;
pub const OPTIONAL: i32 = 1;

/// `enum ConvertedType` (kept for readers that predate logical types).
pub const CONVERTED_UTF8: i32 = 0;
pub const CONVERTED_TIMESTAMP_MILLIS: i32 = 9;
pub const CONVERTED_JSON: i32 = 19;

/// `union LogicalType` members.
pub const LOGICAL_STRING: i16 = 1;
pub const LOGICAL_TIMESTAMP: i16 = 8;
pub const LOGICAL_JSON: i16 = 12;
/// `union TimeUnit` members.
pub const UNIT_MILLIS: i16 = 1;

/// `enum Encoding`.
pub const PLAIN: i32 = 0;
pub const RLE: i32 = 3;

/// `enum PageType`.
pub const DATA_PAGE: i32 = 0;

/// How the pages of a file are compressed (`enum CompressionCodec`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    Uncompressed,
    /// RFC 1952 gzip members, as Parquet's `GZIP` codec specifies.
    Gzip,
}

impl Codec {
    pub fn id(self) -> i32 {
        match self {
            Codec::Uncompressed => 0,
            Codec::Gzip => 2,
        }
    }

    pub fn from_id(id: i64) -> Result<Codec, LakeError> {
        match id {
            0 => Ok(Codec::Uncompressed),
            2 => Ok(Codec::Gzip),
            _ => Err(LakeError::Unsupported(
                "a compression codec other than UNCOMPRESSED or GZIP",
            )),
        }
    }

    pub fn compress(self, raw: Vec<u8>) -> Result<Vec<u8>, LakeError> {
        match self {
            Codec::Uncompressed => Ok(raw),
            Codec::Gzip => {
                let mut gz = flate2::write::GzEncoder::new(
                    Vec::with_capacity(raw.len() / 4),
                    flate2::Compression::default(),
                );
                gz.write_all(&raw)
                    .and_then(|()| gz.finish())
                    .map_err(|_| LakeError::Compression)
            }
        }
    }

    /// Decompress a page that says it holds `size` bytes uncompressed.
    pub fn decompress(self, page: &[u8], size: usize) -> Result<Vec<u8>, LakeError> {
        match self {
            Codec::Uncompressed => Ok(page.to_vec()),
            Codec::Gzip => {
                let mut out = Vec::with_capacity(size);
                // One byte past the declared size tells a lying header apart.
                let limit = u64::try_from(size).unwrap_or(u64::MAX).saturating_add(1);
                flate2::read::GzDecoder::new(page)
                    .take(limit)
                    .read_to_end(&mut out)
                    .map_err(|_| LakeError::Compression)?;
                Ok(out)
            }
        }
    }
}
