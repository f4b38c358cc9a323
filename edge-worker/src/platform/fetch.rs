//! Outbound HTTP (`fetch`), with a timeout.

use crate::sinks::HttpClient;
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
    ) -> Result<(u16, String), String> {
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
            let text = res.text().await.unwrap_or_default();
            Ok::<_, worker::Error>((status, text))
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
