//! Linkerd's retry budget: retries may add a share of a target's requests, plus a floor of
//! retries per second, counted over a sliding window.
//!
//! Each request deposits; each retry withdraws one. A retry is allowed while the retries in
//! the window stay within `ratio` × the requests in it plus `min_per_second` × the window
//! (by default 20 % extra load plus 10 retries a second, over 10 seconds). The window is
//! ten slots of a tenth of the time to live, so memory is fixed whatever the rate.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A budget's settings: a ServiceProfile's `retryBudget`, Linkerd's defaults without one.
pub use crate::outbound::profile::RetryBudget as BudgetSettings;

const SLOTS: usize = 10;

#[derive(Debug)]
pub struct Budget {
    state: Mutex<Window>,
}

#[derive(Debug)]
struct Window {
    settings: BudgetSettings,
    start: Instant,
    /// The slot index the newest counts are in, counted from `start`.
    newest: u64,
    requests: [u64; SLOTS],
    retries: [u64; SLOTS],
}

impl Budget {
    pub fn new(settings: BudgetSettings, now: Instant) -> Budget {
        Budget {
            state: Mutex::new(Window {
                settings,
                start: now,
                newest: 0,
                requests: [0; SLOTS],
                retries: [0; SLOTS],
            }),
        }
    }

    /// Changes the settings (a new profile), keeping the counts.
    pub fn set(&self, settings: BudgetSettings) {
        let mut w = self.state.lock().unwrap_or_else(|e| e.into_inner());
        w.settings = settings;
    }

    /// Counts a request.
    pub fn deposit(&self, now: Instant) {
        let mut w = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let i = w.advance(now);
        w.requests[i] += 1;
    }

    /// Takes a retry from the budget if it allows one.
    pub fn withdraw(&self, now: Instant) -> bool {
        let mut w = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let i = w.advance(now);
        let requests: u64 = w.requests.iter().sum();
        let retries: u64 = w.retries.iter().sum();
        let s = w.settings;
        let allowed = f64::from(s.retry_ratio) * requests as f64
            + f64::from(s.min_retries_per_second) * s.ttl.as_secs_f64();
        if (retries + 1) as f64 <= allowed {
            w.retries[i] += 1;
            true
        } else {
            false
        }
    }
}

impl Window {
    /// Moves the window to `now`, clearing slots that fell out; returns the current slot.
    fn advance(&mut self, now: Instant) -> usize {
        let slot = (self.settings.ttl / SLOTS as u32).max(Duration::from_millis(1));
        let index = (now.saturating_duration_since(self.start).as_nanos() / slot.as_nanos()) as u64;
        let stale = index.saturating_sub(self.newest).min(SLOTS as u64);
        for k in 1..=stale {
            let i = ((self.newest + k) % SLOTS as u64) as usize;
            self.requests[i] = 0;
            self.retries[i] = 0;
        }
        self.newest = self.newest.max(index);
        (self.newest % SLOTS as u64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_floor_then_the_ratio() {
        let s = BudgetSettings {
            retry_ratio: 0.2,
            min_retries_per_second: 1,
            ttl: Duration::from_secs(10),
        };
        let t = Instant::now();
        let b = Budget::new(s, t);
        // The floor: 1 a second over 10 seconds.
        assert_eq!((0..20).filter(|_| b.withdraw(t)).count(), 10);
        // 100 requests add 20.
        for _ in 0..100 {
            b.deposit(t);
        }
        assert_eq!((0..50).filter(|_| b.withdraw(t)).count(), 20);
        // After the time to live, all of it is forgotten: the floor again.
        let later = t + Duration::from_secs(11);
        assert_eq!((0..50).filter(|_| b.withdraw(later)).count(), 10);
    }

    #[test]
    fn old_slots_leave_the_window_one_by_one() {
        let s = BudgetSettings {
            retry_ratio: 1.0,
            min_retries_per_second: 0,
            ttl: Duration::from_secs(10),
        };
        let t = Instant::now();
        let b = Budget::new(s, t);
        for _ in 0..10 {
            b.deposit(t);
        }
        for _ in 0..10 {
            b.deposit(t + Duration::from_secs(5));
        }
        // At 10.5 s the first deposits are gone, the second remain.
        let at = t + Duration::from_millis(10_500);
        assert_eq!((0..30).filter(|_| b.withdraw(at)).count(), 10);
    }
}
