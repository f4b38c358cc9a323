//! CORS: preflights and response headers, per the sources' allowed origins.
//!
//! Headers are listed explicitly: `Access-Control-Allow-Headers: *` does not
//! cover `Authorization` under the Fetch standard.

use crate::config::Config;
use crate::error::ApiError;
use crate::http::{HttpRequest, HttpResponse};

/// Request headers the collector accepts cross-origin (Segment, RudderStack and Sluice clients).
pub const ALLOWED_HEADERS: &str =
    "authorization, content-type, content-encoding, anonymousid, sentat";
const ALLOWED_METHODS: &str = "GET, POST, OPTIONS";
const MAX_AGE_S: &str = "86400";

/// Answer a preflight: 204 with the CORS headers if some source allows the origin, else 403.
pub fn preflight(req: &HttpRequest, config: &Config) -> Result<HttpResponse, ApiError> {
    let origin = req.header("origin").unwrap_or_default();
    if origin.is_empty() || !config.any_source_allows(origin) {
        return Err(ApiError::OriginNotAllowed(if origin.is_empty() {
            "(none)".into()
        } else {
            origin.into()
        }));
    }
    Ok(allow(HttpResponse::empty(204), origin)
        .with_header("access-control-allow-methods", ALLOWED_METHODS)
        .with_header("access-control-allow-headers", ALLOWED_HEADERS)
        .with_header("access-control-max-age", MAX_AGE_S))
}

/// Add the CORS response headers for an allowed origin.
pub fn allow(res: HttpResponse, origin: &str) -> HttpResponse {
    res.with_header("access-control-allow-origin", origin)
        .with_header("access-control-allow-credentials", "true")
        .with_header("vary", "Origin")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config::from_sources_json(
            r#"[{"name":"a","write_key":"k","allowed_origins":["https://shop.example.com"]}]"#,
        )
        .unwrap()
    }

    fn options(origin: &str) -> HttpRequest {
        HttpRequest {
            method: "OPTIONS".into(),
            path: "/v1/batch".into(),
            headers: vec![
                ("origin".into(), origin.into()),
                (
                    "access-control-request-headers".into(),
                    "authorization".into(),
                ),
            ],
            ..HttpRequest::default()
        }
    }

    #[test]
    fn an_allowed_origin_gets_explicit_headers() {
        let res = preflight(&options("https://shop.example.com"), &config()).unwrap();
        assert_eq!(res.status, 204);
        assert_eq!(
            res.header("access-control-allow-origin"),
            Some("https://shop.example.com")
        );
        assert!(res
            .header("access-control-allow-headers")
            .unwrap()
            .contains("authorization"));
        assert_ne!(res.header("access-control-allow-headers"), Some("*"));
    }

    #[test]
    fn another_origin_is_refused() {
        assert_eq!(
            preflight(&options("https://evil.example"), &config())
                .unwrap_err()
                .status(),
            403
        );
    }
}
