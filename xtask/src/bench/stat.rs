//! `cargo xtask bench stat`: one `mesh stat` refresh over 1 000 meshed pods behind the fake API
//! server. Target: under 1 s.
//!
//! The fixture (the fake API server, every pod's proxy answering with a mesh-proxy-shaped page)
//! lives in the CLI's `stat_bench` test, which checks the numbers at 100 pods on every CI run;
//! here it runs in release mode at the benchmark's size and prints the timing.

use anyhow::{Context, Result, bail};

use crate::util::{cargo, sh};

pub fn run(args: &[String]) -> Result<()> {
    let mut pods = 1_000usize;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--pods" => {
                pods = it
                    .next()
                    .and_then(|n| n.parse().ok())
                    .filter(|&n| n > 0)
                    .context("--pods needs a positive number")?;
            }
            other => bail!("unknown argument {other:?}; usage: cargo xtask bench stat [--pods N]"),
        }
    }
    // Build first, so the run below times mesh rather than the compiler.
    sh(cargo().args([
        "build",
        "--release",
        "--quiet",
        "-p",
        "mesh-cli",
        "--test",
        "stat_bench",
    ]))?;
    sh(cargo()
        .args([
            "test",
            "--release",
            "--quiet",
            "-p",
            "mesh-cli",
            "--test",
            "stat_bench",
        ])
        .args(["--", "--nocapture", "--test-threads=1"])
        .env("MESH_BENCH_STAT_PODS", pods.to_string()))
}
