//! First-party serving: the SDK files from the site's own origin, and the id
//! endpoint that sets the visitor's anonymousId as a server-set cookie.
//!
//! Cache headers: content-hashed files (`sdk.3f2a9c1b.js`) never change, so
//! they are cached for a year as `immutable`; the loader (`sluice.js`) keeps
//! a stable URL for the script tag and is cached for 5 minutes; the manifest
//! (file list and the loader's SRI hash) is revalidated every time.
//!
//! The id cookie: `sluice_aid=<uuid>; Path=/; Max-Age=31536000; SameSite=Lax`,
//! plus `Domain=<SLUICE_COOKIE_DOMAIN>` when set (so every subdomain shares
//! the id) and `Secure` over HTTPS. Safari (ITP) caps cookies written by
//! script (`document.cookie`) at 7 days; a cookie set by the site's own
//! server in an HTTP response is not capped, so the id survives returning
//! visits. It is not `HttpOnly` because the SDK mirrors it to localStorage.

use crate::config::Config;
use crate::error::ApiError;
use crate::http::{HttpRequest, HttpResponse};
use crate::ports::Platform;
use serde::Serialize;

/// The cookie holding the anonymousId (the SDK uses the same name).
pub const ID_COOKIE: &str = "sluice_aid";
/// Where the build puts the SDK files inside the static assets.
pub const ASSET_DIR: &str = "/sluice/v1";
const YEAR_S: u32 = 31_536_000;

/// Is this a content-hashed file name (`name.<8+ hex>.ext`)?
pub fn is_hashed(name: &str) -> bool {
    let mut parts = name.rsplit('.');
    let _ext = parts.next();
    parts
        .next()
        .is_some_and(|h| h.len() >= 8 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// `GET <sdk_path>/<file>`.
pub async fn sdk_file<P: Platform>(file: &str, platform: &P) -> Result<HttpResponse, ApiError> {
    if file.is_empty()
        || !file
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
        || file.starts_with('.')
    {
        return Err(ApiError::NotFound);
    }
    let asset = platform
        .asset(&[ASSET_DIR, "/", file].concat())
        .await?
        .ok_or(ApiError::NotFound)?;
    let cache = if is_hashed(file) {
        format!("public, max-age={YEAR_S}, immutable")
    } else if file == "manifest.json" {
        "no-cache".to_owned()
    } else {
        "public, max-age=300".to_owned()
    };
    Ok(HttpResponse {
        status: 200,
        headers: vec![],
        body: asset.body,
    }
    .with_header("content-type", asset.content_type)
    .with_header("cache-control", cache)
    .with_header("x-content-type-options", "nosniff")
    .with_header("cross-origin-resource-policy", "same-site"))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct IdBody {
    anonymous_id: String,
}

/// `GET|POST <sdk_path>/id[?anonymousId=…]`: keep the visitor's id (from the
/// cookie, else the one the SDK already has), or mint one, and (re)set it as a
/// server-set first-party cookie.
pub fn id<P: Platform>(req: &HttpRequest, config: &Config, platform: &P) -> HttpResponse {
    let valid = |s: &str| sluice_shared::id::is_uuid(s).then(|| s.to_ascii_lowercase());
    let id = req
        .cookie(ID_COOKIE)
        .and_then(valid)
        .or_else(|| req.query_param("anonymousId").as_deref().and_then(valid))
        .unwrap_or_else(|| platform.new_uuid());
    let mut cookie = format!("{ID_COOKIE}={id}; Path=/; Max-Age={YEAR_S}; SameSite=Lax");
    if let Some(domain) = &config.cookie_domain {
        cookie.push_str("; Domain=");
        cookie.push_str(domain);
    }
    if req.client.https {
        cookie.push_str("; Secure");
    }
    HttpResponse::json(200, &IdBody { anonymous_id: id })
        .with_header("set-cookie", cookie)
        .with_header("cache-control", "no-store")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_content_hashed_names() {
        assert!(is_hashed("sdk.3f2a9c1b.js"));
        assert!(is_hashed("sdk_bg.0123456789abcdef.wasm"));
        assert!(!is_hashed("sluice.js"));
        assert!(!is_hashed("manifest.json"));
        assert!(!is_hashed("sdk.v1.js"));
    }
}
