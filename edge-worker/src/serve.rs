//! First-party serving: the SDK files from the site's own origin, and the id
//! endpoint that sets the visitor's anonymousId as a server-set cookie.
//!
//! Cache headers: content-hashed files (`sdk.3f2a9c1b.js`) never change, so
//! they are cached for a year as `immutable`; the loader (`sluice.js`) keeps
//! a stable URL for the script tag and is cached for 5 minutes; the manifest
//! (file list and the loader's SRI hash) is revalidated every time.
//!
//! `sdk.wasm` is the current build's Wasm at a stable URL, so the inline
//! snippet can start downloading it beside the loader (one round trip
//! before the SDK is ready, not two): cached like the loader, and marked
//! with its content-hashed name (`x-sluice-wasm`), which the loader compares
//! with the one it was built with (a page that has a loader and a Wasm
//! from two deploys fetches the hashed file instead).
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
/// The build's manifest (file names, sizes, the loader's SRI hash).
pub const MANIFEST_PATH: &str = "/sluice/v1/manifest.json";
/// The loader, at a stable URL for the script tag.
pub const LOADER: &str = "sluice.js";
/// The current Wasm at a stable URL (see the module's doc).
pub const STABLE_WASM: &str = "sdk.wasm";
/// The header naming the content-hashed file `sdk.wasm` is a copy of.
pub const WASM_NAME_HEADER: &str = "x-sluice-wasm";

/// Is this a content-hashed file name (`name.<8+ hex>.ext`)?
pub fn is_hashed(name: &str) -> bool {
    let mut parts = name.rsplit('.');
    let _ext = parts.next();
    parts
        .next()
        .is_some_and(|h| h.len() >= 8 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// `GET <sdk_path>/<file>`. The two files at stable URLs (the loader and
/// `sdk.wasm`) carry an `etag` (the loader's SRI hash, the Wasm's hashed
/// name) and a matching `if-none-match` is answered `304`: a returning
/// visitor's browser revalidates them every 5 minutes without downloading
/// them again.
pub async fn sdk_file<P: Platform>(
    file: &str,
    req: &HttpRequest,
    platform: &P,
) -> Result<HttpResponse, ApiError> {
    if file.is_empty()
        || !file
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
        || file.starts_with('.')
    {
        return Err(ApiError::NotFound);
    }
    let stable = file == STABLE_WASM || file == LOADER;
    let manifest = if stable {
        manifest(platform).await?
    } else {
        None
    };
    let wasm = manifest
        .as_ref()
        .map(|m| m.wasm.clone())
        .filter(|_| file == STABLE_WASM);
    let etag = match (&manifest, &wasm) {
        (_, Some(name)) => Some(format!("\"{name}\"")),
        (Some(m), None) => Some(format!("\"{}\"", m.integrity)),
        (None, _) => None,
    };
    let path = match &wasm {
        Some(name) => [ASSET_DIR, "/", name].concat(),
        None if file == STABLE_WASM => return Err(ApiError::NotFound),
        None => [ASSET_DIR, "/", file].concat(),
    };
    let cache = if !stable && is_hashed(file) {
        format!("public, max-age={YEAR_S}, immutable")
    } else if file == "manifest.json" {
        "no-cache".to_owned()
    } else {
        "public, max-age=300".to_owned()
    };
    let fresh = etag.as_deref().is_some_and(|tag| {
        req.header("if-none-match").is_some_and(|sent| {
            sent.split(',')
                .any(|t| t.trim().trim_start_matches("W/") == tag)
        })
    });
    let mut res = if fresh {
        HttpResponse {
            status: 304,
            headers: vec![],
            body: vec![],
        }
    } else {
        let asset = platform.asset(&path).await?.ok_or(ApiError::NotFound)?;
        HttpResponse {
            status: 200,
            headers: vec![],
            body: asset.body,
        }
        .with_header("content-type", asset.content_type)
    };
    if let Some(name) = wasm {
        // Readable by the loader where the SDK is on another allowed origin.
        res = res
            .with_header(WASM_NAME_HEADER, name)
            .with_header("access-control-expose-headers", WASM_NAME_HEADER);
    }
    if let Some(tag) = etag {
        res = res.with_header("etag", tag);
    }
    Ok(res
        .with_header("cache-control", cache)
        .with_header("x-content-type-options", "nosniff")
        .with_header("cross-origin-resource-policy", "same-site"))
}

/// What the SDK's files at stable URLs are named by.
struct Manifest {
    /// The current build's Wasm, content-hashed (`sdk.wasm` is a copy).
    wasm: String,
    /// The loader's SRI hash.
    integrity: String,
}

/// The manifest the build writes beside the SDK files, if there is one
/// (an unreadable one is as none: the stable URLs then have no etag, and
/// `sdk.wasm` is not found, so the loader fetches its own hashed file).
async fn manifest<P: Platform>(platform: &P) -> Result<Option<Manifest>, ApiError> {
    #[derive(serde::Deserialize)]
    struct Read {
        wasm: String,
        integrity: String,
    }
    let Some(asset) = platform.asset(MANIFEST_PATH).await? else {
        return Ok(None);
    };
    let safe = |name: &str| is_hashed(name) && !name.contains('/');
    Ok(serde_json::from_slice::<Read>(&asset.body)
        .ok()
        .filter(|m| {
            safe(&m.wasm)
                && m.integrity
                    .bytes()
                    .all(|b| b.is_ascii_graphic() && b != b'"')
        })
        .map(|m| Manifest {
            wasm: m.wasm,
            integrity: m.integrity,
        }))
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

    #[test]
    fn the_manifest_is_in_the_sdk_directory() {
        assert_eq!(MANIFEST_PATH, format!("{ASSET_DIR}/manifest.json"));
    }
}
