//! `cargo xtask bench proxy`: mesh-proxy against direct, nginx and haproxy.
//!
//! One fast backend (nginx returning `200 ok`) and the load generator share one core; the proxy
//! under test gets the other. Rounds are interleaved (A B C D, A B C D, …) so drift on a shared
//! machine hits every target alike, and the table shows medians. A benchmark, not a test: it
//! never fails on speed.

pub(super) mod count;
pub(super) mod load;
pub(super) mod peers;
pub(super) mod procs;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::deps;
use load::{Conns, Load, Protocol, Sample};
use peers::{Launch, Target};

const USAGE: &str = "\
usage: cargo xtask bench proxy [options]

  --rounds N          interleaved rounds per target and protocol (default 3)
  --duration SECS     length of each run (default 5)
  --connections N     connections per run (default 32)
  --h2-streams N      concurrent HTTP/2 streams per connection (default 4)
  --targets LIST      any of direct,mesh-proxy,nginx,haproxy (default all)
  --protocols LIST    h1,h2 (default both)
  --starts N          mesh-proxy starts timed to /ready (default 50)
  --mesh-bin PATH     use this mesh-proxy binary instead of building one
  --mesh-env K=V      extra environment for mesh-proxy (repeatable)
  --proxy-cpu N       core for the proxy under test (default 0)
  --load-cpu N        core for the load generator and backend (default 1)
  --instructions      count instead of timing: user-space instructions (callgrind) and
                      system calls (strace) per request, which a busy machine does not skew
  --requests N        requests counted per target and protocol (default 20000)
";

const BENCH_PACKAGES: &[(&str, &str)] = &[
    ("nginx", "nginx"),
    ("haproxy", "haproxy"),
    ("wrk", "wrk"),
    ("h2load", "nghttp2-client"),
    ("taskset", "util-linux"),
];

#[derive(Debug, Clone)]
struct Options {
    rounds: usize,
    duration: Duration,
    connections: usize,
    h2_streams: usize,
    targets: Vec<String>,
    protocols: Vec<Protocol>,
    starts: usize,
    mesh_bin: Option<PathBuf>,
    mesh_env: Vec<(String, String)>,
    proxy_cpu: usize,
    load_cpu: usize,
    instructions: bool,
    requests: u64,
}

impl Options {
    fn parse(args: &[String]) -> Result<Options> {
        let mut o = Options {
            rounds: 3,
            duration: Duration::from_secs(5),
            connections: 32,
            h2_streams: 4,
            targets: ["direct", "mesh-proxy", "nginx", "haproxy"]
                .map(String::from)
                .to_vec(),
            protocols: vec![Protocol::Http1, Protocol::Http2],
            starts: 50,
            mesh_bin: None,
            mesh_env: Vec::new(),
            proxy_cpu: 0,
            load_cpu: 1,
            instructions: false,
            requests: 20_000,
        };
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            if flag == "-h" || flag == "--help" {
                print!("{USAGE}");
                std::process::exit(0);
            }
            if flag == "--instructions" {
                o.instructions = true;
                continue;
            }
            let value = it
                .next()
                .with_context(|| format!("{flag} needs a value\n\n{USAGE}"))?;
            let number = || -> Result<usize> {
                value.parse().with_context(|| {
                    format!("invalid value {value:?} for {flag}: expected a number")
                })
            };
            match flag.as_str() {
                "--rounds" => o.rounds = number()?.max(1),
                "--duration" => o.duration = Duration::from_secs(number()?.max(1) as u64),
                "--connections" => o.connections = number()?.max(1),
                "--h2-streams" => o.h2_streams = number()?.max(1),
                "--starts" => o.starts = number()?,
                "--requests" => o.requests = number()?.max(1) as u64,
                "--proxy-cpu" => o.proxy_cpu = number()?,
                "--load-cpu" => o.load_cpu = number()?,
                "--mesh-bin" => o.mesh_bin = Some(PathBuf::from(value)),
                "--targets" => {
                    o.targets = value.split(',').map(str::to_string).collect();
                    for t in &o.targets {
                        if !["direct", "mesh-proxy", "nginx", "haproxy"].contains(&t.as_str()) {
                            bail!("invalid value {t:?} for --targets\n\n{USAGE}");
                        }
                    }
                }
                "--protocols" => {
                    o.protocols = value
                        .split(',')
                        .map(|p| match p {
                            "h1" => Ok(Protocol::Http1),
                            "h2" => Ok(Protocol::Http2),
                            other => bail!("invalid value {other:?} for --protocols: h1 or h2"),
                        })
                        .collect::<Result<_>>()?;
                }
                "--mesh-env" => {
                    let (k, v) = value
                        .split_once('=')
                        .with_context(|| format!("invalid value {value:?} for --mesh-env: K=V"))?;
                    o.mesh_env.push((k.to_string(), v.to_string()));
                }
                other => bail!("unknown flag {other:?}\n\n{USAGE}"),
            }
        }
        Ok(o)
    }
}

pub fn run(args: &[String]) -> Result<()> {
    let opts = Options::parse(args)?;
    deps::ensure_debian(BENCH_PACKAGES)?;
    if opts.instructions {
        deps::ensure_debian(count::PACKAGES)?;
    }
    let mesh_bin = match &opts.mesh_bin {
        Some(bin) => bin.clone(),
        None => build_mesh_proxy()?,
    };
    let dir = std::env::temp_dir().join(format!("mesh-bench-proxy-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let result = bench(&opts, &mesh_bin, &dir);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// mesh-proxy as the images ship it: built with the images' packages, flags and target
/// directory, so its code layout (`proxy/hot-symbols.txt`) is the one that applies.
pub(super) fn build_mesh_proxy() -> Result<PathBuf> {
    let bin = crate::images::build_shipped_binaries()?.join("mesh-proxy");
    if !bin.is_file() {
        bail!("built mesh-proxy but found no binary at {}", bin.display());
    }
    Ok(bin)
}

/// Starts one target the way `launch` says.
fn start(
    name: &str,
    opts: &Options,
    mesh_bin: &std::path::Path,
    backend: &peers::Backend,
    dir: &std::path::Path,
    launch: &Launch,
) -> Result<Target> {
    let cpu = opts.proxy_cpu;
    match name {
        "direct" => Ok(peers::direct(backend)),
        "nginx" => peers::start_nginx(dir, backend, cpu, launch),
        "haproxy" => peers::start_haproxy(dir, backend, cpu, launch),
        _ => peers::start_mesh(dir, mesh_bin, backend, cpu, &opts.mesh_env, launch),
    }
}

fn bench(opts: &Options, mesh_bin: &std::path::Path, dir: &std::path::Path) -> Result<()> {
    let backend = peers::start_backend(dir, opts.load_cpu)?;
    if opts.instructions {
        let plan = count::Plan {
            requests: opts.requests,
            connections: opts.connections,
            h2_streams: opts.h2_streams,
            load_cpu: opts.load_cpu,
        };
        let start =
            |name: &str, launch: &Launch| start(name, opts, mesh_bin, &backend, dir, launch);
        return count::run(
            plan,
            &count::countable(&opts.targets),
            &opts.protocols,
            &start,
            dir,
        );
    }
    warn_if_busy();
    let mut targets: Vec<Target> = Vec::new();
    let mut skipped: Vec<String> = Vec::new();
    for name in &opts.targets {
        match start(name, opts, mesh_bin, &backend, dir, &Launch::Plain) {
            Ok(target) => targets.push(target),
            Err(err) => {
                eprintln!("bench: skipping {name}: {err:#}");
                skipped.push(format!("{name}: {err:#}"));
            }
        }
    }

    println!(
        "proxy on CPU {}, load generator and backend on CPU {}; {} interleaved rounds of {} s, \
         medians shown",
        opts.proxy_cpu,
        opts.load_cpu,
        opts.rounds,
        opts.duration.as_secs()
    );
    if opts.targets.iter().any(|t| t == "mesh-proxy") {
        println!("{}", super::symbols::coverage_note(mesh_bin));
    }
    for &protocol in &opts.protocols {
        let load = Load {
            protocol,
            conns: Conns::KeepAlive,
            connections: opts.connections,
            h2_streams: opts.h2_streams,
            duration: opts.duration,
            cpu: opts.load_cpu,
        };
        let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); targets.len()];
        let mut failures: Vec<Option<String>> = vec![None; targets.len()];
        // A short warm-up per target, not measured.
        for target in &targets {
            let warm = Load {
                duration: Duration::from_secs(1),
                ..load
            };
            let _ = load::run(warm, endpoint(target, protocol), None, dir);
        }
        for round in 0..opts.rounds {
            for (i, target) in targets.iter().enumerate() {
                if failures[i].is_some() {
                    continue;
                }
                let pid = target.proc.as_ref().map(|p| p.pid());
                match load::run(load, endpoint(target, protocol), pid, dir) {
                    Ok(sample) => samples[i].push(sample),
                    Err(err) => failures[i] = Some(format!("round {}: {err:#}", round + 1)),
                }
            }
        }
        // RSS with twice the connections, as a sidecar sees under fan-in.
        let mut rss64: Vec<Option<u64>> = vec![None; targets.len()];
        if protocol == Protocol::Http1 {
            for (i, target) in targets.iter().enumerate() {
                let Some(proc) = &target.proc else { continue };
                let wide = Load {
                    connections: 64,
                    duration: Duration::from_secs(2),
                    ..load
                };
                rss64[i] = load::run(wide, &target.h1, Some(proc.pid()), dir)
                    .ok()
                    .and_then(|s| s.proxy_rss);
            }
        }
        let label = match protocol {
            Protocol::Http1 => format!("wrk -t1 -c{}", opts.connections),
            Protocol::Http2 => format!("h2load -t1 -c{} -m{}", opts.connections, opts.h2_streams),
        };
        println!("\n{} — {label}", protocol.title());
        print_table(&targets, &samples, &rss64, &failures);
    }

    if opts.targets.iter().any(|t| t == "mesh-proxy") && opts.starts > 0 {
        match start_to_ready(mesh_bin, opts) {
            Ok(times) => println!(
                "\nmesh-proxy start to /ready: median {:.2} ms, min {:.2} ms, max {:.2} ms ({} starts)",
                median(&times),
                times.iter().copied().fold(f64::INFINITY, f64::min),
                times.iter().copied().fold(0.0, f64::max),
                times.len()
            ),
            Err(err) => println!("\nmesh-proxy start to /ready: failed: {err:#}"),
        }
    }
    for skip in &skipped {
        println!("skipped {skip}");
    }
    drop(targets);
    drop(backend);
    Ok(())
}

/// Other work on the machine (a cargo build) halves every figure; say so up front.
pub(super) fn warn_if_busy() {
    let load = std::fs::read_to_string("/proc/loadavg").ok().and_then(|l| {
        l.split_whitespace()
            .next()
            .and_then(|v| v.parse::<f64>().ok())
    });
    if let Some(load) = load.filter(|l| *l > 0.5) {
        println!(
            "note: the 1-minute load average is {load:.2}; other processes compete for the CPUs, \
             so compare targets only within this run"
        );
    }
}

fn endpoint(target: &Target, protocol: Protocol) -> &load::Endpoint {
    match protocol {
        Protocol::Http1 => &target.h1,
        Protocol::Http2 => &target.h2,
    }
}

/// Medians of one target's samples.
#[derive(Debug, Clone, Copy, Default)]
struct Row {
    rps: f64,
    p50: f64,
    p99: f64,
    errors: u64,
    cpu: Option<f64>,
    per_cpu_s: Option<f64>,
    rss: Option<u64>,
    rss64: Option<u64>,
}

fn row(samples: &[Sample], duration_s: f64, rss64: Option<u64>) -> Row {
    let pick = |f: &dyn Fn(&Sample) -> f64| median(&samples.iter().map(f).collect::<Vec<_>>());
    let cpu: Vec<f64> = samples.iter().filter_map(|s| s.proxy_cpu_s).collect();
    let per_cpu: Vec<f64> = samples
        .iter()
        .filter_map(|s| s.proxy_cpu_s.filter(|c| *c > 0.0).map(|c| s.requests / c))
        .collect();
    let rss: Vec<f64> = samples
        .iter()
        .filter_map(|s| s.proxy_rss)
        .map(|r| r as f64)
        .collect();
    Row {
        rps: pick(&|s| s.rps),
        p50: pick(&|s| s.p50_ms),
        p99: pick(&|s| s.p99_ms),
        errors: samples.iter().map(|s| s.errors).sum(),
        cpu: (!cpu.is_empty()).then(|| median(&cpu) / duration_s),
        per_cpu_s: (!per_cpu.is_empty()).then(|| median(&per_cpu)),
        rss: (!rss.is_empty()).then(|| median(&rss) as u64),
        rss64,
    }
}

fn print_table(
    targets: &[Target],
    samples: &[Vec<Sample>],
    rss64: &[Option<u64>],
    failures: &[Option<String>],
) {
    let rows: Vec<Option<Row>> = targets
        .iter()
        .enumerate()
        .map(|(i, _)| {
            (!samples[i].is_empty()).then(|| {
                // wrk's own clock: the requests over the run; CPU share is per wall second.
                let duration = samples[i]
                    .iter()
                    .map(|s| if s.rps > 0.0 { s.requests / s.rps } else { 0.0 })
                    .fold(0.0, f64::max)
                    .max(1.0);
                row(&samples[i], duration, rss64[i])
            })
        })
        .collect();
    println!(
        "{:<11} {:>9} {:>9} {:>9} {:>8} {:>8} {:>7} {:>11} {:>8}",
        "target", "RPS", "p50 ms", "p99 ms", "RSS MB", "RSS@64c", "CPU", "req/CPU-s", "errors"
    );
    for (target, row) in targets.iter().zip(&rows) {
        let Some(r) = row else { continue };
        let mb = |b: Option<u64>| b.map_or("—".to_string(), |b| format!("{:.1}", b as f64 / 1e6));
        println!(
            "{:<11} {:>9} {:>9.3} {:>9.3} {:>8} {:>8} {:>7} {:>11} {:>8}",
            target.name,
            format!("{:.1}k", r.rps / 1000.0),
            r.p50,
            r.p99,
            mb(r.rss),
            mb(r.rss64),
            r.cpu
                .map_or("—".to_string(), |c| format!("{:.0}%", c * 100.0)),
            r.per_cpu_s
                .map_or("—".to_string(), |v| format!("{:.1}k", v / 1000.0)),
            r.errors
        );
    }
    for (target, failure) in targets.iter().zip(failures) {
        if let Some(failure) = failure {
            println!("{}: failed: {failure}", target.name);
        }
    }
    print_ratios(targets, &rows);
}

/// mesh-proxy against direct and each peer: above 1.00 is better for RPS and req/CPU-s,
/// below 1.00 is better for latency and memory.
fn print_ratios(targets: &[Target], rows: &[Option<Row>]) {
    let find = |name: &str| {
        targets
            .iter()
            .position(|t| t.name == name)
            .and_then(|i| rows[i])
    };
    let Some(mesh) = find("mesh-proxy") else {
        return;
    };
    if let Some(direct) = find("direct") {
        println!(
            "mesh-proxy / direct: RPS {:.2}×, p50 {:.2}×, p99 {:.2}×",
            mesh.rps / direct.rps,
            mesh.p50 / direct.p50,
            mesh.p99 / direct.p99
        );
    }
    for peer in ["nginx", "haproxy"] {
        let Some(p) = find(peer) else { continue };
        let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) if b > 0.0 => format!("{:.2}×", a / b),
            _ => "—".to_string(),
        };
        let bytes = |b: Option<u64>| b.map(|b| b as f64);
        println!(
            "mesh-proxy / {peer}: RPS {:.2}×, p99 {:.2}×, req/CPU-s {}, RSS {}, RSS@64c {}",
            mesh.rps / p.rps,
            mesh.p99 / p.p99,
            ratio(mesh.per_cpu_s, p.per_cpu_s),
            ratio(bytes(mesh.rss), bytes(p.rss)),
            ratio(bytes(mesh.rss64), bytes(p.rss64)),
        );
    }
}

/// Times from spawning mesh-proxy to its first `200` on /ready, in milliseconds.
fn start_to_ready(bin: &std::path::Path, opts: &Options) -> Result<Vec<f64>> {
    let mut times = Vec::with_capacity(opts.starts);
    for _ in 0..opts.starts {
        let ports = peers::MeshPorts::fresh()?;
        let mut cmd = peers::mesh_command(bin, ports, &opts.mesh_env);
        cmd.stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        let start = Instant::now();
        let mut child = cmd.spawn().context("starting mesh-proxy")?;
        let admin = ports.admin_addr();
        let ready = loop {
            if let Ok(200) = procs::http_get(admin, "localhost", "/ready") {
                break Ok(start.elapsed());
            }
            if let Some(status) = child.try_wait()? {
                break Err(anyhow::anyhow!(
                    "mesh-proxy exited ({status}) before /ready"
                ));
            }
            if start.elapsed() > Duration::from_secs(5) {
                break Err(anyhow::anyhow!("mesh-proxy was not ready within 5 s"));
            }
            std::thread::sleep(Duration::from_micros(100));
        };
        let _ = child.kill();
        let _ = child.wait();
        times.push(ready?.as_secs_f64() * 1000.0);
    }
    Ok(times)
}

pub(super) fn median(values: &[f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len().is_multiple_of(2) {
        (v[mid - 1] + v[mid]) / 2.0
    } else {
        v[mid]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(&[]), 0.0);
    }

    #[test]
    fn options_parse_and_reject() {
        let args: Vec<String> = [
            "--rounds",
            "5",
            "--targets",
            "direct,nginx",
            "--protocols",
            "h1",
        ]
        .map(String::from)
        .to_vec();
        let o = Options::parse(&args).unwrap();
        assert_eq!(o.rounds, 5);
        assert_eq!(o.targets, ["direct", "nginx"]);
        assert_eq!(o.protocols, [Protocol::Http1]);
        assert!(!o.instructions);
        let o =
            Options::parse(&["--instructions".into(), "--requests".into(), "500".into()]).unwrap();
        assert!(o.instructions);
        assert_eq!(o.requests, 500);
        assert!(Options::parse(&["--targets".into(), "envoy".into()]).is_err());
        assert!(Options::parse(&["--rounds".into()]).is_err());
    }
}
