//! What `bench balance` and `bench mesh` share: the flags for rounds, load and the mesh-proxy
//! binary, the parsing of the rest, and the interleaved rounds.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use super::proxy::load::{self, Conns, Endpoint, Load, Protocol};
use super::proxy::peers::{MeshPorts, mesh_command};
use super::proxy::procs::{self, Proc};
use crate::deps;

#[cfg(test)]
mod tests;

const PACKAGES: &[(&str, &str)] = &[("wrk", "wrk"), ("taskset", "util-linux")];

/// Installs wrk and taskset, builds mesh-proxy when `needs_proxy` and no `--mesh-bin` names
/// one, and runs `bench` with it in a fresh temporary directory, removed afterwards.
pub fn run(
    name: &str,
    common: &Common,
    needs_proxy: bool,
    bench: impl FnOnce(Option<&Path>, &Path) -> Result<()>,
) -> Result<()> {
    deps::ensure_debian(PACKAGES)?;
    let mesh_bin = match &common.mesh_bin {
        Some(bin) => Some(bin.clone()),
        None if needs_proxy => Some(super::proxy::build_mesh_proxy()?),
        None => None,
    };
    let dir = std::env::temp_dir().join(format!("mesh-bench-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let result = bench(mesh_bin.as_deref(), &dir);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// Starts mesh-proxy as `name`, pinned to `cpu`, with `env` on fresh ports and its output in
/// `log`, and waits up to 5 s for its `/ready`; fails with its stderr if it exits.
pub fn start_mesh(
    bin: &Path,
    name: &str,
    cpu: usize,
    env: &[(String, String)],
    log: &Path,
) -> Result<(Proc, MeshPorts)> {
    let ports = MeshPorts::fresh()?;
    let mut proc = Proc::spawn(name, cpu, &mut mesh_command(bin, ports, env), log)?;
    let ready = Duration::from_secs(5);
    procs::wait_http_ok(ports.admin_addr(), "localhost", "/ready", ready)
        .or_else(|e| proc.check_running(log).and(Err(e)))?;
    Ok((proc, ports))
}

/// Runs `rounds` interleaved rounds over `targets` (round 1 of each, then round 2, …), so
/// drift on a shared machine hits every target alike. A target that fails is not measured
/// again and keeps no runs, only the error: its figures would pass for good ones.
pub fn interleave<T, R>(
    rounds: usize,
    targets: &[T],
    mut measure: impl FnMut(&T) -> Result<R>,
) -> Vec<Result<Vec<R>, String>> {
    let mut out: Vec<Result<Vec<R>, String>> = targets.iter().map(|_| Ok(Vec::new())).collect();
    for round in 1..=rounds {
        for (target, result) in targets.iter().zip(&mut out) {
            let Ok(runs) = result else { continue };
            match measure(target) {
                Ok(run) => runs.push(run),
                Err(err) => *result = Err(format!("round {round}: {err:#}")),
            }
        }
    }
    out
}

/// Fails, after the table is printed, if any of `total` targets (`what`) failed.
pub fn check_failures(failed: usize, total: usize, what: &str) -> Result<()> {
    if failed > 0 {
        bail!("{failed} of {total} {what} failed; their figures are left out");
    }
    Ok(())
}

/// The flags both benchmarks take; each sets its own defaults.
#[derive(Debug, Clone)]
pub struct Common {
    pub rounds: usize,
    pub duration: Duration,
    pub warm_up: Duration,
    pub connections: usize,
    pub mesh_bin: Option<PathBuf>,
    pub mesh_env: Vec<(String, String)>,
    pub load_cpu: usize,
}

impl Common {
    /// `--quick`: a smoke test, 1 round of 2 s after a 1 s warm-up.
    pub fn quick(&mut self) {
        self.rounds = 1;
        self.duration = Duration::from_secs(2);
        self.warm_up = Duration::from_secs(1);
    }

    /// wrk's keep-alive HTTP/1.1 load: `--connections` for `--duration` on the load core.
    pub fn load(&self) -> Load {
        Load {
            protocol: Protocol::Http1,
            conns: Conns::KeepAlive,
            connections: self.connections,
            h2_streams: 1,
            duration: self.duration,
            cpu: self.load_cpu,
        }
    }

    /// Unmeasured load on each endpoint for `--warm-up`; a failure shows in the rounds.
    pub fn warm<'e>(&self, endpoints: impl IntoIterator<Item = &'e Endpoint>, dir: &Path) {
        if self.warm_up.is_zero() {
            return;
        }
        let warm = Load {
            duration: self.warm_up,
            ..self.load()
        };
        for endpoint in endpoints {
            let _ = load::run(warm, endpoint, None, dir);
        }
    }

    /// Takes the flag `flags` is at, with its value; fails on a flag that is not common.
    /// Zero rounds, seconds or connections would measure nothing, so they count as one.
    pub fn take(&mut self, flags: &mut Flags) -> Result<()> {
        match flags.flag {
            "--rounds" => self.rounds = flags.count()?,
            "--duration" => self.duration = Duration::from_secs(flags.number()?.max(1)),
            "--warm-up" => self.warm_up = flags.seconds()?,
            "--connections" => self.connections = flags.count()?,
            "--load-cpu" => self.load_cpu = flags.number()? as usize,
            "--mesh-bin" => self.mesh_bin = Some(PathBuf::from(flags.value()?)),
            "--mesh-env" => {
                let value = flags.value()?;
                let (k, v) = value
                    .split_once('=')
                    .with_context(|| format!("invalid value {value:?} for --mesh-env: K=V"))?;
                self.mesh_env.push((k.to_string(), v.to_string()));
            }
            other => bail!("unknown flag {other:?}\n\n{}", flags.usage),
        }
        Ok(())
    }
}

/// Walks a benchmark's arguments flag by flag; errors name the flag and end with the usage.
pub struct Flags<'a> {
    args: std::slice::Iter<'a, String>,
    usage: &'static str,
    flag: &'a str,
}

impl<'a> Flags<'a> {
    pub fn new(args: &'a [String], usage: &'static str) -> Flags<'a> {
        Flags {
            args: args.iter(),
            usage,
            flag: "",
        }
    }

    /// The next flag; `-h` or `--help` prints the usage and exits.
    pub fn next_flag(&mut self) -> Option<&'a str> {
        self.flag = self.args.next()?;
        if matches!(self.flag, "-h" | "--help") {
            print!("{}", self.usage);
            std::process::exit(0);
        }
        Some(self.flag)
    }

    /// The current flag's value.
    pub fn value(&mut self) -> Result<&'a str> {
        let flag = self.flag;
        let usage = self.usage;
        self.args
            .next()
            .map(String::as_str)
            .with_context(|| format!("{flag} needs a value\n\n{usage}"))
    }

    pub fn number(&mut self) -> Result<u64> {
        let value = self.value()?;
        value.parse().with_context(|| {
            format!(
                "invalid value {value:?} for {}: expected a number",
                self.flag
            )
        })
    }

    /// A number of rounds or connections: at least one.
    pub fn count(&mut self) -> Result<usize> {
        Ok(self.number()?.max(1) as usize)
    }

    pub fn seconds(&mut self) -> Result<Duration> {
        Ok(Duration::from_secs(self.number()?))
    }

    /// A comma-separated list of names, each of which `parse` must know.
    pub fn list<T>(&mut self, parse: impl Fn(&str) -> Option<T>) -> Result<Vec<T>> {
        let (flag, usage) = (self.flag, self.usage);
        self.value()?
            .split(',')
            .map(|name| {
                parse(name).with_context(|| format!("invalid value {name:?} for {flag}\n\n{usage}"))
            })
            .collect()
    }
}
