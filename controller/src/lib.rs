//! The mesh control plane, one binary with a subcommand per component, as `mesh install` renders
//! them:
//!
//! - `proxy-injector`: the mutating admission webhook that adds the proxy to new pods;
//! - `identity`: Linkerd's `io.linkerd.proxy.identity.Identity` service, which issues workload
//!   certificates for service-account tokens;
//! - `destination`: Linkerd's `io.linkerd.proxy.destination.Destination` service, which streams
//!   endpoints and service profiles to proxies, and on the policy port Linkerd's
//!   `io.linkerd.proxy.inbound.InboundServerPolicies` ([`policy`]), which streams each inbound
//!   port's policy.
//!
//! Each component is split the way Linkerd's policy controller is: pure logic that turns
//! Kubernetes objects into answers (unit-tested without a cluster), and thin watchers and servers
//! around it. Every component serves `/metrics`, `/ready`, `/live` (and `/ping`, which Linkerd's
//! probes use) on its admin address, and drains on SIGTERM.

pub mod admin;
pub mod args;
pub mod destination;
pub mod identity;
pub mod injector;
pub mod k8s;
pub mod policy;
pub mod runtime;
pub mod streams;
mod watchers;

use std::process::ExitCode;
use std::sync::{Mutex, MutexGuard};

use args::{Cli, Command};

/// Exit code for bad flags or unusable input files (BSD's `EX_USAGE`, as mesh-proxy uses).
pub const EXIT_CONFIG: u8 = 64;

/// The value behind `mutex`, even if a thread panicked while holding it: the indexes and the
/// registry are consistent between calls, so serving on beats failing every later call.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// Runs the chosen component until SIGTERM or a fatal error.
pub fn run(cli: Cli) -> ExitCode {
    if let Err(err) = runtime::init_logging(&cli.common.log_level) {
        eprintln!("mesh-controller: {err}");
        return ExitCode::from(EXIT_CONFIG);
    }
    let tokio = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("mesh-controller: cannot start the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let result = tokio.block_on(async move {
        match cli.command {
            Command::Identity(args) => runtime::component(cli.common, args).await,
            Command::Destination(args) => runtime::component(cli.common, args).await,
            Command::ProxyInjector(args) => runtime::component(cli.common, args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(runtime::Failure::Config(err)) => {
            tracing::error!("{err:#}");
            eprintln!("mesh-controller: {err:#}");
            ExitCode::from(EXIT_CONFIG)
        }
        Err(runtime::Failure::Runtime(err)) => {
            tracing::error!("{err:#}");
            eprintln!("mesh-controller: {err:#}");
            ExitCode::FAILURE
        }
    }
}
