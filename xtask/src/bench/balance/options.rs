//! The balance benchmark's scenarios and flags.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};

const USAGE: &str = "\
usage: cargo xtask bench balance [options]

mesh-proxy's balancers over three HTTP/1.1 backends on 127.0.0.1, one of which answers
DELAY later than the others, found through the file namer (dtab /svc => /#/io.l5d.fs, a
file `web` listing the three) and reached with `Host: web` on the outbound port. Scenarios:
  peak-ewma      MESH_PROXY_BALANCER=peak-ewma over the three
  round-robin    MESH_PROXY_BALANCER=round-robin over the three
  least-loaded   MESH_PROXY_BALANCER=least-loaded over the three
  direct         wrk straight to one fast backend, no proxy
  all-fast       mesh-proxy (peak-ewma) over three fast backends
Prints medians of p50, p99 and RPS, the slow backend's share of the requests, and each
balancer's p99 over the all-fast case's. Fails, with the proxy's log, if mesh-proxy does not
answer 200 for `web` (a build without the file namer or the balancers).

  --quick             a smoke test in seconds: 1 round of 2 s after a 1 s warm-up
  --rounds N          interleaved rounds per scenario (default 5)
  --duration SECS     length of each measured run (default 10)
  --warm-up SECS      unmeasured load per scenario before the rounds (default 3)
  --connections N     wrk connections, each with one request in flight (default 16)
  --delay-ms MS       the slow backend's added delay (default 20)
  --scenarios LIST    any of peak-ewma,round-robin,least-loaded,direct,all-fast (default all)
  --mesh-bin PATH     use this mesh-proxy binary instead of building one
  --mesh-env K=V      extra environment for mesh-proxy (repeatable)
  --proxy-cpu N       core for the proxies (default 0)
  --load-cpu N        core for wrk and the backends (default 1)
";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Scenario {
    PeakEwma,
    RoundRobin,
    LeastLoaded,
    Direct,
    AllFast,
}

impl Scenario {
    pub(super) const ALL: [Scenario; 5] = [
        Scenario::PeakEwma,
        Scenario::RoundRobin,
        Scenario::LeastLoaded,
        Scenario::Direct,
        Scenario::AllFast,
    ];

    pub(super) fn name(self) -> &'static str {
        match self {
            Scenario::PeakEwma => "peak-ewma",
            Scenario::RoundRobin => "round-robin",
            Scenario::LeastLoaded => "least-loaded",
            Scenario::Direct => "direct",
            Scenario::AllFast => "all-fast",
        }
    }

    pub(super) fn parse(name: &str) -> Option<Scenario> {
        Scenario::ALL.into_iter().find(|s| s.name() == name)
    }

    /// `MESH_PROXY_BALANCER` for the scenario's proxy; none for the direct call.
    pub(super) fn balancer(self) -> Option<&'static str> {
        match self {
            Scenario::PeakEwma | Scenario::AllFast => Some("peak-ewma"),
            Scenario::RoundRobin => Some("round-robin"),
            Scenario::LeastLoaded => Some("least-loaded"),
            Scenario::Direct => None,
        }
    }

    /// Whether the scenario's backends include the slow one.
    pub(super) fn has_slow(self) -> bool {
        matches!(
            self,
            Scenario::PeakEwma | Scenario::RoundRobin | Scenario::LeastLoaded
        )
    }
}

#[derive(Debug, Clone)]
pub(super) struct Options {
    pub(super) rounds: usize,
    pub(super) duration: Duration,
    pub(super) warm_up: Duration,
    pub(super) connections: usize,
    pub(super) delay: Duration,
    pub(super) scenarios: Vec<Scenario>,
    pub(super) mesh_bin: Option<PathBuf>,
    pub(super) mesh_env: Vec<(String, String)>,
    pub(super) proxy_cpu: usize,
    pub(super) load_cpu: usize,
}

impl Options {
    pub(super) fn parse(args: &[String]) -> Result<Options> {
        let mut o = Options {
            rounds: 5,
            duration: Duration::from_secs(10),
            warm_up: Duration::from_secs(3),
            connections: 16,
            delay: Duration::from_millis(20),
            scenarios: Scenario::ALL.to_vec(),
            mesh_bin: None,
            mesh_env: Vec::new(),
            proxy_cpu: 0,
            load_cpu: 1,
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
                "--delay-ms" => o.delay = Duration::from_millis(number()?),
                "--proxy-cpu" => o.proxy_cpu = number()? as usize,
                "--load-cpu" => o.load_cpu = number()? as usize,
                "--mesh-bin" => o.mesh_bin = Some(PathBuf::from(value)),
                "--scenarios" => {
                    o.scenarios = value
                        .split(',')
                        .map(|s| {
                            Scenario::parse(s).with_context(|| {
                                format!("invalid value {s:?} for --scenarios\n\n{USAGE}")
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
