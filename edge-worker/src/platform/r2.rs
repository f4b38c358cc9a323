//! The R2 bucket (the data lake and the dead-letter store).

use crate::sinks::ObjectStore;

pub struct R2(pub worker::Bucket);

impl ObjectStore for R2 {
    async fn put(&self, key: &str, body: Vec<u8>, content_type: &str) -> Result<(), String> {
        let meta = worker::HttpMetadata {
            content_type: Some(content_type.to_owned()),
            ..Default::default()
        };
        self.0
            .put(key, body)
            .http_metadata(meta)
            .execute()
            .await
            .map(|_| ())
            .map_err(|e| format!("R2 put {key} failed: {e}"))
    }
}
