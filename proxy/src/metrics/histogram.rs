//! Latency histograms: Linkerd's coarse millisecond buckets, and a fine microsecond
//! histogram whose quantiles are within a few percent of the truth.
//!
//! Both record with relaxed atomics and take no locks.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Linkerd's `response_latency_ms` upper bounds, in milliseconds (then `+Inf`).
pub const LINKERD_BOUNDS_MS: [u64; 25] = [
    1, 2, 3, 4, 5, 10, 20, 30, 40, 50, 100, 200, 300, 400, 500, 1_000, 2_000, 3_000, 4_000, 5_000,
    10_000, 20_000, 30_000, 40_000, 50_000,
];

/// A histogram over [`LINKERD_BOUNDS_MS`]. Observations are microseconds.
#[derive(Debug, Default)]
pub struct LatencyMs {
    buckets: [AtomicU64; 26],
    sum_us: AtomicU64,
}

impl LatencyMs {
    pub fn observe_us(&self, us: u64) {
        let i = LINKERD_BOUNDS_MS
            .iter()
            .position(|&ms| us <= ms * 1000)
            .unwrap_or(LINKERD_BOUNDS_MS.len());
        self.buckets[i].fetch_add(1, Relaxed);
        self.sum_us.fetch_add(us, Relaxed);
    }

    /// Per-bucket counts (not cumulative) and the sum in microseconds.
    pub fn snapshot(&self) -> ([u64; 26], u64) {
        let mut counts = [0u64; 26];
        for (c, b) in counts.iter_mut().zip(&self.buckets) {
            *c = b.load(Relaxed);
        }
        (counts, self.sum_us.load(Relaxed))
    }

    /// Writes `_bucket`, `_sum` and `_count` lines for merged snapshots.
    pub fn render(name: &str, labels: &str, counts: &[u64; 26], sum_us: u64, out: &mut String) {
        let mut cumulative = 0;
        for (i, count) in counts.iter().enumerate() {
            cumulative += count;
            match LINKERD_BOUNDS_MS.get(i) {
                Some(le) => {
                    let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{le}\"}} {cumulative}");
                }
                None => {
                    let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {cumulative}");
                }
            }
        }
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", sum_us as f64 / 1000.0);
        let _ = writeln!(out, "{name}_count{{{labels}}} {cumulative}");
    }
}

/// Buckets 0..=63 have upper bounds 1..=64 µs, one microsecond wide.
const LINEAR: usize = 64;
/// Above 64 µs each power of two is split into this many equal buckets, so no bucket is
/// wider than 1/32 (3.125 %) of its lower bound.
const SUB: u32 = 32;
const SUB_BITS: u32 = 5;
/// The first octave above the linear range: [64, 128).
const FIRST_OCTAVE: u32 = 6;
/// The last octave with finite buckets: [2^26, 2^27) µs, up to about 134 s.
const LAST_OCTAVE: u32 = 26;
/// Finite buckets; one more counts everything above (`+Inf`).
pub const FINE_BUCKETS: usize = LINEAR + ((LAST_OCTAVE - FIRST_OCTAVE + 1) * SUB) as usize;

/// The inclusive upper bound of fine bucket `i`, in microseconds.
pub fn fine_bound(i: usize) -> u64 {
    if i < LINEAR {
        return i as u64 + 1;
    }
    let j = (i - LINEAR) as u32;
    let octave = FIRST_OCTAVE + j / SUB;
    let sub = u64::from(j % SUB);
    (1u64 << octave) + ((sub + 1) << (octave - SUB_BITS))
}

/// The fine bucket for `us`, or `FINE_BUCKETS` for values past the last bound.
pub fn fine_index(us: u64) -> usize {
    if us <= LINEAR as u64 {
        return us.max(1) as usize - 1;
    }
    // Bucket (lo, hi] for integers is [lo, hi) for us - 1.
    let w = us - 1;
    let octave = 63 - w.leading_zeros();
    if octave > LAST_OCTAVE {
        return FINE_BUCKETS;
    }
    let sub = ((w >> (octave - SUB_BITS)) & u64::from(SUB - 1)) as usize;
    LINEAR + ((octave - FIRST_OCTAVE) * SUB) as usize + sub
}

/// The fine-grained latency histogram, in microseconds.
#[derive(Debug)]
pub struct FineUs {
    buckets: Box<[AtomicU64]>,
    sum_us: AtomicU64,
}

impl Default for FineUs {
    fn default() -> Self {
        FineUs {
            buckets: (0..=FINE_BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            sum_us: AtomicU64::new(0),
        }
    }
}

impl FineUs {
    pub fn observe_us(&self, us: u64) {
        self.buckets[fine_index(us)].fetch_add(1, Relaxed);
        self.sum_us.fetch_add(us, Relaxed);
    }

    /// Writes the histogram sparsely: each non-empty bucket's bound, preceded by the bound
    /// below it, so interpolation stays inside one bucket. An absent bound's cumulative
    /// count equals that of the nearest present bound below it.
    pub fn render(&self, name: &str, labels: &str, out: &mut String) {
        let mut cumulative = 0u64;
        let mut last_written: Option<usize> = None;
        for i in 0..FINE_BUCKETS {
            let count = self.buckets[i].load(Relaxed);
            if count == 0 {
                continue;
            }
            if i > 0 && last_written != Some(i - 1) {
                let le = fine_bound(i - 1);
                let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{le}\"}} {cumulative}");
            }
            cumulative += count;
            let le = fine_bound(i);
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{le}\"}} {cumulative}");
            last_written = Some(i);
        }
        cumulative += self.buckets[FINE_BUCKETS].load(Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {cumulative}");
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", self.sum_us.load(Relaxed));
        let _ = writeln!(out, "{name}_count{{{labels}}} {cumulative}");
    }
}
