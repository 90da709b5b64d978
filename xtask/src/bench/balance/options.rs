//! The balance benchmark's scenarios and flags.

use std::time::Duration;

use anyhow::Result;

use crate::bench::harness::{Common, Flags};

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
    pub(super) common: Common,
    pub(super) delay: Duration,
    pub(super) scenarios: Vec<Scenario>,
    pub(super) proxy_cpu: usize,
}

impl Options {
    pub(super) fn parse(args: &[String]) -> Result<Options> {
        let mut o = Options {
            common: Common {
                rounds: 5,
                duration: Duration::from_secs(10),
                warm_up: Duration::from_secs(3),
                connections: 16,
                mesh_bin: None,
                mesh_env: Vec::new(),
                load_cpu: 1,
            },
            delay: Duration::from_millis(20),
            scenarios: Scenario::ALL.to_vec(),
            proxy_cpu: 0,
        };
        let mut flags = Flags::new(args, USAGE);
        while let Some(flag) = flags.next_flag() {
            match flag {
                "--quick" => o.common.quick(),
                "--delay-ms" => o.delay = Duration::from_millis(flags.number()?),
                "--proxy-cpu" => o.proxy_cpu = flags.number()? as usize,
                "--scenarios" => o.scenarios = flags.list(Scenario::parse)?,
                _ => o.common.take(&mut flags)?,
            }
        }
        Ok(o)
    }
}
