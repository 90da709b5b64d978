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
        match &config.source {
            Source::Proxies { addrs, kind, .. } if *kind != Kind::Authority => {
                let proxies = if addrs.len() == 1 { "proxy" } else { "proxies" };
                out.push_str(&format!(
                    " Read outbound traffic of {} {proxies} for {:?}: no request named a {kind} \
                     (the {} label comes from the control plane's discovery; the file namer \
                     gives only dst_service).",
                    addrs.len(),
                    config.window,
                    kind.dst_label(),
                ));
            }
            Source::Proxies { addrs, .. } => {
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
            Source::Cluster { .. } => {}
        }
        out.push('\n');
    }
    // Workloads are named only by the endpoint's dst_* labels, which come from the control
    // plane's discovery: say so rather than show "-" unexplained.
    let wanted = match &config.view.group {
        GroupBy::Destination { kind, .. } => Some(*kind),
        _ => None,
    }
    .or(config.view.only.as_ref().map(|o| o.kind))
    .filter(|k| !matches!(k, Kind::Service | Kind::Namespace));
    if let Some(kind) = wanted
        && matches!(config.source, Source::Cluster { .. })
        && !frame.empty
        && frame.quiet
    {
        out.push_str(&format!(
            "No traffic matched: no outbound request carried a {} label. The proxies add the \
             dst_* labels from the control plane's discovery (the file namer gives only \
             dst_service); without them a Service is still matched by its name or cluster IP, \
             e.g. --to svc/NAME.\n",
            kind.dst_label()
        ));
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
