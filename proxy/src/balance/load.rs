//! What a balancer knows of one endpoint's load: requests in flight and a peak-EWMA of its
//! response times, Linkerd's default measure.
//!
//! The estimate jumps to a slower response at once (the peak) and otherwise moves toward
//! new samples with a weight that grows with the time since the last one, so it follows
//! wall time, not the request rate. Read without new samples, it decays toward zero over
//! [`DECAY`], so an endpoint that was slow once is tried again eventually instead of
//! starving forever. Every endpoint starts at [`DEFAULT_RTT`]: until estimates settle, the
//! requests in flight (which a slow endpoint accumulates) decide. An endpoint that joins a
//! set whose endpoints are measured starts at their mean instead (see `Snapshot::build`):
//! with Linkerd's fixed 30 ms, a new pod among endpoints answering in a millisecond gets
//! next to no traffic from a client with few requests in flight until the estimates decay,
//! which takes most of a minute.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// The time over which a sample's weight decays (Linkerd's default).
pub const DECAY: Duration = Duration::from_secs(10);
/// The estimate of an endpoint that has not answered yet (Linkerd's default).
pub const DEFAULT_RTT: Duration = Duration::from_millis(30);

#[derive(Debug)]
pub struct Load {
    pending: AtomicU32,
    ewma: Mutex<Ewma>,
}

#[derive(Debug, Clone, Copy)]
struct Ewma {
    rtt_ns: f64,
    stamp: Instant,
}

impl Load {
    /// A load whose latency estimate starts at `initial_ns`.
    pub fn new(now: Instant, initial_ns: f64) -> Load {
        Load {
            pending: AtomicU32::new(0),
            ewma: Mutex::new(Ewma {
                rtt_ns: initial_ns,
                stamp: now,
            }),
        }
    }

    /// The latency estimate now, decayed, in nanoseconds.
    pub fn estimate_ns(&self, now: Instant) -> f64 {
        let e = self.ewma.lock().unwrap_or_else(|e| e.into_inner());
        e.rtt_ns * decay(now.saturating_duration_since(e.stamp))
    }

    pub fn pending(&self) -> u32 {
        self.pending.load(Relaxed)
    }

    pub fn start(&self) {
        self.pending.fetch_add(1, Relaxed);
    }

    pub fn end(&self) {
        self.pending.fetch_sub(1, Relaxed);
    }

    /// Peak-EWMA cost: the decayed latency estimate times the requests in flight, plus one.
    pub fn cost(&self, now: Instant) -> f64 {
        let rtt = {
            let e = self.ewma.lock().unwrap_or_else(|e| e.into_inner());
            e.rtt_ns * decay(now.saturating_duration_since(e.stamp))
        };
        rtt * f64::from(self.pending() + 1)
    }

    /// Adds a response time.
    pub fn observe(&self, rtt: Duration, now: Instant) {
        let sample = rtt.as_nanos() as f64;
        let mut e = self.ewma.lock().unwrap_or_else(|e| e.into_inner());
        let w = decay(now.saturating_duration_since(e.stamp));
        e.rtt_ns = if sample > e.rtt_ns * w {
            sample
        } else {
            e.rtt_ns * w + sample * (1.0 - w)
        };
        e.stamp = now;
    }
}

/// The weight left to an estimate `elapsed` old.
fn decay(elapsed: Duration) -> f64 {
    (-elapsed.as_secs_f64() / DECAY.as_secs_f64()).exp()
}
