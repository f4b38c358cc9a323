//! Local stubs of the vendor APIs (Meta Conversions API, GA4 Measurement
//! Protocol) on loopback. Each request is checked against the vendor's
//! documented shape (`sluice_shared::dest::shape`: path, where the
//! credentials go, headers, body) and answered as the vendor documents:
//! success, or — when told — a rate limit with `Retry-After` or a permanent
//! error. A request that breaks the shape is answered with the vendor's
//! invalid-parameter error and kept with its violations, so a test sees it.

use serde_json::{json, Value};
use sluice_shared::dest::{shape, HttpRequest};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

/// Which vendor the stub plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vendor {
    /// `POST /{version}/{pixel_id}/events?access_token=…`.
    Meta,
    /// `POST /mp/collect?measurement_id=…&api_secret=…`.
    Ga4,
}

impl Vendor {
    /// The destination `kind` (and the `shape::check` rule) of this vendor.
    pub fn kind(self) -> &'static str {
        match self {
            Vendor::Meta => "meta_capi",
            Vendor::Ga4 => "ga4",
        }
    }
}

/// How the stub answers a request of the right shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// The documented success: Meta `200 {"events_received": n, …}`, GA4 `204`.
    Success,
    /// The first `n` requests get the vendor's rate-limit answer with
    /// `Retry-After: retry_after_s` (Meta: HTTP 429, error code 613; GA4:
    /// HTTP 429), then success.
    ThrottleFirst { n: usize, retry_after_s: u32 },
    /// A permanent error: Meta's expired token (HTTP 400, code 190), GA4 HTTP 400.
    Refuse,
}

/// One request as the stub received and answered it.
#[derive(Debug, Clone)]
pub struct Received {
    /// Path and query, as sent (`/v24.0/123/events?access_token=…`).
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Value,
    /// What `shape::check` found wrong (empty: the documented shape).
    pub violations: Vec<String>,
    pub status: u16,
}

impl Received {
    /// The event ids the request carries: Meta's `data[].event_id`, GA4's
    /// `events[].params.event_id` (both the Segment messageId).
    pub fn event_ids(&self, vendor: Vendor) -> Vec<String> {
        let (list, path): (&str, &[&str]) = match vendor {
            Vendor::Meta => ("data", &["event_id"]),
            Vendor::Ga4 => ("events", &["params", "event_id"]),
        };
        self.body[list]
            .as_array()
            .map(|events| {
                events
                    .iter()
                    .map(|e| {
                        let v = path.iter().fold(e, |v, k| &v[*k]);
                        v.as_str().unwrap_or("(no id)").to_owned()
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// A running stub; requests are recorded in the order they arrived.
pub struct VendorStub {
    pub vendor: Vendor,
    pub port: u16,
    received: Arc<Mutex<Vec<Received>>>,
    answer: Arc<Mutex<Answer>>,
}

impl VendorStub {
    /// Listen on a free loopback port as `vendor`, answering `answer`.
    pub fn start(vendor: Vendor, answer: Answer) -> VendorStub {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let answer = Arc::new(Mutex::new(answer));
        let (log, mode) = (Arc::clone(&received), Arc::clone(&answer));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let Some((method, target, headers, body)) = read_request(&stream) else {
                    continue;
                };
                let request = HttpRequest {
                    method: if method == "POST" { "POST" } else { "OTHER" },
                    url: format!("http://127.0.0.1:{port}{target}"),
                    headers: headers.clone(),
                    body: body.clone(),
                    events: Vec::new(),
                };
                let violations = shape::check(vendor.kind(), &request, now_ms())
                    .err()
                    .unwrap_or_default();
                let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                let mut log = log.lock().expect("lock");
                let answer = *mode.lock().expect("lock");
                let (status, extra, reply) =
                    respond(vendor, answer, log.len(), &parsed, &violations);
                log.push(Received {
                    target,
                    headers,
                    body: parsed,
                    violations,
                    status,
                });
                drop(log);
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status} X\r\n{extra}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reply}",
                    reply.len()
                );
            }
        });
        VendorStub {
            vendor,
            port,
            received,
            answer,
        }
    }

    /// The base URL to configure as the destination's `endpoint_url`.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Answer from now on as `answer` (counted over every request so far).
    pub fn answer(&self, answer: Answer) {
        *self.answer.lock().expect("lock") = answer;
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().expect("lock").clone()
    }

    /// The event ids of every request answered with success, with repeats, in order.
    pub fn delivered_ids(&self) -> Vec<String> {
        self.received()
            .iter()
            .filter(|r| (200..300).contains(&r.status))
            .flat_map(|r| r.event_ids(self.vendor))
            .collect()
    }
}

/// Status, extra header lines and body of the answer to the `n`-th request.
fn respond(
    vendor: Vendor,
    answer: Answer,
    n: usize,
    body: &Value,
    violations: &[String],
) -> (u16, String, String) {
    let trace = "AbC123xYz";
    if !violations.is_empty() {
        return match vendor {
            Vendor::Meta => (
                400,
                String::new(),
                json!({"error": {"message": "Invalid parameter", "type": "OAuthException", "code": 100,
                       "error_user_msg": violations.join("; "), "fbtrace_id": trace}})
                .to_string(),
            ),
            Vendor::Ga4 => (400, String::new(), String::new()),
        };
    }
    let throttled = matches!(answer, Answer::ThrottleFirst { n: k, .. } if n < k);
    match (vendor, answer) {
        (_, Answer::ThrottleFirst { retry_after_s, .. }) if throttled => {
            let header = format!("Retry-After: {retry_after_s}\r\n");
            let reply = match vendor {
                Vendor::Meta => json!({"error": {"message": "Calls to this api have exceeded the rate limit.",
                                                 "type": "OAuthException", "code": 613, "fbtrace_id": trace}})
                .to_string(),
                Vendor::Ga4 => String::new(),
            };
            (429, header, reply)
        }
        (Vendor::Meta, Answer::Refuse) => (
            400,
            String::new(),
            json!({"error": {"message": "Error validating access token: Session has expired.",
                   "type": "OAuthException", "code": 190, "error_subcode": 463, "fbtrace_id": trace}})
            .to_string(),
        ),
        (Vendor::Ga4, Answer::Refuse) => (400, String::new(), String::new()),
        (Vendor::Meta, _) => {
            let n = body["data"].as_array().map_or(0, Vec::len);
            (
                200,
                String::new(),
                json!({"events_received": n, "messages": [], "fbtrace_id": trace}).to_string(),
            )
        }
        (Vendor::Ga4, _) => (204, String::new(), String::new()),
    }
}

type Request = (String, String, Vec<(String, String)>, Vec<u8>);

/// Method, target, headers (lower-case names) and body of one request.
fn read_request(stream: &std::net::TcpStream) -> Option<Request> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let target = parts.next()?.to_owned();
    let mut headers = Vec::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
        }
    }
    let len: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    reader.read_exact(&mut body).ok()?;
    Some((method, target, headers, body))
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
