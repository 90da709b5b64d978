//! Volume: many distinct hosts, random bytes on every port, and a soak.

use std::collections::BTreeMap;
use std::io::{BufReader, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::Result;

use super::backend::Backend;
use super::proc::{Probe, Proxy, Usage};
use super::{Ctx, Outcome, ProbeRule, Report, inbound_proxy, mb, metric_sum, ms, wire};

/// What a keep-alive load saw.
#[derive(Debug, Default)]
struct LoadStats {
    statuses: BTreeMap<u16, u64>,
    errors: u64,
    worst: Duration,
}

impl LoadStats {
    fn requests(&self) -> u64 {
        self.statuses.values().sum::<u64>() + self.errors
    }

    fn non_200(&self) -> u64 {
        self.requests() - self.statuses.get(&200).copied().unwrap_or(0)
    }

    fn merge(&mut self, other: LoadStats) {
        for (s, n) in other.statuses {
            *self.statuses.entry(s).or_insert(0) += n;
        }
        self.errors += other.errors;
        self.worst = self.worst.max(other.worst);
    }
}

/// `conns` keep-alive connections sending `request(i)` for i in 0..`max`, until `limit`
/// passes; a failed connection is replaced.
fn keepalive_load(
    addr: SocketAddr,
    conns: u64,
    max: u64,
    limit: Duration,
    request: &(dyn Fn(u64) -> Vec<u8> + Sync),
) -> LoadStats {
    let start = Instant::now();
    let mut total = LoadStats::default();
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..conns)
            .map(|t| {
                scope.spawn(move || {
                    let mut stats = LoadStats::default();
                    let mut conn = None;
                    let mut i = t;
                    while i < max && start.elapsed() < limit {
                        if conn.is_none() {
                            conn = wire::connect(addr, Duration::from_secs(10))
                                .and_then(|s| Ok((s.try_clone()?, BufReader::new(s))))
                                .ok();
                        }
                        let Some((w, r)) = conn.as_mut() else {
                            stats.errors += 1;
                            std::thread::sleep(Duration::from_millis(10));
                            i += conns;
                            continue;
                        };
                        let t0 = Instant::now();
                        let res = w
                            .write_all(&request(i))
                            .and_then(|()| wire::read_response(r, 0));
                        stats.worst = stats.worst.max(t0.elapsed());
                        match res {
                            Ok(res) => {
                                *stats.statuses.entry(res.status).or_insert(0) += 1;
                                if res.closes() {
                                    conn = None;
                                }
                            }
                            Err(_) => {
                                stats.errors += 1;
                                conn = None;
                            }
                        }
                        i += conns;
                    }
                    stats
                })
            })
            .collect();
        for h in handles {
            total.merge(h.join().unwrap_or_default());
        }
    });
    total
}

fn statuses(stats: &LoadStats) -> String {
    let mut parts: Vec<String> = stats
        .statuses
        .iter()
        .map(|(s, n)| format!("{n} × {s}"))
        .collect();
    if stats.errors > 0 {
        parts.push(format!("{} errors", stats.errors));
    }
    parts.join(", ")
}

/// Row 2: requests with distinct `Host` values must not grow memory or `/metrics` without
/// bound (each authority is a label value).
pub fn distinct_hosts(ctx: &Ctx) -> Result<Outcome> {
    let hosts: u64 = ctx.pick(5_000, 100_000);
    // With the default cap of 1000 series per family the page is 7.9–8.0 MB whatever the
    // number of hosts (which series exist when the cap is reached varies with timing);
    // without the cap, 5000 hosts made about 40 MB and 100 000 made 790 MB.
    const METRICS_BOUND: u64 = 12_000_000;
    const RSS_BOUND: u64 = 64_000_000;
    let backend = Backend::start()?;
    let mut proxy = inbound_proxy(ctx, &backend, &[])?;
    let before = proxy.usage();
    let probe = Probe::start(proxy.inbound);
    let start = Instant::now();
    let request = |i: u64| format!("GET / HTTP/1.1\r\nHost: h{i}.chaos.test\r\n\r\n").into_bytes();
    let stats = keepalive_load(proxy.inbound, 4, hosts, Duration::from_secs(300), &request);
    let took = start.elapsed();
    let probe = probe.finish();
    let (metrics, size) = proxy.metrics(64 << 20)?;
    let authorities = metric_sum(&metrics, "request_total", &["chaos.test"]);
    let growth = proxy.usage().rss.saturating_sub(before.rss);
    let mut report = Report::new(format!("{hosts} requests with distinct Host values"));
    report.note(format!(
        "{} in {}; /metrics {} ({authorities} requests under chaos.test authorities)",
        statuses(&stats),
        ms(took),
        mb(size)
    ));
    report.expect(stats.non_200() == 0, "requests failed");
    report.expect(
        size < METRICS_BOUND,
        format!("/metrics is {} (bound {})", mb(size), mb(METRICS_BOUND)),
    );
    report.expect(
        growth < RSS_BOUND,
        format!("RSS kept {} (bound {})", mb(growth), mb(RSS_BOUND)),
    );
    report.proxy(&mut proxy, before, &probe, ProbeRule::MustPass);
    Ok(report.outcome())
}

/// A small deterministic generator (xorshift64*), so a failing run can be repeated.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// Openings that take the bytes past protocol detection, into each parser. The `Host` is an
/// address, so that the outbound port never asks a resolver: everything stays on loopback.
const PREFIXES: &[&[u8]] = &[
    b"",
    b"GET / HTTP/1.1\r\n",
    b"POST / HTTP/1.1\r\nHost: 127.0.0.1:1\r\nTransfer-Encoding: chunked\r\n\r\n",
    b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
];

/// Waits up to 5 s for the proxy's fds to come back near `before`.
fn settle_fds(proxy: &Proxy, before: Usage) -> usize {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let fds = proxy.usage().fds;
        if fds <= before.fds + 4 || Instant::now() > deadline {
            return fds;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Held: random bytes on the inbound, outbound and admin ports, after every opening the
/// proxy detects: nothing panics, other clients are served, connections are released.
pub fn random_bytes(ctx: &Ctx) -> Result<Outcome> {
    let per_port: u64 = ctx.pick(1000, 20_000);
    let seed = 0x6d65_7368_6368_616f;
    let backend = Backend::start()?;
    let mut proxy = inbound_proxy(ctx, &backend, &[])?;
    let before = proxy.usage();
    let probe = Probe::start(proxy.inbound);
    let ports = [proxy.inbound, proxy.outbound, proxy.admin];
    let answered: u64 = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4u64)
            .map(|t| {
                scope.spawn(move || {
                    let mut rng = Rng(seed + t);
                    let mut answered = 0;
                    for i in 0..per_port * 3 / 4 {
                        let addr = ports[(i % 3) as usize];
                        let Ok(mut s) = wire::connect(addr, Duration::from_millis(100)) else {
                            continue;
                        };
                        let prefix = PREFIXES[(rng.next() % PREFIXES.len() as u64) as usize];
                        let len = 1 + (rng.next() % 4096) as usize;
                        let mut raw = prefix.to_vec();
                        raw.extend(rng.bytes(len));
                        let _ = s.write_all(&raw);
                        let mut buf = [0u8; 1024];
                        if matches!(s.read(&mut buf), Ok(n) if n > 0) {
                            answered += 1;
                        }
                    }
                    answered
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or(0)).sum()
    });
    let probe = probe.finish();
    let fds = settle_fds(&proxy, before);
    let mut report = Report::new(format!(
        "{} connections of random bytes on 3 ports (seed {seed:#x})",
        per_port * 3
    ));
    report.note(format!("{answered} got an answer; fds settled at {fds}"));
    report.expect(
        fds <= before.fds + 4,
        format!("fds stayed at {fds}: {}", proxy.sockets()),
    );
    report.proxy(&mut proxy, before, &probe, ProbeRule::MustPass);
    Ok(report.outcome())
}

/// Held: sustained mixed load; RSS and fds must stay flat and every request succeed.
pub fn soak(ctx: &Ctx) -> Result<Outcome> {
    let length = ctx.pick(Duration::from_secs(15), Duration::from_secs(600));
    let rss_bound: u64 = ctx.pick(16 << 20, 32 << 20);
    let backend = Backend::start()?;
    let mut proxy = inbound_proxy(ctx, &backend, &[])?;
    // One second of load first, so that pools and buffers are in place before measuring.
    let warm = |i: u64| format!("GET /w{i} HTTP/1.1\r\nHost: chaos.test\r\n\r\n").into_bytes();
    keepalive_load(proxy.inbound, 8, u64::MAX, Duration::from_secs(1), &warm);
    let before = proxy.usage();
    let probe = Probe::start(proxy.inbound);
    let body = "x".repeat(1024);
    let request = |i: u64| -> Vec<u8> {
        match i % 3 {
            0 => format!("GET /s{} HTTP/1.1\r\nHost: chaos.test\r\n\r\n", i % 100),
            1 => format!(
                "POST /s HTTP/1.1\r\nHost: chaos.test\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            ),
            _ => format!(
                "POST /s HTTP/1.1\r\nHost: chaos.test\r\nTransfer-Encoding: chunked\r\n\r\n\
                 {:x}\r\n{body}\r\n0\r\n\r\n",
                body.len()
            ),
        }
        .into_bytes()
    };
    let start = Instant::now();
    let stats = keepalive_load(proxy.inbound, 8, u64::MAX, length, &request);
    let took = start.elapsed();
    let probe = probe.finish();
    let end = proxy.usage();
    let fds = settle_fds(&proxy, before);
    let growth = end.rss.saturating_sub(before.rss);
    let mut report = Report::new(format!(
        "{} of 8 keep-alive clients, mixed requests",
        ms(length)
    ));
    report.note(format!(
        "{} ({:.0} rps), slowest {}; fds after {fds}",
        statuses(&stats),
        stats.requests() as f64 / took.as_secs_f64(),
        ms(stats.worst)
    ));
    report.expect(stats.non_200() == 0, "requests failed");
    report.expect(growth < rss_bound, format!("RSS grew {}", mb(growth)));
    report.expect(
        fds <= before.fds + 4,
        format!("fds stayed at {fds}: {}", proxy.sockets()),
    );
    report.proxy(&mut proxy, before, &probe, ProbeRule::MustPass);
    Ok(report.outcome())
}

/// Connections that each carry one request, as clients without keep-alive make: the proxy's
/// memory must not grow with the number of connections it has closed.
pub fn connection_churn(ctx: &Ctx) -> Result<Outcome> {
    let conns: u64 = ctx.pick(20_000, 500_000);
    const RSS_BOUND: u64 = 4_000_000;
    let backend = Backend::start()?;
    let mut proxy = inbound_proxy(ctx, &backend, &[])?;
    let inbound = proxy.inbound;
    let churn = |count: u64| -> u64 {
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..4)
                .map(|_| {
                    scope.spawn(move || {
                        (0..count / 4)
                            .filter(|_| {
                                !wire::get(inbound, "/", Duration::from_secs(10))
                                    .is_ok_and(|r| r.status == 200)
                            })
                            .count() as u64
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap_or(count)).sum()
        })
    };
    // Pools, buffers and the allocator's arenas settle first.
    churn(2000);
    let before = proxy.usage();
    let probe = Probe::start(proxy.inbound);
    let start = Instant::now();
    let failed = churn(conns);
    let took = start.elapsed();
    let probe = probe.finish();
    let growth = proxy.usage().rss.saturating_sub(before.rss);
    let mut report = Report::new(format!("{conns} connections of one request each"));
    report.note(format!(
        "{failed} failed in {}; RSS grew {} ({:.0} B per connection)",
        ms(took),
        mb(growth),
        growth as f64 / conns as f64
    ));
    report.expect(failed == 0, "requests failed");
    report.expect(
        growth < RSS_BOUND,
        format!("RSS grew {} (bound {})", mb(growth), mb(RSS_BOUND)),
    );
    report.proxy(&mut proxy, before, &probe, ProbeRule::MustPass);
    Ok(report.outcome())
}
