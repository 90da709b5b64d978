//! `cargo xtask bench injector`: the proxy injector's latency per AdmissionReview at a fixed
//! rate over HTTPS keep-alive (`controller/examples/bench_injector.rs`). Target: p99 under 5 ms
//! at 200 reviews/s.
//!
//! Run as `bench identity` is: the example on CPU 1, the injector it starts pinned to CPU 0.

use anyhow::Result;

use crate::util::sh;

pub fn run(args: &[String]) -> Result<()> {
    let (mut command, _) = super::pinned_controller_example("bench_injector")?;
    command.args(args);
    sh(&mut command)
}
