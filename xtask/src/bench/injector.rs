//! `cargo xtask bench injector`: the proxy injector's latency per AdmissionReview at a fixed
//! rate over HTTPS keep-alive (`controller/examples/bench_injector.rs`). Target: p99 under 5 ms
//! at 200 reviews/s.

use anyhow::Result;

use crate::util::{cargo, sh};

pub fn run(args: &[String]) -> Result<()> {
    // Build first, so the run below times the injector rather than the compiler.
    sh(cargo().args(["build", "--release", "--quiet", "-p", "mesh-controller"]))?;
    sh(cargo()
        .args([
            "run",
            "--release",
            "--quiet",
            "-p",
            "mesh-controller",
            "--example",
            "bench_injector",
            "--",
        ])
        .args(args))
}
