//! Exponential backoff with jitter, for the clients of the control plane (destination,
//! policy, identity).

use std::time::Duration;

/// Exponential backoff with jitter: each delay is drawn from the upper half of the current
/// step, so proxies that lost the control plane together do not return together. The step
/// starts at `min` and doubles after each delay, up to `max`; no delay is longer than `max`.
#[derive(Clone, Debug)]
pub struct Backoff {
    step: Duration,
    min: Duration,
    max: Duration,
}

impl Backoff {
    /// A backoff from `min` to `max` (a `max` below `min` is `min`).
    pub fn new(min: Duration, max: Duration) -> Backoff {
        Backoff {
            step: min,
            min,
            max: max.max(min),
        }
    }

    /// Starts again from `min`, after a success.
    pub fn reset(&mut self) {
        self.step = self.min;
    }

    /// The next delay: between half the current step and the step.
    pub fn next_delay(&mut self) -> Duration {
        let step = self.step;
        self.step = step.saturating_mul(2).min(self.max);
        let half = step / 2;
        let nanos = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
        half + Duration::from_nanos(fastrand::u64(0..=nanos))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_within_the_bounds_and_reset() {
        let (min, max) = (Duration::from_secs(1), Duration::from_secs(60));
        let mut backoff = Backoff::new(min, max);
        // Steps: 1, 2, 4, 8, 16, 32, 60, 60, …
        let steps = [1, 2, 4, 8, 16, 32, 60, 60, 60, 60];
        for round in 0..200 {
            backoff.reset();
            for step in steps {
                let step = Duration::from_secs(step);
                let delay = backoff.next_delay();
                assert!(
                    delay >= step / 2 && delay <= step,
                    "round {round}: {delay:?} outside {:?}..={step:?}",
                    step / 2
                );
            }
        }
    }

    #[test]
    fn delays_are_jittered() {
        let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(1));
        let delays: std::collections::BTreeSet<Duration> =
            (0..20).map(|_| backoff.next_delay()).collect();
        assert!(delays.len() > 10, "{delays:?}");
    }

    #[test]
    fn a_maximum_below_the_minimum_is_the_minimum() {
        let mut backoff = Backoff::new(Duration::from_secs(2), Duration::from_millis(1));
        for _ in 0..10 {
            let delay = backoff.next_delay();
            assert!(delay >= Duration::from_secs(1) && delay <= Duration::from_secs(2));
        }
    }
}
