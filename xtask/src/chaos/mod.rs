//! `cargo xtask chaos`: attacks on the real binaries, on loopback, each one a case that
//! prints what was tried, what was measured, and whether the expectation held.
//!
//! Every case starts its own mesh-proxy (forwarding inbound to a backend inside this
//! process) or runs `mesh`, and every loop is bounded in count and time. During each proxy
//! attack a probe request goes through the proxy every 100 ms; its worst latency, the
//! proxy's RSS and fds before and after, and panics in its log are part of every verdict.

mod admin;
mod backend;
mod cli;
mod h2;
mod http1;
mod lifecycle;
mod load;
mod proc;
mod run;
mod wire;

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::util::{cargo, root, sh};
use proc::{ProbeStats, Proxy, Usage};

const USAGE: &str = "\
usage: cargo xtask chaos [--long] [--case N|NAME]... [--bin-dir DIR]

  (default)       the short run, under 3 minutes after the build; what CI runs
  --long          bigger counts, the slow attacks at their real pace, a 10-minute soak
  --case N|NAME   run only this case (repeatable); --list shows them
  --bin-dir DIR   use mesh-proxy and mesh from DIR instead of building them
  --list          list the cases

Prints one line per case, `holds` or `broken`, and exits 1 if any case is broken.
";

/// The probe's worst latency above which a proxy counts as frozen by an attack.
const PROBE_LIMIT: Duration = Duration::from_secs(2);

/// The body timeout the short run sets low, so that a slow body is cut in seconds.
pub const BODY_TIMEOUT_VAR: &str = "MESH_PROXY_REQUEST_BODY_TIMEOUT";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Short,
    Long,
}

/// What every case gets.
pub struct Ctx {
    pub mode: Mode,
    pub proxy_bin: PathBuf,
    pub mesh_bin: PathBuf,
    pub dir: PathBuf,
}

impl Ctx {
    /// `short` in the short run, `long` in the long one.
    pub fn pick<T>(&self, short: T, long: T) -> T {
        match self.mode {
            Mode::Short => short,
            Mode::Long => long,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Holds,
    Broken,
    /// The case could not run here (not root, a tool missing); not a failure.
    Skipped,
}

pub struct Outcome {
    pub verdict: Verdict,
    pub measured: String,
}

/// What a case tried and measured, and each expectation that failed.
pub struct Report {
    parts: Vec<String>,
    broken: Vec<String>,
}

/// Whether a case expects the probe to get through the whole attack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeRule {
    MustPass,
    /// The attack fills the proxy's connection slots on purpose; only the latency counts.
    MayBeRefused,
}

impl Report {
    pub fn new(tried: impl Into<String>) -> Report {
        Report {
            parts: vec![tried.into()],
            broken: Vec::new(),
        }
    }

    pub fn note(&mut self, measured: impl Into<String>) {
        self.parts.push(measured.into());
    }

    /// Records `why` as broken unless `ok`.
    pub fn expect(&mut self, ok: bool, why: impl Into<String>) {
        if !ok {
            self.broken.push(why.into());
        }
    }

    /// The measurements every proxy case shares: probe, RSS, fds, panics, still running.
    pub fn proxy(&mut self, proxy: &mut Proxy, before: Usage, probe: &ProbeStats, rule: ProbeRule) {
        let after = proxy.usage();
        self.note(format!(
            "probe worst {} ({} ok, {} failed)",
            ms(probe.worst),
            probe.ok,
            probe.failed
        ));
        self.note(format!(
            "RSS {} → {} (peak {}), fds {} → {}",
            mb(before.rss),
            mb(after.rss),
            mb(proxy.peak_rss()),
            before.fds,
            after.fds
        ));
        self.expect(
            probe.worst < PROBE_LIMIT,
            format!("a probe waited {}", ms(probe.worst)),
        );
        if rule == ProbeRule::MustPass {
            self.expect(
                probe.failed == 0,
                format!(
                    "{} probes failed ({})",
                    probe.failed,
                    probe.last_error.as_deref().unwrap_or("")
                ),
            );
        }
        let killed = proxy.killed_at_rss();
        self.expect(
            killed == 0,
            format!("killed by the harness at RSS {}", mb(killed)),
        );
        if killed == 0
            && let Some(status) = proxy.exited()
        {
            self.expect(false, format!("the proxy exited: {status}"));
        }
        let (panics, first) = proxy.panics();
        self.expect(
            panics == 0,
            format!("{panics} panics: {}", first.unwrap_or_default()),
        );
    }

    pub fn outcome(self) -> Outcome {
        let mut measured = self.parts.join("; ");
        let verdict = if self.broken.is_empty() {
            Verdict::Holds
        } else {
            measured.push_str(" — broken: ");
            measured.push_str(&self.broken.join("; "));
            Verdict::Broken
        };
        Outcome { verdict, measured }
    }
}

/// A proxy forwarding inbound connections to `backend`, with `env` on top.
pub fn inbound_proxy(
    ctx: &Ctx,
    backend: &backend::Backend,
    env: &[(&str, String)],
) -> Result<Proxy> {
    let mut all = vec![("MESH_PROXY_INBOUND_FORWARD_ADDR", backend.addr.to_string())];
    all.extend(env.iter().cloned());
    Proxy::start(&ctx.proxy_bin, &all)
}

struct Case {
    id: u32,
    name: &'static str,
    run: fn(&Ctx) -> Result<Outcome>,
}

/// Cases 1–12 are the rows of the reliability issue; the rest held when it was written.
const CASES: &[Case] = &[
    case(1, "log-level-regex", admin::log_level_regex),
    case(2, "distinct-hosts", load::distinct_hosts),
    case(3, "sigterm-keepalive", lifecycle::sigterm_keepalive),
    case(4, "inject-deep-yaml", cli::inject_deep_yaml),
    case(5, "inject-alias-bomb", cli::inject_alias_bomb),
    case(6, "slow-body", http1::slow_body),
    case(7, "slow-request-line", http1::slow_request_line),
    case(8, "host-confusion", http1::host_confusion),
    case(9, "malformed-chunked", http1::malformed_chunked),
    case(10, "inject-symlink-loop", cli::inject_symlink_loop),
    case(11, "stat-unreachable", cli::stat_unreachable),
    case(12, "stat-time-window", cli::stat_time_window),
    case(13, "admin-loopback-only", admin::loopback_only),
    case(14, "slowloris-headers", http1::slowloris_headers),
    case(15, "oversized-headers", http1::oversized_headers),
    case(16, "smuggling", http1::smuggling),
    case(17, "h2-rapid-reset", h2::rapid_reset),
    case(18, "h2-continuation", h2::continuation_flood),
    case(19, "h2-settings-flood", h2::settings_flood),
    case(20, "h2-ping-flood", h2::ping_flood),
    case(21, "backend-killed", lifecycle::backend_killed),
    case(22, "sigterm-in-flight", lifecycle::sigterm_in_flight),
    case(23, "random-bytes", load::random_bytes),
    case(24, "soak", load::soak),
    case(25, "connection-churn", load::connection_churn),
];

const fn case(id: u32, name: &'static str, run: fn(&Ctx) -> Result<Outcome>) -> Case {
    Case { id, name, run }
}

struct Options {
    mode: Mode,
    only: Vec<String>,
    bin_dir: Option<PathBuf>,
}

impl Options {
    fn parse(args: &[String]) -> Result<Options> {
        let mut o = Options {
            mode: Mode::Short,
            only: Vec::new(),
            bin_dir: None,
        };
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            match flag.as_str() {
                "--long" => o.mode = Mode::Long,
                "--case" => o
                    .only
                    .push(it.next().context("--case needs a value")?.clone()),
                "--bin-dir" => {
                    o.bin_dir = Some(PathBuf::from(it.next().context("--bin-dir needs a value")?))
                }
                "--list" => {
                    for c in CASES {
                        println!("{:>2} {}", c.id, c.name);
                    }
                    std::process::exit(0);
                }
                "-h" | "--help" => {
                    print!("{USAGE}");
                    std::process::exit(0);
                }
                other => bail!("unknown flag {other:?}\n\n{USAGE}"),
            }
        }
        for want in &o.only {
            if !CASES.iter().any(|c| selects(c, want)) {
                bail!("no case {want:?}; --list shows them");
            }
        }
        Ok(o)
    }
}

fn selects(case: &Case, want: &str) -> bool {
    want == case.name || want.parse() == Ok(case.id)
}

pub fn run(args: &[String]) -> Result<()> {
    let opts = Options::parse(args)?;
    let bins = match &opts.bin_dir {
        Some(dir) => dir.clone(),
        None => build()?,
    };
    let dir = tempfile::Builder::new()
        .prefix("mesh-chaos-")
        .tempdir()
        .context("creating a temp dir")?;
    let ctx = Ctx {
        mode: opts.mode,
        proxy_bin: bins.join("mesh-proxy"),
        mesh_bin: bins.join("mesh"),
        dir: dir.path().to_path_buf(),
    };
    for bin in [&ctx.proxy_bin, &ctx.mesh_bin] {
        if !bin.is_file() {
            bail!("no binary at {}", bin.display());
        }
    }
    let start = Instant::now();
    let mut counts = [0usize; 3];
    for case in CASES {
        if !opts.only.is_empty() && !opts.only.iter().any(|w| selects(case, w)) {
            continue;
        }
        let outcome = (case.run)(&ctx).unwrap_or_else(|e| Outcome {
            verdict: Verdict::Broken,
            measured: format!("the case could not run: {e:#}"),
        });
        let word = match outcome.verdict {
            Verdict::Holds => "holds",
            Verdict::Broken => "broken",
            Verdict::Skipped => "skipped",
        };
        counts[outcome.verdict as usize] += 1;
        println!(
            "{word:<7} {:>2} {:<20} {}",
            case.id, case.name, outcome.measured
        );
        let _ = std::io::stdout().flush();
    }
    println!(
        "chaos: {} hold, {} broken, {} skipped in {:.0} s",
        counts[0],
        counts[1],
        counts[2],
        start.elapsed().as_secs_f64()
    );
    if counts[1] > 0 {
        bail!("{} chaos cases broken", counts[1]);
    }
    Ok(())
}

/// Release binaries: what users run, and what CI's image step builds anyway, so the build
/// is usually already there.
fn build() -> Result<PathBuf> {
    sh(cargo().args([
        "build",
        "--release",
        "--locked",
        "-p",
        "mesh-proxy",
        "-p",
        "mesh-cli",
    ]))?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"));
    Ok(target.join("release"))
}

pub fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

pub fn ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms >= 10_000.0 {
        format!("{:.1} s", ms / 1000.0)
    } else {
        format!("{ms:.0} ms")
    }
}

/// The sum of the metric lines named `name` whose labels contain every one of `labels`.
pub fn metric_sum(text: &str, name: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter(|l| labels.iter().all(|want| l.contains(want)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[cfg(test)]
mod tests;
