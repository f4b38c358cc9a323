//! URLs and credentials in them: percent-encoding, splitting an absolute
//! URL, the base-URL rule for config (https, or plain http to loopback
//! only), and redacting secret query parameters before a URL is logged.

use serde::Deserialize;

/// Whether `url` may carry credentials: `https://host…`, or plain `http://`
/// to a loopback host only (a local vendor stub in tests).
pub fn is_safe_base_url(url: &str) -> bool {
    match split_url(url) {
        Some(parts) if parts.scheme == "https" => true,
        Some(parts) if parts.scheme == "http" => {
            let host = parts.host.rsplit_once(':').map_or(parts.host, |(h, _)| h);
            matches!(host, "127.0.0.1" | "localhost" | "[::1]")
        }
        _ => false,
    }
}

/// Deserialize a base URL that passes [`is_safe_base_url`], without a trailing slash.
pub fn base_url<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let url = String::deserialize(d)?;
    if !is_safe_base_url(&url) {
        return Err(serde::de::Error::custom(format_args!(
            "{url:?} is not an https:// URL (plain http is allowed to loopback hosts only)"
        )));
    }
    Ok(url.trim_end_matches('/').to_owned())
}

/// [`base_url`] for an optional field (use with `#[serde(default)]`).
pub fn opt_base_url<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    base_url(d).map(Some)
}

/// The parts of an absolute URL the vendors ask for, split by hand (no URL
/// crate): `https://shop.example/p/1?x=1#top` gives scheme `https`, host
/// `shop.example`, path `/p/1`, query `?x=1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlParts<'a> {
    pub scheme: &'a str,
    pub host: &'a str,
    pub path: &'a str,
    pub query: &'a str,
}

/// Split `url`; `None` when it is not `scheme://host...`.
pub fn split_url(url: &str) -> Option<UrlParts<'_>> {
    let (scheme, rest) = url.split_once("://")?;
    let rest = rest.split('#').next().unwrap_or("");
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (host, tail) = rest.split_at(end);
    let (path, query) = match tail.find('?') {
        Some(q) => tail.split_at(q),
        None => (tail, ""),
    };
    if scheme.is_empty() || host.is_empty() {
        return None;
    }
    Some(UrlParts {
        scheme,
        host,
        path: if path.is_empty() { "/" } else { path },
        query,
    })
}

/// Percent-encode all but RFC 3986's unreserved characters (query values, form bodies).
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(b"0123456789ABCDEF"[usize::from(b >> 4)]));
            out.push(char::from(b"0123456789ABCDEF"[usize::from(b & 0xf)]));
        }
    }
    out
}

/// Query parameters that carry credentials (Meta's `access_token`, GA4's `api_secret`).
pub const SECRET_PARAMS: [&str; 2] = ["access_token", "api_secret"];

/// `url` with the values of [`SECRET_PARAMS`] replaced by `REDACTED`: the form
/// to log, show in the debugger or keep in a dead letter.
pub fn redact_url(url: &str) -> String {
    let Some((base, query)) = url.split_once('?') else {
        return url.to_owned();
    };
    let params: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((k, _)) if SECRET_PARAMS.contains(&k) => format!("{k}=REDACTED"),
            _ => pair.to_owned(),
        })
        .collect();
    format!("{base}?{}", params.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn credentials_only_travel_over_https_or_to_loopback() {
        assert!(is_safe_base_url("https://rest.iad-01.braze.com"));
        assert!(is_safe_base_url("http://127.0.0.1:8787"));
        assert!(is_safe_base_url("http://localhost:9000/stub"));
        assert!(!is_safe_base_url("http://rest.iad-01.braze.com"));
        assert!(!is_safe_base_url("http://127.0.0.1.evil.example"));
        assert!(!is_safe_base_url("rest.iad-01.braze.com"));
        #[derive(Deserialize)]
        struct C {
            #[serde(deserialize_with = "base_url")]
            url: String,
        }
        let c: C = serde_json::from_value(json!({"url": "https://x.example/"})).unwrap();
        assert_eq!(c.url, "https://x.example");
        let err = serde_json::from_value::<C>(json!({"url": "http://x.example"}))
            .err()
            .unwrap();
        assert!(err.to_string().contains("not an https:// URL"), "{err}");
    }

    #[test]
    fn urls_split_into_parts() {
        let u = split_url("https://shop.example/p/1?x=1#top").unwrap();
        assert_eq!(
            (u.scheme, u.host, u.path, u.query),
            ("https", "shop.example", "/p/1", "?x=1")
        );
        let u = split_url("http://a.b?q").unwrap();
        assert_eq!((u.host, u.path, u.query), ("a.b", "/", "?q"));
        assert_eq!(split_url("/relative"), None);
        assert_eq!(split_url("https:///x"), None);
    }

    #[test]
    fn credentials_are_redacted_from_urls() {
        assert_eq!(
            redact_url("https://x.test/mp/collect?measurement_id=G-1&api_secret=s3cr3t"),
            "https://x.test/mp/collect?measurement_id=G-1&api_secret=REDACTED"
        );
        assert_eq!(
            redact_url("https://x.test/v24.0/1/events?access_token=EAAB"),
            "https://x.test/v24.0/1/events?access_token=REDACTED"
        );
        assert_eq!(redact_url("https://x.test/a"), "https://x.test/a");
    }
}
