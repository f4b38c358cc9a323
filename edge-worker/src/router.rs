//! Routes a request to its handler; every error becomes a response here.

use crate::cors;
use crate::error::ApiError;
use crate::http::{HttpRequest, HttpResponse};
use crate::ingest::{self, Endpoint};
use crate::ports::Platform;
use crate::serve;
use crate::services::Services;
use sluice_shared::EventType;

/// Which worker answers a path. The collector (the public worker) keeps
/// the accept path and the SDK files; the backend (reached over a service
/// binding) answers the admin API, the debugger's feed and the profiles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    Collector,
    Backend,
}

/// Who answers `path` (the SDK path first, as [`handle`] routes it).
pub fn owner(path: &str, sdk_path: &str) -> Owner {
    let sdk_file = path
        .strip_prefix(sdk_path)
        .is_some_and(|p| p.starts_with('/'));
    if !sdk_file
        && (path.starts_with(ADMIN_PREFIX) || path.starts_with(crate::audience::api::PROFILES_PATH))
    {
        Owner::Backend
    } else {
        Owner::Collector
    }
}

/// Handle one request. Never panics, never returns an error: errors are responses.
pub async fn handle<P: Platform>(req: &HttpRequest, s: &Services<'_, P>) -> HttpResponse {
    let res = route(req, s).await.unwrap_or_else(ApiError::into_response);
    with_cors(req, s, res)
}

/// Handle one of the collector's requests ([`Owner::Collector`]): the
/// same answer as [`handle`], without the backend's routes in the build.
pub async fn handle_collector<P: Platform>(req: &HttpRequest, s: &Services<'_, P>) -> HttpResponse {
    let res = collect(req, s)
        .await
        .unwrap_or_else(ApiError::into_response);
    with_cors(req, s, res)
}

/// Cross-origin callers may read the answer (errors included) if some source allows them.
fn with_cors<P>(req: &HttpRequest, s: &Services<'_, P>, res: HttpResponse) -> HttpResponse {
    match req.header("origin") {
        Some(origin)
            if res.header("access-control-allow-origin").is_none()
                && res.status != 403
                && s.config.any_source_allows(origin) =>
        {
            cors::allow(res, origin)
        }
        _ => res,
    }
}

const ADMIN_PREFIX: &str = "/admin/v1/";

async fn route<P: Platform>(
    req: &HttpRequest,
    s: &Services<'_, P>,
) -> Result<HttpResponse, ApiError> {
    let path = req.path.as_str();
    match owner(path, &s.config.sdk_path) {
        Owner::Collector => collect(req, s).await,
        Owner::Backend if path.starts_with(ADMIN_PREFIX) => crate::admin::handle(req, s).await,
        Owner::Backend => {
            let id = path
                .strip_prefix(crate::audience::api::PROFILES_PATH)
                .unwrap_or_default();
            crate::audience::api::handle(req, id, s).await
        }
    }
}

/// The collector's routes: the SDK files, the id cookie, the accept path.
async fn collect<P: Platform>(
    req: &HttpRequest,
    s: &Services<'_, P>,
) -> Result<HttpResponse, ApiError> {
    let path = req.path.as_str();
    let method = req.method.as_str();
    let sdk = s.config.sdk_path.as_str();
    if let Some(file) = path.strip_prefix(sdk).and_then(|p| p.strip_prefix('/')) {
        return match (method, file) {
            ("OPTIONS", "id") => cors::preflight(req, s.config),
            ("GET" | "POST", "id") => Ok(serve::id(req, s.config, s.platform)),
            ("GET" | "HEAD", _) => serve::sdk_file(file, req, s.platform).await,
            _ => Err(ApiError::MethodNotAllowed),
        };
    }
    let endpoint = match path {
        "/v1/batch" | "/v1/b" | "/beacon/v1/batch" => Endpoint::Batch,
        _ => match path.strip_prefix("/v1/").and_then(EventType::from_name) {
            Some(kind) => Endpoint::Single(kind),
            None => return Err(ApiError::NotFound),
        },
    };
    match method {
        "POST" => ingest::accept(req, endpoint, s).await,
        "OPTIONS" => cors::preflight(req, s.config),
        _ => Err(ApiError::MethodNotAllowed),
    }
}
