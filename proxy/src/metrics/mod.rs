//! Prometheus metrics with Linkerd's names and labels.
//!
//! Label sets are resolved once per connection (or per authority change) into an `Arc`
//! of atomics; the per-request path only increments counters. Families are bounded and
//! idle series expire (see `family`).

mod authz;
mod family;
mod histogram;
mod identity;
mod labels;
mod process;
mod render;
mod route;
#[cfg(test)]
mod tests;

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use family::{Family, Series};
use labels::Fold;

pub use authz::{AuthzCounter, AuthzEvent, AuthzKey};
pub use family::{DEFAULT_MAX_SERIES, DEFAULT_RETAIN_IDLE, MAX_SWEEP_INTERVAL, SeriesLimits};
pub use histogram::{FINE_BUCKETS, FineUs, LINKERD_BOUNDS_MS, LatencyMs, fine_bound, fine_index};
pub use identity::IdentityMetrics;
pub use labels::{Direction, DstLabels, HttpKey, NoTlsReason, Peer, TcpKey, Tls};
pub use route::{RouteKey, RouteMetrics};

/// Response kinds (status, gRPC status, error) kept per HTTP series; further kinds are
/// counted in one overflow entry per classification. Status codes and `grpc-status` come
/// from peers, so this bounds a series' size.
pub const MAX_RESPONSE_KINDS: usize = 64;

/// All of the proxy's metrics.
#[derive(Debug)]
pub struct Metrics {
    limits: SeriesLimits,
    http: Family<HttpKey, HttpMetrics>,
    tcp: Family<TcpKey, TcpMetrics>,
    route: Family<RouteKey, RouteMetrics>,
    authz: Family<AuthzKey, AuthzCounter>,
    process: process::Process,
    identity: IdentityMetrics,
    tap: crate::admin::tap::Tap,
    /// Inbound connections closed for a missing, malformed or refused transport header.
    transport_header_refused: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::with_limits(SeriesLimits::default())
    }
}

impl Metrics {
    pub fn new() -> Self {
        Self::default()
    }

    /// Metrics whose families are bounded by `limits`.
    pub fn with_limits(limits: SeriesLimits) -> Self {
        Metrics {
            limits,
            http: Family::new(limits),
            tcp: Family::new(limits),
            route: Family::new(limits),
            authz: Family::new(limits),
            process: process::Process::default(),
            identity: IdentityMetrics::default(),
            tap: crate::admin::tap::Tap::default(),
            transport_header_refused: AtomicU64::new(0),
        }
    }

    /// Counts an inbound connection closed because of its transport header.
    pub fn transport_header_refused(&self) {
        self.transport_header_refused.fetch_add(1, Relaxed);
    }

    /// How often to sweep: at most [`MAX_SWEEP_INTERVAL`], and at least as often as series
    /// may expire.
    pub fn sweep_interval(&self) -> std::time::Duration {
        self.limits
            .retain_idle
            .clamp(std::time::Duration::from_millis(100), MAX_SWEEP_INTERVAL)
    }

    /// Drops the series that have been unused and unchanged for the retention time, as of
    /// `now`. The admin server calls it before each scrape and periodically.
    pub fn sweep(&self, now: Instant) {
        self.http.sweep(now);
        self.tcp.sweep(now);
        self.route.sweep(now);
        self.authz.sweep(now);
    }

    /// The identity certificate's expiry and renewals.
    pub fn identity(&self) -> &IdentityMetrics {
        &self.identity
    }

    /// Who is tapping requests (see `admin::tap`).
    pub fn tap(&self) -> &crate::admin::tap::Tap {
        &self.tap
    }

    /// The HTTP metrics for a label set, created on first use.
    pub fn http(&self, key: HttpKey) -> Arc<HttpMetrics> {
        self.http.get_or_insert(key)
    }

    /// The retry counters of a profile route, created on first use.
    pub fn route(&self, key: RouteKey) -> std::sync::Arc<RouteMetrics> {
        self.route.get_or_insert(key)
    }

    /// An inbound authorization counter, created on first use.
    pub fn authz(&self, key: AuthzKey) -> Arc<AuthzCounter> {
        self.authz.get_or_insert(key)
    }

    /// The transport metrics for a label set, created on first use.
    pub fn tcp(&self, key: TcpKey) -> Arc<TcpMetrics> {
        self.tcp.get_or_insert(key)
    }
}

/// Transport metrics for one label set.
#[derive(Debug)]
pub struct TcpMetrics {
    labels: String,
    open_total: AtomicU64,
    close_ok: AtomicU64,
    close_err: Mutex<Vec<(&'static str, u64)>>,
    close_err_total: AtomicU64,
    pub(crate) read_bytes: AtomicU64,
    pub(crate) write_bytes: AtomicU64,
}

impl Series<TcpKey> for TcpMetrics {
    fn new(key: &TcpKey, overflow: bool) -> Self {
        let fold = if overflow {
            Fold::Overflow
        } else {
            Fold::Series
        };
        TcpMetrics {
            labels: key.labels(fold),
            open_total: AtomicU64::new(0),
            close_ok: AtomicU64::new(0),
            close_err: Mutex::new(Vec::new()),
            close_err_total: AtomicU64::new(0),
            read_bytes: AtomicU64::new(0),
            write_bytes: AtomicU64::new(0),
        }
    }

    /// Bytes move only while a connection holds the series, so opens are enough.
    fn activity(&self) -> u64 {
        self.open_total.load(Relaxed)
    }
}

impl TcpMetrics {
    /// Counts a connection as open until the returned guard is dropped.
    pub fn open(self: &Arc<Self>) -> OpenConnection {
        self.open_total.fetch_add(1, Relaxed);
        OpenConnection {
            metrics: self.clone(),
            errno: None,
        }
    }

    pub fn add_read(&self, n: usize) {
        self.read_bytes.fetch_add(n as u64, Relaxed);
    }

    pub fn add_write(&self, n: usize) {
        self.write_bytes.fetch_add(n as u64, Relaxed);
    }

    fn close_count(&self) -> u64 {
        self.close_ok.load(Relaxed) + self.close_err_total.load(Relaxed)
    }
}

/// Marks a connection open; dropping it records the close.
#[derive(Debug)]
pub struct OpenConnection {
    metrics: Arc<TcpMetrics>,
    errno: Option<&'static str>,
}

impl OpenConnection {
    /// Records the connection's close as failed with this errno name (e.g. `ECONNRESET`).
    pub fn set_errno(&mut self, errno: &'static str) {
        self.errno = Some(errno);
    }

    pub fn metrics(&self) -> &Arc<TcpMetrics> {
        &self.metrics
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        match self.errno {
            None => {
                self.metrics.close_ok.fetch_add(1, Relaxed);
            }
            Some(errno) => {
                let mut errs = self
                    .metrics
                    .close_err
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                match errs.iter_mut().find(|(e, _)| *e == errno) {
                    Some((_, n)) => *n += 1,
                    None => errs.push((errno, 1)),
                }
                self.metrics.close_err_total.fetch_add(1, Relaxed);
            }
        }
    }
}

/// Whether Linkerd would count a response as a success.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Classification {
    Success,
    Failure,
}

/// HTTP metrics for one label set.
#[derive(Debug)]
pub struct HttpMetrics {
    labels: String,
    requests: AtomicU64,
    responses: RwLock<Vec<Arc<ResponseMetrics>>>,
    fine: FineUs,
}

impl Series<HttpKey> for HttpMetrics {
    fn new(key: &HttpKey, overflow: bool) -> Self {
        let fold = if overflow {
            Fold::Overflow
        } else {
            Fold::Series
        };
        HttpMetrics {
            labels: key.labels(fold),
            requests: AtomicU64::new(0),
            responses: RwLock::new(Vec::new()),
            fine: FineUs::default(),
        }
    }

    /// Every response follows a request, and an in-flight request holds the series.
    fn activity(&self) -> u64 {
        self.requests.load(Relaxed)
    }
}

/// The `error` label of the proxy's answer to a request that cannot be proxied as sent
/// (400, 431): the client's mistake, counted as a `success`.
pub const ERROR_BAD_REQUEST: &str = "bad_request";
/// The `error` label of the proxy's 408 to a client too slow with its request: the
/// client's mistake, counted as a `success`.
pub const ERROR_REQUEST_TIMEOUT: &str = "request_timeout";

/// The `error` label of the proxy's 403 (or 404) to a request inbound authorization policy
/// refused: the client's lack of authorization, counted as a `success`.
pub const ERROR_FORBIDDEN: &str = "forbidden";

/// How a response ended, for `response_total`'s labels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResponseOutcome {
    pub status: u16,
    pub grpc_status: Option<u32>,
    /// Set when the proxy made the response or the stream failed, e.g. `connect`.
    pub error: Option<&'static str>,
}

impl ResponseOutcome {
    /// Linkerd's rule: a 5xx, a `grpc-status` other than 0, or a failed stream is a
    /// failure; anything else, 4xx included, a success. The proxy's own answers to the
    /// client's mistakes (`bad_request`, `request_timeout`) are successes too, even with a
    /// `grpc-status`: the backend did nothing wrong, and its success rate must not drop
    /// because a client sent a malformed or stalled request.
    pub fn classification(&self) -> Classification {
        if matches!(
            self.error,
            Some(ERROR_BAD_REQUEST | ERROR_REQUEST_TIMEOUT | ERROR_FORBIDDEN)
        ) {
            return Classification::Success;
        }
        let failed = match self.grpc_status {
            Some(code) => code != 0,
            None => self.status >= 500,
        };
        if failed || self.error.is_some() {
            Classification::Failure
        } else {
            Classification::Success
        }
    }
}

impl HttpMetrics {
    pub fn request(&self) {
        self.requests.fetch_add(1, Relaxed);
    }

    /// Records a finished response and its latency in microseconds.
    pub fn response(&self, outcome: ResponseOutcome, latency_us: u64) {
        let entry = self.response_entry(outcome);
        entry.total.fetch_add(1, Relaxed);
        entry.latency.observe_us(latency_us);
        self.fine.observe_us(latency_us);
    }

    fn response_entry(&self, outcome: ResponseOutcome) -> Arc<ResponseMetrics> {
        let class = outcome.classification();
        let matches = |r: &&Arc<ResponseMetrics>| {
            !r.overflow
                && r.status == outcome.status
                && r.grpc_status == outcome.grpc_status
                && r.error == outcome.error
                && r.class == class
        };
        let overflow = |r: &&Arc<ResponseMetrics>| r.overflow && r.class == class;
        if let Ok(list) = self.responses.read()
            && let Some(r) = list.iter().find(matches)
        {
            return r.clone();
        }
        let mut list = self.responses.write().unwrap_or_else(|e| e.into_inner());
        if let Some(r) = list.iter().find(matches) {
            return r.clone();
        }
        let kinds = list.iter().filter(|r| !r.overflow).count();
        if kinds >= MAX_RESPONSE_KINDS
            && let Some(r) = list.iter().find(overflow)
        {
            return r.clone();
        }
        let folded = kinds >= MAX_RESPONSE_KINDS;
        let r = Arc::new(ResponseMetrics {
            status: if folded { 0 } else { outcome.status },
            grpc_status: if folded { None } else { outcome.grpc_status },
            error: if folded { None } else { outcome.error },
            class,
            overflow: folded,
            total: AtomicU64::new(0),
            latency: LatencyMs::default(),
        });
        list.push(r.clone());
        r
    }

    fn responses_sorted(&self) -> Vec<Arc<ResponseMetrics>> {
        let mut list = self.responses.read().map(|l| l.clone()).unwrap_or_default();
        list.sort_by_key(|r| (r.overflow, r.status, r.class, r.grpc_status, r.error));
        list
    }
}

#[derive(Debug)]
struct ResponseMetrics {
    status: u16,
    grpc_status: Option<u32>,
    error: Option<&'static str>,
    class: Classification,
    /// Counts every kind past `MAX_RESPONSE_KINDS`; its status, gRPC status and error are
    /// written empty (no real response has an empty `status_code`).
    overflow: bool,
    total: AtomicU64,
    latency: LatencyMs,
}

impl ResponseMetrics {
    fn labels(&self) -> String {
        let class = match self.class {
            Classification::Success => "success",
            Classification::Failure => "failure",
        };
        if self.overflow {
            return format!(
                "status_code=\"\",classification=\"{class}\",grpc_status=\"\",error=\"\""
            );
        }
        let grpc = self.grpc_status.map(|c| c.to_string()).unwrap_or_default();
        format!(
            "status_code=\"{}\",classification=\"{class}\",grpc_status=\"{grpc}\",error=\"{}\"",
            self.status,
            self.error.unwrap_or("")
        )
    }
}
