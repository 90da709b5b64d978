//! `cargo xtask bench mesh`: the two-hop meshed path, plaintext and mTLS, against direct.
//!
//! wrk → outbound mesh-proxy → inbound mesh-proxy → server, all on 127.0.0.1, as a client pod
//! calls a server pod: the outbound proxy runs in HTTP proxy mode and finds the inbound
//! proxy through the file namer (a file `web` naming its port, with `tls=<identity>` in the
//! mtls mode); the inbound proxy forwards to the server. wrk and the server (this process's
//! threads) share a core, so direct is not slowed by cross-core wake-ups; the proxies get
//! the others (see the options). Rounds are interleaved so drift on a shared machine hits every mode alike, and the
//! tables show medians. A benchmark, not a test: it never fails on speed, only when a chain
//! does not reach the server or answers with errors. The mtls figures count only when the
//! inbound proxy's metrics say its requests arrived over TLS.

mod certs;
mod hops;
mod options;
mod report;
#[cfg(test)]
mod tests;

use std::path::Path;
use std::time::Duration;

use anyhow::{Result, bail};

use super::balance::backend::Backend;
use super::proxy::load::{self, Conns, Load, Protocol};
use super::proxy::procs::{self, Usage, Watch};
use crate::deps;
use certs::Identities;
use hops::Chain;
use options::{Mode, Options};
use report::{ConnRun, Report, Run, Tls};

const BENCH_PACKAGES: &[(&str, &str)] = &[("wrk", "wrk"), ("taskset", "util-linux")];

pub fn run(args: &[String]) -> Result<()> {
    let opts = Options::parse(args)?;
    deps::ensure_debian(BENCH_PACKAGES)?;
    let needs_proxy = opts.modes.iter().any(|m| *m != Mode::Direct);
    let mesh_bin = match &opts.common.mesh_bin {
        Some(bin) => Some(bin.clone()),
        None if needs_proxy => Some(super::proxy::build_mesh_proxy()?),
        None => None,
    };
    let dir = std::env::temp_dir().join(format!("mesh-bench-mesh-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let result = bench(&opts, mesh_bin.as_deref(), &dir);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn bench(opts: &Options, bin: Option<&Path>, dir: &Path) -> Result<()> {
    // The server is this process's threads: on the load generator's core.
    procs::pin_self(opts.common.load_cpu);
    super::proxy::warn_if_busy();
    let server = Backend::start(Duration::ZERO)?;
    let identities = if opts.modes.contains(&Mode::Mtls) {
        Some(Identities::generate(&dir.join("identity"))?)
    } else {
        None
    };
    let handshakes = !opts.handshake_duration.is_zero();
    let mut chains: Vec<Chain> = Vec::new();
    let mut failures: Vec<(Mode, String)> = Vec::new();
    for &mode in &opts.modes {
        let ids = identities.as_ref();
        match hops::start(mode, opts, bin, dir, &server, ids, handshakes) {
            Ok(chain) => chains.push(chain),
            Err(err) => failures.push((mode, format!("starting: {err:#}"))),
        }
    }

    let load = Load {
        protocol: Protocol::Http1,
        conns: Conns::KeepAlive,
        connections: opts.common.connections,
        h2_streams: 1,
        duration: opts.common.duration,
        cpu: opts.common.load_cpu,
    };
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
    if !opts.common.warm_up.is_zero() {
        for chain in &chains {
            let warm = Load {
                duration: opts.common.warm_up,
                ..load
            };
            // Fills the pools and the caches; a failure shows in the rounds.
            let _ = load::run(warm, &chain.endpoint, None, dir);
        }
    }

    let mut runs: Vec<Vec<Run>> = vec![Vec::new(); chains.len()];
    let mut conn_runs: Vec<Vec<ConnRun>> = vec![Vec::new(); chains.len()];
    let mut failed: Vec<Option<String>> = vec![None; chains.len()];
    for round in 0..opts.common.rounds {
        for (i, chain) in chains.iter().enumerate() {
            if failed[i].is_some() {
                continue;
            }
            let result = measure(load, chain, &server, dir).and_then(|run| {
                runs[i].push(run);
                if handshakes {
                    conn_runs[i].push(measure_conns(fresh, chain, &server, dir)?);
                }
                Ok(())
            });
            if let Err(err) = result {
                failed[i] = Some(format!("round {}: {err:#}", round + 1));
            }
        }
    }

    let tls = match chains.iter().find(|c| c.mode == Mode::Mtls) {
        None => Tls::NotRun,
        Some(chain) => match &chain.inbound {
            Some(inbound) => match procs::get_text(inbound.admin, "/metrics") {
                Ok(text) => report::tls_of(&text),
                Err(err) => Tls::Unknown(format!("{err:#}")),
            },
            None => Tls::Unknown("no inbound proxy".to_string()),
        },
    };
    for (chain, f) in chains.iter().zip(&failed) {
        if let Some(f) = f {
            failures.push((chain.mode, f.clone()));
        }
    }
    let report = Report {
        rows: chains
            .iter()
            .enumerate()
            .map(|(i, c)| {
                (
                    c.mode,
                    report::summarise(&runs[i]),
                    report::summarise_conns(&conn_runs[i]),
                )
            })
            .collect(),
        tls,
        failures,
    };
    println!();
    print!("{}", report::render(&report));
    if !report.failures.is_empty() {
        bail!(
            "{} of {} modes failed; their figures are left out",
            report.failures.len(),
            opts.modes.len()
        );
    }
    Ok(())
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
