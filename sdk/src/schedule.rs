//! When to send: a pure state machine over the one request in flight, the
//! retry backoff and the flush timer. It takes the time and what the queue
//! holds, and returns a decision; `sdk.rs` carries the decisions out (a
//! timer, a request). Nothing here reads a clock or touches the browser.
//!
//! Real time by default: when nothing is in flight an event goes at once
//! (at the end of the current task, so the calls of one task share a
//! request); what arrives while a request is in flight waits for its answer
//! and then goes in the next request. A burst is thus sent in as few
//! requests as the body limits allow, one after another. With a
//! `flushIntervalMs` above 0, an idle SDK waits that long (or for `flushAt`
//! events) before sending, as a batching window.

use crate::options::Options;
use crate::retry::{self, Verdict};

/// The options that bear on scheduling.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Policy {
    pub flush_at: usize,
    pub flush_interval_ms: f64,
    pub max_retries: u32,
    pub retry_base_ms: f64,
    pub retry_max_ms: f64,
}

impl From<&Options> for Policy {
    fn from(o: &Options) -> Policy {
        Policy {
            flush_at: o.flush_at,
            flush_interval_ms: o.flush_interval_ms,
            max_retries: o.max_retries,
            retry_base_ms: o.retry_base_ms,
            retry_max_ms: o.retry_max_ms,
        }
    }
}

/// What to do now.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Decision {
    /// Nothing: a request in flight will be answered, a timer is already set
    /// in time, there is nothing to send, or retries are paused.
    Wait,
    /// Set a timer that calls [`Scheduler::timer_fired`] at this time (ms).
    TimerAt(f64),
    /// Send the next batch now (it is now in flight).
    Send,
}

/// What an answer changed, for logging, and the timer to set (if any).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Answered {
    /// A retry was scheduled this many ms from now.
    pub retry_in: Option<f64>,
    /// Too many consecutive failures: nothing is sent until `online` or the next page.
    pub paused: bool,
    /// Set a timer for this time (ms): see [`Scheduler::queued`].
    pub timer_at: Option<f64>,
}

/// The scheduler's state.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scheduler {
    /// A request is in flight (the queue's in-flight events).
    in_flight: bool,
    /// Consecutive failed attempts.
    attempt: u32,
    /// No request before this time (ms since the epoch; 0: no backoff).
    retry_at: f64,
    /// When the timer set last fires (`None`: no timer pending).
    timer_at: Option<f64>,
}

impl Scheduler {
    pub fn in_flight(&self) -> bool {
        self.in_flight
    }

    fn paused(&self, p: &Policy) -> bool {
        self.attempt > p.max_retries
    }

    /// Events were queued (or adopted); `waiting` are not in flight. Returns
    /// the time of a timer to set, which then calls [`Scheduler::timer_fired`]
    /// (`None`: nothing to do now). Never sends at once: the calls of one
    /// task share the request.
    pub fn queued(&mut self, now: f64, waiting: usize, p: &Policy) -> Option<f64> {
        let delay = if waiting >= p.flush_at {
            0.0
        } else {
            p.flush_interval_ms
        };
        self.send_by(now, now + delay, waiting, p)
    }

    /// Make sure a send happens by `due` (or when the backoff ends, if later).
    fn send_by(&mut self, now: f64, due: f64, waiting: usize, p: &Policy) -> Option<f64> {
        if self.in_flight || waiting == 0 || self.paused(p) {
            return None;
        }
        let due = due.max(self.retry_at).max(now);
        match self.timer_at {
            Some(t) if t <= due => None,
            _ => {
                self.timer_at = Some(due);
                Some(due)
            }
        }
    }

    /// A timer set for a time returned here fired. It is taken as the one
    /// pending even when it fires before its time by the clock given (browser
    /// timers and `Date.now()` do not agree to the millisecond): keeping it
    /// would leave a time no timer is set for, and nothing would be sent.
    /// A stale earlier timer firing costs at most one extra timer later.
    pub fn timer_fired(&mut self, now: f64, waiting: usize, p: &Policy) -> Decision {
        self.timer_at = None;
        self.flush(now, waiting, p)
    }

    /// Send now if a request may go: nothing in flight, no backoff, not paused.
    /// In a backoff, a timer for its end.
    pub fn flush(&mut self, now: f64, waiting: usize, p: &Policy) -> Decision {
        if self.in_flight || waiting == 0 || self.paused(p) {
            return Decision::Wait;
        }
        if now < self.retry_at {
            // Timers may fire a little early: try again when the backoff ends.
            return match self.send_by(now, self.retry_at, waiting, p) {
                Some(at) => Decision::TimerAt(at),
                None => Decision::Wait,
            };
        }
        self.in_flight = true;
        Decision::Send
    }

    /// The request in flight was answered; `waiting` is what the queue
    /// holds outside it afterwards. `random` in [0, 1) is the retry jitter.
    pub fn answered(
        &mut self,
        now: f64,
        verdict: Verdict,
        waiting: usize,
        random: f64,
        p: &Policy,
    ) -> Answered {
        self.in_flight = false;
        let mut retry_in = None;
        match verdict {
            Verdict::Done => {
                self.attempt = 0;
                self.retry_at = 0.0;
            }
            Verdict::Drop => self.attempt = 0,
            Verdict::Retry(after) => {
                self.attempt += 1;
                if self.paused(p) {
                    return Answered {
                        retry_in: None,
                        paused: true,
                        timer_at: None,
                    };
                }
                let wait = after.unwrap_or_else(|| {
                    retry::backoff_ms(self.attempt, p.retry_base_ms, p.retry_max_ms, random)
                });
                self.retry_at = now + wait;
                retry_in = Some(wait);
            }
        }
        Answered {
            retry_in,
            paused: false,
            // What arrived meanwhile goes at once (or when the backoff ends).
            timer_at: self.send_by(now, now, waiting, p),
        }
    }

    /// The request in flight was withdrawn before it left (the page is being
    /// hidden while its body was still being compressed): its events go by
    /// beacon instead, and no answer will come.
    pub fn withdrawn(&mut self) {
        self.in_flight = false;
    }

    /// The browser is back online: retry at once.
    pub fn online(&mut self, now: f64, waiting: usize, p: &Policy) -> Option<f64> {
        self.attempt = 0;
        self.retry_at = 0.0;
        self.send_by(now, now, waiting, p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Decision::*;

    /// The defaults: real time (no batching window), 20 per flush, 10 retries.
    const REAL_TIME: Policy = Policy {
        flush_at: 20,
        flush_interval_ms: 0.0,
        max_retries: 10,
        retry_base_ms: 1000.0,
        retry_max_ms: 60_000.0,
    };

    #[test]
    fn the_default_options_are_real_time() {
        let p = Policy::from(&Options::default());
        assert_eq!(Scheduler::default().queued(500.0, 1, &p), Some(500.0));
    }

    #[test]
    fn the_first_event_goes_at_once_and_the_rest_of_the_task_joins_it() {
        let mut s = Scheduler::default();
        assert_eq!(s.queued(1000.0, 1, &REAL_TIME), Some(1000.0));
        // More events in the same task: the timer set is already in time.
        assert_eq!(s.queued(1000.0, 2, &REAL_TIME), None);
        assert_eq!(s.queued(1000.0, 3, &REAL_TIME), None);
        assert_eq!(s.timer_fired(1001.0, 3, &REAL_TIME), Send);
        assert!(s.in_flight());
    }

    #[test]
    fn what_arrives_while_a_request_is_in_flight_waits_for_its_answer() {
        let mut s = Scheduler::default();
        s.queued(0.0, 1, &REAL_TIME);
        assert_eq!(s.timer_fired(0.0, 1, &REAL_TIME), Send);
        for waiting in 1..=100 {
            assert_eq!(s.queued(5.0, waiting, &REAL_TIME), None, "{waiting}");
        }
        assert_eq!(s.flush(6.0, 100, &REAL_TIME), Wait, "flush() too");
        let a = s.answered(20.0, Verdict::Done, 100, 0.5, &REAL_TIME);
        assert_eq!(
            a.timer_at,
            Some(20.0),
            "the batch goes as soon as the answer is in"
        );
        assert_eq!(s.timer_fired(20.0, 100, &REAL_TIME), Send);
        let a = s.answered(30.0, Verdict::Done, 0, 0.5, &REAL_TIME);
        assert_eq!(a.timer_at, None, "nothing left");
    }

    /// A burst: the number of requests is the number of batches, not of events.
    #[test]
    fn a_burst_goes_out_in_one_request_per_batch() {
        let mut s = Scheduler::default();
        let (mut waiting, batch) = (0usize, 33usize);
        let mut timers = 0;
        for _ in 0..10_000 {
            waiting += 1;
            if s.queued(0.0, waiting, &REAL_TIME).is_some() {
                timers += 1;
            }
        }
        assert_eq!(timers, 1);
        let mut requests = 0;
        let mut next = s.timer_fired(0.0, waiting, &REAL_TIME);
        while next == Send {
            requests += 1;
            waiting -= batch.min(waiting);
            next = match s
                .answered(1.0, Verdict::Done, waiting, 0.5, &REAL_TIME)
                .timer_at
            {
                Some(_) => s.timer_fired(1.0, waiting, &REAL_TIME),
                None => Wait,
            };
        }
        assert_eq!(waiting, 0);
        assert_eq!(requests, 10_000_usize.div_ceil(batch));
    }

    #[test]
    fn a_batching_window_waits_unless_flush_at_events_are_waiting() {
        let window = Policy {
            flush_interval_ms: 1000.0,
            ..REAL_TIME
        };
        let mut s = Scheduler::default();
        assert_eq!(s.queued(0.0, 1, &window), Some(1000.0));
        assert_eq!(s.queued(10.0, 2, &window), None);
        assert_eq!(
            s.timer_fired(999.0, 2, &window),
            Send,
            "a timer a little early"
        );
        let mut s = Scheduler::default();
        s.queued(0.0, 1, &window);
        assert_eq!(s.queued(50.0, 20, &window), Some(50.0), "flushAt reached");
    }

    #[test]
    fn failures_back_off_and_retry_after_wins() {
        let mut s = Scheduler::default();
        s.queued(0.0, 1, &REAL_TIME);
        s.timer_fired(0.0, 1, &REAL_TIME);
        let a = s.answered(100.0, Verdict::Retry(None), 1, 0.5, &REAL_TIME);
        assert_eq!(a.retry_in, Some(500.0));
        assert_eq!(a.timer_at, Some(600.0));
        // A timer that fires early, or a flush() during the backoff, sends
        // nothing (the early timer is set again).
        assert_eq!(s.timer_fired(590.0, 1, &REAL_TIME), TimerAt(600.0));
        assert_eq!(s.flush(595.0, 1, &REAL_TIME), Wait);
        assert_eq!(s.timer_fired(600.0, 1, &REAL_TIME), Send);
        let a = s.answered(700.0, Verdict::Retry(Some(3000.0)), 1, 0.5, &REAL_TIME);
        assert_eq!(a.retry_in, Some(3000.0));
        assert_eq!(a.timer_at, Some(3700.0));
        // New events during the backoff do not shorten it.
        assert_eq!(s.queued(800.0, 2, &REAL_TIME), None);
        assert_eq!(s.timer_fired(3700.0, 2, &REAL_TIME), Send);
        let a = s.answered(3800.0, Verdict::Done, 0, 0.5, &REAL_TIME);
        assert_eq!((a.retry_in, a.timer_at), (None, None));
        assert_eq!(
            s.queued(3900.0, 1, &REAL_TIME),
            Some(3900.0),
            "backoff over"
        );
    }

    /// Found by the offline end-to-end test: a backoff timer that fired a
    /// millisecond early by `Date.now()` left the scheduler waiting for a
    /// timer that no longer existed, and even `online` sent nothing.
    #[test]
    fn a_timer_that_fires_early_in_a_backoff_sets_another() {
        let mut s = Scheduler::default();
        s.queued(0.0, 1, &REAL_TIME);
        s.timer_fired(0.0, 1, &REAL_TIME);
        let a = s.answered(0.0, Verdict::Retry(None), 1, 0.5, &REAL_TIME);
        assert_eq!(a.timer_at, Some(500.0));
        assert_eq!(s.timer_fired(499.0, 1, &REAL_TIME), TimerAt(500.0));
        assert_eq!(s.timer_fired(500.0, 1, &REAL_TIME), Send);
        // Back online while the timer set again is pending: that timer sends.
        s.answered(600.0, Verdict::Retry(None), 1, 0.5, &REAL_TIME);
        assert_eq!(s.timer_fired(1599.0, 1, &REAL_TIME), TimerAt(1600.0));
        assert_eq!(s.online(1700.0, 1, &REAL_TIME), None);
        assert_eq!(s.timer_fired(1700.0, 1, &REAL_TIME), Send);
    }

    #[test]
    fn retries_pause_after_max_retries_until_online() {
        let p = Policy {
            max_retries: 2,
            ..REAL_TIME
        };
        let mut s = Scheduler::default();
        let mut now = 0.0;
        let mut paused = false;
        for _ in 0..3 {
            s.queued(now, 1, &p);
            now += 100_000.0;
            assert_eq!(s.timer_fired(now, 1, &p), Send);
            paused = s.answered(now, Verdict::Retry(None), 1, 0.5, &p).paused;
        }
        assert!(paused);
        assert_eq!(s.queued(now, 2, &p), None);
        assert_eq!(s.flush(now, 2, &p), Wait);
        assert_eq!(s.online(now, 2, &p), Some(now));
        assert_eq!(s.timer_fired(now, 2, &p), Send);
    }

    #[test]
    fn a_refused_request_is_not_retried_and_the_next_goes() {
        let mut s = Scheduler::default();
        s.queued(0.0, 2, &REAL_TIME);
        s.timer_fired(0.0, 2, &REAL_TIME);
        let a = s.answered(10.0, Verdict::Drop, 1, 0.5, &REAL_TIME);
        assert_eq!(
            (a.retry_in, a.paused, a.timer_at),
            (None, false, Some(10.0))
        );
    }

    #[test]
    fn a_withdrawn_request_frees_the_way() {
        let mut s = Scheduler::default();
        s.queued(0.0, 1, &REAL_TIME);
        s.timer_fired(0.0, 1, &REAL_TIME);
        s.withdrawn();
        assert!(!s.in_flight());
        assert_eq!(s.queued(5.0, 1, &REAL_TIME), Some(5.0));
    }
}
