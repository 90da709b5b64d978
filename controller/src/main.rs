//! `mesh-controller`: the control plane `mesh install` deploys. Thin: parse, run, map the outcome to
//! an exit code (0 after a clean shutdown, 64 for bad flags or files, 1 for a runtime failure).

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // One TLS provider for every client and server in the process.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args = mesh_controller::args::Cli::parse();
    mesh_controller::run(args)
}
