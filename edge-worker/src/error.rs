//! API errors: each has a stable code and an HTTP status, and becomes a JSON response in one place.

use crate::http::HttpResponse;
use serde::Serialize;

/// Everything the HTTP API can answer with besides success.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ApiError {
    /// No route for this method and path.
    NotFound,
    /// The route exists but not for this method.
    MethodNotAllowed,
    /// The body is not JSON of the expected shape.
    InvalidBody(String),
    /// No write key, or one we do not know.
    Unauthorized,
    /// The body is over the size limit.
    PayloadTooLarge { limit_bytes: usize },
    /// Accepting failed in a way that a retry can fix (e.g. the Queue was unavailable).
    Unavailable(String),
}

impl ApiError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::NotFound => "not_found",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::InvalidBody(_) => "invalid_body",
            ApiError::Unauthorized => "unauthorized",
            ApiError::PayloadTooLarge { .. } => "payload_too_large",
            ApiError::Unavailable(_) => "unavailable",
        }
    }

    /// HTTP status for this error.
    pub fn status(&self) -> u16 {
        match self {
            ApiError::NotFound => 404,
            ApiError::MethodNotAllowed => 405,
            ApiError::InvalidBody(_) => 400,
            ApiError::Unauthorized => 401,
            ApiError::PayloadTooLarge { .. } => 413,
            ApiError::Unavailable(_) => 503,
        }
    }

    /// Human-readable explanation.
    pub fn message(&self) -> String {
        match self {
            ApiError::NotFound => "no such endpoint".into(),
            ApiError::MethodNotAllowed => "method not allowed on this endpoint".into(),
            ApiError::InvalidBody(why) => format!("request body is not a valid batch: {why}"),
            ApiError::Unauthorized => "missing or unknown write key".into(),
            ApiError::PayloadTooLarge { limit_bytes } => {
                format!("request body is larger than {limit_bytes} bytes")
            }
            ApiError::Unavailable(why) => format!("temporarily unavailable, retry: {why}"),
        }
    }

    /// The JSON response: `{"error": {"code", "message"}}`.
    pub fn into_response(self) -> HttpResponse {
        #[derive(Serialize)]
        struct Body<'a> {
            error: Detail<'a>,
        }
        #[derive(Serialize)]
        struct Detail<'a> {
            code: &'a str,
            message: String,
        }
        HttpResponse::json(
            self.status(),
            &Body {
                error: Detail {
                    code: self.code(),
                    message: self.message(),
                },
            },
        )
    }
}
