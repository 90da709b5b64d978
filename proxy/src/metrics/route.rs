//! Per-route retry counters: `route_retry_total` (requests sent again) and
//! `route_retry_budget_exhausted_total` (failed requests not sent again because the
//! target's retry budget was spent), labelled like Linkerd's route metrics.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use super::family::{FoldKey, Series};
use super::labels::{Direction, escape_into};

/// Labels of the route metrics.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RouteKey {
    pub direction: Direction,
    /// The request's authority (Linkerd's `dst`).
    pub dst: Box<str>,
    /// The profile route's name.
    pub route: Box<str>,
}

impl FoldKey for RouteKey {
    fn folded(&self) -> Self {
        RouteKey {
            dst: "".into(),
            route: "".into(),
            ..self.clone()
        }
    }
}

#[derive(Debug)]
pub struct RouteMetrics {
    pub(super) labels: String,
    pub(super) retries: AtomicU64,
    pub(super) exhausted: AtomicU64,
}

impl Series<RouteKey> for RouteMetrics {
    fn new(key: &RouteKey, overflow: bool) -> Self {
        let mut labels = String::new();
        let _ = write!(labels, "direction=\"{}\",dst=\"", key.direction.as_str());
        escape_into(&mut labels, &key.dst);
        labels.push_str("\",rt_route=\"");
        escape_into(&mut labels, &key.route);
        labels.push('"');
        if overflow {
            labels.push_str(",overflow=\"true\"");
        }
        RouteMetrics {
            labels,
            retries: AtomicU64::new(0),
            exhausted: AtomicU64::new(0),
        }
    }

    fn activity(&self) -> u64 {
        self.retries.load(Relaxed) + self.exhausted.load(Relaxed)
    }
}

impl RouteMetrics {
    pub fn retried(&self) {
        self.retries.fetch_add(1, Relaxed);
    }

    pub fn budget_exhausted(&self) {
        self.exhausted.fetch_add(1, Relaxed);
    }
}
