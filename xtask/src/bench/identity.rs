//! `cargo xtask bench identity`: certificates per second from `mesh-controller identity` on one
//! core, with token reviews answered by the fake API server. Target: at least 1000/s.
//!
//! The benchmark itself is the controller's `bench_identity` example; this builds it and the
//! controller in release mode and runs it on CPU 1, while it pins the controller to CPU 0.

use anyhow::Result;

use crate::util::sh;

pub fn run(args: &[String]) -> Result<()> {
    let (mut command, controller) = super::pinned_controller_example("bench_identity")?;
    command.arg("--controller").arg(controller).args(args);
    sh(&mut command)
}
