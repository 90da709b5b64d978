//! `mesh check`: the truth about the cluster, the control plane and every proxy.
//!
//! One concurrent round of API reads fills a [`gather::Snapshot`]; the checks judge it without
//! further I/O, so they are plain functions of the cluster's state. `--wait` repeats the round
//! while every failure is of the kind time can fix.

mod access;
mod cluster;
mod control_plane;
mod data_plane;
mod gather;
mod identity;
mod pods;
mod report;
mod running;
mod webhook;

/// What `mesh version` reads from pods the way `check` does.
pub mod facts {
    pub use super::pods::{finished, proxy, proxy_version};
    pub use super::running::pods_version as control_plane_version;
}

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::bail;

use super::GlobalArgs;
use report::{Format, Report};

/// Check that the cluster, the control plane and the proxies are healthy
///
/// Runs Linkerd's checks: the Kubernetes API and version, the control plane's namespace,
/// configuration, certificates, webhook and pods, and with --proxy every data plane pod. Data
/// plane checks run even when control plane checks fail. Exits 0 when nothing failed (warnings
/// allowed), 1 when a check failed, 2 when the cluster cannot be reached.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Check whether mesh can be installed, instead of checking an installed control plane
    #[arg(long)]
    pre: bool,
    /// Also check the data plane: every pod's proxy
    #[arg(long)]
    proxy: bool,
    /// With --proxy, only check pods in this namespace (default: every namespace)
    #[arg(short, long, value_name = "NS")]
    namespace: Option<String>,
    /// Output format
    #[arg(short, long, value_enum, default_value_t = Format::Table)]
    output: Format,
    /// Retry checks that time can fix (pods becoming ready) for up to this long, e.g. 30s, 5m;
    /// when stderr is not a terminal, a line there says what it waits for every 5 s
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = mesh_names::parse_duration)]
    wait: Duration,
    /// Timeout of each Kubernetes API request
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = mesh_names::parse_duration)]
    api_timeout: Duration,
    /// Print details of passing checks too
    #[arg(long)]
    verbose: bool,
}

pub fn run(args: Args, global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let runtime = crate::cmd::runtime()?;
    let (report, unreachable) = runtime.block_on(check(&args, global))?;
    crate::output::stdout(|out| report::render(&report, args.output, args.verbose, out))?;
    if let Some(why) = unreachable {
        bail!(why);
    }
    Ok(if report.success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Runs the checks, again and again under `--wait`. Returns the report, and the error when the API
/// could not be reached.
async fn check(args: &Args, global: &GlobalArgs) -> anyhow::Result<(Report, Option<String>)> {
    let (client, server) = gather::client(global, args.api_timeout).await?;
    let scope = gather::Scope {
        control_plane_namespace: global.control_plane_namespace.clone(),
        pre: args.pre,
        proxy: args.proxy,
        namespace: args.namespace.clone(),
    };
    let deadline = Instant::now() + args.wait;
    let mut progress = Progress::new(args.output, args.wait);
    loop {
        let (report, unreachable) = match gather::snapshot(&client, &scope).await {
            Ok(snapshot) => (evaluate(&snapshot, &scope, &server, unix_now()), None),
            Err(e) => {
                let why = gather::describe(e);
                (
                    unreachable_report(&server, &why),
                    Some(format!(
                        "cannot reach the Kubernetes API at {server}: {why}"
                    )),
                )
            }
        };
        let retry = unreachable.is_none() && report.worth_retrying() && Instant::now() < deadline;
        if !retry {
            progress.finish();
            return Ok((report, unreachable));
        }
        if let Some(failure) = report.first_failure() {
            progress.show(failure);
        }
        let pause = RETRY_EVERY.min(deadline.saturating_duration_since(Instant::now()));
        tokio::time::sleep(pause).await;
    }
}

const RETRY_EVERY: Duration = Duration::from_secs(1);

/// Judges a snapshot. Pure: everything it needs is passed in.
fn evaluate(snapshot: &gather::Snapshot, scope: &gather::Scope, server: &str, now: i64) -> Report {
    let cli_version = crate::cmd::version::VERSION;
    let ns = &scope.control_plane_namespace;
    let mut report = Report::default();
    report.push("kubernetes-api", cluster::api(server));
    report.push(
        "kubernetes-version",
        cluster::version(snapshot.server_version.as_ref()),
    );
    if let Some(pre) = &snapshot.pre {
        report.push("pre-kubernetes-setup", cluster::pre_install(pre, ns, now));
    }
    let facts = snapshot
        .control_plane
        .as_ref()
        .map(|cp| control_plane::checks(cp, ns, cli_version, now, &mut report));
    if let Some(dp) = &snapshot.data_plane {
        let (version, injector) = match &facts {
            Some(facts) => (facts.version.as_deref(), facts.injector.clone()),
            None => (
                None,
                running::Injector::Down("the control plane was not checked".to_string()),
            ),
        };
        report.push(
            "linkerd-data-plane",
            data_plane::checks(dp, version, cli_version, &injector),
        );
        if let Some(sha) = facts
            .as_ref()
            .and_then(|f| f.trust_anchors_sha256.as_deref())
        {
            report.push(
                "linkerd-identity-data-plane",
                vec![data_plane::trust_anchors(dp, sha)],
            );
        }
    }
    report
}

fn unreachable_report(server: &str, why: &str) -> Report {
    let mut report = Report::default();
    report.push(
        "kubernetes-api",
        vec![
            report::Check::pass("can initialize the client"),
            report::Check::fail(
                "can query the Kubernetes API",
                format!("cannot reach {server}: {why}"),
                "check that the cluster is up and that --kubeconfig/--context point at it",
            ),
        ],
    );
    report
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// How often `--wait` writes a progress line when stderr is not a terminal.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// What `--wait` shows on stderr while it waits: a spinner on a terminal (with the table output),
/// else a line every few seconds, so that a log or a CI job shows what it is waiting for rather
/// than minutes of silence.
enum Progress {
    Spinner(indicatif::ProgressBar),
    Lines {
        started: Instant,
        wait: Duration,
        next: Instant,
    },
    Quiet,
}

impl Progress {
    fn new(output: Format, wait: Duration) -> Progress {
        if !std::io::stderr().is_terminal() {
            let now = Instant::now();
            return Progress::Lines {
                started: now,
                wait,
                next: now,
            };
        }
        if output != Format::Table {
            return Progress::Quiet;
        }
        let bar = indicatif::ProgressBar::new_spinner();
        bar.enable_steady_tick(Duration::from_millis(100));
        Progress::Spinner(bar)
    }

    fn show(&mut self, failure: &report::Check) {
        match self {
            Progress::Spinner(bar) => {
                bar.set_message(format!("waiting for check: {}", failure.description));
            }
            Progress::Lines {
                started,
                wait,
                next,
            } => {
                let now = Instant::now();
                if now < *next {
                    return;
                }
                *next = now + PROGRESS_EVERY;
                let elapsed = Duration::from_secs(now.duration_since(*started).as_secs());
                let _ = writeln!(
                    std::io::stderr().lock(),
                    "{} ({} of {})",
                    waiting_for(failure),
                    mesh_names::format_duration(elapsed),
                    mesh_names::format_duration(*wait)
                );
            }
            Progress::Quiet => {}
        }
    }

    fn finish(&self) {
        if let Progress::Spinner(bar) = self {
            bar.finish_and_clear();
        }
    }
}

/// `waiting for <check>: <the first line of its error>`.
fn waiting_for(failure: &report::Check) -> String {
    let reason = failure
        .error
        .as_deref()
        .and_then(|e| e.lines().next())
        .map(|l| l.trim_end_matches(':'))
        .filter(|l| !l.is_empty());
    match reason {
        Some(reason) => format!("waiting for {}: {reason}", failure.description),
        None => format!("waiting for {}", failure.description),
    }
}

#[cfg(test)]
mod tests;
