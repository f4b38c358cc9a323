//! Which source a request is for: the write key from HTTP Basic auth
//! (`base64(writeKey:)`), the body's `writeKey`, or `?writeKey=` (beacons
//! cannot set headers), in that order.
//!
//! The demo source's key ([`DEMO_WRITE_KEY`], in `edge-worker/.dev.vars` for
//! local development) is public: it is refused on any host but the local
//! machine, even if a deployment configures it.

use crate::config::{Config, Source};
use crate::error::ApiError;
use crate::http::{is_local_host, HttpRequest};

/// The write key of the local demo source: public, so only valid on localhost.
pub const DEMO_WRITE_KEY: &str = "demo-write-key";

/// Is the request addressed to the local machine (its `Host` header)?
pub fn is_local(req: &HttpRequest) -> bool {
    req.header("host").is_some_and(is_local_host)
}

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
    if key == DEMO_WRITE_KEY && !is_local(req) {
        return Err(ApiError::DevCredential("the demo write key"));
    }
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
    fn the_demo_key_only_works_on_localhost() {
        let c = Config::from_sources_json(
            r#"[{"name":"demo","write_key":"demo-write-key","allowed_origins":[]}]"#,
        )
        .unwrap();
        for host in [
            "127.0.0.1:8787",
            "localhost",
            "LOCALHOST:9000",
            "shop.localhost",
            "[::1]:8787",
            "127.9.9.9",
        ] {
            assert_eq!(
                source(&req(&[("host", host)], "writeKey=demo-write-key"), None, &c)
                    .unwrap()
                    .name,
                "demo",
                "{host}"
            );
        }
        for host in [
            "shop.example.com",
            "127.0.0.1.evil.net",
            "localhost.evil.net",
            "[::2]",
            "10.0.0.1",
        ] {
            assert_eq!(
                source(&req(&[("host", host)], "writeKey=demo-write-key"), None, &c).unwrap_err(),
                ApiError::DevCredential("the demo write key"),
                "{host}"
            );
        }
        assert_eq!(
            source(&req(&[], "writeKey=demo-write-key"), None, &c).unwrap_err(),
            ApiError::DevCredential("the demo write key"),
            "no Host is not local"
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
