//! A webhook receiver on loopback that verifies Sluice's HMAC signature and
//! can be told to fail.

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

/// How the receiver answers.
#[derive(Debug, Clone, Copy)]
pub enum Behaviour {
    /// Always 200.
    Healthy,
    /// 500 for the first `n` requests, then 200.
    FailFirst(usize),
    /// Always 500.
    Down,
    /// 429 with `Retry-After: <retry_after_s>` for the first `n` requests, then 200.
    Throttle { n: usize, retry_after_s: u32 },
}

/// One request as received.
#[derive(Debug, Clone)]
pub struct Received {
    pub status: u16,
    pub signature_valid: bool,
    pub body: Value,
    /// When the request had been read.
    pub at: std::time::Instant,
    pub idempotency_key: Option<String>,
}

/// A running receiver; requests are recorded in order.
pub struct Receiver {
    pub port: u16,
    received: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    /// Listen on a free loopback port, verifying signatures with `secret`.
    pub fn start(secret: &str, behaviour: Behaviour) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&received);
        let secret = secret.as_bytes().to_vec();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                let mut headers = Vec::new();
                let mut line = String::new();
                let _ = reader.read_line(&mut line);
                loop {
                    line.clear();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some((k, v)) = line.split_once(':') {
                        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
                    }
                }
                let header = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
                let len: usize = header("content-length")
                    .and_then(|l| l.parse().ok())
                    .unwrap_or(0);
                let mut body = vec![0; len];
                let _ = reader.read_exact(&mut body);
                let signature_valid =
                    match (header("x-sluice-timestamp"), header("x-sluice-signature")) {
                        (Some(ts), Some(sig)) => {
                            let mut mac =
                                Hmac::<Sha256>::new_from_slice(&secret).expect("hmac key");
                            mac.update(ts.as_bytes());
                            mac.update(b".");
                            mac.update(&body);
                            let expected = hex(&mac.finalize().into_bytes());
                            sig.strip_prefix("v1=") == Some(expected.as_str())
                        }
                        _ => false,
                    };
                let mut log = log.lock().expect("lock");
                let n = log.len();
                let status = match behaviour {
                    Behaviour::Healthy => 200,
                    Behaviour::FailFirst(k) if n < k => 500,
                    Behaviour::FailFirst(_) => 200,
                    Behaviour::Down => 500,
                    Behaviour::Throttle { n: k, .. } if n < k => 429,
                    Behaviour::Throttle { .. } => 200,
                };
                let retry_after = match behaviour {
                    Behaviour::Throttle { retry_after_s, .. } if status == 429 => {
                        format!("Retry-After: {retry_after_s}\r\n")
                    }
                    _ => String::new(),
                };
                log.push(Received {
                    status,
                    signature_valid,
                    body: serde_json::from_slice(&body).unwrap_or(Value::Null),
                    at: std::time::Instant::now(),
                    idempotency_key: header("idempotency-key"),
                });
                drop(log);
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status} X\r\n{retry_after}Content-Length: 2\r\nConnection: close\r\n\r\nok"
                );
            }
        });
        Receiver { port, received }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hook", self.port)
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().expect("lock").clone()
    }

    /// Message ids in the batches this receiver accepted (answered 200), with repeats.
    pub fn accepted_ids(&self) -> Vec<String> {
        self.received()
            .iter()
            .filter(|r| r.status == 200)
            .flat_map(|r| r.body["batch"].as_array().cloned().unwrap_or_default())
            .filter_map(|e| e["messageId"].as_str().map(str::to_owned))
            .collect()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
