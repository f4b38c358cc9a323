//! The outgoing queue: events as JSON text, bounded (oldest evicted first and
//! counted), persisted to localStorage per tab so they survive reloads and
//! offline periods.
//!
//! Cross-tab safety: each tab persists under its own key and holds a Web Lock
//! of that name while it lives. A tab adopts another tab's stored queue only
//! when it can take that lock, i.e. when the owner is gone, so two live tabs
//! never send the same stored events.

use crate::prelude::*;

/// Prefix of the per-tab persisted queues.
pub const KEY_PREFIX: &str = "sluice:q:";
/// Largest `sendBeacon` body. The `keepalive` / `sendBeacon` budget is 64 KiB
/// for everything in flight, so a body takes at most half of it.
pub const MAX_BEACON_BYTES: usize = 32 * 1024;
/// Largest `fetch` body, under the collector's 500 KB batch limit: a burst
/// goes out in a few large requests (each a `fetch` and, while the queue is
/// large, a rewrite of the stored queue on the main thread), not hundreds.
/// Gzipped, as browsers with `CompressionStream` send it, it is a few KB and
/// fits the keepalive budget; one that does not fit goes without `keepalive`
/// and its events stay stored until it is answered (`host.js`).
pub const MAX_FETCH_BYTES: usize = 448 * 1024;
/// Most events in one request.
pub const MAX_BATCH_EVENTS: usize = 500;
/// Most bytes persisted (localStorage quotas are ~5 MB per origin).
pub const MAX_PERSIST_BYTES: usize = 2 * 1024 * 1024;

/// One queued event: its JSON text.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub json: String,
}

impl Item {
    /// The event's `messageId`, as written in the JSON (escapes kept). The
    /// SDK writes it near the start, before anything nested; it is read only
    /// when adopting another tab's queue or reporting an eviction.
    pub fn message_id(&self) -> Option<&str> {
        const KEY: &str = "\"messageId\":\"";
        // A byte scan: `str::find` with a string pattern would add 3 KB of searcher to the Wasm.
        let start = self
            .json
            .as_bytes()
            .windows(KEY.len())
            .position(|w| w == KEY.as_bytes())?;
        // `get`, not indexing: a failed `str` index panics through 5 KB of char formatting.
        let rest = self.json.get(start + KEY.len()..)?;
        let mut escaped = false;
        for (i, b) in rest.bytes().enumerate() {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => return rest.get(..i),
                _ => {}
            }
        }
        None
    }
}

/// The queue. Items `[0, inflight)` are being sent.
#[derive(Debug, Default)]
pub struct Queue {
    /// Oldest first. A `Vec`, not a `VecDeque`: 1.5 KB less Wasm. Removing
    /// from the front happens once per request; per event only when the
    /// queue is full (one shift of the queue per evicted event).
    items: Vec<Item>,
    /// Events at the front currently in a request.
    pub inflight: usize,
    /// Events evicted because the queue was full.
    pub dropped: u32,
    max: usize,
}

impl Queue {
    pub fn new(max: usize) -> Queue {
        Queue {
            max: max.max(1),
            ..Queue::default()
        }
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Events waiting to be sent (not in flight).
    pub fn waiting(&self) -> usize {
        self.items.len() - self.inflight
    }

    /// Add an event, evicting the oldest one not in flight if full. Returns the evicted event.
    pub fn push(&mut self, item: Item) -> Option<Item> {
        let evicted = if self.items.len() >= self.max && self.items.len() > self.inflight {
            self.dropped += 1;
            Some(self.items.remove(self.inflight))
        } else {
            None
        };
        self.items.push(item);
        evicted
    }

    /// Add events from another tab's stored queue, skipping ids already here.
    pub fn adopt(&mut self, items: Vec<Item>) -> usize {
        let mut added = 0;
        for item in items {
            let id = item.message_id();
            if id.is_none() || !self.items.iter().any(|i| i.message_id() == id) {
                self.push(item);
                added += 1;
            }
        }
        added
    }

    /// Take the next request's events (from the front, after any in flight):
    /// as many as fit in `MAX_FETCH_BYTES` and `MAX_BATCH_EVENTS`. Marks them in flight.
    pub fn next_batch(&mut self) -> Option<String> {
        let (body, n) = self.body_from(self.inflight, MAX_FETCH_BYTES)?;
        self.inflight += n;
        Some(body)
    }

    /// The body for the events from `from` on, as many as fit in `max`
    /// bytes (at least one), and how many it holds.
    fn body_from(&self, from: usize, max: usize) -> Option<(String, usize)> {
        if from >= self.items.len() {
            return None;
        }
        let mut body = String::from("{\"batch\":[");
        let mut n = 0;
        for item in self.items.get(from..).unwrap_or_default() {
            if n > 0 && (n >= MAX_BATCH_EVENTS || body.len() + item.json.len() + 40 > max) {
                break;
            }
            if n > 0 {
                body.push(',');
            }
            body.push_str(&item.json);
            n += 1;
        }
        body.push_str("],\"sentAt\":\"");
        Some((body, n))
    }

    /// Remove the events `[from, to)` (one `drain` for both callers).
    fn cut(&mut self, from: usize, to: usize) {
        self.items.drain(from..to);
    }

    /// The request went through: remove the events in flight.
    pub fn sent(&mut self) {
        let n = self.inflight.min(self.items.len());
        self.cut(0, n);
        self.inflight = 0;
    }

    /// The request failed and will be retried: the events stay, in order.
    pub fn failed(&mut self) {
        self.inflight = 0;
    }

    /// Bodies for `sendBeacon` covering every event not in flight (each ≤ 64 KiB),
    /// with the number of events in each.
    pub fn beacon_bodies(&self) -> Vec<(String, usize)> {
        let mut out = Vec::new();
        let mut from = self.inflight;
        while let Some((body, n)) = self.body_from(from, MAX_BEACON_BYTES) {
            out.push((body, n));
            from += n;
        }
        out
    }

    /// Remove `n` events after those in flight (they went out by beacon).
    pub fn remove_after_inflight(&mut self, n: usize) {
        let end = (self.inflight + n).min(self.items.len());
        self.cut(self.inflight, end);
    }

    /// The persisted form of the events from `from` on: a JSON array,
    /// oldest first, within `MAX_PERSIST_BYTES`.
    pub fn persisted(&self, from: usize) -> String {
        let mut out = String::from("[");
        for (i, item) in self.items.iter().skip(from).enumerate() {
            if out.len() + item.json.len() + 2 > MAX_PERSIST_BYTES {
                break;
            }
            if i > 0 {
                out.push(',');
            }
            out.push_str(&item.json);
        }
        out.push(']');
        out
    }
}

/// Close a body from [`Queue::next_batch`] / [`Queue::beacon_bodies`] with its `sentAt`.
pub fn finish_body(mut body: String, sent_at: &str) -> String {
    body.push_str(sent_at);
    body.push_str("\"}");
    body
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::cat;

    fn item(i: usize) -> Item {
        Item {
            json: cat(&["{\"messageId\":\"", &i.to_string(), "\"}"]),
        }
    }

    #[test]
    fn a_full_queue_evicts_the_oldest_and_counts_it() {
        let mut q = Queue::new(3);
        for i in 0..5 {
            q.push(item(i));
        }
        assert_eq!(q.len(), 3);
        assert_eq!(q.dropped, 2);
        assert_eq!(
            q.persisted(0),
            r#"[{"messageId":"2"},{"messageId":"3"},{"messageId":"4"}]"#
        );
    }

    #[test]
    fn persisting_from_the_in_flight_mark_leaves_the_request_out() {
        let mut q = Queue::new(10);
        q.push(item(0));
        q.push(item(1));
        q.next_batch().unwrap();
        q.push(item(2));
        assert_eq!(q.persisted(q.inflight), r#"[{"messageId":"2"}]"#);
        q.failed();
        assert_eq!(
            q.persisted(q.inflight),
            r#"[{"messageId":"0"},{"messageId":"1"},{"messageId":"2"}]"#,
            "a failed request's events are back in the stored queue"
        );
    }

    #[test]
    fn events_in_flight_are_never_evicted_and_stay_on_failure() {
        let mut q = Queue::new(2);
        q.push(item(0));
        q.push(item(1));
        let body = finish_body(q.next_batch().unwrap(), "now");
        assert_eq!(
            body,
            r#"{"batch":[{"messageId":"0"},{"messageId":"1"}],"sentAt":"now"}"#
        );
        assert_eq!(
            q.push(item(2)),
            None,
            "nothing evictable while both are in flight"
        );
        q.failed();
        assert_eq!(q.waiting(), 3);
        q.next_batch();
        q.sent();
        assert_eq!(q.len(), 0);
    }

    /// A queue of `n` 1,008-byte events.
    fn of_1_kb_events(n: usize) -> Queue {
        let mut q = Queue::new(10_000);
        let big = "x".repeat(1000);
        for _ in 0..n {
            q.push(Item {
                json: cat(&["{\"p\":\"", &big, "\"}"]),
            });
        }
        q
    }

    #[test]
    fn bodies_stay_under_the_keepalive_limit() {
        let mut q = of_1_kb_events(200);
        let bodies = q.beacon_bodies();
        // 31 events of ~1 KB to a body: 7 bodies of at most 32 KiB.
        assert_eq!(bodies.len(), 7);
        assert!(bodies.iter().all(|(b, _)| b.len() + 40 <= 32 * 1024));
        assert_eq!(bodies.iter().map(|(_, n)| n).sum::<usize>(), 200);
        q.remove_after_inflight(bodies[0].1);
        assert_eq!(q.len(), 200 - bodies[0].1);
    }

    #[test]
    fn a_fetch_takes_up_to_448_kib_or_500_events() {
        let mut q = of_1_kb_events(1000);
        // 1,008-byte events: 454 of them (and their commas) fill 448 KiB.
        let body = q.next_batch().unwrap();
        assert!(body.len() + 40 <= MAX_FETCH_BYTES, "{}", body.len());
        assert_eq!(q.inflight, 454);
        q.sent();
        let mut small = Queue::new(10_000);
        for i in 0..1000 {
            small.push(item(i));
        }
        small.next_batch().unwrap();
        assert_eq!(small.inflight, MAX_BATCH_EVENTS);
    }

    #[test]
    fn adoption_skips_events_already_queued() {
        let mut q = Queue::new(10);
        q.push(item(1));
        assert_eq!(q.adopt(vec![item(1), item(2)]), 1);
        assert_eq!(q.len(), 2);
    }

    #[test]
    fn the_message_id_is_read_from_the_json() {
        let json = |s: &str| Item { json: s.to_owned() };
        assert_eq!(
            json(r#"{"type":"track","messageId":"a-1","properties":{"messageId":"x"}}"#)
                .message_id(),
            Some("a-1")
        );
        assert_eq!(
            json(r#"{"messageId":"say \"hi\"","x":1}"#).message_id(),
            Some(r#"say \"hi\""#)
        );
        assert_eq!(json(r#"{"type":"track"}"#).message_id(), None);
        assert_eq!(json(r#"{"messageId":"unterminated"#).message_id(), None);
    }
}
