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

use std::path::Path;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};

fn main() -> ExitCode {
    // One TLS provider for every client in the process (https inputs, the Kubernetes API).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let name = bin_name(std::env::args_os().next().as_deref().map(Path::new));
    let command = || cmd::Cli::command().bin_name(name);
    let mut matches = command().get_matches();
    let cli = cmd::Cli::from_arg_matches_mut(&mut matches)
        .unwrap_or_else(|e| e.format(&mut command()).exit());
    exit::finish(cmd::run(cli))
}

/// The name usage lines give the command: `kubectl mesh` when kubectl runs the binary as its
/// plugin (kubectl runs `kubectl-mesh` from the PATH for `kubectl mesh`), else `mesh`.
fn bin_name(argv0: Option<&Path>) -> &'static str {
    match argv0.and_then(Path::file_stem).and_then(|s| s.to_str()) {
        Some("kubectl-mesh") => "kubectl mesh",
        _ => "mesh",
    }
}
