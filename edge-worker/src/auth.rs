//! Which source a request is for: the write key from HTTP Basic auth
//! (`base64(writeKey:)`), the body's `writeKey`, or `?writeKey=` (beacons
//! cannot set headers), in that order.

use crate::config::{Config, Source};
use crate::error::ApiError;
use crate::http::HttpRequest;

/// The source whose write key came with the request.
pub fn source<'c>(
    req: &HttpRequest,
    body_key: Option<&str>,
    config: &'c Config,
) -> Result<&'c Source, ApiError> {
    let key = basic_user(req)
        .or_else(|| body_key.filter(|k| !k.is_empty()).map(str::to_owned))
        .or_else(|| req.query_param("writeKey"))
        .ok_or(ApiError::Unauthorized)?;
    config
        .source_by_write_key(&key)
        .ok_or(ApiError::Unauthorized)
}

fn basic_user(req: &HttpRequest) -> Option<String> {
    use base64::Engine as _;
    let value = req.header("authorization")?.trim();
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let user = text.split(':').next()?;
    (!user.is_empty()).then(|| user.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config::from_sources_json(r#"[{"name":"web","write_key":"wk","allowed_origins":["*"]}]"#)
            .unwrap()
    }

    fn req(headers: &[(&str, &str)], query: &str) -> HttpRequest {
        HttpRequest {
            headers: headers
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect(),
            query: query.into(),
            ..HttpRequest::default()
        }
    }

    #[test]
    fn reads_the_key_from_basic_auth_body_or_query() {
        let c = config();
        // base64("wk:") = "d2s6"
        assert_eq!(
            source(&req(&[("authorization", "Basic d2s6")], ""), None, &c)
                .unwrap()
                .name,
            "web"
        );
        assert_eq!(source(&req(&[], ""), Some("wk"), &c).unwrap().name, "web");
        assert_eq!(
            source(&req(&[], "a=1&writeKey=wk"), None, &c).unwrap().name,
            "web"
        );
    }

    #[test]
    fn a_missing_or_unknown_key_is_unauthorized() {
        let c = config();
        assert_eq!(
            source(&req(&[], ""), None, &c).unwrap_err(),
            ApiError::Unauthorized
        );
        assert_eq!(
            source(&req(&[], ""), Some("other"), &c).unwrap_err(),
            ApiError::Unauthorized
        );
        assert_eq!(
            source(&req(&[("authorization", "Basic !!!")], ""), None, &c).unwrap_err(),
            ApiError::Unauthorized
        );
    }
}
