//! Failure accrual: an endpoint that fails too many requests in a row is ejected from its
//! balancer for a penalty, then let back on probation.
//!
//! A failure is a connection error or a 5xx response. After [`AccrualSettings::max_failures`]
//! consecutive failures the endpoint is ejected for the minimum penalty. When the penalty
//! has passed it is on probation: it takes requests again, and its next answer decides: a
//! success restores it (and the penalty), a failure ejects it again for twice the last
//! penalty, up to the maximum.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// The failure accrual settings of a balancer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AccrualSettings {
    /// Consecutive failures that eject an endpoint; 0 turns accrual off.
    pub max_failures: u32,
    pub min_penalty: Duration,
    pub max_penalty: Duration,
}

impl Default for AccrualSettings {
    fn default() -> Self {
        AccrualSettings {
            max_failures: 5,
            min_penalty: Duration::from_secs(1),
            max_penalty: Duration::from_secs(60),
        }
    }
}

/// One endpoint's record.
#[derive(Debug, Default)]
pub struct Accrual {
    consecutive: AtomicU32,
    /// Ejected or on probation: the slow path, under the lock.
    marked: AtomicBool,
    state: Mutex<Penalty>,
}

#[derive(Debug, Default)]
struct Penalty {
    until: Option<Instant>,
    last: Duration,
}

impl Accrual {
    /// Whether the endpoint may take a request now.
    pub fn available(&self, now: Instant) -> bool {
        if !self.marked.load(Relaxed) {
            return true;
        }
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.until.is_none_or(|until| now >= until)
    }

    /// Records the outcome of a request.
    pub fn record(&self, ok: bool, now: Instant, settings: &AccrualSettings) {
        if settings.max_failures == 0 {
            return;
        }
        if ok {
            if self.consecutive.load(Relaxed) != 0 {
                self.consecutive.store(0, Relaxed);
            }
            if self.marked.load(Relaxed) {
                let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
                // A success while ejected is a request picked before the ejection.
                if state.until.is_some_and(|until| now >= until) {
                    *state = Penalty::default();
                    self.marked.store(false, Relaxed);
                }
            }
            return;
        }
        let failures = self.consecutive.fetch_add(1, Relaxed).saturating_add(1);
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let on_probation = state.until.is_some_and(|until| now >= until);
        let penalty = if on_probation {
            (state.last * 2).min(settings.max_penalty)
        } else if state.until.is_none() && failures >= settings.max_failures {
            settings.min_penalty
        } else {
            return;
        };
        state.until = Some(now + penalty);
        state.last = penalty;
        self.marked.store(true, Relaxed);
        tracing::debug!(
            failures,
            penalty_ms = penalty.as_millis() as u64,
            "endpoint ejected"
        );
    }

    /// Ejects the endpoint at once: it refused a connection, so it is not there (as
    /// Linkerd's balancer takes an endpoint it cannot connect to out of rotation).
    pub fn eject(&self, now: Instant, settings: &AccrualSettings) {
        if settings.max_failures == 0 {
            return;
        }
        self.consecutive
            .fetch_max(settings.max_failures.saturating_sub(1), Relaxed);
        self.record(false, now, settings);
    }

    /// Whether the endpoint is ejected now (for metrics and tests).
    pub fn is_ejected(&self, now: Instant) -> bool {
        !self.available(now)
    }
}
