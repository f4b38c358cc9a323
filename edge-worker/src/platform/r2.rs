//! The R2 bucket (the data lake, exports and the dead-letter store).

use super::meter;
use crate::ports::{ObjectStore, PortError};
use sluice_shared::cost::Meter;

pub struct R2(pub worker::Bucket);

impl ObjectStore for R2 {
    async fn put(&self, key: &str, body: Vec<u8>, content_type: &str) -> Result<(), PortError> {
        let meta = worker::HttpMetadata {
            content_type: Some(content_type.to_owned()),
            ..Default::default()
        };
        meter::add(Meter::R2ClassA, 1);
        meter::add(Meter::R2BytesPut, body.len() as u64);
        self.0
            .put(key, body)
            .http_metadata(meta)
            .execute()
            .await
            .map(|_| ())
            .map_err(|e| PortError::Unavailable(format!("R2 put {key} failed: {e}")))
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, PortError> {
        meter::add(Meter::R2ClassB, 1);
        let Some(object) = self
            .0
            .get(key)
            .execute()
            .await
            .map_err(|e| PortError::Unavailable(format!("R2 get {key} failed: {e}")))?
        else {
            return Ok(None);
        };
        match object.body() {
            Some(body) => body
                .bytes()
                .await
                .map(Some)
                .map_err(|e| PortError::Unavailable(format!("R2 read {key} failed: {e}"))),
            None => Ok(Some(Vec::new())),
        }
    }

    async fn delete(&self, key: &str) -> Result<(), PortError> {
        self.0
            .delete(key)
            .await
            .map_err(|e| PortError::Unavailable(format!("R2 delete {key} failed: {e}")))
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, PortError> {
        let mut keys = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            meter::add(Meter::R2ClassA, 1);
            let mut builder = self.0.list().prefix(prefix);
            if let Some(c) = cursor.take() {
                builder = builder.cursor(c);
            }
            let page = builder
                .execute()
                .await
                .map_err(|e| PortError::Unavailable(format!("R2 list {prefix} failed: {e}")))?;
            keys.extend(page.objects().iter().map(|o| o.key()));
            match page.cursor() {
                Some(c) if page.truncated() => cursor = Some(c),
                _ => break,
            }
        }
        Ok(keys)
    }
}
