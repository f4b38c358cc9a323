//! A Queue producer.

use crate::ports::PortError;

/// Largest number of messages in one `sendBatch` call.
const MAX_MESSAGES_PER_SEND: usize = 100;
/// Largest total body size of one `sendBatch` call (platform limit 256 KB, with headroom).
const MAX_BYTES_PER_SEND: usize = 200 * 1024;

pub struct EventsQueue(pub worker::Queue);

impl EventsQueue {
    /// Send every message, in chunks within the platform limits.
    pub async fn send(&self, messages: Vec<String>) -> Result<(), PortError> {
        self.send_delayed(messages, 0).await
    }

    /// Like [`EventsQueue::send`], delivered after `delay_s` seconds.
    pub async fn send_delayed(&self, messages: Vec<String>, delay_s: u32) -> Result<(), PortError> {
        let mut chunk: Vec<String> = Vec::new();
        let mut chunk_bytes = 0;
        for m in messages {
            if !chunk.is_empty()
                && (chunk.len() == MAX_MESSAGES_PER_SEND
                    || chunk_bytes + m.len() > MAX_BYTES_PER_SEND)
            {
                self.send_chunk(std::mem::take(&mut chunk), delay_s).await?;
                chunk_bytes = 0;
            }
            chunk_bytes += m.len();
            chunk.push(m);
        }
        if !chunk.is_empty() {
            self.send_chunk(chunk, delay_s).await?;
        }
        Ok(())
    }

    async fn send_chunk(&self, chunk: Vec<String>, delay_s: u32) -> Result<(), PortError> {
        let ops = chunk
            .iter()
            .map(|m| sluice_shared::cost::queue_ops(m.len()))
            .sum();
        super::meter::add(sluice_shared::cost::Meter::QueueOps, ops);
        // As text: a message's size is then its UTF-8 bytes, the figure the
        // limits above and the cost meter use. The default (JSON) sends the
        // JSON of the string, every quote escaped: a 120 KB message of
        // JSON grew past the 128 KB message limit and the send failed.
        let messages = chunk.into_iter().map(|m| {
            worker::MessageBuilder::new(m)
                .content_type(worker::QueueContentType::Text)
                .build()
        });
        let mut batch = worker::BatchMessageBuilder::new().messages(messages);
        if delay_s > 0 {
            batch = batch.delay_seconds(delay_s);
        }
        self.0
            .send_batch(batch.build())
            .await
            .map_err(|e| PortError::Unavailable(format!("queue send failed: {e}")))
    }
}
