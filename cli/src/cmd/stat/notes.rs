//! What `stat` says on stderr besides the table: that it is sampling, and why a table is empty or
//! short.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use super::Frame;
use super::config::{Config, Source};
use super::plan::Plan;
use super::resource::Kind;
use super::sample::{Direction, GroupBy};

/// Lines under the table: what was left out or where to look instead. Empty when there is
/// nothing to say.
pub fn after_table(plan: &Plan, config: &Config, frame: &Frame) -> String {
    let mut out = String::new();
    if frame.empty {
        // Linkerd's words first: scripts look for them.
        out.push_str("No traffic found.");
        if let Source::Proxies { addrs, .. } = &config.source {
            let read = config.view.direction;
            let other = match read {
                Direction::Inbound => Direction::Outbound,
                Direction::Outbound => Direction::Inbound,
            };
            let proxies = if addrs.len() == 1 { "proxy" } else { "proxies" };
            out.push_str(&format!(
                " Read {} traffic of {} {proxies} for {:?}; --direction {} reads the {} side.",
                read.as_str(),
                addrs.len(),
                config.window,
                other.as_str(),
                other.as_str(),
            ));
        }
        out.push('\n');
    }
    // mesh-proxy has no discovery yet, so its outbound metrics carry no `dst_*` labels: only a
    // Service can be recognised, from the authority. Say so rather than show "-" unexplained.
    let by_workload = match &config.view.group {
        GroupBy::Destination { kind, .. } => *kind != Kind::Service,
        _ => false,
    } || config
        .view
        .only
        .as_ref()
        .is_some_and(|o| o.kind != Kind::Service);
    if by_workload && !frame.empty && frame.quiet {
        out.push_str(
            "No traffic matched: mesh-proxy does not yet label outbound traffic with the \
             destination's workload (the dst_* labels come with service discovery); a Service \
             is matched by its name or cluster IP, e.g. --to svc/NAME.\n",
        );
    }
    if !plan.hidden_unmeshed.is_empty() {
        let parts: Vec<String> = plan
            .hidden_unmeshed
            .iter()
            .map(|(kind, n)| format!("{n} {kind}{}", if *n == 1 { "" } else { "s" }))
            .collect();
        out.push_str(&format!(
            "Not shown: {} with no meshed pod (--unmeshed lists them as 0/N).\n",
            parts.join(", ")
        ));
    }
    out
}

/// Waits one sampling window. On a terminal, a line on stderr counts down and is erased at the
/// end; elsewhere a line says what is happening, again every 10 s of a long window, so a run
/// in CI does not look hung.
pub async fn sample_for(window: Duration) {
    let terminal = std::io::stderr().is_terminal();
    let end = Instant::now() + window;
    let every = if terminal {
        Duration::from_secs(1)
    } else {
        Duration::from_secs(10)
    };
    loop {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        let secs = left.as_secs_f64().ceil();
        let mut err = std::io::stderr().lock();
        if terminal {
            let _ = write!(err, "\r\x1b[2Ksampling traffic… {secs}s left");
        } else if window >= Duration::from_secs(5) {
            let _ = writeln!(err, "sampling traffic… {secs}s left");
        }
        let _ = err.flush();
        drop(err);
        tokio::time::sleep(left.min(every)).await;
    }
    if terminal {
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r\x1b[2K");
        let _ = err.flush();
    }
}
