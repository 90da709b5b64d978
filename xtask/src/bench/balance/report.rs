//! The balance benchmark's table: medians per scenario, where the traffic went, and each
//! balancer's p99 against the all-fast case.

use std::fmt::Write;

use crate::bench::proxy::median;

/// The most peak-EWMA's p99 over three backends, one slow, may be above the all-fast
/// case's: the slow backend should cost little once the balancer has learnt to avoid it.
pub const PEAK_EWMA_TARGET: f64 = 1.5;

/// One measured run of one scenario.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Run {
    pub rps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Wall-clock seconds the run lasted.
    pub seconds: f64,
    /// CPU seconds the proxy used during the run; none for a direct call.
    pub proxy_cpu_s: Option<f64>,
    /// Requests the slow backend answered during the run.
    pub to_slow: u64,
    /// Requests all backends behind the scenario answered during the run.
    pub to_all: u64,
}

/// One scenario's medians over its rounds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Row {
    pub rps: f64,
    pub p50: f64,
    pub p99: f64,
    /// The share of all rounds' requests that the slow backend answered, for scenarios
    /// with one.
    pub slow_share: Option<f64>,
    /// The proxy's CPU use, in cores.
    pub cpu: Option<f64>,
}

/// Medians of a scenario's runs; none without runs.
pub fn summarise(runs: &[Run], has_slow: bool) -> Option<Row> {
    if runs.is_empty() {
        return None;
    }
    let pick = |f: fn(&Run) -> f64| median(&runs.iter().map(f).collect::<Vec<_>>());
    let (slow, all) = runs
        .iter()
        .fold((0, 0), |(s, a), r| (s + r.to_slow, a + r.to_all));
    let cpu: Vec<f64> = runs
        .iter()
        .filter(|r| r.seconds > 0.0)
        .filter_map(|r| r.proxy_cpu_s.map(|c| c / r.seconds))
        .collect();
    Some(Row {
        rps: pick(|r| r.rps),
        p50: pick(|r| r.p50_ms),
        p99: pick(|r| r.p99_ms),
        slow_share: (has_slow && all > 0).then(|| slow as f64 / all as f64),
        cpu: (!cpu.is_empty()).then(|| median(&cpu)),
    })
}

/// Each scenario's p99 over the all-fast case's, for those over the slow backend.
pub fn against_all_fast(rows: &[(&str, Option<Row>)]) -> Vec<(String, f64)> {
    let find = |name: &str| rows.iter().find(|(n, _)| *n == name).and_then(|(_, r)| *r);
    let Some(base) = find("all-fast").filter(|b| b.p99 > 0.0) else {
        return Vec::new();
    };
    rows.iter()
        .filter_map(|(name, row)| {
            let row = (*row)?;
            row.slow_share?;
            Some((name.to_string(), row.p99 / base.p99))
        })
        .collect()
}

/// The table, the ratios and the failures, as printed.
pub fn render(rows: &[(&str, Option<Row>)], failures: &[(&str, String)]) -> String {
    let mut out = String::new();
    let dash = || "—".to_string();
    let _ = writeln!(
        out,
        "{:<13} {:>9} {:>9} {:>9} {:>8} {:>10}",
        "scenario", "RPS", "p50 ms", "p99 ms", "to slow", "proxy CPU"
    );
    for (name, row) in rows {
        let Some(r) = row else { continue };
        let _ = writeln!(
            out,
            "{:<13} {:>9.0} {:>9.3} {:>9.3} {:>8} {:>10}",
            name,
            r.rps,
            r.p50,
            r.p99,
            r.slow_share
                .map_or_else(dash, |s| format!("{:.1}%", s * 100.0)),
            r.cpu.map_or_else(dash, |c| format!("{:.0}%", c * 100.0)),
        );
    }
    let ratios = against_all_fast(rows);
    if !ratios.is_empty() {
        let _ = writeln!(
            out,
            "\np99 over the all-fast case's (peak-ewma's target: at most {PEAK_EWMA_TARGET:.2}×)"
        );
        for (name, ratio) in &ratios {
            let verdict = match name.as_str() {
                "peak-ewma" if *ratio <= PEAK_EWMA_TARGET => "  within target",
                "peak-ewma" => "  OVER target",
                _ => "",
            };
            let _ = writeln!(out, "  {name:<13} {ratio:>6.2}×{verdict}");
        }
    }
    let find = |name: &str| rows.iter().find(|(n, _)| *n == name).and_then(|(_, r)| *r);
    if let (Some(ewma), Some(rr)) = (find("peak-ewma"), find("round-robin"))
        && rr.p99 > 0.0
    {
        let _ = writeln!(
            out,
            "peak-ewma / round-robin: p99 {:.2}×, RPS {:.2}×",
            ewma.p99 / rr.p99,
            ewma.rps / rr.rps
        );
    }
    for (name, failure) in failures {
        let _ = writeln!(out, "{name}: failed: {failure}");
    }
    out
}
