//! Request bodies: optional gzip, bounded so a small compressed body cannot
//! expand past the batch limit.

use crate::error::ApiError;
use crate::http::HttpRequest;
use sluice_shared::parse::ParseError;
use std::borrow::Cow;
use std::io::Read;

/// The body, decompressed if `Content-Encoding: gzip`, at most `limit` bytes
/// (borrowed as it came when not compressed).
pub fn body(req: &HttpRequest, limit: usize) -> Result<Cow<'_, [u8]>, ApiError> {
    let too_large = |bytes| ApiError::Parse(ParseError::TooLarge { bytes, limit });
    if req.body.len() > limit {
        return Err(too_large(req.body.len()));
    }
    match req
        .header("content-encoding")
        .map(|e| e.trim().to_ascii_lowercase())
    {
        None => Ok(Cow::Borrowed(&req.body)),
        Some(e) if e.is_empty() || e == "identity" => Ok(Cow::Borrowed(&req.body)),
        Some(e) if e == "gzip" || e == "x-gzip" => {
            let mut out = Vec::new();
            let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
            flate2::read::GzDecoder::new(req.body.as_slice())
                .take(cap)
                .read_to_end(&mut out)
                .map_err(|e| ApiError::BadEncoding(format!("invalid gzip: {e}")))?;
            if out.len() > limit {
                return Err(too_large(out.len()));
            }
            Ok(Cow::Owned(out))
        }
        Some(other) => Err(ApiError::BadEncoding(format!(
            "unsupported Content-Encoding {other:?} (use gzip)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn req(body: Vec<u8>, encoding: Option<&str>) -> HttpRequest {
        HttpRequest {
            body,
            headers: encoding
                .map(|e| vec![("content-encoding".into(), e.into())])
                .unwrap_or_default(),
            ..HttpRequest::default()
        }
    }

    #[test]
    fn gzip_bodies_are_decompressed() {
        assert_eq!(
            body(&req(gzip(b"{\"batch\":[]}"), Some("gzip")), 100)
                .unwrap()
                .as_ref(),
            b"{\"batch\":[]}"
        );
        assert_eq!(
            body(&req(b"plain".to_vec(), None), 100).unwrap().as_ref(),
            b"plain"
        );
    }

    #[test]
    fn a_gzip_bomb_stops_at_the_limit() {
        let bomb = gzip(&vec![b' '; 1_000_000]);
        assert!(bomb.len() < 10_000);
        let err = body(&req(bomb, Some("gzip")), 500 * 1024).unwrap_err();
        assert_eq!(err.status(), 413);
    }

    #[test]
    fn bad_encodings_are_clear_errors() {
        assert_eq!(
            body(&req(b"nope".to_vec(), Some("gzip")), 100)
                .unwrap_err()
                .code(),
            "bad_content_encoding"
        );
        assert_eq!(
            body(&req(b"x".to_vec(), Some("br")), 100)
                .unwrap_err()
                .code(),
            "bad_content_encoding"
        );
    }
}
