//! Prometheus metrics with Linkerd's names and labels.
//!
//! Label sets are resolved once per connection (or per authority change) into an `Arc`
//! of atomics; the per-request path only increments counters.

mod histogram;
mod labels;
mod process;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fmt::Write;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, RwLock};

pub use histogram::{FINE_BUCKETS, FineUs, LINKERD_BOUNDS_MS, LatencyMs, fine_bound, fine_index};
pub use labels::{Direction, HttpKey, NoTlsReason, Peer, TcpKey, Tls};

/// The name of the fine-grained latency histogram (see the crate docs).
pub const FINE_LATENCY: &str = "response_latency_fine_us";

/// All of the proxy's metrics.
#[derive(Debug, Default)]
pub struct Metrics {
    http: Family<HttpKey, HttpMetrics>,
    tcp: Family<TcpKey, TcpMetrics>,
    process: process::Process,
    tap: crate::admin::tap::Tap,
}

impl Metrics {
    pub fn new() -> Self {
        Self::default()
    }

    /// Who is tapping requests (see `admin::tap`).
    pub fn tap(&self) -> &crate::admin::tap::Tap {
        &self.tap
    }

    /// The HTTP metrics for a label set, created on first use.
    pub fn http(&self, key: HttpKey) -> Arc<HttpMetrics> {
        self.http.get_or_insert(key)
    }

    /// The transport metrics for a label set, created on first use.
    pub fn tcp(&self, key: TcpKey) -> Arc<TcpMetrics> {
        self.tcp.get_or_insert(key)
    }

    /// Renders everything in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(16 * 1024);
        self.render_http(&mut out);
        self.render_tcp(&mut out);
        self.process.render(&mut out);
        out
    }

    fn render_http(&self, out: &mut String) {
        let http = self.http.sorted();
        header(
            out,
            "request_total",
            "counter",
            "Total count of HTTP requests.",
        );
        for m in &http {
            line(out, "request_total", &m.labels, m.requests.load(Relaxed));
        }
        header(
            out,
            "response_total",
            "counter",
            "Total count of HTTP responses.",
        );
        for m in &http {
            for r in m.responses_sorted() {
                let labels = format!("{},{}", m.labels, r.labels());
                line(out, "response_total", &labels, r.total.load(Relaxed));
            }
        }
        header(
            out,
            "response_latency_ms",
            "histogram",
            "Elapsed times between a request's headers being received and its response stream completing",
        );
        for m in &http {
            // Linkerd keys latency by status code only, so merge the other response labels.
            let mut by_status: Vec<(u16, [u64; 26], u64)> = Vec::new();
            for r in m.responses_sorted() {
                let (counts, sum) = r.latency.snapshot();
                match by_status.iter_mut().find(|(s, _, _)| *s == r.status) {
                    Some((_, c, s)) => {
                        c.iter_mut().zip(counts).for_each(|(a, b)| *a += b);
                        *s += sum;
                    }
                    None => by_status.push((r.status, counts, sum)),
                }
            }
            for (status, counts, sum) in by_status {
                let labels = format!("{},status_code=\"{status}\"", m.labels);
                LatencyMs::render("response_latency_ms", &labels, &counts, sum, out);
            }
        }
        header(
            out,
            FINE_LATENCY,
            "histogram",
            "Like response_latency_ms, in microseconds with buckets at most 3.2% wide; only non-empty buckets and their lower edges are written.",
        );
        for m in &http {
            m.fine.render(FINE_LATENCY, &m.labels, out);
        }
    }

    fn render_tcp(&self, out: &mut String) {
        let tcp = self.tcp.sorted();
        header(
            out,
            "tcp_open_total",
            "counter",
            "Total count of opened connections",
        );
        for m in &tcp {
            line(out, "tcp_open_total", &m.labels, m.open_total.load(Relaxed));
        }
        header(
            out,
            "tcp_open_connections",
            "gauge",
            "Number of currently-open connections",
        );
        for m in &tcp {
            let open = m.open_total.load(Relaxed).saturating_sub(m.close_count());
            line(out, "tcp_open_connections", &m.labels, open);
        }
        header(
            out,
            "tcp_read_bytes_total",
            "counter",
            "Total count of bytes read from peers",
        );
        for m in &tcp {
            line(
                out,
                "tcp_read_bytes_total",
                &m.labels,
                m.read_bytes.load(Relaxed),
            );
        }
        header(
            out,
            "tcp_write_bytes_total",
            "counter",
            "Total count of bytes written to peers",
        );
        for m in &tcp {
            line(
                out,
                "tcp_write_bytes_total",
                &m.labels,
                m.write_bytes.load(Relaxed),
            );
        }
        header(
            out,
            "tcp_close_total",
            "counter",
            "Total count of closed connections",
        );
        for m in &tcp {
            let ok = format!("{},errno=\"\"", m.labels);
            line(out, "tcp_close_total", &ok, m.close_ok.load(Relaxed));
            let errs = m.close_err.lock().map(|e| e.clone()).unwrap_or_default();
            for (errno, n) in errs {
                let labels = format!("{},errno=\"{errno}\"", m.labels);
                line(out, "tcp_close_total", &labels, n);
            }
        }
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn line(out: &mut String, name: &str, labels: &str, value: u64) {
    let _ = writeln!(out, "{name}{{{labels}}} {value}");
}

/// Metrics for one label set, created on first use and kept for the process's life.
#[derive(Debug)]
struct Family<K, V> {
    map: RwLock<HashMap<K, Arc<V>>>,
}

impl<K, V> Default for Family<K, V> {
    fn default() -> Self {
        Family {
            map: RwLock::new(HashMap::new()),
        }
    }
}

trait FromKey<K> {
    fn from_key(key: &K) -> Self;
}

impl<K: Hash + Eq + Clone + Ord, V: FromKey<K>> Family<K, V> {
    fn get_or_insert(&self, key: K) -> Arc<V> {
        if let Ok(map) = self.map.read()
            && let Some(v) = map.get(&key)
        {
            return v.clone();
        }
        let mut map = self.map.write().unwrap_or_else(|e| e.into_inner());
        map.entry(key)
            .or_insert_with_key(|k| Arc::new(V::from_key(k)))
            .clone()
    }

    fn sorted(&self) -> Vec<Arc<V>> {
        let map = self.map.read().unwrap_or_else(|e| e.into_inner());
        let mut entries: Vec<(&K, &Arc<V>)> = map.iter().collect();
        entries.sort_by(|a, b| a.0.cmp(b.0));
        entries.into_iter().map(|(_, v)| v.clone()).collect()
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

impl FromKey<TcpKey> for TcpMetrics {
    fn from_key(key: &TcpKey) -> Self {
        let mut labels = String::new();
        key.write(&mut labels);
        TcpMetrics {
            labels,
            open_total: AtomicU64::new(0),
            close_ok: AtomicU64::new(0),
            close_err: Mutex::new(Vec::new()),
            close_err_total: AtomicU64::new(0),
            read_bytes: AtomicU64::new(0),
            write_bytes: AtomicU64::new(0),
        }
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

impl FromKey<HttpKey> for HttpMetrics {
    fn from_key(key: &HttpKey) -> Self {
        let mut labels = String::new();
        key.write(&mut labels);
        HttpMetrics {
            labels,
            requests: AtomicU64::new(0),
            responses: RwLock::new(Vec::new()),
            fine: FineUs::default(),
        }
    }
}

/// How a response ended, for `response_total`'s labels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResponseOutcome {
    pub status: u16,
    pub grpc_status: Option<u32>,
    /// Set when the proxy made the response or the stream failed, e.g. `connect`.
    pub error: Option<&'static str>,
}

impl ResponseOutcome {
    pub fn classification(&self) -> Classification {
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
            r.status == outcome.status
                && r.grpc_status == outcome.grpc_status
                && r.error == outcome.error
                && r.class == class
        };
        if let Ok(list) = self.responses.read()
            && let Some(r) = list.iter().find(matches)
        {
            return r.clone();
        }
        let mut list = self.responses.write().unwrap_or_else(|e| e.into_inner());
        if let Some(r) = list.iter().find(matches) {
            return r.clone();
        }
        let r = Arc::new(ResponseMetrics {
            status: outcome.status,
            grpc_status: outcome.grpc_status,
            error: outcome.error,
            class,
            total: AtomicU64::new(0),
            latency: LatencyMs::default(),
        });
        list.push(r.clone());
        r
    }

    fn responses_sorted(&self) -> Vec<Arc<ResponseMetrics>> {
        let mut list = self.responses.read().map(|l| l.clone()).unwrap_or_default();
        list.sort_by_key(|r| (r.status, r.class, r.grpc_status, r.error));
        list
    }
}

#[derive(Debug)]
struct ResponseMetrics {
    status: u16,
    grpc_status: Option<u32>,
    error: Option<&'static str>,
    class: Classification,
    total: AtomicU64,
    latency: LatencyMs,
}

impl ResponseMetrics {
    fn labels(&self) -> String {
        let class = match self.class {
            Classification::Success => "success",
            Classification::Failure => "failure",
        };
        let grpc = self.grpc_status.map(|c| c.to_string()).unwrap_or_default();
        format!(
            "status_code=\"{}\",classification=\"{class}\",grpc_status=\"{grpc}\",error=\"{}\"",
            self.status,
            self.error.unwrap_or("")
        )
    }
}
