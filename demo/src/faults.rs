//! The knob that makes a back end misbehave: a fixed delay, and an exact fraction of failures.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Result, ensure};

/// Fails `rate` of the requests, spread evenly rather than at random so that a test (or a
/// demo's success-rate column) sees exactly that fraction: request `n` fails when
/// `floor(n * rate)` goes up.
#[derive(Debug, Default)]
pub struct Faults {
    rate: f64,
    latency: Duration,
    count: AtomicU64,
}

impl Faults {
    pub fn new(rate: f64, latency: Duration) -> Result<Self> {
        ensure!(
            (0.0..=1.0).contains(&rate),
            "--failure-rate: expected a fraction between 0 and 1, got {rate}"
        );
        Ok(Self {
            rate,
            latency,
            count: AtomicU64::new(0),
        })
    }

    /// Waits the configured latency, then says whether this request fails.
    pub async fn next(&self) -> bool {
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
        let n = self.count.fetch_add(1, Ordering::Relaxed) + 1;
        let steps = |n: u64| (n as f64 * self.rate).floor() as u64;
        steps(n) > steps(n - 1)
    }
}
