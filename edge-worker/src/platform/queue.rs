//! The events Queue producer.

/// Largest number of messages in one `sendBatch` call.
const MAX_MESSAGES_PER_SEND: usize = 100;
/// Largest total body size of one `sendBatch` call (platform limit 256 KB, with headroom).
const MAX_BYTES_PER_SEND: usize = 200 * 1024;

pub struct EventsQueue(pub worker::Queue);

impl EventsQueue {
    /// Send every message, in chunks within the platform limits.
    pub async fn send(&self, messages: Vec<String>) -> Result<(), String> {
        let mut chunk: Vec<String> = Vec::new();
        let mut chunk_bytes = 0;
        for m in messages {
            if !chunk.is_empty()
                && (chunk.len() == MAX_MESSAGES_PER_SEND
                    || chunk_bytes + m.len() > MAX_BYTES_PER_SEND)
            {
                self.send_chunk(std::mem::take(&mut chunk)).await?;
                chunk_bytes = 0;
            }
            chunk_bytes += m.len();
            chunk.push(m);
        }
        if !chunk.is_empty() {
            self.send_chunk(chunk).await?;
        }
        Ok(())
    }

    async fn send_chunk(&self, chunk: Vec<String>) -> Result<(), String> {
        self.0
            .send_batch(chunk)
            .await
            .map_err(|e| format!("queue send failed: {e}"))
    }
}
