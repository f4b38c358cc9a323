//! Clock-skew correction: when did the event really happen, by the server's clock?
//!
//! A browser's clock can be minutes or years off. The client stamps the event
//! when it happens (`originalTimestamp`, or `timestamp` from clients that send
//! only that) and again when it sends the batch (`sentAt`), both by its own
//! clock. Their difference is the time the event waited on the device, which
//! does not depend on the clock's offset. So, by the server's clock:
//!
//! ```text
//! timestamp = receivedAt − (sentAt − originalTimestamp)
//! ```
//!
//! Rules for missing or absurd values, applied in order:
//! 1. No client time at all: `timestamp = receivedAt`.
//! 2. No (or unparseable) `sentAt`: the offset is unknown; the client time is
//!    used as it is, clamped into `[receivedAt − max_delay, receivedAt]`.
//! 3. A negative wait (sent before it happened) counts as zero.
//! 4. A wait longer than `max_delay` (default 30 days; an offline queue rarely
//!    holds events longer) counts as `max_delay`.
//! 5. The result is never after `receivedAt`.
//!
//! The client's own reading is kept in `originalTimestamp`.

use crate::event::Event;
use crate::time::{Timestamp, DAY_MS};

/// Bounds for the correction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SkewRules {
    /// Longest plausible time between an event happening and its upload.
    pub max_delay_ms: i64,
}

impl Default for SkewRules {
    fn default() -> Self {
        SkewRules {
            max_delay_ms: 30 * DAY_MS,
        }
    }
}

/// How the timestamp was arrived at (recorded for the debugger and audits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SkewNote {
    /// Corrected by the wait between event and send.
    Corrected,
    /// No client time: `receivedAt` was used.
    NoClientTime,
    /// No `sentAt`: the client time was used, within bounds.
    Uncorrected,
    /// A bound applied (negative or too-long wait, or a time in the future).
    Clamped,
}

impl SkewNote {
    /// Stable machine-readable code.
    pub fn code(self) -> &'static str {
        match self {
            SkewNote::Corrected => "corrected",
            SkewNote::NoClientTime => "no_client_time",
            SkewNote::Uncorrected => "uncorrected",
            SkewNote::Clamped => "clamped",
        }
    }
}

/// The corrected event time. All inputs are by their own clocks; see the module docs.
pub fn corrected(
    received_at: Timestamp,
    sent_at: Option<Timestamp>,
    client_time: Option<Timestamp>,
    rules: SkewRules,
) -> (Timestamp, SkewNote) {
    let Some(client_time) = client_time else {
        return (received_at, SkewNote::NoClientTime);
    };
    let earliest = received_at.plus_millis(-rules.max_delay_ms);
    match sent_at {
        None => {
            let t = client_time.clamp(earliest, received_at);
            (
                t,
                if t == client_time {
                    SkewNote::Uncorrected
                } else {
                    SkewNote::Clamped
                },
            )
        }
        Some(sent_at) => {
            let wait = client_time.millis_until(sent_at);
            let bounded = wait.clamp(0, rules.max_delay_ms);
            let note = if bounded == wait {
                SkewNote::Corrected
            } else {
                SkewNote::Clamped
            };
            (received_at.plus_millis(-bounded), note)
        }
    }
}

/// Set `receivedAt`, keep the client's time in `originalTimestamp`, and write
/// the corrected `timestamp`. Unparseable client times count as missing
/// (validation has already reported them).
pub fn apply(event: &mut Event, received_at: Timestamp, rules: SkewRules) -> SkewNote {
    let parse = |s: &Option<String>| s.as_deref().and_then(|s| Timestamp::parse(s).ok());
    if event.original_timestamp.is_none() {
        event.original_timestamp = event.timestamp.clone();
    }
    let (t, note) = corrected(
        received_at,
        parse(&event.sent_at),
        parse(&event.original_timestamp),
        rules,
    );
    event.timestamp = Some(t.to_rfc3339());
    event.received_at = Some(received_at.to_rfc3339());
    note
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::EventType;

    const RECEIVED: Timestamp = Timestamp(1_700_000_000_000);
    const RULES: SkewRules = SkewRules {
        max_delay_ms: 30 * DAY_MS,
    };

    #[test]
    fn a_clock_an_hour_fast_is_corrected_by_the_wait() {
        let hour = 3_600_000;
        // The event happened 5 s before sending; the device clock is an hour ahead.
        let client = Timestamp(RECEIVED.0 + hour - 5_000);
        let sent = Timestamp(RECEIVED.0 + hour);
        assert_eq!(
            corrected(RECEIVED, Some(sent), Some(client), RULES),
            (Timestamp(RECEIVED.0 - 5_000), SkewNote::Corrected)
        );
    }

    #[test]
    fn missing_values_fall_back_in_order() {
        assert_eq!(
            corrected(RECEIVED, None, None, RULES),
            (RECEIVED, SkewNote::NoClientTime)
        );
        let client = Timestamp(RECEIVED.0 - 1_000);
        assert_eq!(
            corrected(RECEIVED, None, Some(client), RULES),
            (client, SkewNote::Uncorrected)
        );
        let future = Timestamp(RECEIVED.0 + 1_000);
        assert_eq!(
            corrected(RECEIVED, None, Some(future), RULES),
            (RECEIVED, SkewNote::Clamped)
        );
        let ancient = Timestamp(0);
        assert_eq!(
            corrected(RECEIVED, None, Some(ancient), RULES),
            (Timestamp(RECEIVED.0 - 30 * DAY_MS), SkewNote::Clamped)
        );
    }

    #[test]
    fn absurd_waits_are_clamped() {
        let client = Timestamp(RECEIVED.0 + 10_000);
        let sent = RECEIVED; // "sent" 10 s before it happened
        assert_eq!(
            corrected(RECEIVED, Some(sent), Some(client), RULES),
            (RECEIVED, SkewNote::Clamped)
        );
        let long_ago = Timestamp(RECEIVED.0 - 90 * DAY_MS);
        assert_eq!(
            corrected(RECEIVED, Some(RECEIVED), Some(long_ago), RULES),
            (Timestamp(RECEIVED.0 - 30 * DAY_MS), SkewNote::Clamped)
        );
    }

    #[test]
    fn apply_keeps_the_client_reading_and_sets_received_at() {
        let mut e = Event::new(EventType::Track, "m");
        e.timestamp = Some("2023-11-14T23:13:15.000Z".into());
        e.sent_at = Some("2023-11-14T23:13:20.000Z".into());
        let note = apply(&mut e, RECEIVED, RULES);
        assert_eq!(note, SkewNote::Corrected);
        assert_eq!(
            e.original_timestamp.as_deref(),
            Some("2023-11-14T23:13:15.000Z")
        );
        assert_eq!(e.timestamp.as_deref(), Some("2023-11-14T22:13:15.000Z"));
        assert_eq!(e.received_at.as_deref(), Some("2023-11-14T22:13:20.000Z"));
    }

    #[test]
    fn rudderstack_original_timestamp_is_used_when_timestamp_is_absent() {
        let mut e = Event::new(EventType::Track, "m");
        e.original_timestamp = Some("2023-11-14T22:13:19.000Z".into());
        e.sent_at = Some("2023-11-14T22:13:20.000Z".into());
        apply(&mut e, RECEIVED, RULES);
        assert_eq!(e.timestamp.as_deref(), Some("2023-11-14T22:13:19.000Z"));
    }
}
