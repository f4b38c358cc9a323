//! Platform-neutral HTTP request and response, so the router runs without a server.

use serde::Serialize;
use sluice_shared::enrich::bot::CfBot;
use sluice_shared::enrich::Geo;
use std::net::IpAddr;

/// What the edge knows about the client (`CF-Connecting-IP`, `request.cf`).
#[derive(Debug, Clone, Default)]
pub struct Client {
    pub ip: Option<IpAddr>,
    pub geo: Geo,
    pub bot: Option<CfBot>,
    /// The request came over HTTPS (for the cookie's `Secure` attribute).
    pub https: bool,
}

/// Is `host` (a `Host` header or URL host, port optional) the local machine:
/// `localhost`, `*.localhost`, `127.0.0.0/8` or `[::1]`?
pub fn is_local_host(host: &str) -> bool {
    let host = host.trim().to_ascii_lowercase();
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or_default()
    } else {
        host.rsplit_once(':')
            .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
            .map_or(host.as_str(), |(name, _)| name)
    };
    if name == "localhost" || name.ends_with(".localhost") || name == "::1" {
        return true;
    }
    name.parse::<std::net::Ipv4Addr>()
        .is_ok_and(|ip| ip.is_loopback())
}

/// The request headers the worker reads (lower case): the platform reads
/// only these from an incoming request. Each header read across the
/// JavaScript boundary is a few calls, and browsers and Cloudflare send
/// 20 or more a request. [`HttpRequest::header`] asserts (in debug builds,
/// so in every native test) that a name it is asked for is listed.
pub const READ_HEADERS: [&str; 11] = [
    "authorization",
    "content-encoding",
    "cookie",
    "host",
    "if-none-match",
    "origin",
    "sec-ch-ua",
    "sec-ch-ua-mobile",
    "sec-ch-ua-platform",
    "sec-gpc",
    "user-agent",
];

/// An incoming request, already read into memory.
#[derive(Debug, Clone, Default)]
pub struct HttpRequest {
    pub method: String,
    /// Path without the query string, e.g. `/v1/batch`.
    pub path: String,
    /// Raw query string without the leading `?`.
    pub query: String,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub client: Client,
}

impl HttpRequest {
    /// The first header with this (lower-case) name, one of [`READ_HEADERS`].
    pub fn header(&self, name: &str) -> Option<&str> {
        debug_assert!(
            READ_HEADERS.contains(&name),
            "`{name}` is not in READ_HEADERS: the platform does not read it"
        );
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A query parameter, percent-decoded.
    pub fn query_param(&self, name: &str) -> Option<String> {
        sluice_shared::enrich::url::query_pairs(&["?", &self.query].concat())
            .into_iter()
            .find(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v)
    }

    /// A cookie's value.
    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.header("cookie")?.split(';').find_map(|c| {
            let (k, v) = c.trim().split_once('=')?;
            (k == name).then_some(v)
        })
    }
}

/// An outgoing response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// A JSON response. Serialising our own response types cannot fail; if it
    /// ever did, the client still gets valid JSON with a stable code.
    pub fn json<T: Serialize>(status: u16, body: &T) -> Self {
        let body = serde_json::to_vec(body).unwrap_or_else(|_| {
            br#"{"error":{"code":"internal","message":"response encoding failed"}}"#.to_vec()
        });
        HttpResponse {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body,
        }
    }

    /// An empty response.
    pub fn empty(status: u16) -> Self {
        HttpResponse {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// Add a header.
    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_owned(), value.into()));
        self
    }

    /// The first header with this (lower-case) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}
