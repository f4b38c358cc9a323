//! First-party serving: the SDK files from the site's own origin, and the id
//! endpoint that sets the visitor's anonymousId as a server-set cookie.
//!
//! Cache headers: content-hashed files (`sdk_bg.3f2a9c1b.wasm`) never change, so
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
use sluice_shared::audience::definition::fnv64;

/// The cookie holding the anonymousId (the SDK uses the same name).
pub const ID_COOKIE: &str = "sluice_aid";
/// Where the build puts the SDK files inside the static assets.
pub const ASSET_DIR: &str = "/sluice/v1";
const YEAR_S: u32 = 31_536_000;
/// The build's manifest (file names, sizes, the loader's SRI hash).
pub const MANIFEST_PATH: &str = "/sluice/v1/manifest.json";
/// The loader, at a stable URL for the script tag.
pub const LOADER: &str = "sluice.js";
/// Where the build puts the loader.
const LOADER_PATH: &str = "/sluice/v1/sluice.js";
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

/// Is the asset at `path` one an isolate may keep for its life: the SDK's
/// manifest and loader (an isolate runs one deployment's files: a deploy,
/// and `wrangler dev` when the files change, start new isolates), or a
/// content-hashed file in the SDK's directory (a hashed name's bytes never
/// change)?
pub fn kept_per_isolate(path: &str) -> bool {
    path == MANIFEST_PATH
        || path == LOADER_PATH
        || path
            .strip_prefix(ASSET_DIR)
            .and_then(|rest| rest.strip_prefix('/'))
            .is_some_and(|file| !file.contains('/') && is_hashed(file))
}

/// `GET <sdk_path>/<file>`. The two files at stable URLs (the loader and
/// `sdk.wasm`) carry an `etag` (a hash of the loader's bytes, the Wasm's
/// hashed name) and a matching `if-none-match` is answered `304`: a
/// returning visitor's browser revalidates them every 5 minutes without
/// downloading them again.
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
    let wasm = if file == STABLE_WASM {
        Some(current_wasm(platform).await?)
    } else {
        None
    };
    let cache = if wasm.is_none() && is_hashed(file) {
        format!("public, max-age={YEAR_S}, immutable")
    } else if file == "manifest.json" {
        "no-cache".to_owned()
    } else {
        "public, max-age=300".to_owned()
    };
    // The Wasm's tag is known before its bytes are read (a 304 reads none);
    // the loader's is its bytes' (not the manifest's name for the Wasm).
    let known = wasm.as_ref().map(|name| format!("\"{name}\""));
    let (mut res, tag) = if known.as_deref().is_some_and(|tag| matches(req, tag)) {
        (not_modified(), known)
    } else {
        let name = wasm.as_deref().unwrap_or(file);
        let asset = platform
            .asset(&[ASSET_DIR, "/", name].concat())
            .await?
            .ok_or(ApiError::NotFound)?;
        let tag = match file {
            LOADER => Some(format!("\"{:016x}\"", fnv64(&asset.body))),
            _ => known,
        };
        if tag.as_deref().is_some_and(|tag| matches(req, tag)) {
            (not_modified(), tag)
        } else {
            let ok = HttpResponse {
                status: 200,
                headers: vec![],
                body: asset.body,
            };
            (ok.with_header("content-type", asset.content_type), tag)
        }
    };
    if let Some(tag) = tag {
        res = res.with_header("etag", tag);
    }
    if let Some(name) = wasm {
        // Readable by the loader where the SDK is on another allowed origin.
        res = res
            .with_header(WASM_NAME_HEADER, name)
            .with_header("access-control-expose-headers", WASM_NAME_HEADER);
    }
    Ok(res
        .with_header("cache-control", cache)
        .with_header("x-content-type-options", "nosniff")
        .with_header("cross-origin-resource-policy", "same-site"))
}

/// Does the request's `if-none-match` hold `tag` (weak or strong)?
fn matches(req: &HttpRequest, tag: &str) -> bool {
    req.header("if-none-match").is_some_and(|sent| {
        sent.split(',')
            .any(|t| t.trim().trim_start_matches("W/") == tag)
    })
}

fn not_modified() -> HttpResponse {
    HttpResponse {
        status: 304,
        headers: vec![],
        body: vec![],
    }
}

/// The content-hashed name of the current build's Wasm, from the manifest
/// the build writes beside it (no manifest, or one naming no hashed file in
/// this directory: `sdk.wasm` is not found, and the loader fetches its own
/// hashed file).
async fn current_wasm<P: Platform>(platform: &P) -> Result<String, ApiError> {
    #[derive(serde::Deserialize)]
    struct Manifest {
        wasm: String,
    }
    let manifest = platform
        .asset(MANIFEST_PATH)
        .await?
        .ok_or(ApiError::NotFound)?;
    serde_json::from_slice::<Manifest>(&manifest.body)
        .ok()
        .map(|m| m.wasm)
        .filter(|name| is_hashed(name) && !name.contains('/'))
        .ok_or(ApiError::NotFound)
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
    fn an_isolate_keeps_the_manifest_the_loader_and_hashed_sdk_files_only() {
        assert!(kept_per_isolate(MANIFEST_PATH));
        assert!(kept_per_isolate("/sluice/v1/sdk_bg.92bd1164ddb5c1e1.wasm"));
        assert!(kept_per_isolate("/sluice/v1/sluice.js"));
        assert!(!kept_per_isolate("/sluice/v1/sdk.wasm"));
        assert!(!kept_per_isolate(
            "/sluice/v1/x/sdk_bg.92bd1164ddb5c1e1.wasm"
        ));
        assert!(!kept_per_isolate("/assets/app.92bd1164ddb5c1e1.js"));
    }

    #[test]
    fn the_manifest_and_loader_are_in_the_sdk_directory() {
        assert_eq!(MANIFEST_PATH, format!("{ASSET_DIR}/manifest.json"));
        assert_eq!(LOADER_PATH, format!("{ASSET_DIR}/{LOADER}"));
    }
}
