//! Linkerd's ServiceProfile route metrics, for requests that matched a profile route:
//! `route_request_total`, `route_response_total` (what the client got, after retries),
//! `route_actual_response_total` (every attempt), `route_response_latency_ms` (to the
//! response head of the answer the client got); and mesh-proxy's retry counters,
//! `route_retry_total` and `route_retry_budget_exhausted_total`. Labels: `direction`,
//! `dst` (the authority), `rt_route`.

use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use super::LatencyMs;
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
    pub(super) requests: AtomicU64,
    /// (status, failure) → count, for the answers clients got; at most
    /// [`super::MAX_RESPONSE_KINDS`] kinds, then status 0.
    pub(super) responses: Mutex<Vec<(u16, bool, u64)>>,
    /// The same for every attempt.
    pub(super) actual: Mutex<Vec<(u16, bool, u64)>>,
    pub(super) latency: LatencyMs,
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
            requests: AtomicU64::new(0),
            responses: Mutex::new(Vec::new()),
            actual: Mutex::new(Vec::new()),
            latency: LatencyMs::default(),
            retries: AtomicU64::new(0),
            exhausted: AtomicU64::new(0),
        }
    }

    fn activity(&self) -> u64 {
        self.requests.load(Relaxed) + self.retries.load(Relaxed) + self.exhausted.load(Relaxed)
    }
}

impl RouteMetrics {
    pub fn request(&self) {
        self.requests.fetch_add(1, Relaxed);
    }

    /// The answer the client got, `latency` after the request.
    pub fn response(&self, status: u16, failure: bool, latency: Duration) {
        count(&self.responses, status, failure);
        self.latency
            .observe_us(u64::try_from(latency.as_micros()).unwrap_or(u64::MAX));
    }

    /// One attempt's answer (retries included).
    pub fn attempt(&self, status: u16, failure: bool) {
        count(&self.actual, status, failure);
    }

    pub fn retried(&self) {
        self.retries.fetch_add(1, Relaxed);
    }

    pub fn budget_exhausted(&self) {
        self.exhausted.fetch_add(1, Relaxed);
    }
}

fn count(list: &Mutex<Vec<(u16, bool, u64)>>, status: u16, failure: bool) {
    let mut list = list.lock().unwrap_or_else(|e| e.into_inner());
    let status = if list.len() >= super::MAX_RESPONSE_KINDS
        && !list.iter().any(|(s, f, _)| *s == status && *f == failure)
    {
        0
    } else {
        status
    };
    match list
        .iter_mut()
        .find(|(s, f, _)| *s == status && *f == failure)
    {
        Some((_, _, n)) => *n += 1,
        None => list.push((status, failure, 1)),
    }
}

/// The `status_code` and `classification` labels of one kind.
pub(super) fn kind_labels(status: u16, failure: bool) -> String {
    let class = if failure { "failure" } else { "success" };
    if status == 0 {
        format!("status_code=\"\",classification=\"{class}\"")
    } else {
        format!("status_code=\"{status}\",classification=\"{class}\"")
    }
}
