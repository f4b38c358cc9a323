//! Routes a request to its handler; every error becomes a response here.

use crate::config::Config;
use crate::error::ApiError;
use crate::http::{HttpRequest, HttpResponse};
use crate::ingest::{self, EventQueue};

/// What the handlers need from the platform.
pub struct Services<'a, Q> {
    pub config: &'a Config,
    pub queue: &'a Q,
    /// The current time, RFC 3339, read once per request by the caller.
    pub now: String,
}

/// Handle one request. Never panics, never returns an error: errors are responses.
pub async fn handle<Q: EventQueue>(req: &HttpRequest, services: &Services<'_, Q>) -> HttpResponse {
    route(req, services)
        .await
        .unwrap_or_else(ApiError::into_response)
}

async fn route<Q: EventQueue>(
    req: &HttpRequest,
    s: &Services<'_, Q>,
) -> Result<HttpResponse, ApiError> {
    match (req.method.as_str(), req.path.as_str()) {
        ("POST", "/v1/batch") => ingest::batch(req, s.config, s.queue, &s.now).await,
        (_, "/v1/batch") => Err(ApiError::MethodNotAllowed),
        _ => Err(ApiError::NotFound),
    }
}
