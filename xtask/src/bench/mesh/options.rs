//! The mesh benchmark's modes and flags.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};

const USAGE: &str = "\
usage: cargo xtask bench mesh [options]

The two-hop meshed path on 127.0.0.1: wrk -> outbound mesh-proxy -> inbound mesh-proxy ->
server, against the client calling the server directly. The outbound proxy runs in HTTP proxy
mode and finds the inbound proxy through the file namer (dtab /svc => /#/io.l5d.fs, a file
`web`); the inbound proxy forwards to the server (MESH_PROXY_INBOUND_FORWARD_ADDR). Modes:
  direct      wrk straight to the server
  plaintext   through both proxies, no identities
  mtls        through both proxies with file identities (a fresh CA, ECDSA P-256 leaves);
              the namer's line says `tls=<server identity>`
wrk and the server share a core, as in `bench proxy` (across cores, every request waits for a
wake-up on the other core, which on a busy machine cuts direct's RPS several times over and
flatters the proxies); each proxy has LINKERD2_PROXY_CORES=1 and, with three cores or more, a
core of its own, else both share the other core. Per mode: RPS, p50 and p99 (wrk's, end to
end), CPU microseconds per request and peak RSS of each proxy, and new connections per second
through both hops (wrk with `Connection: close`, the outbound proxy keeping no idle
connections, so every request is a new connection, and in mtls a new handshake, on each hop).
The mtls figures count only if the inbound proxy's metrics show tls=\"true\" afterwards.
Rounds are interleaved and medians shown; the benchmark never fails on speed.

  --quick                  a smoke test: 1 round of 2 s (handshakes 1 s) after a 1 s warm-up
  --rounds N               interleaved rounds per mode (default 3)
  --duration SECS          length of each keep-alive run (default 5)
  --warm-up SECS           unmeasured load per mode before the rounds (default 1)
  --connections N          wrk connections for the keep-alive runs (default 32)
  --handshake-duration S   length of each new-connection run; 0 skips them (default 3)
  --handshake-connections N  wrk connections for those runs (default 8)
  --modes LIST             any of direct,plaintext,mtls (default all)
  --mesh-bin PATH          use this mesh-proxy binary instead of building one
  --mesh-env K=V           extra environment for every mesh-proxy (repeatable)
  --outbound-cpu N         core for the outbound proxy (default 0)
  --inbound-cpu N          core for the inbound proxy (default 1 with three cores or more, else 0)
  --load-cpu N             core for wrk and the server (default 2 with three cores or more, else 1)
";

/// How the client reaches the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Direct,
    Plaintext,
    Mtls,
}

impl Mode {
    pub const ALL: [Mode; 3] = [Mode::Direct, Mode::Plaintext, Mode::Mtls];

    pub fn name(self) -> &'static str {
        match self {
            Mode::Direct => "direct",
            Mode::Plaintext => "plaintext",
            Mode::Mtls => "mtls",
        }
    }

    pub fn parse(name: &str) -> Option<Mode> {
        Mode::ALL.into_iter().find(|m| m.name() == name)
    }
}

#[derive(Debug, Clone)]
pub struct Options {
    pub rounds: usize,
    pub duration: Duration,
    pub warm_up: Duration,
    pub connections: usize,
    pub handshake_duration: Duration,
    pub handshake_connections: usize,
    pub modes: Vec<Mode>,
    pub mesh_bin: Option<PathBuf>,
    pub mesh_env: Vec<(String, String)>,
    pub outbound_cpu: usize,
    pub inbound_cpu: usize,
    pub load_cpu: usize,
}

impl Options {
    pub fn parse(args: &[String]) -> Result<Options> {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self::parse_for(args, cpus)
    }

    /// Parses `args` for a machine with `cpus` cores, which sets the default layout.
    pub fn parse_for(args: &[String], cpus: usize) -> Result<Options> {
        let (inbound_cpu, load_cpu) = if cpus >= 3 { (1, 2) } else { (0, 1) };
        let mut o = Options {
            rounds: 3,
            duration: Duration::from_secs(5),
            warm_up: Duration::from_secs(1),
            connections: 32,
            handshake_duration: Duration::from_secs(3),
            handshake_connections: 8,
            modes: Mode::ALL.to_vec(),
            mesh_bin: None,
            mesh_env: Vec::new(),
            outbound_cpu: 0,
            inbound_cpu,
            load_cpu,
        };
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            match flag.as_str() {
                "-h" | "--help" => {
                    print!("{USAGE}");
                    std::process::exit(0);
                }
                "--quick" => {
                    o.rounds = 1;
                    o.duration = Duration::from_secs(2);
                    o.handshake_duration = Duration::from_secs(1);
                    o.warm_up = Duration::from_secs(1);
                    continue;
                }
                _ => {}
            }
            let value = it
                .next()
                .with_context(|| format!("{flag} needs a value\n\n{USAGE}"))?;
            let number = || -> Result<u64> {
                value.parse().with_context(|| {
                    format!("invalid value {value:?} for {flag}: expected a number")
                })
            };
            match flag.as_str() {
                "--rounds" => o.rounds = number()?.max(1) as usize,
                "--duration" => o.duration = Duration::from_secs(number()?.max(1)),
                "--warm-up" => o.warm_up = Duration::from_secs(number()?),
                "--connections" => o.connections = number()?.max(1) as usize,
                "--handshake-duration" => o.handshake_duration = Duration::from_secs(number()?),
                "--handshake-connections" => o.handshake_connections = number()?.max(1) as usize,
                "--outbound-cpu" => o.outbound_cpu = number()? as usize,
                "--inbound-cpu" => o.inbound_cpu = number()? as usize,
                "--load-cpu" => o.load_cpu = number()? as usize,
                "--mesh-bin" => o.mesh_bin = Some(PathBuf::from(value)),
                "--modes" => {
                    o.modes = value
                        .split(',')
                        .map(|m| {
                            Mode::parse(m).with_context(|| {
                                format!("invalid value {m:?} for --modes\n\n{USAGE}")
                            })
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
