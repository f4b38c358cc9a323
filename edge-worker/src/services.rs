//! What a request is handled with: the configuration, the platform's ports,
//! the isolate's rate limiter and the time, read once per request.

use crate::config::Config;
use crate::delivery::config::Destination;
use crate::ratelimit::Limiter;
use sluice_shared::Timestamp;
use std::cell::RefCell;

/// Everything a request is handled with.
pub struct Services<'a, P> {
    pub config: &'a Config,
    /// `SLUICE_DESTINATIONS`, as read with the config.
    pub destinations: &'a [Destination],
    pub platform: &'a P,
    pub limiter: &'a RefCell<Limiter>,
    /// The current time, read once per request by the caller.
    pub now: Timestamp,
}
