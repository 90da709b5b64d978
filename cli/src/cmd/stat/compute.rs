//! From two samples of a proxy to what happened in between, and from many proxies' windows to
//! one row's numbers.

use std::collections::HashMap;

use crate::metrics::Buckets;

use super::sample::{Counters, PodSample};

/// What one proxy saw for one group between two scrapes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Window {
    pub success: f64,
    pub failure: f64,
    pub latency_ms: Buckets,
    pub fine_us: Option<Buckets>,
    /// Open connections at the end of the window.
    pub tcp_open: f64,
    pub read_bytes: f64,
    pub write_bytes: f64,
    /// The time between the two scrapes.
    pub seconds: f64,
}

/// A row's numbers, as Linkerd shows them.
#[derive(Debug, Clone, PartialEq)]
pub struct Stats {
    /// Successful responses over all responses, 0 to 1.
    pub success: f64,
    /// Responses per second.
    pub rps: f64,
    /// p50, p95 and p99 latency in milliseconds, when a histogram answers.
    pub latency_ms: [Option<f64>; 3],
    pub tcp_open: u64,
    pub read_rate: f64,
    pub write_rate: f64,
}

/// The windows of every group of one proxy, from its `earlier` and `later` samples taken
/// `seconds` apart. When the proxy restarted in between (its start time changed, or a counter
/// went down), the later totals are what happened since the restart.
pub fn windows(earlier: &PodSample, later: &PodSample, seconds: f64) -> HashMap<String, Window> {
    let restarted = matches!((earlier.start_time, later.start_time), (Some(a), Some(b)) if a != b)
        || later.groups.iter().any(|(key, now)| {
            earlier
                .groups
                .get(key)
                .is_some_and(|before| went_down(before, now))
        });
    let zero = Counters::default();
    later
        .groups
        .iter()
        .map(|(key, now)| {
            let before = if restarted {
                &zero
            } else {
                earlier.groups.get(key).unwrap_or(&zero)
            };
            (key.clone(), difference(before, now, seconds))
        })
        .collect()
}

fn went_down(before: &Counters, now: &Counters) -> bool {
    now.success < before.success
        || now.failure < before.failure
        || now.read_bytes < before.read_bytes
        || now.write_bytes < before.write_bytes
        || now.latency_ms.since(&before.latency_ms).is_none()
        || match (&before.fine_us, &now.fine_us) {
            (Some(b), Some(n)) => n.since(b).is_none(),
            _ => false,
        }
}

fn difference(before: &Counters, now: &Counters, seconds: f64) -> Window {
    let fine_us = match (&before.fine_us, &now.fine_us) {
        (Some(b), Some(n)) => n.since(b),
        (None, Some(n)) => Some(n.clone()),
        _ => None,
    };
    Window {
        success: now.success - before.success,
        failure: now.failure - before.failure,
        latency_ms: now
            .latency_ms
            .since(&before.latency_ms)
            .unwrap_or_else(|| now.latency_ms.clone()),
        fine_us,
        tcp_open: now.tcp_open,
        read_bytes: now.read_bytes - before.read_bytes,
        write_bytes: now.write_bytes - before.write_bytes,
        seconds,
    }
}

const QUANTILES: [f64; 3] = [0.5, 0.95, 0.99];

/// One row from its proxies' windows, or `None` when no request finished in any of them.
/// Quantiles come from the fine histogram when every proxy that served requests exports it,
/// otherwise from Linkerd's buckets.
pub fn aggregate(windows: &[&Window]) -> Option<Stats> {
    let requests: f64 = windows.iter().map(|w| w.success + w.failure).sum();
    if requests <= 0.0 {
        return None;
    }
    let success: f64 = windows.iter().map(|w| w.success).sum();
    let rate = |f: fn(&Window) -> f64| -> f64 {
        windows
            .iter()
            .filter(|w| w.seconds > 0.0)
            .map(|w| f(w) / w.seconds)
            .sum()
    };
    let serving: Vec<&&Window> = windows
        .iter()
        .filter(|w| w.success + w.failure > 0.0)
        .collect();
    let latency_ms = if serving.iter().all(|w| w.fine_us.is_some()) {
        let fine = Buckets::sum(serving.iter().filter_map(|w| w.fine_us.as_ref()));
        QUANTILES.map(|q| fine.quantile(q).map(|us| us / 1000.0))
    } else {
        let coarse = Buckets::sum(serving.iter().map(|w| &w.latency_ms));
        QUANTILES.map(|q| coarse.quantile(q))
    };
    let tcp_open: f64 = windows.iter().map(|w| w.tcp_open).sum();
    Some(Stats {
        success: success / requests,
        rps: rate(|w| w.success + w.failure),
        latency_ms,
        tcp_open: tcp_open.max(0.0).round() as u64,
        read_rate: rate(|w| w.read_bytes),
        write_rate: rate(|w| w.write_bytes),
    })
}
