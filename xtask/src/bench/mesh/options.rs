//! The mesh benchmark's modes and flags.

use std::time::Duration;

use anyhow::Result;

use crate::bench::harness::{Common, Flags};

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
    pub common: Common,
    pub handshake_duration: Duration,
    pub handshake_connections: usize,
    pub modes: Vec<Mode>,
    pub outbound_cpu: usize,
    pub inbound_cpu: usize,
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
            common: Common {
                rounds: 3,
                duration: Duration::from_secs(5),
                warm_up: Duration::from_secs(1),
                connections: 32,
                mesh_bin: None,
                mesh_env: Vec::new(),
                load_cpu,
            },
            handshake_duration: Duration::from_secs(3),
            handshake_connections: 8,
            modes: Mode::ALL.to_vec(),
            outbound_cpu: 0,
            inbound_cpu,
        };
        let mut flags = Flags::new(args, USAGE);
        while let Some(flag) = flags.next_flag() {
            match flag {
                "--quick" => {
                    o.common.quick();
                    o.handshake_duration = Duration::from_secs(1);
                }
                "--handshake-duration" => o.handshake_duration = flags.seconds()?,
                "--handshake-connections" => o.handshake_connections = flags.count()?,
                "--outbound-cpu" => o.outbound_cpu = flags.number()? as usize,
                "--inbound-cpu" => o.inbound_cpu = flags.number()? as usize,
                "--modes" => o.modes = flags.list(Mode::parse)?,
                _ => o.common.take(&mut flags)?,
            }
        }
        Ok(o)
    }

    /// Whether to measure new connections as well as keep-alive ones.
    pub fn handshakes(&self) -> bool {
        !self.handshake_duration.is_zero()
    }
}
