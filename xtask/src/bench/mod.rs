//! `cargo xtask bench <what>`: benchmarks. They print figures and ratios; they never fail on speed.

mod balance;
mod check;
mod destination;
mod harness;
mod identity;
mod inject;
mod injector;
mod mesh;
mod proxy;
mod stat;
pub mod symbols;

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Result, bail};

use crate::util::{cargo, have, root, sh};

pub fn run(args: &[String]) -> Result<()> {
    match args.first().map(String::as_str) {
        Some("balance") => balance::run(&args[1..]),
        Some("check") => check::run(&args[1..]),
        Some("destination") => destination::run(&args[1..]),
        Some("identity") => identity::run(&args[1..]),
        Some("inject") => inject::run(&args[1..]),
        Some("injector") => injector::run(&args[1..]),
        Some("mesh") => mesh::run(&args[1..]),
        Some("proxy") => proxy::run(&args[1..]),
        Some("stat") => stat::run(&args[1..]),
        Some(other) => {
            bail!(
                "unknown benchmark {other:?}; try: balance, check, destination, identity, inject, injector, mesh, proxy, stat"
            )
        }
        None => bail!(
            "usage: cargo xtask bench <balance|check|destination|identity|inject|injector|mesh|proxy|stat>"
        ),
    }
}

/// Builds `mesh-controller` and its `example` in release mode and returns a command that runs
/// the example on CPU 1 (when there are two and `taskset` exists), with the controller's path.
/// The examples pin the controller to CPU 0, so clients and the fake API server do not take
/// its core, as on a cluster where the API server runs elsewhere.
fn pinned_controller_example(example: &str) -> Result<(Command, PathBuf)> {
    sh(cargo().args([
        "build",
        "--release",
        "--quiet",
        "-p",
        "mesh-controller",
        "--bins",
        "--example",
        example,
    ]))?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"));
    let binary = target.join("release/examples").join(example);
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let command = if cpus > 1 && have("taskset") {
        let mut taskset = Command::new("taskset");
        taskset.args(["-c", "1"]).arg(&binary);
        taskset
    } else {
        Command::new(&binary)
    };
    Ok((command, target.join("release/mesh-controller")))
}
