//! A family of series, one per label set: bounded in number, dropped when idle.
//!
//! Some labels come from peers (`authority` is the client's `Host`; `target_addr` is
//! whatever address a client dialled), so an unbounded family is a memory leak anyone can
//! drive: 100 000 `Host` values once grew the proxy to 659 MB and `/metrics` to 787 MB.
//!
//! - **Cap.** A family holds at most `max_series` label sets. A new label set past the cap is
//!   *folded*: it is counted in the family's overflow series, whose peer-controlled labels
//!   are empty and which carries `overflow="true"`, and the fold is counted in
//!   `mesh_proxy_metrics_series_overflow_total`. Overflow series are few: one per
//!   combination of the labels the proxy chooses itself (direction, peer, tls).
//! - **Expiry.** As in Linkerd (`LINKERD2_PROXY_METRICS_RETAIN_IDLE`), a series that nothing
//!   holds (no open connection or request refers to it) and that has not changed for
//!   `retain_idle` is dropped, which frees its slot. Sweeps run on every scrape and
//!   periodically; a series goes between `retain_idle` and `retain_idle` plus two sweep
//!   intervals after its last update. Its counters restart from zero if it comes back, which
//!   Prometheus reads as a counter reset.
//!
//! The data path takes a read lock only when a connection or request resolves a label set
//! it has not cached; it never reads a clock. Rendering copies the `Arc`s out under the read
//! lock and formats without it.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// Bounds on every family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeriesLimits {
    /// Label sets per family before new ones are folded into the overflow series.
    pub max_series: usize,
    /// How long an unused, unchanged series is kept.
    pub retain_idle: Duration,
}

impl Default for SeriesLimits {
    fn default() -> Self {
        SeriesLimits {
            max_series: DEFAULT_MAX_SERIES,
            retain_idle: DEFAULT_RETAIN_IDLE,
        }
    }
}

/// `MESH_PROXY_METRICS_MAX_SERIES`'s default. A pod's own traffic rarely has more than a
/// few dozen authorities and endpoints within ten minutes; at the cap an HTTP family holds
/// about 7 MB and renders about 10 MB of text.
pub const DEFAULT_MAX_SERIES: usize = 1000;

/// `LINKERD2_PROXY_METRICS_RETAIN_IDLE`'s default, as in Linkerd.
pub const DEFAULT_RETAIN_IDLE: Duration = Duration::from_secs(10 * 60);

/// The longest time between two periodic sweeps.
pub const MAX_SWEEP_INTERVAL: Duration = Duration::from_secs(10);

/// A series' data, made from its label set.
pub(super) trait Series<K> {
    /// The series for `key`; `overflow` marks the family's fold-everything-else series.
    fn new(key: &K, overflow: bool) -> Self;
    /// A number that changes whenever the series is updated.
    fn activity(&self) -> u64;
}

/// A label set that can be reduced to the labels the proxy chooses itself.
pub(super) trait FoldKey {
    /// The key of the overflow series this one folds into.
    fn folded(&self) -> Self;
}

#[derive(Debug)]
struct Entry<V> {
    series: Arc<V>,
    /// `activity()` at the last sweep.
    activity: u64,
    /// The last sweep that saw the series held or changed; `None` until a sweep has seen it.
    idle_since: Option<Instant>,
}

impl<V> Entry<V> {
    fn new(series: V) -> Self {
        Entry {
            series: Arc::new(series),
            activity: 0,
            idle_since: None,
        }
    }
}

#[derive(Debug)]
struct Maps<K, V> {
    series: HashMap<K, Entry<V>>,
    overflow: HashMap<K, Entry<V>>,
}

#[derive(Debug)]
pub(super) struct Family<K, V> {
    limits: SeriesLimits,
    maps: RwLock<Maps<K, V>>,
    folded: AtomicU64,
}

impl<K, V> Family<K, V> {
    pub(super) fn new(limits: SeriesLimits) -> Self {
        Family {
            limits,
            maps: RwLock::new(Maps {
                series: HashMap::new(),
                overflow: HashMap::new(),
            }),
            folded: AtomicU64::new(0),
        }
    }

    /// Label sets held, not counting overflow series.
    pub(super) fn len(&self) -> usize {
        self.maps.read().map(|m| m.series.len()).unwrap_or(0)
    }

    /// New label sets folded into an overflow series so far.
    pub(super) fn folded(&self) -> u64 {
        self.folded.load(Relaxed)
    }
}

impl<K: Hash + Eq + Clone + Ord + FoldKey, V: Series<K>> Family<K, V> {
    /// The series for `key`, created if there is room, else the overflow series it folds into.
    pub(super) fn get_or_insert(&self, key: K) -> Arc<V> {
        if let Ok(maps) = self.maps.read()
            && let Some(e) = maps.series.get(&key)
        {
            return e.series.clone();
        }
        let mut maps = self.maps.write().unwrap_or_else(|e| e.into_inner());
        if let Some(e) = maps.series.get(&key) {
            return e.series.clone();
        }
        if maps.series.len() < self.limits.max_series {
            let entry = Entry::new(V::new(&key, false));
            let series = entry.series.clone();
            maps.series.insert(key, entry);
            return series;
        }
        self.folded.fetch_add(1, Relaxed);
        maps.overflow
            .entry(key.folded())
            .or_insert_with_key(|k| Entry::new(V::new(k, true)))
            .series
            .clone()
    }

    /// Every series, sorted by label set, then the overflow series.
    pub(super) fn snapshot(&self) -> Vec<Arc<V>> {
        let copy = |m: &HashMap<K, Entry<V>>| -> Vec<(K, Arc<V>)> {
            m.iter()
                .map(|(k, e)| (k.clone(), e.series.clone()))
                .collect()
        };
        let (mut series, mut overflow) = {
            let maps = self.maps.read().unwrap_or_else(|e| e.into_inner());
            (copy(&maps.series), copy(&maps.overflow))
        };
        series.sort_by(|a, b| a.0.cmp(&b.0));
        overflow.sort_by(|a, b| a.0.cmp(&b.0));
        series.into_iter().chain(overflow).map(|(_, v)| v).collect()
    }

    /// Drops series that nothing holds and that have not changed for `retain_idle`, as of
    /// `now`.
    pub(super) fn sweep(&self, now: Instant) {
        let retain = self.limits.retain_idle;
        let mut maps = self.maps.write().unwrap_or_else(|e| e.into_inner());
        let keep = |_: &K, e: &mut Entry<V>| {
            let activity = e.series.activity();
            // Only the map holds it: no connection or request can update it any more.
            let unused = Arc::strong_count(&e.series) == 1;
            match e.idle_since {
                Some(since) if unused && activity == e.activity => {
                    now.saturating_duration_since(since) < retain
                }
                _ => {
                    e.activity = activity;
                    e.idle_since = Some(now);
                    true
                }
            }
        };
        maps.series.retain(keep);
        maps.overflow.retain(keep);
    }
}
