//! `cargo xtask bench mesh`: the two-hop meshed path, plaintext and mTLS, against direct.
//!
//! wrk → outbound mesh-proxy → inbound mesh-proxy → server, all on 127.0.0.1, as a client pod
//! calls a server pod: the outbound proxy runs in HTTP proxy mode and finds the inbound
//! proxy through the file namer (a file `web` naming its port, with `tls=<identity>` in the
//! mtls mode); the inbound proxy forwards to the server. wrk and the server (this process's
//! threads) share a core, so direct is not slowed by cross-core wake-ups; the proxies get
//! the others (see the options). Rounds are interleaved so drift on a shared machine hits
//! every mode alike, and the tables show medians. A benchmark, not a test: it never fails
//! on speed, only when a chain does not reach the server or answers with errors. The mtls
//! figures count only when the inbound proxy's metrics show requests that arrived over TLS
//! (their share is printed).

pub(super) mod certs;
pub(super) mod hops;
mod options;
mod report;
#[cfg(test)]
mod tests;

use std::path::Path;
use std::time::Duration;

use anyhow::{Result, bail};

use super::balance::backend::Backend;
use super::harness;
use super::proxy::load::{self, Conns, Load};
use super::proxy::procs::{self, Usage, Watch};
use certs::Identities;
use hops::Chain;
use options::{Mode, Options};
use report::{ConnRun, Report, Run, Tls};

pub fn run(args: &[String]) -> Result<()> {
    let opts = Options::parse(args)?;
    let needs_proxy = opts.modes.iter().any(|m| *m != Mode::Direct);
    harness::run("mesh", &opts.common, needs_proxy, |bin, dir| {
        bench(&opts, bin, dir)
    })
}

fn bench(opts: &Options, bin: Option<&Path>, dir: &Path) -> Result<()> {
    // The server is this process's threads: on the load generator's core.
    procs::pin_self(opts.common.load_cpu);
    super::proxy::warn_if_busy();
    if let Some(bin) = bin {
        println!("{}", super::symbols::coverage_note(bin));
    }
    let server = Backend::start(Duration::ZERO)?;
    let identities = if opts.modes.contains(&Mode::Mtls) {
        Some(Identities::generate(&dir.join("identity"))?)
    } else {
        None
    };
    let mut chains: Vec<Chain> = Vec::new();
    let mut failures: Vec<(Mode, String)> = Vec::new();
    for &mode in &opts.modes {
        let ids = identities.as_ref();
        match hops::start(mode, opts, bin, dir, &server, ids) {
            Ok(chain) => chains.push(chain),
            Err(err) => failures.push((mode, format!("starting: {err:#}"))),
        }
    }

    let load = opts.common.load();
    let fresh = Load {
        conns: Conns::PerRequest,
        connections: opts.handshake_connections,
        duration: opts.handshake_duration,
        ..load
    };
    println!(
        "outbound proxy on CPU {}, inbound proxy on CPU {}, each with LINKERD2_PROXY_CORES=1; \
         wrk and the server on CPU {};\nkeep-alive: wrk -t1 -c{} for {} s; new connections: wrk -t1 -c{} \
         with `Connection: close` for {} s, the outbound proxy keeping no idle connections;\n\
         {} interleaved rounds after a {} s warm-up, medians shown; p50/p99 are wrk's, end to end",
        opts.outbound_cpu,
        opts.inbound_cpu,
        opts.common.load_cpu,
        opts.common.connections,
        opts.common.duration.as_secs(),
        opts.handshake_connections,
        opts.handshake_duration.as_secs(),
        opts.common.rounds,
        opts.common.warm_up.as_secs()
    );
    // Fills the pools and the caches.
    opts.common.warm(chains.iter().map(|c| &c.endpoint), dir);
    let outcomes = harness::interleave(opts.common.rounds, &chains, |chain| {
        let run = measure(load, chain, &server, dir)?;
        let conns = opts
            .handshakes()
            .then(|| measure_conns(fresh, chain, &server, dir));
        Ok((run, conns.transpose()?))
    });

    let mtls = chains.iter().find(|c| c.mode == Mode::Mtls);
    let tls = match mtls.and_then(|c| c.inbound.as_ref()) {
        None => Tls::NotRun,
        Some(inbound) => match procs::get_text(inbound.admin, "/metrics") {
            Ok(text) => report::tls_of(&text),
            Err(err) => Tls::Unknown(format!("{err:#}")),
        },
    };
    let mut rows = Vec::new();
    for (chain, outcome) in chains.iter().zip(outcomes) {
        match outcome {
            Ok(runs) => {
                let (runs, conns): (Vec<Run>, Vec<Option<ConnRun>>) = runs.into_iter().unzip();
                let conns: Vec<ConnRun> = conns.into_iter().flatten().collect();
                let row = report::summarise(&runs);
                rows.push((chain.mode, row, report::summarise_conns(&conns)));
            }
            Err(failure) => failures.push((chain.mode, failure)),
        }
    }
    let report = Report {
        rows,
        tls,
        failures,
        shared_core: opts.outbound_cpu == opts.inbound_cpu,
    };
    println!();
    print!("{}", report::render(&report));
    harness::check_failures(report.failures.len(), opts.modes.len(), "modes")
}

/// Fails on any non-2xx answer or socket error, or if the server saw fewer requests than
/// wrk counted: figures from a broken chain would look like fast ones.
fn check_sample(sample: &load::Sample, served: u64) -> Result<()> {
    if sample.errors > 0 {
        bail!(
            "{} of {} responses were not 2xx or were socket errors",
            sample.errors,
            sample.requests
        );
    }
    if (served as f64) < sample.requests {
        bail!(
            "wrk counted {} responses but the server answered {served}",
            sample.requests
        );
    }
    Ok(())
}

/// Splits a [`Watch`]'s usages into outbound and inbound.
fn split(usage: &[Usage]) -> (Option<Usage>, Option<Usage>) {
    (usage.first().copied(), usage.get(1).copied())
}

/// One keep-alive run through the chain.
fn measure(load: Load, chain: &Chain, server: &Backend, dir: &Path) -> Result<Run> {
    let before = server.requests();
    let watch = Watch::start(&chain.pids());
    let sample = load::run(load, &chain.endpoint, None, dir);
    let (outbound, inbound) = split(&watch.finish());
    let sample = sample?;
    check_sample(&sample, server.requests() - before)?;
    Ok(Run {
        rps: sample.rps,
        p50_ms: sample.p50_ms,
        p99_ms: sample.p99_ms,
        requests: sample.requests,
        outbound,
        inbound,
    })
}

/// One new-connection run through the chain's poolless outbound proxy, counting the
/// connections the inbound proxy accepted meanwhile.
fn measure_conns(load: Load, chain: &Chain, server: &Backend, dir: &Path) -> Result<ConnRun> {
    let accepted = || -> Option<f64> {
        let inbound = chain.inbound.as_ref()?;
        let text = procs::get_text(inbound.admin, "/metrics").ok()?;
        Some(report::inbound_connections(&text))
    };
    let conns_before = accepted();
    let before = server.requests();
    let watch = Watch::start(&chain.fresh_pids());
    let sample = load::run(load, &chain.fresh_endpoint, None, dir);
    let (outbound, inbound) = split(&watch.finish());
    let sample = sample?;
    check_sample(&sample, server.requests() - before)?;
    let inbound_conns = match (conns_before, accepted()) {
        (Some(a), Some(b)) => Some(b - a),
        _ => None,
    };
    Ok(ConnRun {
        per_s: sample.rps,
        requests: sample.requests,
        outbound,
        inbound,
        inbound_conns,
    })
}
