//! What `stat` says on stderr besides the table: that it is sampling, and why a table is empty or
//! short.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use super::config::{Config, Source};
use super::plan::Plan;
use super::sample::Direction;

/// Lines under the table: what was left out or where to look instead. Empty when there is
/// nothing to say.
pub fn after_table(plan: &Plan, config: &Config, empty: bool) -> String {
    let mut out = String::new();
    if empty {
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
