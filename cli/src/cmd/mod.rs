//! The `mesh` command tree. One module per subcommand; each has an `Args` struct (clap, no I/O) and a
//! `run` function.

mod check;
mod completion;
mod dashboard;
mod diagnostics;
mod edges;
mod generate;
mod identity;
mod inject;
mod install;
mod manifest;
mod profile;
mod routes;
mod stat;
mod tap;
mod top;
mod uninject;
mod version;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mesh: a Linkerd-compatible service mesh for Kubernetes.
///
/// mesh reads and writes Linkerd's annotations (`linkerd.io/inject`, `config.linkerd.io/*`), container
/// names, ports and metrics, so Linkerd manifests, dashboards and habits carry over.
#[derive(Debug, Parser)]
#[command(name = "mesh", version, propagate_version = true, max_term_width = 100)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every cluster-facing command understands.
#[derive(Debug, Clone, clap::Args)]
pub struct GlobalArgs {
    /// Path to the kubeconfig file to use for CLI requests
    ///
    /// Defaults to $KUBECONFIG, then ~/.kube/config, then the in-cluster service account.
    #[arg(long, global = true, value_name = "PATH")]
    pub kubeconfig: Option<std::path::PathBuf>,
    /// Name of the kubeconfig context to use
    #[arg(long, global = true, value_name = "NAME")]
    pub context: Option<String>,
    /// Namespace in which the mesh control plane is installed
    #[arg(
        short = 'L',
        long = "control-plane-namespace",
        visible_alias = "linkerd-namespace",
        global = true,
        default_value = "linkerd",
        value_name = "NS"
    )]
    pub control_plane_namespace: String,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    Inject(Box<inject::Args>),
    Uninject(uninject::Args),
    Install(Box<install::Args>),
    Upgrade(Box<install::upgrade::Args>),
    Uninstall(install::uninstall::Args),
    Check(check::Args),
    Stat(Box<stat::Args>),
    Edges(edges::Args),
    Routes(Box<routes::Args>),
    Identity(identity::Args),
    Diagnostics(diagnostics::Args),
    Profile(profile::Args),
    Tap(Box<tap::Args>),
    Top(Box<top::Args>),
    Dashboard(Box<dashboard::Args>),
    Version(version::Args),
    Completion(completion::Args),
    #[command(hide = true)]
    Generate(generate::Args),
}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let _ = &cli.global;
    match cli.command {
        Command::Inject(args) => inject::run(*args, &cli.global),
        Command::Uninject(args) => uninject::run(args),
        Command::Install(args) => install::run(*args, &cli.global),
        Command::Upgrade(args) => install::upgrade::run(*args, &cli.global),
        Command::Uninstall(args) => install::uninstall::run(args, &cli.global),
        Command::Check(args) => check::run(args, &cli.global),
        Command::Stat(args) => stat::run(*args, &cli.global),
        Command::Edges(args) => edges::run(args, &cli.global),
        Command::Routes(args) => routes::run(*args, &cli.global),
        Command::Identity(args) => identity::run(args, &cli.global),
        Command::Diagnostics(args) => diagnostics::run(args, &cli.global),
        Command::Profile(args) => profile::run(args, &cli.global),
        Command::Tap(args) => tap::run(*args, &cli.global),
        Command::Top(args) => top::run(*args, &cli.global),
        Command::Dashboard(args) => dashboard::run(*args, &cli.global),
        Command::Version(args) => version::run(args, &cli.global),
        Command::Completion(args) => completion::run(args),
        Command::Generate(args) => generate::run(args),
    }
}

/// The runtime of the commands that talk to the cluster or the proxies: two worker threads,
/// enough for their I/O-bound work without taking a core per CPU of the user's machine.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    use anyhow::Context as _;
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_command_tree_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
