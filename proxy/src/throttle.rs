//! Warnings that a peer could make the proxy repeat thousands of times a second (a backend
//! that is down under load): each kind is written at most once a second, with the number left
//! out since the last, so the log shows the failure without flooding.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// How often one kind of warning is written at most.
const EVERY: Duration = Duration::from_secs(1);

/// One kind of warning's budget.
#[derive(Debug, Default)]
pub struct Throttle {
    last: Mutex<Option<Instant>>,
    skipped: AtomicU64,
}

impl Throttle {
    pub const fn new() -> Self {
        Throttle {
            last: Mutex::new(None),
            skipped: AtomicU64::new(0),
        }
    }

    /// `Some(left out since the last one written)` when this one is to be written.
    pub fn admit(&self) -> Option<u64> {
        let now = Instant::now();
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        match *last {
            Some(at) if now.duration_since(at) < EVERY => {
                self.skipped.fetch_add(1, Relaxed);
                None
            }
            _ => {
                *last = Some(now);
                Some(self.skipped.swap(0, Relaxed))
            }
        }
    }
}

/// Requests that failed because of the upstream (connect errors, resets, response timeouts).
pub static HTTP_UPSTREAM: Throttle = Throttle::new();
/// Opaque connections whose upstream could not be reached.
pub static TCP_CONNECT: Throttle = Throttle::new();
/// Inbound requests and connections refused by authorization policy.
pub static POLICY_DENY: Throttle = Throttle::new();
/// Inbound requests and connections let in by Linkerd's `audit` policy.
pub static POLICY_AUDIT: Throttle = Throttle::new();

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_a_second_with_the_count_left_out() {
        let t = Throttle::new();
        assert_eq!(t.admit(), Some(0));
        assert_eq!(t.admit(), None);
        assert_eq!(t.admit(), None);
        *t.last.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now().checked_sub(EVERY);
        assert_eq!(t.admit(), Some(2));
        assert_eq!(t.admit(), None);
    }
}
