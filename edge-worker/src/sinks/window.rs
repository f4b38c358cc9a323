//! D1 as a hot window beside the lake (the system of record): how long it
//! keeps event rows, how full it may get, or whether it keeps them at all.
//!
//! - `SLUICE_D1_EVENTS`: `on` (default) keeps event rows in D1; `off` is the
//!   lake-only mode — D1 keeps profiles, identity links, consent history, the
//!   lake index, counters and the audit log, and no event rows; export and
//!   deletion read and rewrite the lake through its index.
//! - `SLUICE_D1_RETENTION_DAYS` (default 30; `0` keeps them): event rows
//!   older than this leave D1 in the daily cron run, every source's. A
//!   source's own `retention_days` still applies to D1 and the lake.
//! - `SLUICE_D1_CAPACITY_BYTES` (default 10 GB, D1's limit): the capacity
//!   guard compares D1's own size (`meta.size_after` of its last answer) with
//!   it. From 80 % the logs and the admin status (`GET /admin/v1/status`, in
//!   the debugger) warn; when full, the events consumer stops writing event
//!   rows, logs and counts it (`d1_full`, with this module's typed
//!   [`WindowError::Full`]), and goes on: the lake and every destination keep
//!   receiving the events, so nothing is lost and nothing waits.

use serde_json::{json, Value};
use std::fmt;

pub const EVENTS_VAR: &str = "SLUICE_D1_EVENTS";
pub const RETENTION_VAR: &str = "SLUICE_D1_RETENTION_DAYS";
pub const CAPACITY_VAR: &str = "SLUICE_D1_CAPACITY_BYTES";
/// D1's size limit per database.
pub const DEFAULT_CAPACITY_BYTES: u64 = 10_000_000_000;
pub const DEFAULT_RETENTION_DAYS: u32 = 30;
/// From this share of the capacity on, the guard warns.
pub const WARN_PERCENT: u64 = 80;

/// The hot window's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HotWindow {
    /// Event rows go to D1 (`false`: lake-only).
    pub events: bool,
    /// Days event rows stay (0: no limit).
    pub retention_days: u32,
    pub capacity_bytes: u64,
}

impl Default for HotWindow {
    fn default() -> Self {
        HotWindow {
            events: true,
            retention_days: DEFAULT_RETENTION_DAYS,
            capacity_bytes: DEFAULT_CAPACITY_BYTES,
        }
    }
}

/// How full D1 is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fill {
    /// No size known yet.
    Unknown,
    Ok,
    /// At or over [`WARN_PERCENT`].
    Warning,
    Full,
}

impl Fill {
    pub fn as_str(self) -> &'static str {
        match self {
            Fill::Unknown => "unknown",
            Fill::Ok => "ok",
            Fill::Warning => "warning",
            Fill::Full => "full",
        }
    }
}

/// Why the hot window refused something.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WindowError {
    /// A var is not a valid value.
    InvalidSetting { var: &'static str, value: String },
    /// D1 has reached its configured capacity: event rows are not written.
    Full {
        size_bytes: u64,
        capacity_bytes: u64,
    },
}

impl WindowError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            WindowError::InvalidSetting { .. } => "invalid_d1_setting",
            WindowError::Full { .. } => "d1_full",
        }
    }
}

impl fmt::Display for WindowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WindowError::InvalidSetting { var, value } => {
                write!(f, "{var} is not a valid value: {value:?}")
            }
            WindowError::Full {
                size_bytes,
                capacity_bytes,
            } => write!(
                f,
                "D1 is full ({size_bytes} of {capacity_bytes} bytes): event rows are not written \
                 to D1; the lake and the destinations still receive every event"
            ),
        }
    }
}

impl HotWindow {
    /// From the vars' values (`None`: the default).
    pub fn from_vars(
        events: Option<&str>,
        retention_days: Option<&str>,
        capacity_bytes: Option<&str>,
    ) -> Result<HotWindow, WindowError> {
        let bad = |var, value: &str| WindowError::InvalidSetting {
            var,
            value: value.to_owned(),
        };
        let mut w = HotWindow::default();
        match events {
            None | Some("on") => {}
            Some("off") => w.events = false,
            Some(other) => return Err(bad(EVENTS_VAR, other)),
        }
        if let Some(v) = retention_days {
            w.retention_days = v.trim().parse().map_err(|_| bad(RETENTION_VAR, v))?;
        }
        if let Some(v) = capacity_bytes {
            w.capacity_bytes = v
                .trim()
                .parse()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| bad(CAPACITY_VAR, v))?;
        }
        Ok(w)
    }

    /// How full D1 is at `size_bytes`.
    pub fn fill(&self, size_bytes: Option<u64>) -> Fill {
        match size_bytes {
            None => Fill::Unknown,
            Some(s) if s >= self.capacity_bytes => Fill::Full,
            Some(s)
                if s.saturating_mul(100) >= self.capacity_bytes.saturating_mul(WARN_PERCENT) =>
            {
                Fill::Warning
            }
            Some(_) => Fill::Ok,
        }
    }

    /// Whether event rows may be written at `size_bytes`, or why not.
    pub fn admit(&self, size_bytes: Option<u64>) -> Result<(), WindowError> {
        match (self.fill(size_bytes), size_bytes) {
            (Fill::Full, Some(size_bytes)) => Err(WindowError::Full {
                size_bytes,
                capacity_bytes: self.capacity_bytes,
            }),
            _ => Ok(()),
        }
    }

    /// The window as the admin status shows it.
    pub fn status(&self, size_bytes: Option<u64>) -> Value {
        let fill = self.fill(size_bytes);
        json!({
            "events": if self.events { "hot_window" } else { "lake_only" },
            "retentionDays": self.retention_days,
            "sizeBytes": size_bytes,
            "capacityBytes": self.capacity_bytes,
            "percent": size_bytes.map(|s| (s as f64 * 1000.0 / self.capacity_bytes as f64).round() / 10.0),
            "state": fill.as_str(),
            "warning": match fill {
                Fill::Warning => Some(format!("D1 is over {WARN_PERCENT} % of its capacity: lower {RETENTION_VAR} or turn {EVENTS_VAR} off (lake-only)")),
                Fill::Full => self.admit(size_bytes).err().map(|e| e.to_string()),
                _ => None,
            },
        })
    }
}

thread_local! {
    static LAST_FILL: std::cell::Cell<Fill> = const { std::cell::Cell::new(Fill::Unknown) };
}

/// Whether `fill` differs from what this isolate saw last (so a warning is
/// logged once per change, not once per batch).
pub fn changed(fill: Fill) -> bool {
    LAST_FILL.with(|last| last.replace(fill) != fill)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_a_30_day_window_of_10_gb() {
        let w = HotWindow::from_vars(None, None, None).unwrap();
        assert_eq!(w, HotWindow::default());
        assert!(w.events);
        assert_eq!((w.retention_days, w.capacity_bytes), (30, 10_000_000_000));
        let lake_only = HotWindow::from_vars(Some("off"), Some("0"), Some("1000")).unwrap();
        assert!(!lake_only.events);
        assert_eq!(
            HotWindow::from_vars(Some("maybe"), None, None)
                .unwrap_err()
                .code(),
            "invalid_d1_setting"
        );
        assert!(HotWindow::from_vars(None, None, Some("0")).is_err());
        assert!(HotWindow::from_vars(None, Some("-1"), None).is_err());
    }

    #[test]
    fn the_guard_warns_at_80_percent_and_refuses_when_full() {
        let w = HotWindow::from_vars(None, None, Some("1000")).unwrap();
        assert_eq!(w.fill(None), Fill::Unknown);
        assert_eq!(w.fill(Some(799)), Fill::Ok);
        assert_eq!(w.fill(Some(800)), Fill::Warning);
        assert_eq!(w.fill(Some(1000)), Fill::Full);
        assert_eq!(w.admit(Some(999)), Ok(()));
        let full = w.admit(Some(1200)).unwrap_err();
        assert_eq!(full.code(), "d1_full");
        assert!(full.to_string().contains("1200 of 1000"));
        assert_eq!(w.status(Some(850))["state"], "warning");
        assert_eq!(w.status(Some(850))["percent"], 85.0);
        assert!(w.status(Some(1000))["warning"]
            .as_str()
            .unwrap()
            .contains("D1 is full"));
    }
}
