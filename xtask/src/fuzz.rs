//! `cargo xtask fuzz`: the parsers' fuzz targets with many more inputs than `cargo test` runs.
//!
//! The targets are proptest properties (no nightly toolchain or libFuzzer needed), each a normal
//! test that runs a few hundred inputs in CI. Here they run `--cases N` inputs each, or rounds of
//! them with fresh seeds until `--time SECS` is spent. Each target prints
//! `fuzz <name>: <n> executions in …`; this adds them up. A failure prints the smallest failing
//! input, and the seed that replays it (`MESH_FUZZ_SEED`).

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};

use crate::util::{cargo, display};

/// Where the fuzz targets are: a crate's test target and the filter that selects them.
const TARGETS: &[(&str, &[&str])] = &[
    (
        "YAML reader",
        &["-p", "mesh-inject", "--test", "fuzz", "--"],
    ),
    (
        "Prometheus text parser",
        &["-p", "mesh-cli", "--bin", "mesh", "--", "metrics::fuzz"],
    ),
    (
        "ServiceProfile spec readers",
        &[
            "-p",
            "mesh-cli",
            "--bin",
            "mesh",
            "--",
            "cmd::profile::fuzz",
        ],
    ),
    (
        "HTTP/1 heads and body decoder",
        &["-p", "mesh-proxy", "--lib", "--", "http::h1::fuzz"],
    ),
    (
        "dtab parser",
        &["-p", "mesh-proxy", "--lib", "--", "dtab::fuzz"],
    ),
];

/// Inputs per target in one round of a `--time` run.
const ROUND_CASES: u64 = 2_000;

pub fn run(args: &[String]) -> Result<()> {
    let mut cases: Option<u64> = None;
    let mut time: Option<u64> = None;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut value = |flag: &str| -> Result<u64> {
            let v = args
                .next()
                .with_context(|| format!("{flag} needs a number"))?;
            v.parse()
                .with_context(|| format!("{flag}: {v:?} is not a number"))
        };
        match arg.as_str() {
            "--cases" => cases = Some(value("--cases")?),
            "--time" => time = Some(value("--time")?),
            other => bail!("fuzz: unknown argument {other:?} (use --cases N or --time SECS)"),
        }
    }
    if cases.is_some() && time.is_some() {
        bail!("fuzz: give --cases or --time, not both");
    }
    // Build first, so that a --time budget is spent fuzzing.
    for (_, target) in TARGETS {
        let split = target
            .iter()
            .position(|a| *a == "--")
            .unwrap_or(target.len());
        let mut cmd = cargo();
        cmd.arg("test").arg("--no-run").args(&target[..split]);
        crate::util::sh(&mut cmd)?;
    }
    let mut totals: BTreeMap<String, (u64, Duration)> = BTreeMap::new();
    let started = Instant::now();
    match time {
        Some(secs) => {
            let budget = Duration::from_secs(secs);
            let mut round = 0u64;
            while round == 0 || started.elapsed() < budget {
                let seed = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(round, |d| d.as_secs().wrapping_add(round));
                eprintln!(
                    "fuzz: round {} (seed {seed}), {:.0?} of {secs} s spent",
                    round + 1,
                    started.elapsed()
                );
                round_once(ROUND_CASES, Some(seed), &mut totals)?;
                round += 1;
            }
        }
        None => round_once(cases.unwrap_or(10_000), None, &mut totals)?,
    }
    let mut all = 0;
    eprintln!("\nfuzz: executions per target (no failures)");
    for (name, (executions, took)) in &totals {
        eprintln!("  {executions:>10}  {took:>8.1?}  {name}");
        all += executions;
    }
    eprintln!("  {all:>10}  {:>8.1?}  in all", started.elapsed());
    Ok(())
}

/// Runs every target once with `cases` inputs, adding the executions they report to `totals`.
fn round_once(
    cases: u64,
    seed: Option<u64>,
    totals: &mut BTreeMap<String, (u64, Duration)>,
) -> Result<()> {
    for (what, target) in TARGETS {
        let mut cmd = cargo();
        cmd.arg("test").args(*target).arg("--nocapture");
        cmd.env("MESH_FUZZ_CASES", cases.to_string());
        if let Some(seed) = seed {
            cmd.env("MESH_FUZZ_SEED", seed.to_string());
        }
        eprintln!("$ MESH_FUZZ_CASES={cases} {}", display(&cmd));
        let out = cmd
            .output()
            .with_context(|| format!("failed to start {}", display(&cmd)))?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let mut seen = 0;
        for line in text.lines() {
            if let Some((name, executions, took)) = parse_report(line) {
                eprintln!("  {name}: {executions} executions in {took:.1?}");
                let entry = totals.entry(name).or_default();
                entry.0 += executions;
                entry.1 += took;
                seen += 1;
            }
        }
        if !out.status.success() {
            eprintln!("{text}");
            let replay = seed.map_or(String::new(), |s| format!(" MESH_FUZZ_SEED={s}"));
            bail!(
                "fuzz: a {what} target failed (replay: MESH_FUZZ_CASES={cases}{replay} {})",
                display(&cmd)
            );
        }
        if seen == 0 {
            bail!("fuzz: no {what} target reported; did the test names change?\n{text}");
        }
    }
    Ok(())
}

/// `fuzz <name>: <n> executions in <time> (…)` → name, n and time. The report may share its
/// line with the test harness's own output, which runs tests in parallel.
fn parse_report(line: &str) -> Option<(String, u64, Duration)> {
    let at = line.find("fuzz ")?;
    let rest = &line[at + "fuzz ".len()..];
    let (name, rest) = rest.rsplit_once(": ")?;
    let (executions, rest) = rest.split_once(" executions in ")?;
    let took = rest.split_whitespace().next()?;
    Some((
        name.to_owned(),
        executions.parse().ok()?,
        parse_duration(took)?,
    ))
}

/// A `Debug`-printed duration such as `1.2s`, `35.0ms` or `812.3µs`.
fn parse_duration(text: &str) -> Option<Duration> {
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let secs = match unit {
        "s" => number,
        "ms" => number / 1e3,
        "µs" | "us" => number / 1e6,
        "ns" => number / 1e9,
        _ => return None,
    };
    Some(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_parse() {
        assert_eq!(
            parse_report("fuzz yaml: token soup: 512 executions in 228.1ms (slowest input 8.4ms)"),
            Some((
                "yaml: token soup".to_owned(),
                512,
                Duration::from_secs_f64(0.2281)
            ))
        );
        assert_eq!(parse_report("fuzz: round 1"), None);
        assert_eq!(
            parse_report("test a::fuzz::b ... fuzz x: y: 3 executions in 1.0s (slowest input 1ms)")
                .map(|r| r.1),
            Some(3)
        );
        assert_eq!(parse_duration("1.5s"), Some(Duration::from_millis(1500)));
    }
}
