//! Outbound HTTP (`fetch`), with a timeout.

use crate::sinks::{HttpClient, Reply};
use futures_util::future::{select, Either};
use std::time::Duration;

pub struct Fetch;

impl HttpClient for Fetch {
    async fn post(
        &self,
        url: &str,
        headers: &[(String, String)],
        body: Vec<u8>,
        timeout_ms: u32,
    ) -> Result<Reply, String> {
        let h = worker::Headers::new();
        for (k, v) in headers {
            h.set(k, v).map_err(|e| e.to_string())?;
        }
        let mut init = worker::RequestInit::new();
        init.with_method(worker::Method::Post)
            .with_headers(h)
            .with_body(Some(js_sys::Uint8Array::from(body.as_slice()).into()));
        let request = worker::Request::new_with_init(url, &init).map_err(|e| e.to_string())?;
        let controller = worker::AbortController::default();
        let signal = controller.signal();
        let fetch = Box::pin(async move {
            let mut res = worker::Fetch::Request(request)
                .send_with_signal(&signal)
                .await?;
            let status = res.status_code();
            let retry_after_s = res
                .headers()
                .get("retry-after")
                .ok()
                .flatten()
                .and_then(|v| retry_after_s(&v, js_sys::Date::now()));
            let text = res.text().await.unwrap_or_default();
            Ok::<_, worker::Error>(Reply {
                status,
                body: text,
                retry_after_s,
            })
        });
        let timer = Box::pin(worker::Delay::from(Duration::from_millis(u64::from(
            timeout_ms,
        ))));
        match select(fetch, timer).await {
            Either::Left((result, _)) => result.map_err(|e| format!("POST {url} failed: {e}")),
            Either::Right(_) => {
                controller.abort();
                Err(format!("POST {url} timed out after {timeout_ms} ms"))
            }
        }
    }
}

/// `Retry-After` as seconds from `now_ms`: delta-seconds or an HTTP date.
fn retry_after_s(value: &str, now_ms: f64) -> Option<u32> {
    let value = value.trim();
    if let Ok(s) = value.parse::<u32>() {
        return Some(s);
    }
    let at = js_sys::Date::parse(value);
    (!at.is_nan()).then(|| ((at - now_ms) / 1000.0).ceil().clamp(0.0, 43_200.0) as u32)
}
