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
use std::cell::RefCell;

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

/// The client's times as validation parsed them (`None` where absent or
/// unparseable), carried to [`apply_parsed`] so that each is parsed once.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientTimes {
    pub timestamp: Option<Timestamp>,
    pub original_timestamp: Option<Timestamp>,
    pub sent_at: Option<Timestamp>,
}

impl ClientTimes {
    /// Parse an event's times (what validation carries, for callers without it).
    pub fn parse(event: &Event) -> ClientTimes {
        let parse = |s: &Option<String>| s.as_deref().and_then(|s| Timestamp::parse(s).ok());
        ClientTimes {
            timestamp: parse(&event.timestamp),
            original_timestamp: parse(&event.original_timestamp),
            sent_at: parse(&event.sent_at),
        }
    }
}

/// When a request was received, with its `receivedAt` text made once for
/// all its events, and the last corrected time's text (a batch's events
/// mostly share it).
#[derive(Debug)]
pub struct Received {
    at: Timestamp,
    text: String,
    last: RefCell<Option<(Timestamp, String)>>,
}

impl Received {
    pub fn new(at: Timestamp) -> Received {
        Received {
            at,
            text: at.to_rfc3339(),
            last: RefCell::new(None),
        }
    }

    /// The time received.
    pub fn at(&self) -> Timestamp {
        self.at
    }

    /// `t` as RFC 3339 text, as [`Timestamp::to_rfc3339`] writes it.
    fn text_of(&self, t: Timestamp) -> String {
        if t == self.at {
            return self.text.clone();
        }
        let mut last = self.last.borrow_mut();
        match last.as_ref().filter(|(l, _)| *l == t) {
            Some((_, text)) => text.clone(),
            None => last.insert((t, t.to_rfc3339())).1.clone(),
        }
    }
}

/// Set `receivedAt`, keep the client's time in `originalTimestamp`, and write
/// the corrected `timestamp`. Unparseable client times count as missing
/// (validation has already reported them).
pub fn apply(event: &mut Event, received_at: Timestamp, rules: SkewRules) -> SkewNote {
    let times = ClientTimes::parse(event);
    apply_parsed(event, times, &Received::new(received_at), rules)
}

/// [`apply`], with the event's times already parsed (`times` must be the
/// event's own, as [`ClientTimes::parse`] reads them: validation carries them).
pub fn apply_parsed(
    event: &mut Event,
    times: ClientTimes,
    received: &Received,
    rules: SkewRules,
) -> SkewNote {
    let client_time = if event.original_timestamp.is_none() {
        // Moved, not copied: `timestamp` is set below.
        event.original_timestamp = event.timestamp.take();
        times.timestamp
    } else {
        times.original_timestamp
    };
    let (t, note) = corrected(received.at, times.sent_at, client_time, rules);
    event.timestamp = Some(received.text_of(t));
    event.received_at = Some(received.text.clone());
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

    /// The times validation carries, and one `Received` for a batch's
    /// events, give what parsing and formatting each event's own do.
    #[test]
    fn the_carried_times_correct_as_parsing_each_event_again_does() {
        use crate::validate::{validate, Limits};
        let t = |s: &str| Some(s.to_owned());
        let cases: [(Option<String>, Option<String>, Option<String>); 9] = [
            (
                t("2023-11-14T22:13:20.123Z"),
                None,
                t("2023-11-14T22:13:25Z"),
            ),
            (
                None,
                t("2023-11-14T23:13:20+01:00"),
                t("2023-11-14T22:14:00Z"),
            ),
            (t("2023-11-14T22:13:20Z"), t("2023-11-14T22:13:19Z"), None),
            (None, None, t("2023-11-14T22:13:25Z")),
            (None, None, None),
            (t("1999-01-01T00:00:00Z"), None, t("2023-11-14T22:13:25Z")),
            (
                t("2023-11-14T22:13:20.123Z"),
                None,
                t("2023-11-14T22:13:25Z"),
            ),
            (t("not a time"), None, t("2023-11-14T22:13:25Z")),
            (t("2023-11-14T22:13:20Z"), t("bad"), t("bad")),
        ];
        let received = Received::new(RECEIVED);
        let mut valid = 0;
        for (timestamp, original, sent) in cases {
            let mut e = Event::new(EventType::Track, "m1");
            e.anonymous_id = Some("a".into());
            e.event = Some("Clicked".into());
            (e.timestamp, e.original_timestamp, e.sent_at) = (timestamp, original, sent);
            let times = match validate(e.clone(), 100, &Limits::default(), RECEIVED) {
                Ok(v) => {
                    valid += 1;
                    assert_eq!(v.times(), ClientTimes::parse(v.event()), "{e:?}");
                    v.times()
                }
                Err(_) => ClientTimes::parse(&e),
            };
            // What parsing this event's own times gives, written out.
            let parse = |s: &Option<String>| s.as_deref().and_then(|s| Timestamp::parse(s).ok());
            let original = e.original_timestamp.clone().or_else(|| e.timestamp.clone());
            let (t, note) = corrected(RECEIVED, parse(&e.sent_at), parse(&original), RULES);
            let mut expected = e.clone();
            expected.original_timestamp = original;
            expected.timestamp = Some(t.to_rfc3339());
            expected.received_at = Some(RECEIVED.to_rfc3339());
            let (mut again, mut carried) = (e.clone(), e.clone());
            assert_eq!(apply(&mut again, RECEIVED, RULES), note, "{e:?}");
            assert_eq!(
                apply_parsed(&mut carried, times, &received, RULES),
                note,
                "{e:?}"
            );
            assert_eq!(again, expected, "{e:?}");
            assert_eq!(carried, expected, "{e:?}");
        }
        assert_eq!(valid, 7);
    }
}
