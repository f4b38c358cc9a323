//! Routes a request to its handler; every error becomes a response here.

use crate::cors;
use crate::error::ApiError;
use crate::http::{HttpRequest, HttpResponse};
use crate::ingest::{self, Endpoint};
use crate::ports::Platform;
use crate::serve;
use crate::services::Services;
use sluice_shared::EventType;

/// Handle one request. Never panics, never returns an error: errors are responses.
pub async fn handle<P: Platform>(req: &HttpRequest, s: &Services<'_, P>) -> HttpResponse {
    let res = route(req, s).await.unwrap_or_else(ApiError::into_response);
    // Cross-origin callers may read the answer (errors included) if some source allows them.
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

async fn route<P: Platform>(
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
            ("GET" | "HEAD", _) => serve::sdk_file(file, s.platform).await,
            _ => Err(ApiError::MethodNotAllowed),
        };
    }
    if path.starts_with("/admin/v1/") {
        return crate::admin::handle(req, s).await;
    }
    if let Some(id) = path.strip_prefix(crate::audience::api::PROFILES_PATH) {
        return crate::audience::api::handle(req, id, s).await;
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
