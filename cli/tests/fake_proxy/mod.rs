//! A stand-in for a proxy's admin server whose `/metrics` page grows at fixed rates: each
//! series counts `rps` requests a second since the fake proxy "started" 100 s before it was made.
//! Two reads a window apart then differ by `rps × window`, whatever the window, so `stat` and
//! `routes` print the same rates, success rates and quantiles on every run (to the digits they
//! show), and their output can be a golden file.
#![allow(dead_code)]
#![allow(clippy::unwrap_used)]

pub mod scenario;

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::Instant;

/// Linkerd's `response_latency_ms` bounds, as mesh-proxy exports them.
const BOUNDS_MS: [u64; 25] = [
    1, 2, 3, 4, 5, 10, 20, 30, 40, 50, 100, 200, 300, 400, 500, 1_000, 2_000, 3_000, 4_000, 5_000,
    10_000, 20_000, 30_000, 40_000, 50_000,
];

/// How long the fake proxy has been up when it is made.
const UPTIME: f64 = 100.0;

/// One outbound (or inbound) HTTP series: the labels up to and including the `dst_*` ones.
#[derive(Debug, Clone)]
pub struct Http {
    pub labels: String,
    pub rps: f64,
    /// The share of responses that are failures (500s).
    pub failures: f64,
    /// Every response takes this long; quantiles interpolate inside its Linkerd bucket.
    pub latency_ms: f64,
}

/// One ServiceProfile route of one destination, as mesh-proxy's `route_*` families show it.
#[derive(Debug, Clone)]
pub struct Route {
    pub dst: String,
    pub route: String,
    /// Requests the clients sent (and responses they got) a second.
    pub rps: f64,
    /// The share of the responses the clients got that are failures.
    pub failures: f64,
    /// Attempts, retries included, a second (`route_actual_response_total`).
    pub actual_rps: f64,
    /// The share of attempts that failed.
    pub actual_failures: f64,
    pub latency_ms: f64,
}

/// What one fake proxy exports.
#[derive(Debug, Clone, Default)]
pub struct Page {
    pub http: Vec<Http>,
    pub routes: Vec<Route>,
}

/// An inbound series's labels as mesh-proxy writes them for a request that came over mTLS
/// from `client_id`, to this pod's port 8080.
pub fn inbound_tls(authority: &str, client_id: &str) -> String {
    format!(
        "direction=\"inbound\",authority=\"{authority}\",target_addr=\"127.0.0.1:8080\",target_ip=\"127.0.0.1\",target_port=\"8080\",tls=\"true\",client_id=\"{client_id}\""
    )
}

/// An outbound series's labels as mesh-proxy writes them: `tls`, then the endpoint's `dst_*`
/// labels (none when `dst` is empty).
pub fn outbound(authority: &str, endpoint: &str, dst: &[(&str, &str)]) -> String {
    outbound_tls(authority, endpoint, None, dst)
}

/// [`outbound`], sent over mTLS to `server_id` when there is one (`tls="true"`), else plaintext
/// because discovery named no identity.
pub fn outbound_tls(
    authority: &str,
    endpoint: &str,
    server_id: Option<&str>,
    dst: &[(&str, &str)],
) -> String {
    let (ip, port) = endpoint.rsplit_once(':').unwrap();
    let tls = match server_id {
        Some(id) => format!("tls=\"true\",server_id=\"{id}\""),
        None => "tls=\"no_identity\",no_tls_reason=\"not_provided_by_service_discovery\"".into(),
    };
    let mut labels = format!(
        "direction=\"outbound\",authority=\"{authority}\",target_addr=\"{endpoint}\",target_ip=\"{ip}\",target_port=\"{port}\",{tls}"
    );
    for (name, value) in dst {
        write!(labels, ",dst_{name}=\"{value}\"").unwrap();
    }
    labels
}

impl Page {
    /// Serves this page, growing, until the test process exits.
    pub fn serve(self) -> SocketAddr {
        let started = Instant::now();
        crate::support::admin_server_with(move |line| {
            if line.starts_with("GET /metrics") {
                (200, self.render(UPTIME + started.elapsed().as_secs_f64()))
            } else {
                (404, "not found\n".to_string())
            }
        })
    }

    /// The page `seconds` after the fake proxy started.
    pub fn render(&self, seconds: f64) -> String {
        let mut out = String::new();
        let http = |out: &mut String, name: &str, f: &dyn Fn(&mut String, &Http, f64)| {
            writeln!(out, "# TYPE {name} counter").unwrap();
            for s in &self.http {
                f(out, s, s.rps * seconds);
            }
        };
        http(&mut out, "request_total", &|out, s, n| {
            writeln!(out, "request_total{{{}}} {n}", s.labels).unwrap();
        });
        http(&mut out, "response_total", &|out, s, n| {
            let l = &s.labels;
            let (ok, failed) = (n * (1.0 - s.failures), n * s.failures);
            writeln!(out, "response_total{{{l},status_code=\"200\",classification=\"success\",grpc_status=\"\",error=\"\"}} {ok}").unwrap();
            writeln!(out, "response_total{{{l},status_code=\"500\",classification=\"failure\",grpc_status=\"\",error=\"\"}} {failed}").unwrap();
        });
        writeln!(out, "# TYPE response_latency_ms histogram").unwrap();
        for s in &self.http {
            histogram(
                &mut out,
                "response_latency_ms",
                &format!("{},status_code=\"200\"", s.labels),
                s.rps * seconds,
                s.latency_ms,
            );
        }
        self.render_routes(&mut out, seconds);
        writeln!(out, "# TYPE process_start_time_seconds gauge").unwrap();
        writeln!(out, "process_start_time_seconds 1767225600").unwrap();
        out
    }

    fn render_routes(&self, out: &mut String, seconds: f64) {
        if self.routes.is_empty() {
            return;
        }
        let labels = |r: &Route| {
            format!(
                "direction=\"outbound\",dst=\"{}\",rt_route=\"{}\"",
                r.dst, r.route
            )
        };
        writeln!(out, "# TYPE route_request_total counter").unwrap();
        for r in &self.routes {
            let n = r.rps * seconds;
            writeln!(out, "route_request_total{{{}}} {n}", labels(r)).unwrap();
        }
        for (name, actual) in [
            ("route_response_total", false),
            ("route_actual_response_total", true),
        ] {
            writeln!(out, "# TYPE {name} counter").unwrap();
            for r in &self.routes {
                let (rps, failures) = if actual {
                    (r.actual_rps, r.actual_failures)
                } else {
                    (r.rps, r.failures)
                };
                let n = rps * seconds;
                let l = labels(r);
                let (ok, failed) = (n * (1.0 - failures), n * failures);
                writeln!(
                    out,
                    "{name}{{{l},status_code=\"200\",classification=\"success\"}} {ok}"
                )
                .unwrap();
                writeln!(
                    out,
                    "{name}{{{l},status_code=\"500\",classification=\"failure\"}} {failed}"
                )
                .unwrap();
            }
        }
        writeln!(out, "# TYPE route_response_latency_ms histogram").unwrap();
        for r in &self.routes {
            let n = r.rps * seconds;
            histogram(
                out,
                "route_response_latency_ms",
                &labels(r),
                n,
                r.latency_ms,
            );
        }
        writeln!(out, "# TYPE route_retry_total counter").unwrap();
        for r in &self.routes {
            let n = (r.actual_rps - r.rps).max(0.0) * seconds;
            writeln!(out, "route_retry_total{{{}}} {n}", labels(r)).unwrap();
        }
    }
}

/// A histogram of `count` observations, all of `latency_ms`.
fn histogram(out: &mut String, name: &str, labels: &str, count: f64, latency_ms: f64) {
    for bound in BOUNDS_MS {
        let n = if latency_ms <= bound as f64 {
            count
        } else {
            0.0
        };
        writeln!(out, "{name}_bucket{{{labels},le=\"{bound}\"}} {n}").unwrap();
    }
    writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {count}").unwrap();
    writeln!(out, "{name}_sum{{{labels}}} {}", count * latency_ms).unwrap();
    writeln!(out, "{name}_count{{{labels}}} {count}").unwrap();
}
