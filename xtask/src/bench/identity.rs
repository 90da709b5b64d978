//! `cargo xtask bench identity`: certificates per second from `mesh-controller identity` on one
//! core, with token reviews answered by the fake API server. Target: at least 1000/s.
//!
//! The benchmark itself is the controller's `bench_identity` example; this builds it and the
//! controller in release mode and runs it on CPU 1, while it pins the controller to CPU 0.

use anyhow::Result;

use crate::util::{cargo, have, root, sh};

pub fn run(args: &[String]) -> Result<()> {
    sh(cargo().args([
        "build",
        "--release",
        "--quiet",
        "-p",
        "mesh-controller",
        "--bins",
        "--example",
        "bench_identity",
    ]))?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| root().join("target"));
    let example = target.join("release/examples/bench_identity");
    let controller = target.join("release/mesh-controller");
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut command = if cpus > 1 && have("taskset") {
        let mut taskset = std::process::Command::new("taskset");
        taskset.args(["-c", "1"]).arg(&example);
        taskset
    } else {
        std::process::Command::new(&example)
    };
    command.arg("--controller").arg(controller).args(args);
    sh(&mut command)
}
