//! `cargo xtask bench balance`: mesh-proxy's per-request load balancers over three backends,
//! one of them slow.
//!
//! Three HTTP/1.1 backends on 127.0.0.1 answer `200 ok`; one adds a delay (20 ms) first.
//! mesh-proxy finds them through a Linkerd 1 dtab over the file namer (`/svc => /#/io.l5d.fs`,
//! a file `web` listing the three) and wrk sends `Host: web` to its outbound port, where a
//! request's destination is its Host. Each balancer gets its own proxy; beside them run a
//! direct call to one fast backend and a proxy over three fast backends, the case a good
//! balancer should come close to. Rounds are interleaved so drift on a shared machine hits
//! every scenario alike, and the table shows medians. A benchmark, not a test: it never
//! fails on speed, only when the proxy does not answer for `web`.

pub(super) mod backend;
mod latency;
mod mesh;
mod options;
mod report;
#[cfg(test)]
mod tests;

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use super::harness;
use super::proxy::load::{self, Endpoint, Load};
use super::proxy::procs::{self, Proc};
use backend::Backend;
use options::{Options, Scenario};
use report::Run;

pub fn run(args: &[String]) -> Result<()> {
    let opts = Options::parse(args)?;
    let needs_proxy = opts.scenarios.iter().any(|s| s.balancer().is_some());
    harness::run("balance", &opts.common, needs_proxy, |bin, dir| {
        bench(&opts, bin, dir)
    })
}

/// The six backends: three with the slow one last, and three fast for the all-fast case.
struct Backends {
    mixed: [Backend; 3],
    fast: [Backend; 3],
}

impl Backends {
    fn start(delay: Duration) -> Result<Backends> {
        let fast = || Backend::start(Duration::ZERO);
        Ok(Backends {
            mixed: [fast()?, fast()?, Backend::start(delay)?],
            fast: [fast()?, fast()?, fast()?],
        })
    }

    /// The backends behind a scenario: the direct call goes to the first fast one.
    fn of(&self, scenario: Scenario) -> &[Backend] {
        match scenario {
            Scenario::Direct => &self.mixed[..1],
            Scenario::AllFast => &self.fast,
            _ => &self.mixed,
        }
    }

    /// Requests answered by the slow backend and by all of `set`.
    fn counts(set: &[Backend]) -> (u64, u64) {
        let slow = set
            .iter()
            .filter(|b| !b.delay().is_zero())
            .map(Backend::requests)
            .sum();
        (slow, set.iter().map(Backend::requests).sum())
    }
}

/// A scenario ready to measure: its proxy, if any, and where wrk sends requests.
struct Started {
    scenario: Scenario,
    /// The proxy's admin address, whose latency histogram measures its runs.
    admin: Option<std::net::SocketAddr>,
    proc: Option<Proc>,
    endpoint: Endpoint,
}

fn bench(opts: &Options, mesh_bin: Option<&Path>, dir: &Path) -> Result<()> {
    // The backends are this process's threads: on the load generator's core.
    procs::pin_self(opts.common.load_cpu);
    super::proxy::warn_if_busy();
    let backends = Backends::start(opts.delay)?;
    check_slow_backend(&backends, opts.delay)?;
    let mut started = Vec::new();
    for &scenario in &opts.scenarios {
        let set = backends.of(scenario);
        let s = match (scenario.balancer(), mesh_bin) {
            (None, _) => Started {
                scenario,
                admin: None,
                proc: None,
                endpoint: Endpoint {
                    url: format!("http://{}/", set[0].addr),
                    authority: None,
                },
            },
            (Some(balancer), Some(bin)) => mesh::start(opts, bin, dir, scenario, balancer, set)?,
            (Some(_), None) => bail!("no mesh-proxy binary for {}", scenario.name()),
        };
        started.push(s);
    }

    let load = opts.common.load();
    println!(
        "proxies on CPU {}, wrk and the backends on CPU {}; slow backend +{} ms; \
         wrk -t1 -c{}; {} interleaved rounds of {} s after a {} s warm-up, medians shown;\n\
         p50/p99 behind a proxy: per request, from its response_latency_fine_us histogram \
         (wrk's percentiles add synthetic samples for slow responses); direct: wrk's",
        opts.proxy_cpu,
        opts.common.load_cpu,
        opts.delay.as_millis(),
        opts.common.connections,
        opts.common.rounds,
        opts.common.duration.as_secs(),
        opts.common.warm_up.as_secs()
    );
    // Lets the balancers learn the backends' latencies.
    opts.common.warm(started.iter().map(|s| &s.endpoint), dir);
    let outcomes = harness::interleave(opts.common.rounds, &started, |s| {
        measure(load, s, backends.of(s.scenario), dir)
    });

    let rows: Vec<(&str, Option<report::Row>)> = started
        .iter()
        .zip(&outcomes)
        .map(|(s, runs)| {
            let row = runs.as_ref().ok();
            let row = row.and_then(|r| report::summarise(r, s.scenario.has_slow()));
            (s.scenario.name(), row)
        })
        .collect();
    let failed: Vec<(&str, String)> = started
        .iter()
        .zip(&outcomes)
        .filter_map(|(s, r)| r.as_ref().err().map(|f| (s.scenario.name(), f.clone())))
        .collect();
    println!();
    print!("{}", report::render(&rows, &failed));
    harness::check_failures(failed.len(), started.len(), "scenarios")
}

/// The slow backend must be slower by about its delay and the fast ones fast, or every
/// figure after would mean something else.
fn check_slow_backend(backends: &Backends, delay: Duration) -> Result<()> {
    let time = |b: &Backend| -> Result<Duration> {
        let start = Instant::now();
        let status = procs::http_get(b.addr, "bench", "/")?;
        if status != 200 {
            bail!("backend {} answered {status}", b.addr);
        }
        Ok(start.elapsed())
    };
    let fast = time(&backends.mixed[0])?;
    let slow = time(&backends.mixed[2])?;
    if slow < delay || fast >= delay.max(Duration::from_millis(5)) {
        bail!(
            "the backends are not what the benchmark needs: fast answered in {fast:?}, \
             slow in {slow:?} (delay {delay:?})"
        );
    }
    Ok(())
}

/// One measured wrk run, with where its requests went; non-2xx answers or socket errors
/// fail it.
fn measure(load: Load, s: &Started, set: &[Backend], dir: &Path) -> Result<Run> {
    let (slow_before, all_before) = Backends::counts(set);
    let pid = s.proc.as_ref().map(Proc::pid);
    let hist_before = s.admin.map(latency::Histogram::scrape).transpose()?;
    let sample = load::run(load, &s.endpoint, pid, dir)?;
    let (slow_after, all_after) = Backends::counts(set);
    // Behind a proxy, its own per-request histogram; wrk's percentiles otherwise.
    let (p50_ms, p99_ms) = match (s.admin, hist_before) {
        (Some(admin), Some(before)) => {
            let run = latency::Histogram::scrape(admin)?.since(&before);
            (
                run.quantile_ms(0.5).unwrap_or(sample.p50_ms),
                run.quantile_ms(0.99).unwrap_or(sample.p99_ms),
            )
        }
        _ => (sample.p50_ms, sample.p99_ms),
    };
    if sample.errors > 0 {
        bail!(
            "{} of {} responses were not 2xx or were socket errors",
            sample.errors,
            sample.requests
        );
    }
    Ok(Run {
        rps: sample.rps,
        p50_ms,
        p99_ms,
        seconds: if sample.rps > 0.0 {
            sample.requests / sample.rps
        } else {
            0.0
        },
        proxy_cpu_s: sample.proxy_cpu_s,
        to_slow: slow_after - slow_before,
        to_all: all_after - all_before,
    })
}
