//! `mesh`: the command line of the mesh service mesh.
//!
//! `main` owns exit codes: 0 ok, 1 a check or validation failed, 2 a usage or runtime error. A broken
//! pipe on stdout exits quietly.

mod client;
mod cmd;
#[cfg(test)]
#[path = "../tests/support/conformance.rs"]
mod conformance;
mod exit;
mod input;
mod metrics;
mod output;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // One TLS provider for every client in the process (https inputs, the Kubernetes API).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = cmd::Cli::parse();
    exit::finish(cmd::run(cli))
}
