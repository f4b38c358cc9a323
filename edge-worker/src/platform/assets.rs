//! The static assets binding (the site and the SDK files).

use crate::ports::{Asset, PortError};

pub struct Assets(pub worker::Fetcher);

impl Assets {
    /// The asset at `path`, or `None` if there is none.
    pub async fn get(&self, path: &str) -> Result<Option<Asset>, PortError> {
        // The assets binding ignores the host; any absolute URL will do.
        let url = ["https://assets.local", path].concat();
        let mut res = self
            .0
            .fetch(url, None)
            .await
            .map_err(|e| PortError::Unavailable(format!("assets fetch failed: {e}")))?;
        if res.status_code() == 404 {
            return Ok(None);
        }
        if res.status_code() != 200 {
            return Err(PortError::Unavailable(format!(
                "assets answered {}",
                res.status_code()
            )));
        }
        let content_type = res
            .headers()
            .get("content-type")
            .ok()
            .flatten()
            .unwrap_or_else(|| "application/octet-stream".to_owned());
        let body = res
            .bytes()
            .await
            .map_err(|e| PortError::Unavailable(format!("assets read failed: {e}")))?;
        Ok(Some(Asset { content_type, body }))
    }
}
