//! The Prometheus text format: Linkerd's families, then the family bounds, then `identity_*` and
//! `process_*`.

use mesh_names::metrics as m;
use std::fmt::Write;
use std::sync::atomic::Ordering::Relaxed;

use super::{LatencyMs, Metrics};

impl Metrics {
    /// Renders everything in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(16 * 1024);
        self.render_http(&mut out);
        self.render_tcp(&mut out);
        self.render_routes(&mut out);
        self.render_authz(&mut out);
        self.render_families(&mut out);
        self.identity.render(&mut out);
        self.process.render(&mut out);
        out
    }

    fn render_families(&self, out: &mut String) {
        header(
            out,
            "mesh_proxy_metrics_series",
            "gauge",
            "Label sets held per family, not counting overflow series.",
        );
        line(
            out,
            "mesh_proxy_metrics_series",
            "family=\"http\"",
            self.http.len() as u64,
        );
        line(
            out,
            "mesh_proxy_metrics_series",
            "family=\"tcp\"",
            self.tcp.len() as u64,
        );
        header(
            out,
            "mesh_proxy_metrics_series_overflow_total",
            "counter",
            "New label sets counted in an overflow series (overflow=\"true\") because their family was full.",
        );
        let name = "mesh_proxy_metrics_series_overflow_total";
        line(out, name, "family=\"http\"", self.http.folded());
        line(out, name, "family=\"tcp\"", self.tcp.folded());
        header(
            out,
            "mesh_proxy_inbound_transport_header_refused_total",
            "counter",
            "Inbound mesh TLS connections closed because their transport header was missing, malformed or refused.",
        );
        let _ = writeln!(
            out,
            "mesh_proxy_inbound_transport_header_refused_total {}",
            self.transport_header_refused.load(Relaxed)
        );
    }

    fn render_http(&self, out: &mut String) {
        let http = self.http.snapshot();
        header(
            out,
            m::REQUEST_TOTAL,
            "counter",
            "Total count of HTTP requests.",
        );
        for m in &http {
            line(out, m::REQUEST_TOTAL, &m.labels, m.requests.load(Relaxed));
        }
        header(
            out,
            m::RESPONSE_TOTAL,
            "counter",
            "Total count of HTTP responses.",
        );
        for m in &http {
            for r in m.responses_sorted() {
                let labels = format!("{},{}", m.labels, r.labels());
                line(out, m::RESPONSE_TOTAL, &labels, r.total.load(Relaxed));
            }
        }
        header(
            out,
            m::RESPONSE_LATENCY_MS,
            "histogram",
            "Elapsed times between a request's headers being received and its response stream completing",
        );
        for m in &http {
            // Linkerd keys latency by status code only, so merge the other response labels.
            // The overflow entries have an empty status and merge into one histogram.
            let mut by_status: Vec<(Option<u16>, [u64; 26], u64)> = Vec::new();
            for r in m.responses_sorted() {
                let (counts, sum) = r.latency.snapshot();
                let status = (!r.overflow).then_some(r.status);
                match by_status.iter_mut().find(|(s, _, _)| *s == status) {
                    Some((_, c, s)) => {
                        c.iter_mut().zip(counts).for_each(|(a, b)| *a += b);
                        *s += sum;
                    }
                    None => by_status.push((status, counts, sum)),
                }
            }
            for (status, counts, sum) in by_status {
                let labels = match status {
                    Some(status) => format!("{},status_code=\"{status}\"", m.labels),
                    None => format!("{},status_code=\"\"", m.labels),
                };
                LatencyMs::render(m::RESPONSE_LATENCY_MS, &labels, &counts, sum, out);
            }
        }
        header(
            out,
            m::RESPONSE_LATENCY_FINE_US,
            "histogram",
            "Like response_latency_ms, in microseconds with buckets at most 3.2% wide; only non-empty buckets and their lower edges are written.",
        );
        for m in &http {
            m.fine.render(m::RESPONSE_LATENCY_FINE_US, &m.labels, out);
        }
    }

    /// Each authorization family that has counted something, as Linkerd writes only those.
    fn render_authz(&self, out: &mut String) {
        let counters = self.authz.snapshot();
        for event in super::AuthzEvent::ALL {
            let mut family = counters.iter().filter(|c| c.event == event).peekable();
            if family.peek().is_none() {
                continue;
            }
            header(out, event.name(), "counter", event.help());
            for c in family {
                line(out, event.name(), &c.labels, c.count.load(Relaxed));
            }
        }
    }

    fn render_routes(&self, out: &mut String) {
        let routes = self.route.snapshot();
        if routes.is_empty() {
            return;
        }
        let name = m::ROUTE_REQUEST_TOTAL;
        header(
            out,
            name,
            "counter",
            "Requests that matched a ServiceProfile route.",
        );
        for m in &routes {
            line(out, name, &m.labels, m.requests.load(Relaxed));
        }
        for (name, help, actual) in [
            (
                m::ROUTE_RESPONSE_TOTAL,
                "Responses to requests on a route, after retries.",
                false,
            ),
            (
                m::ROUTE_ACTUAL_RESPONSE_TOTAL,
                "Responses to every attempt on a route, retries included.",
                true,
            ),
        ] {
            header(out, name, "counter", help);
            for m in &routes {
                let list = if actual { &m.actual } else { &m.responses };
                let mut kinds = list.lock().map(|l| l.clone()).unwrap_or_default();
                kinds.sort_unstable();
                for (status, failure, n) in kinds {
                    let labels = format!(
                        "{},{}",
                        m.labels,
                        super::route::kind_labels(status, failure)
                    );
                    line(out, name, &labels, n);
                }
            }
        }
        header(
            out,
            m::ROUTE_RESPONSE_LATENCY_MS,
            "histogram",
            "Time from a route request's headers to the response headers the client got.",
        );
        for m in &routes {
            let (counts, sum) = m.latency.snapshot();
            LatencyMs::render(m::ROUTE_RESPONSE_LATENCY_MS, &m.labels, &counts, sum, out);
        }
        let name = m::ROUTE_RETRY_TOTAL;
        header(
            out,
            name,
            "counter",
            "Requests sent again after a retryable failure.",
        );
        for m in &routes {
            line(out, name, &m.labels, m.retries.load(Relaxed));
        }
        let name = m::ROUTE_RETRY_BUDGET_EXHAUSTED_TOTAL;
        header(
            out,
            name,
            "counter",
            "Retryable failures not sent again because the retry budget was spent.",
        );
        for m in &routes {
            line(out, name, &m.labels, m.exhausted.load(Relaxed));
        }
    }

    fn render_tcp(&self, out: &mut String) {
        let tcp = self.tcp.snapshot();
        header(
            out,
            m::TCP_OPEN_TOTAL,
            "counter",
            "Total count of opened connections",
        );
        for m in &tcp {
            line(
                out,
                m::TCP_OPEN_TOTAL,
                &m.labels,
                m.open_total.load(Relaxed),
            );
        }
        header(
            out,
            m::TCP_OPEN_CONNECTIONS,
            "gauge",
            "Number of currently-open connections",
        );
        for m in &tcp {
            let open = m.open_total.load(Relaxed).saturating_sub(m.close_count());
            line(out, m::TCP_OPEN_CONNECTIONS, &m.labels, open);
        }
        header(
            out,
            m::TCP_READ_BYTES_TOTAL,
            "counter",
            "Total count of bytes read from peers",
        );
        for m in &tcp {
            line(
                out,
                m::TCP_READ_BYTES_TOTAL,
                &m.labels,
                m.read_bytes.load(Relaxed),
            );
        }
        header(
            out,
            m::TCP_WRITE_BYTES_TOTAL,
            "counter",
            "Total count of bytes written to peers",
        );
        for m in &tcp {
            line(
                out,
                m::TCP_WRITE_BYTES_TOTAL,
                &m.labels,
                m.write_bytes.load(Relaxed),
            );
        }
        header(
            out,
            m::TCP_CLOSE_TOTAL,
            "counter",
            "Total count of closed connections",
        );
        for m in &tcp {
            let ok = format!("{},errno=\"\"", m.labels);
            line(out, m::TCP_CLOSE_TOTAL, &ok, m.close_ok.load(Relaxed));
            let errs = m.close_err.lock().map(|e| e.clone()).unwrap_or_default();
            for (errno, n) in errs {
                let labels = format!("{},errno=\"{errno}\"", m.labels);
                line(out, m::TCP_CLOSE_TOTAL, &labels, n);
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
