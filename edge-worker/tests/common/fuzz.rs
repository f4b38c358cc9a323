//! The whole router under arbitrary input: bytes → request (method, path,
//! query, headers, body) → `handle` → a response that must be well-formed.
//!
//! Used by `router_fuzz.rs` (a bounded run in `cargo xtask test`, longer in
//! `cargo xtask fuzz`) and by the libFuzzer target `shared/fuzz/fuzz_targets/router.rs`,
//! so both drive the same decoder and assert the same things:
//!
//! - `handle` returns (no panic);
//! - the status is one the API documents, never a 5xx (the fake platform never fails);
//! - an error is exactly `{"error":{"code","message"}}` with a known code
//!   (and `Retry-After` on 429);
//! - a 200 from an ingestion endpoint counts every event once
//!   (`accepted + rejected + dropped == results.len()`, indices `0..n`), and
//!   exactly the accepted events were put on the Queue.

use super::{Harness, CHROME};
use serde_json::Value;
use sluice_edge_worker::http::{Client, HttpRequest, HttpResponse};
use sluice_edge_worker::ratelimit::Limiter;
use std::io::Write;

/// Bytes of an input before the body: method, path, query, two flag bytes.
pub const HEADER_BYTES: usize = 5;

const METHODS: [&str; 8] = [
    "POST", "POST", "POST", "GET", "OPTIONS", "HEAD", "PUT", "DELETE",
];
const PATHS: [&str; 20] = [
    "/v1/batch",
    "/v1/b",
    "/beacon/v1/batch",
    "/v1/t",
    "/v1/track",
    "/v1/p",
    "/v1/i",
    "/v1/identify",
    "/v1/g",
    "/v1/a",
    "/v1/s",
    "/v1/page",
    "/cdn/sl/id",
    "/cdn/sl/sluice.js",
    "/admin/v1/profiles/u1",
    "/admin/v1/requests",
    "/admin/v1/audit",
    "/admin/v1/events",
    "/nope",
    "/v1/",
];
const QUERIES: [&str; 8] = [
    "",
    "writeKey=demo-write-key",
    "writeKey=strict-key",
    "writeKey=unknown",
    "writeKey=",
    "writeKey=%FF%00%",
    "userId=u1&limit=-5",
    "anonymousId=a&writeKey=anon-key",
];

/// Codes an error response may carry.
pub const ERROR_CODES: &[&str] = &[
    "not_found",
    "method_not_allowed",
    "empty_body",
    "payload_too_large",
    "invalid_json",
    "not_an_object",
    "missing_batch",
    "invalid_envelope",
    "too_many_events",
    "bad_content_encoding",
    "unauthorized",
    "dev_credential_refused",
    "origin_not_allowed",
    "forbidden",
    "bad_request",
    "rate_limited",
];

const STATUSES: &[u16] = &[200, 202, 204, 304, 400, 401, 403, 404, 405, 413, 429];

fn pick<T: Copy>(items: &[T], byte: u8) -> T {
    items[usize::from(byte) % items.len()]
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// The request an input describes. Never fails: every byte string is a request.
pub fn request(data: &[u8]) -> HttpRequest {
    let mut head = [0u8; HEADER_BYTES];
    let n = data.len().min(HEADER_BYTES);
    head[..n].copy_from_slice(&data[..n]);
    let body = data.get(HEADER_BYTES..).unwrap_or_default().to_vec();
    let [method, path, query, flags, more] = head;
    let bit = |byte: u8, i: u8| byte & (1 << i) != 0;
    let mut headers: Vec<(String, String)> = Vec::new();
    let mut add = |k: &str, v: &str| headers.push((k.to_owned(), v.to_owned()));
    add(
        "user-agent",
        if bit(more, 0) {
            "Googlebot/2.1"
        } else {
            CHROME
        },
    );
    add(
        "host",
        if bit(flags, 6) {
            "sluice.example.com"
        } else {
            "127.0.0.1:8787"
        },
    );
    if bit(flags, 0) {
        add("authorization", "Basic ZGVtby13cml0ZS1rZXk6"); // demo-write-key:
    }
    if bit(flags, 1) {
        add("authorization", "Basic !!!not base64");
    }
    if bit(flags, 7) {
        add("authorization", "Bearer dev-admin-token");
    }
    if bit(more, 1) {
        add("authorization", "Bearer \u{0}\u{ff}garbage");
    }
    if bit(flags, 4) {
        add("origin", "https://evil.example");
    }
    if bit(flags, 5) {
        add("origin", "https://shop.example.com");
    }
    if bit(more, 2) {
        add("sec-gpc", "1");
    }
    if bit(more, 3) {
        add("content-type", "text/plain");
    }
    if bit(more, 4) {
        add("access-control-request-method", "POST");
        add("access-control-request-headers", "authorization, x-evil");
    }
    let body = if bit(flags, 3) {
        add("content-encoding", "br");
        body
    } else if bit(flags, 2) {
        add("content-encoding", "gzip");
        if bit(more, 5) {
            body // claimed gzip, sent plain: corrupt gzip
        } else {
            gzip(&body)
        }
    } else {
        body
    };
    let (path, query) = (pick(&PATHS, path), pick(&QUERIES, query));
    HttpRequest {
        method: pick(&METHODS, method).to_owned(),
        path: path.to_owned(),
        query: query.to_owned(),
        headers,
        body,
        client: Client {
            ip: bit(more, 6).then(|| "203.0.113.77".parse().unwrap()),
            ..Client::default()
        },
    }
}

fn is_ingest(req: &HttpRequest) -> bool {
    req.method == "POST"
        && (matches!(
            req.path.as_str(),
            "/v1/batch" | "/v1/b" | "/beacon/v1/batch"
        ) || req
            .path
            .strip_prefix("/v1/")
            .and_then(sluice_shared::EventType::from_name)
            .is_some())
}

/// Events in the Queue messages from the `from`-th on (only the new ones
/// are decoded: the Queue grows with every accepted input).
fn queued_events(h: &Harness, from: usize) -> usize {
    h.fake.queued.borrow()[from..]
        .iter()
        .map(|m| m.clone().into_events().len())
        .sum()
}

/// Send one input through the router and check the answer. `Err` says what is wrong.
pub fn run_one(h: &Harness, data: &[u8]) -> Result<(), String> {
    *h.limiter.borrow_mut() = Limiter::default();
    let req = request(data);
    let before = h.fake.queued.borrow().len();
    let res = h.send(req.clone());
    let queued = queued_events(h, before);
    check(&req, &res, queued)
}

fn check(req: &HttpRequest, res: &HttpResponse, queued: usize) -> Result<(), String> {
    let what = format!("{} {}?{} → {}", req.method, req.path, req.query, res.status);
    if !STATUSES.contains(&res.status) {
        return Err(format!("{what}: undocumented status"));
    }
    if res.status >= 400 {
        let body: Value = serde_json::from_slice(&res.body)
            .map_err(|e| format!("{what}: the error body is not JSON ({e})"))?;
        let code = body["error"]["code"].as_str().unwrap_or_default();
        let message = body["error"]["message"].as_str().unwrap_or_default();
        let shape_ok = body.as_object().is_some_and(|o| o.len() == 1)
            && body["error"].as_object().is_some_and(|o| o.len() == 2);
        if !shape_ok || !ERROR_CODES.contains(&code) || message.is_empty() {
            return Err(format!("{what}: malformed error {body}"));
        }
        if res.status == 429 && res.header("retry-after").is_none() {
            return Err(format!("{what}: 429 without Retry-After"));
        }
        if queued != 0 {
            return Err(format!("{what}: an error, but {queued} events were queued"));
        }
        return Ok(());
    }
    if !is_ingest(req) {
        return Ok(());
    }
    if res.status != 200 {
        return Err(format!("{what}: ingestion answers 200 or an error"));
    }
    let body: Value = serde_json::from_slice(&res.body)
        .map_err(|e| format!("{what}: the body is not JSON ({e})"))?;
    let count = |k: &str| body[k].as_u64().map(|n| n as usize);
    let results = body["results"].as_array().cloned().unwrap_or_default();
    let (Some(accepted), Some(rejected), Some(dropped)) =
        (count("accepted"), count("rejected"), count("dropped"))
    else {
        return Err(format!("{what}: counts missing in {body}"));
    };
    if accepted + rejected + dropped != results.len() {
        return Err(format!("{what}: counts do not add up in {body}"));
    }
    for (i, r) in results.iter().enumerate() {
        let status = r["status"].as_str().unwrap_or_default();
        let codes_ok = match status {
            "accepted" => true,
            "rejected" => r["errors"].as_array().is_some_and(|e| {
                !e.is_empty()
                    && e.iter().all(|p| {
                        p["code"].as_str().is_some_and(|c| {
                            !c.is_empty()
                                && c.bytes().all(|b| {
                                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'
                                })
                        }) && p["message"].as_str().is_some_and(|m| !m.is_empty())
                    })
            }),
            "dropped" => r["reason"]["code"].as_str().is_some_and(|c| !c.is_empty()),
            _ => false,
        };
        if r["index"].as_u64() != Some(i as u64) || !codes_ok {
            return Err(format!("{what}: result {i} is malformed: {r}"));
        }
    }
    if queued != accepted {
        return Err(format!(
            "{what}: {accepted} accepted but {queued} events queued"
        ));
    }
    Ok(())
}

/// A small deterministic generator (SplitMix64): the run is reproducible from its seed.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Tokens that break parsers: structure, escapes, surrogates, non-UTF-8, odd numbers.
const TOKENS: &[&[u8]] = &[
    b"{",
    b"}",
    b"[",
    b"]",
    b"\"",
    b",",
    b":",
    b"\\",
    b"\\u",
    b"\\ud800",
    b"\\udc00\\ud800",
    b"\xff",
    b"\xc3",
    b"\xed\xa0\x80",
    b"\0",
    b"NaN",
    b"-Infinity",
    b"1e999",
    b"-0",
    b"null",
    b"true",
    b"\"batch\":",
    b"\"type\":",
    b"\"messageId\":",
    b"\"sentAt\":5,",
    b"{\"a\":",
    b"\"writeKey\":\"demo-write-key\",",
    b"\"context\":[],",
    b"\"type\":\"track\",",
];

/// One input derived from `seed` by a few random edits (or a fresh header).
pub fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    let mut out = seed.to_vec();
    if out.len() < HEADER_BYTES {
        out.resize(HEADER_BYTES, 0);
    }
    for b in out.iter_mut().take(HEADER_BYTES) {
        if rng.below(3) == 0 {
            *b = rng.next() as u8;
        }
    }
    for _ in 0..=rng.below(4) {
        let body_len = out.len() - HEADER_BYTES;
        let at = HEADER_BYTES + rng.below(body_len + 1);
        match rng.below(8) {
            0 if at < out.len() => out[at] = rng.next() as u8,
            1 => {
                let token = TOKENS[rng.below(TOKENS.len())];
                out.splice(at..at, token.iter().copied());
            }
            2 if at < out.len() => {
                let end = (at + 1 + rng.below(16)).min(out.len());
                out.drain(at..end);
            }
            3 => out.truncate(at),
            4 if at < out.len() => {
                let end = (at + 1 + rng.below(64)).min(out.len());
                let copy = out[at..end].to_vec();
                out.splice(at..at, copy);
            }
            5 => {
                let depth = 1 + rng.below(400);
                let mut deep = vec![b'['; depth];
                deep.extend(std::iter::repeat_n(b']', depth));
                out.splice(at..at, deep);
            }
            6 => {
                let n = rng.below(64);
                let junk: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                out.splice(at..at, junk);
            }
            _ => {
                let digits = rng.next().to_string();
                out.splice(at..at, digits.bytes());
            }
        }
    }
    out
}
