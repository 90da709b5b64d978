//! Certificates per second from `mesh-controller identity` on one core.
//!
//! The controller runs as its own process, pinned to CPU 0 with `taskset` (when there is more
//! than one CPU); this process runs the fake API server, which answers the token reviews, and the
//! gRPC clients, and should be pinned elsewhere (`cargo xtask bench identity` runs it on CPU 1).
//! Every request is a full Certify: CSR verification, a TokenReview over HTTP, signing. Each
//! connection is reused, as proxies reuse theirs. Prints certs/s, p50/p99 latency and the
//! controller's CPU use, so a client-bound run shows as such.
//!
//! Usage: bench_identity [--controller PATH] [--seconds N] [--concurrency N] [--connections N]

// It shares the end-to-end tests' set-up, which fails loudly.
#![allow(clippy::unwrap_used)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context as _, bail};
use linkerd2_proxy_api::identity::CertifyRequest;
use mesh_pki::Credentials;
use mesh_testkube::FakeKube;

/// Distinct workloads whose tokens and CSRs the clients cycle through.
const WORKLOADS: usize = 64;
const WARM_UP: Duration = Duration::from_secs(2);

struct Options {
    controller: PathBuf,
    seconds: u64,
    concurrency: usize,
    connections: usize,
}

fn options() -> anyhow::Result<Options> {
    let exe = std::env::current_exe()?;
    // target/<profile>/examples/bench_identity -> target/<profile>/mesh-controller
    let default = exe
        .parent()
        .and_then(|examples| examples.parent())
        .map(|dir| dir.join("mesh-controller"))
        .context("cannot find the target directory")?;
    let mut options = Options {
        controller: default,
        seconds: 10,
        concurrency: 64,
        connections: 4,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().with_context(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--controller" => options.controller = PathBuf::from(value()?),
            "--seconds" => options.seconds = value()?.parse()?,
            "--concurrency" => options.concurrency = value()?.parse::<usize>()?.max(1),
            "--connections" => options.connections = value()?.parse::<usize>()?.max(1),
            other => bail!(
                "unknown argument {other:?}; usage: bench_identity [--controller PATH] \
                 [--seconds N] [--concurrency N] [--connections N]"
            ),
        }
    }
    if !options.controller.is_file() {
        bail!(
            "{} not found; build it with cargo build --release -p mesh-controller",
            options.controller.display()
        );
    }
    Ok(options)
}

fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let options = options()?;
    let dir = tempfile::tempdir()?;
    let kube = FakeKube::start()?;
    let kubeconfig = kube.write_kubeconfig(dir.path())?;
    let credentials = Credentials::generate(support::identity::TRUST_DOMAIN, SystemTime::now())?;
    let (anchors, issuer) = support::identity::write_credentials(dir.path(), &credentials);

    // This process may itself be pinned to CPU 1 (as `cargo xtask bench identity` runs it), so
    // its own view of the CPUs says nothing about the machine's: pin whenever taskset exists.
    let command = if Command::new("taskset").arg("-V").output().is_ok() {
        let mut taskset = Command::new("taskset");
        taskset.args(["-c", "0"]).arg(&options.controller);
        taskset
    } else {
        eprintln!("note: not pinned (no taskset); the figure includes the clients");
        Command::new(&options.controller)
    };
    // Info is the level the listeners are logged at, which start() reads; issuance logs at debug.
    let controller = support::identity::start(command, &kubeconfig, &anchors, &issuer, &[])
        .map_err(|(status, stderr)| {
            anyhow::anyhow!("controller did not start ({status:?}):\n{stderr}")
        })?;

    let requests: Vec<CertifyRequest> = (0..WORKLOADS)
        .map(|i| {
            let sa = format!("sa-{i}");
            let identity = support::identity::workload(&sa, "bench");
            CertifyRequest {
                token: kube
                    .issue_token("bench", &sa, &[mesh_names::identity::TOKEN_AUDIENCE])
                    .into_bytes(),
                certificate_signing_request: support::identity::csr(&identity),
                identity,
            }
        })
        .collect();
    let requests = Arc::new(requests);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let (issued, mut latencies, window, cpu) = runtime.block_on(async {
        let mut clients = Vec::new();
        for _ in 0..options.connections {
            clients.push(
                support::identity::client(
                    controller.addr,
                    &credentials.trust_anchors_pem,
                    &support::identity::service_name(),
                )
                .await?,
            );
        }
        let measuring = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = Vec::new();
        for worker in 0..options.concurrency {
            let mut client = clients[worker % clients.len()].clone();
            let (requests, measuring, stop) = (requests.clone(), measuring.clone(), stop.clone());
            tasks.push(tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut errors = 0u64;
                let mut i = worker;
                while !stop.load(Ordering::Relaxed) {
                    let request = requests[i % requests.len()].clone();
                    i += 1;
                    let start = Instant::now();
                    let ok = client.certify(request).await.is_ok();
                    if measuring.load(Ordering::Relaxed) {
                        if ok {
                            latencies.push(start.elapsed());
                        } else {
                            errors += 1;
                        }
                    }
                }
                (latencies, errors)
            }));
        }
        tokio::time::sleep(WARM_UP).await;
        let cpu_before = controller.cpu_time();
        let started = Instant::now();
        measuring.store(true, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_secs(options.seconds)).await;
        measuring.store(false, Ordering::Relaxed);
        let window = started.elapsed();
        let cpu_after = controller.cpu_time();
        stop.store(true, Ordering::Relaxed);
        let mut latencies = Vec::new();
        let mut errors = 0;
        for task in tasks {
            let (mut l, e) = task.await?;
            latencies.append(&mut l);
            errors += e;
        }
        if errors > 0 {
            eprintln!("warning: {errors} requests failed");
        }
        let cpu = cpu_before
            .zip(cpu_after)
            .map(|(b, a)| a.saturating_sub(b).as_secs_f64() / window.as_secs_f64());
        anyhow::Ok((latencies.len(), latencies, window, cpu))
    })?;

    latencies.sort();
    let quantile = |q: f64| {
        latencies
            .get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    let rate = issued as f64 / window.as_secs_f64();
    println!(
        "identity: {issued} certificates in {:.1} s = {rate:.0} certs/s; latency p50 {:.2} ms, \
         p99 {:.2} ms; concurrency {}, {} connections",
        window.as_secs_f64(),
        quantile(0.50),
        quantile(0.99),
        options.concurrency,
        options.connections,
    );
    match cpu {
        Some(cpu) => println!(
            "controller CPU: {:.0}% of one core ({:.0} certs per CPU-second)",
            cpu * 100.0,
            rate / cpu.max(1e-9)
        ),
        None => println!("controller CPU: unknown"),
    }
    println!("target: >= 1000 certs/s on one core");
    drop(controller);
    Ok(())
}
