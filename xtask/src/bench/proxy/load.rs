//! Load generators: wrk for HTTP/1.1 keep-alive, h2load for HTTP/2 with prior knowledge.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use super::procs;

/// Which protocol a run speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Protocol {
    Http1,
    Http2,
}

impl Protocol {
    pub fn title(self) -> &'static str {
        match self {
            Protocol::Http1 => "HTTP/1.1 keep-alive (wrk)",
            Protocol::Http2 => "HTTP/2 prior knowledge (h2load)",
        }
    }

    /// The protocol alone, without the load generator.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Http1 => "HTTP/1.1 keep-alive",
            Protocol::Http2 => "HTTP/2 prior knowledge",
        }
    }
}

/// Where a run sends its requests.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub url: String,
    /// The authority to send instead of the URL's (mesh-proxy routes by it).
    pub authority: Option<String>,
}

impl Endpoint {
    /// The `-H` arguments that set the authority: `Host` for wrk, `:authority` for
    /// h2load, which sends it as the Host header over HTTP/1 too.
    pub fn authority_header(&self, client: Client) -> Option<String> {
        let a = self.authority.as_deref()?;
        Some(match client {
            Client::Wrk => format!("Host: {a}"),
            Client::H2load => format!(":authority: {a}"),
        })
    }
}

/// The load generators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Client {
    Wrk,
    H2load,
}

/// Whether a run's connections carry many requests or one each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conns {
    KeepAlive,
    /// Every request says `Connection: close`, so each opens a new connection: a measure
    /// of connection set-up (HTTP/1 only).
    PerRequest,
}

/// How hard to push.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    pub protocol: Protocol,
    pub conns: Conns,
    pub connections: usize,
    pub h2_streams: usize,
    pub duration: Duration,
    pub cpu: usize,
}

/// One measured run.
#[derive(Debug, Clone, Default)]
pub struct Sample {
    pub rps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub requests: f64,
    /// Responses that were not 2xx, plus socket errors.
    pub errors: u64,
    /// CPU seconds the proxy used during the run; none for direct.
    pub proxy_cpu_s: Option<f64>,
    /// The proxy's largest RSS seen during the run, in bytes.
    pub proxy_rss: Option<u64>,
}

/// Runs the load against `endpoint`, measuring the processes in `proxy` meanwhile.
pub fn run(load: Load, endpoint: &Endpoint, proxy: Option<u32>, dir: &Path) -> Result<Sample> {
    let watch = procs::Watch::start(proxy.as_slice());
    let result = match load.protocol {
        Protocol::Http1 => wrk(load, endpoint),
        Protocol::Http2 => h2load(load, endpoint, dir),
    };
    let usage = watch.finish();
    let mut sample = result?;
    if let Some(u) = usage.first() {
        sample.proxy_cpu_s = Some(u.cpu_s);
        sample.proxy_rss = Some(u.peak_rss);
    }
    Ok(sample)
}

fn wrk(load: Load, endpoint: &Endpoint) -> Result<Sample> {
    let mut cmd = Command::new("taskset");
    cmd.args(["-c", &load.cpu.to_string(), "wrk", "-t1", "--latency"])
        .arg(format!("-c{}", load.connections))
        .arg(format!("-d{}s", load.duration.as_secs().max(1)));
    if let Some(header) = endpoint.authority_header(Client::Wrk) {
        cmd.args(["-H", &header]);
    }
    if load.conns == Conns::PerRequest {
        cmd.args(["-H", "Connection: close"]);
    }
    cmd.arg(&endpoint.url);
    let out = cmd.output().context("running wrk")?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        bail!(
            "wrk failed: {}{}",
            text,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    parse_wrk(&text)
}

/// Reads wrk's `--latency` report.
pub fn parse_wrk(text: &str) -> Result<Sample> {
    let mut sample = Sample::default();
    for line in text.lines().map(str::trim) {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["Requests/sec:", rps] => sample.rps = rps.parse()?,
            ["50%", value] => sample.p50_ms = wrk_duration_ms(value)?,
            ["99%", value] => sample.p99_ms = wrk_duration_ms(value)?,
            [count, "requests", "in", ..] => sample.requests = count.parse()?,
            ["Non-2xx", "or", "3xx", "responses:", n] => sample.errors += n.parse::<u64>()?,
            ["Socket", "errors:", rest @ ..] => {
                sample.errors += rest
                    .iter()
                    .filter_map(|w| w.trim_end_matches(',').parse::<u64>().ok())
                    .sum::<u64>();
            }
            _ => {}
        }
    }
    if sample.rps == 0.0 {
        bail!("wrk reported no requests:\n{text}");
    }
    Ok(sample)
}

/// `451.00us`, `1.20ms`, `2.00s` in milliseconds.
fn wrk_duration_ms(value: &str) -> Result<f64> {
    let (number, scale) = if let Some(n) = value.strip_suffix("us") {
        (n, 0.001)
    } else if let Some(n) = value.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = value.strip_suffix('s') {
        (n, 1000.0)
    } else {
        bail!("unknown duration {value:?} in wrk output");
    };
    Ok(number.parse::<f64>()? * scale)
}

fn h2load(load: Load, endpoint: &Endpoint, dir: &Path) -> Result<Sample> {
    if load.conns == Conns::PerRequest {
        bail!("one connection per request is measured over HTTP/1 only");
    }
    let log = dir.join("h2load.log");
    let mut cmd = Command::new("taskset");
    cmd.args(["-c", &load.cpu.to_string(), "h2load", "-t1"])
        .arg(format!("-c{}", load.connections))
        .arg(format!("-m{}", load.h2_streams))
        .arg(format!("-D{}", load.duration.as_secs().max(1)))
        .arg(format!("--log-file={}", log.display()));
    if let Some(header) = endpoint.authority_header(Client::H2load) {
        cmd.args(["-H", &header]);
    }
    cmd.arg(&endpoint.url);
    let out = cmd.output().context("running h2load")?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        bail!(
            "h2load failed: {}{}",
            text,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut sample = parse_h2load(&text)?;
    let mut latencies: Vec<u64> = std::fs::read_to_string(&log)
        .with_context(|| format!("reading {}", log.display()))?
        .lines()
        .filter_map(|l| l.split('\t').nth(2).and_then(|us| us.parse().ok()))
        .collect();
    latencies.sort_unstable();
    sample.p50_ms = percentile(&latencies, 0.50) / 1000.0;
    sample.p99_ms = percentile(&latencies, 0.99) / 1000.0;
    Ok(sample)
}

/// Reads h2load's summary: `finished in …, N req/s`, the request counts and status codes.
pub fn parse_h2load(text: &str) -> Result<Sample> {
    let mut sample = Sample::default();
    for line in text.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("finished in ") {
            if let Some(rps) = rest
                .split(", ")
                .nth(1)
                .and_then(|s| s.strip_suffix(" req/s"))
            {
                sample.rps = rps.parse()?;
            }
        } else if let Some(rest) = line.strip_prefix("requests: ") {
            for part in rest.split(", ") {
                let mut words = part.split_whitespace();
                let (Some(n), Some(what)) = (words.next(), words.next()) else {
                    continue;
                };
                let n: u64 = n.parse()?;
                match what {
                    "succeeded" => sample.requests = n as f64,
                    "failed" | "errored" | "timeout" => sample.errors += n,
                    _ => {}
                }
            }
        } else if let Some(rest) = line.strip_prefix("status codes: ") {
            for part in rest.split(", ") {
                if let Some(n) = part
                    .strip_suffix(" 4xx")
                    .or_else(|| part.strip_suffix(" 5xx"))
                {
                    sample.errors += n.parse::<u64>()?;
                }
            }
        }
    }
    if sample.rps == 0.0 {
        bail!("h2load reported no requests:\n{text}");
    }
    Ok(sample)
}

fn percentile(sorted: &[u64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[rank.min(sorted.len() - 1)] as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_wrk_latency_report() {
        let text = "Running 3s test @ http://127.0.0.1:18081/
  1 threads and 32 connections
  Latency Distribution
     50%  310.00us
     99%    1.20ms
  235739 requests in 3.10s, 33.72MB read
  Non-2xx or 3xx responses: 3
  Socket errors: connect 0, read 2, write 0, timeout 1
Requests/sec:  76039.59
";
        let s = parse_wrk(text).unwrap();
        assert_eq!(s.rps, 76039.59);
        assert!((s.p50_ms - 0.31).abs() < 1e-9);
        assert!((s.p99_ms - 1.2).abs() < 1e-9);
        assert_eq!(s.requests, 235739.0);
        assert_eq!(s.errors, 6);
    }

    #[test]
    fn reads_h2load_summary() {
        let text = "finished in 3.00s, 52443.67 req/s, 3.45MB/s
requests: 157331 total, 157459 started, 157331 done, 157300 succeeded, 31 failed, 0 errored, 0 timeout
status codes: 157300 2xx, 0 3xx, 0 4xx, 2 5xx
";
        let s = parse_h2load(text).unwrap();
        assert_eq!(s.rps, 52443.67);
        assert_eq!(s.requests, 157300.0);
        assert_eq!(s.errors, 33);
    }

    #[test]
    fn percentiles_of_sorted_latencies() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 0.5), 51.0);
        assert_eq!(percentile(&v, 0.99), 99.0);
        assert_eq!(percentile(&[], 0.99), 0.0);
    }
}
