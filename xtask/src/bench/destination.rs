//! `cargo xtask bench destination`: how fast `mesh-controller destination` streams EndpointSlice
//! changes to 500 open `Get` streams over 5 000 endpoints, and its RSS. Targets: under 100 ms,
//! under 64 MB. The benchmark is the controller's `bench_destination` example; this builds the
//! controller first so the example finds it beside itself, and times nothing of the compiler.

use anyhow::{Result, bail};

use crate::util::{cargo, sh};

pub fn run(args: &[String]) -> Result<()> {
    if let Some(other) = args.first() {
        bail!("unknown argument {other:?}; usage: cargo xtask bench destination");
    }
    sh(cargo().args([
        "build",
        "--release",
        "--quiet",
        "-p",
        "mesh-controller",
        "--bin",
        "mesh-controller",
        "--example",
        "bench_destination",
    ]))?;
    sh(cargo().args([
        "run",
        "--release",
        "--quiet",
        "-p",
        "mesh-controller",
        "--example",
        "bench_destination",
    ]))
}
