//! Sessions: an id (the start time in ms, as RudderStack and Amplitude use),
//! renewed after a period of inactivity (30 minutes by default).

use crate::prelude::*;
use sluice_shared::text::{decimal, parse_u64, push_decimal};

/// The session state (persisted as `"<id>.<last activity>"`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Session {
    pub id: f64,
    pub last_ms: f64,
}

impl Session {
    /// Parse the stored form.
    pub fn parse(stored: &str) -> Option<Session> {
        let (id, last) = sluice_shared::text::split_once(stored, b'.')?;
        Some(Session {
            id: parse_u64(id)? as f64,
            last_ms: parse_u64(last)? as f64,
        })
    }

    /// The stored form.
    pub fn encode(self) -> String {
        let mut out = decimal(self.id as u64);
        out.push('.');
        push_decimal(&mut out, self.last_ms as u64, 1);
        out
    }
}

/// Touch the session at `now`: continue it, or start a new one after
/// `timeout_ms` of inactivity. Returns the session and whether it just started.
pub fn touch(current: Option<Session>, now: f64, timeout_ms: f64) -> (Session, bool) {
    match current {
        Some(s) if now - s.last_ms < timeout_ms && now >= s.id => (
            Session {
                id: s.id,
                last_ms: now,
            },
            false,
        ),
        _ => (
            Session {
                id: now,
                last_ms: now,
            },
            true,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thirty_minutes_of_inactivity_start_a_new_session() {
        let timeout = 30.0 * 60_000.0;
        let (s, started) = touch(None, 1000.0, timeout);
        assert!(started);
        let (s2, started) = touch(Some(s), 1000.0 + timeout - 1.0, timeout);
        assert!(!started);
        assert_eq!(s2.id, 1000.0);
        let (s3, started) = touch(Some(s2), s2.last_ms + timeout, timeout);
        assert!(started);
        assert_eq!(s3.id, s2.last_ms + timeout);
        assert_eq!(Session::parse(&s3.encode()), Some(s3));
        assert_eq!(Session::parse("junk"), None);
    }
}
