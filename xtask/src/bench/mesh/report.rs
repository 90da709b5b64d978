//! The mesh benchmark's tables: medians per mode, ratios against direct, whether the mtls
//! mode was encrypted, and the goal line.

use std::fmt::Write;

use super::super::proxy::median;
use super::super::proxy::procs::Usage;
use super::options::Mode;

/// The goal: mTLS through both proxies at no less than this share of direct's RPS.
pub const GOAL: f64 = 0.6;

/// One keep-alive run of one mode.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Run {
    pub rps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub requests: f64,
    /// The outbound and inbound proxies' use during the run; none for direct.
    pub outbound: Option<Usage>,
    pub inbound: Option<Usage>,
}

/// One new-connection run of one mode: every request on a new connection, on each hop.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ConnRun {
    pub per_s: f64,
    pub requests: f64,
    pub outbound: Option<Usage>,
    pub inbound: Option<Usage>,
    /// Connections the inbound proxy accepted during the run.
    pub inbound_conns: Option<f64>,
}

/// A mode's keep-alive medians.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Row {
    pub rps: f64,
    pub p50: f64,
    pub p99: f64,
    /// CPU microseconds per request, outbound and inbound proxy.
    pub outbound_us: Option<f64>,
    pub inbound_us: Option<f64>,
    /// The largest RSS seen over all rounds, in bytes.
    pub outbound_rss: Option<u64>,
    pub inbound_rss: Option<u64>,
}

/// A mode's new-connection medians.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConnRow {
    pub per_s: f64,
    /// CPU microseconds per connection, outbound and inbound proxy.
    pub outbound_us: Option<f64>,
    pub inbound_us: Option<f64>,
    /// Connections the inbound proxy accepted per request, over all rounds: 1.00 when
    /// every request crossed the second hop on a connection of its own.
    pub inbound_per_request: Option<f64>,
}

/// What the inbound proxy's metrics said about the mtls mode.
#[derive(Debug, Clone, PartialEq)]
pub enum Tls {
    /// The mtls mode did not run.
    NotRun,
    /// This share of the inbound proxy's requests had `tls="true"`; above zero.
    Encrypted(f64),
    /// No inbound request had `tls="true"`.
    NotEncrypted,
    /// The metrics could not be read.
    Unknown(String),
}

/// Everything the tables show.
#[derive(Debug, Clone)]
pub struct Report {
    pub rows: Vec<(Mode, Option<Row>, Option<ConnRow>)>,
    pub tls: Tls,
    pub failures: Vec<(Mode, String)>,
    /// Both proxies ran on one core (a machine with two): the goal asks for one each.
    pub shared_core: bool,
}

fn per_request_us(cpu: impl Iterator<Item = Option<(f64, f64)>>) -> Option<f64> {
    let v: Vec<f64> = cpu
        .flatten()
        .filter(|(_, n)| *n > 0.0)
        .map(|(cpu_s, n)| cpu_s / n * 1e6)
        .collect();
    (!v.is_empty()).then(|| median(&v))
}

/// Medians of a mode's keep-alive runs; none without runs.
pub fn summarise(runs: &[Run]) -> Option<Row> {
    if runs.is_empty() {
        return None;
    }
    let pick = |f: fn(&Run) -> f64| median(&runs.iter().map(f).collect::<Vec<_>>());
    let us = |f: fn(&Run) -> Option<Usage>| {
        per_request_us(runs.iter().map(|r| f(r).map(|u| (u.cpu_s, r.requests))))
    };
    let rss = |f: fn(&Run) -> Option<Usage>| runs.iter().filter_map(f).map(|u| u.peak_rss).max();
    Some(Row {
        rps: pick(|r| r.rps),
        p50: pick(|r| r.p50_ms),
        p99: pick(|r| r.p99_ms),
        outbound_us: us(|r| r.outbound),
        inbound_us: us(|r| r.inbound),
        outbound_rss: rss(|r| r.outbound),
        inbound_rss: rss(|r| r.inbound),
    })
}

/// Medians of a mode's new-connection runs; none without runs.
pub fn summarise_conns(runs: &[ConnRun]) -> Option<ConnRow> {
    if runs.is_empty() {
        return None;
    }
    let us = |f: fn(&ConnRun) -> Option<Usage>| {
        per_request_us(runs.iter().map(|r| f(r).map(|u| (u.cpu_s, r.requests))))
    };
    let conns: Vec<(f64, f64)> = runs
        .iter()
        .filter_map(|r| r.inbound_conns.map(|c| (c, r.requests)))
        .collect();
    let (c, n) = conns
        .iter()
        .fold((0.0, 0.0), |(c, n), (rc, rn)| (c + rc, n + rn));
    Some(ConnRow {
        per_s: median(&runs.iter().map(|r| r.per_s).collect::<Vec<_>>()),
        outbound_us: us(|r| r.outbound),
        inbound_us: us(|r| r.inbound),
        inbound_per_request: (n > 0.0).then(|| c / n),
    })
}

/// The sum of a metric's series whose labels contain all of `labels` (`key="value"`).
pub fn metric_sum(text: &str, name: &str, labels: &[&str]) -> f64 {
    let prefix = format!("{name}{{");
    text.lines()
        .filter(|l| l.starts_with(&prefix))
        .filter(|l| labels.iter().all(|want| l.contains(want)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Connections the proxy accepted on its inbound side so far.
pub fn inbound_connections(metrics: &str) -> f64 {
    metric_sum(
        metrics,
        "tcp_open_total",
        &["direction=\"inbound\"", "peer=\"src\""],
    )
}

/// What the inbound proxy's metrics say about mTLS: the share of its requests with
/// `tls="true"`. A proxy without identity support labels every series `no_identity`.
pub fn tls_of(metrics: &str) -> Tls {
    let inbound = ["direction=\"inbound\""];
    let all = metric_sum(metrics, "request_total", &inbound);
    let tls = metric_sum(
        metrics,
        "request_total",
        &["direction=\"inbound\"", "tls=\"true\""],
    );
    if all <= 0.0 {
        return Tls::Unknown("the inbound proxy counted no requests".to_string());
    }
    if tls <= 0.0 {
        Tls::NotEncrypted
    } else {
        Tls::Encrypted(tls / all)
    }
}

/// `a / b` as `0.00×`, or a dash.
fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}×", a / b),
        _ => "—".to_string(),
    }
}

fn num(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "—".to_string(), |v| format!("{v:.digits$}"))
}

fn mb(v: Option<u64>) -> String {
    v.map_or_else(|| "—".to_string(), |b| format!("{:.1}", b as f64 / 1e6))
}

/// The tables, ratios, mTLS verdict and goal line, as printed.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    let find = |mode: Mode| report.rows.iter().find(|(m, _, _)| *m == mode);
    let direct = find(Mode::Direct).and_then(|(_, r, _)| *r);
    let direct_conn = find(Mode::Direct).and_then(|(_, _, c)| *c);
    let plain_mark = |mode: Mode| match (mode, &report.tls) {
        (Mode::Mtls, Tls::NotEncrypted | Tls::Unknown(_)) => "mtls (!)".to_string(),
        _ => mode.name().to_string(),
    };

    let _ = writeln!(
        out,
        "{:<10} {:>9} {:>8} {:>8} {:>8} {:>10} {:>9} {:>10} {:>9}",
        "keep-alive",
        "RPS",
        "×direct",
        "p50 ms",
        "p99 ms",
        "out µs/req",
        "in µs/req",
        "out RSS MB",
        "in RSS MB"
    );
    for (mode, row, _) in &report.rows {
        let Some(r) = row else { continue };
        let _ = writeln!(
            out,
            "{:<10} {:>9.0} {:>8} {:>8.3} {:>8.3} {:>10} {:>9} {:>10} {:>9}",
            plain_mark(*mode),
            r.rps,
            ratio(Some(r.rps), direct.map(|d| d.rps)),
            r.p50,
            r.p99,
            num(r.outbound_us, 1),
            num(r.inbound_us, 1),
            mb(r.outbound_rss),
            mb(r.inbound_rss),
        );
    }
    if report.rows.iter().any(|(_, _, c)| c.is_some()) {
        let _ = writeln!(
            out,
            "\n{:<10} {:>9} {:>8} {:>11} {:>10} {:>13}",
            "new conns", "conn/s", "×direct", "out µs/conn", "in µs/conn", "in-conns/req"
        );
        for (mode, _, conn) in &report.rows {
            let Some(c) = conn else { continue };
            let _ = writeln!(
                out,
                "{:<10} {:>9.0} {:>8} {:>11} {:>10} {:>13}",
                plain_mark(*mode),
                c.per_s,
                ratio(Some(c.per_s), direct_conn.map(|d| d.per_s)),
                num(c.outbound_us, 1),
                num(c.inbound_us, 1),
                num(c.inbound_per_request, 2),
            );
        }
    }

    let mtls = find(Mode::Mtls).and_then(|(_, r, _)| *r);
    let plain = find(Mode::Plaintext).and_then(|(_, r, _)| *r);
    let encrypted = matches!(report.tls, Tls::Encrypted(_));
    out.push('\n');
    match &report.tls {
        Tls::NotRun => {}
        Tls::Encrypted(share) => {
            let _ = writeln!(
                out,
                "mtls: encrypted (tls=\"true\" on {:.0}% of the inbound proxy's requests)",
                share * 100.0
            );
        }
        Tls::NotEncrypted => {
            let _ = writeln!(
                out,
                "mtls: NOT ENCRYPTED (proxy without identity support); its figures are plaintext's"
            );
        }
        Tls::Unknown(why) => {
            let _ = writeln!(out, "mtls: encryption unknown ({why}); figures not counted");
        }
    }
    if encrypted && let (Some(m), Some(p)) = (mtls, plain) {
        let plain_conn = find(Mode::Plaintext).and_then(|(_, _, c)| *c);
        let mtls_conn = find(Mode::Mtls).and_then(|(_, _, c)| *c);
        let _ = writeln!(
            out,
            "mtls / plaintext: RPS {}, p99 {}, CPU/req out {} in {}, new conn/s {}",
            ratio(Some(m.rps), Some(p.rps)),
            ratio(Some(m.p99), Some(p.p99)),
            ratio(m.outbound_us, p.outbound_us),
            ratio(m.inbound_us, p.inbound_us),
            ratio(mtls_conn.map(|c| c.per_s), plain_conn.map(|c| c.per_s)),
        );
    }
    let goal = format!("goal: mTLS two-hop at ≥ {GOAL:.1}× direct");
    match (mtls, direct) {
        (Some(m), Some(d)) if encrypted && d.rps > 0.0 && !report.shared_core => {
            let r = m.rps / d.rps;
            let verdict = if r >= GOAL { "met" } else { "NOT met" };
            let _ = writeln!(out, "{goal}: {r:.2}× — {verdict}");
        }
        (Some(m), Some(d)) if encrypted && d.rps > 0.0 => {
            // With a core each, a proxy serves at most one request per its CPU time per
            // request, and the client and server at most what they did direct.
            let r = m.rps / d.rps;
            let busiest = m.outbound_us.zip(m.inbound_us).map(|(o, i)| o.max(i));
            let _ = write!(
                out,
                "{goal} with a core per proxy: not measured here (both proxies shared one \
                 core: {r:.2}× direct; a core each needs three cores)"
            );
            match busiest {
                Some(us) if us > 0.0 => {
                    let p = (1e6 / us).min(d.rps) / d.rps;
                    let verdict = if p >= GOAL { "met" } else { "NOT met" };
                    let _ = writeln!(
                        out,
                        ";\n  projected from CPU per request ({us:.1} µs in the busier proxy): \
                         {p:.2}× — {verdict} (projected)"
                    );
                }
                _ => {
                    let _ = writeln!(out, "; no CPU figures to project from");
                }
            }
        }
        (Some(_), Some(_)) => {
            let _ = writeln!(out, "{goal}: not measured (the mtls run was not encrypted)");
        }
        _ => {
            let _ = writeln!(
                out,
                "{goal}: not measured (needs the direct and mtls modes)"
            );
        }
    }
    for (mode, failure) in &report.failures {
        let _ = writeln!(out, "{}: failed: {failure}", mode.name());
    }
    out
}
