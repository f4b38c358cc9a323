//! API errors: each has a stable code and an HTTP status, and becomes a JSON
//! response in one place (`{"error":{"code","message"}}`).

use crate::http::HttpResponse;
use crate::ports::PortError;
use serde::Serialize;
use sluice_shared::parse::ParseError;

/// Everything the HTTP API can answer with besides success.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ApiError {
    /// No route for this method and path.
    NotFound,
    /// The route exists but not for this method.
    MethodNotAllowed,
    /// The body cannot be read as a batch or event.
    Parse(ParseError),
    /// The body is compressed in a way we cannot read.
    BadEncoding(String),
    /// No write key, or one we do not know.
    Unauthorized,
    /// A public local-development credential (the demo write key, the dev
    /// admin token) used on a host other than the local machine.
    DevCredential(&'static str),
    /// The admin token lacks the scope this call needs.
    Forbidden(&'static str),
    /// An admin request is malformed.
    BadRequest(String),
    /// The request's origin is not allowed for this source.
    OriginNotAllowed(String),
    /// Too many requests; retry after this many seconds.
    RateLimited { retry_after_s: u32 },
    /// The configuration is broken (logged loudly; not the client's fault, not retryable by it).
    Config(String),
    /// Accepting failed in a way that a retry can fix (e.g. the Queue was unavailable).
    Unavailable(String),
    /// A backfill request the definitions or the lake cannot serve.
    Backfill(sluice_shared::audience::backfill::BackfillError),
}

impl ApiError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::NotFound => "not_found",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::Parse(e) => e.code(),
            ApiError::BadEncoding(_) => "bad_content_encoding",
            ApiError::Unauthorized => "unauthorized",
            ApiError::DevCredential(_) => "dev_credential_refused",
            ApiError::OriginNotAllowed(_) => "origin_not_allowed",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::BadRequest(_) => "bad_request",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::Config(_) => "config_error",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Backfill(e) => e.code(),
        }
    }

    /// HTTP status for this error. 5xx only where retrying can help.
    pub fn status(&self) -> u16 {
        match self {
            ApiError::NotFound => 404,
            ApiError::MethodNotAllowed => 405,
            ApiError::Parse(ParseError::TooLarge { .. }) => 413,
            ApiError::Parse(_) | ApiError::BadEncoding(_) => 400,
            ApiError::Unauthorized => 401,
            ApiError::OriginNotAllowed(_) | ApiError::Forbidden(_) | ApiError::DevCredential(_) => {
                403
            }
            ApiError::BadRequest(_) => 400,
            ApiError::RateLimited { .. } => 429,
            ApiError::Config(_) => 500,
            ApiError::Unavailable(_) => 503,
            ApiError::Backfill(sluice_shared::audience::backfill::BackfillError::NoLake) => 409,
            ApiError::Backfill(_) => 400,
        }
    }

    /// Human-readable explanation.
    pub fn message(&self) -> String {
        match self {
            ApiError::NotFound => "no such endpoint".into(),
            ApiError::MethodNotAllowed => "method not allowed on this endpoint".into(),
            ApiError::Parse(e) => e.to_string(),
            ApiError::BadEncoding(why) => format!("cannot decode the request body: {why}"),
            ApiError::Unauthorized => "missing or unknown write key or admin token".into(),
            ApiError::DevCredential(what) => format!(
                "{what} is a public local-development credential and only works on localhost; \
                 configure your own (README, Deploying)"
            ),
            ApiError::OriginNotAllowed(o) => {
                format!("origin {o} is not allowed to send to this source")
            }
            ApiError::Forbidden(scope) => format!("this token lacks the `{scope}` scope"),
            ApiError::BadRequest(why) => format!("bad request: {why}"),
            ApiError::RateLimited { retry_after_s } => {
                format!("too many requests; retry after {retry_after_s} s")
            }
            ApiError::Config(why) => format!("the collector is misconfigured: {why}"),
            ApiError::Unavailable(why) => format!("temporarily unavailable, retry: {why}"),
            ApiError::Backfill(e) => e.to_string(),
        }
    }

    /// The JSON response.
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
        let mut res = HttpResponse::json(
            self.status(),
            &Body {
                error: Detail {
                    code: self.code(),
                    message: self.message(),
                },
            },
        );
        match &self {
            ApiError::RateLimited { retry_after_s } => {
                res = res.with_header("retry-after", retry_after_s.to_string());
            }
            ApiError::Unavailable(_) => res = res.with_header("retry-after", "1"),
            _ => {}
        }
        res
    }
}

/// A failed port: a missing binding is the deployment's configuration; anything
/// else is worth the client's retry.
impl From<PortError> for ApiError {
    fn from(e: PortError) -> ApiError {
        match e {
            PortError::MissingBinding(_) => ApiError::Config(e.to_string()),
            _ => ApiError::Unavailable(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_codes() {
        let too_big = ApiError::Parse(ParseError::TooLarge { bytes: 2, limit: 1 });
        assert_eq!(
            (too_big.status(), too_big.code()),
            (413, "payload_too_large")
        );
        let bad = ApiError::Parse(ParseError::NotJson("x".into()));
        assert_eq!((bad.status(), bad.code()), (400, "invalid_json"));
        let limited = ApiError::RateLimited { retry_after_s: 3 }.into_response();
        assert_eq!(limited.status, 429);
        assert_eq!(limited.header("retry-after"), Some("3"));
        let body: serde_json::Value = serde_json::from_slice(&limited.body).unwrap();
        assert_eq!(body["error"]["code"], "rate_limited");
    }
}
