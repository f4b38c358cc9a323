//! Outbound HTTP (`fetch`), with a timeout.

use crate::ports::{HttpClient, PortError};
use futures_util::future::{select, Either};
use sluice_shared::dest::batching::rate_limit_reset_ms;
use sluice_shared::dest::{retry_after_ms, HttpAnswer, HttpRequest};
use std::time::Duration;

pub struct Fetch;

impl HttpClient for Fetch {
    async fn send(&self, out: &HttpRequest, timeout_ms: u32) -> Result<HttpAnswer, PortError> {
        let url = out.url.as_str();
        // Errors name the URL without its credentials (Meta's access_token,
        // GA4's api_secret): they end in dead letters and the debugger.
        let shown = sluice_shared::dest::url::redact_url(url);
        let rejected =
            |e: worker::Error| PortError::Rejected(format!("{} {shown}: {e}", out.method));
        let h = worker::Headers::new();
        for (k, v) in &out.headers {
            h.set(k, v).map_err(rejected)?;
        }
        let method = worker::Method::from(out.method.to_owned());
        let mut init = worker::RequestInit::new();
        init.with_method(method).with_headers(h);
        if !out.body.is_empty() {
            init.with_body(Some(js_sys::Uint8Array::from(out.body.as_slice()).into()));
        }
        let request = worker::Request::new_with_init(url, &init).map_err(rejected)?;
        let controller = worker::AbortController::default();
        let signal = controller.signal();
        let fetch = Box::pin(async move {
            let mut res = worker::Fetch::Request(request)
                .send_with_signal(&signal)
                .await?;
            let status = res.status_code();
            let header = |name: &str| res.headers().get(name).ok().flatten();
            let now_ms = js_sys::Date::now() as i64;
            // `Retry-After`, or the rate-limit window's reset (Braze and others).
            let retry_after_ms = header("retry-after")
                .and_then(|v| retry_after_ms(&v, now_ms))
                .or_else(|| {
                    header("x-ratelimit-reset").and_then(|v| rate_limit_reset_ms(&v, now_ms))
                });
            let body = res.text().await.unwrap_or_default();
            Ok::<_, worker::Error>(HttpAnswer {
                status,
                retry_after_ms,
                body,
            })
        });
        let timer = Box::pin(worker::Delay::from(Duration::from_millis(u64::from(
            timeout_ms,
        ))));
        match select(fetch, timer).await {
            Either::Left((result, _)) => result
                .map_err(|e| PortError::Unavailable(format!("{} {shown} failed: {e}", out.method))),
            Either::Right(_) => {
                controller.abort();
                Err(PortError::Timeout(format!(
                    "{} {shown} timed out after {timeout_ms} ms",
                    out.method
                )))
            }
        }
    }
}
