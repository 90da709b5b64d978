//! `mesh diagnostics`: looking inside the data plane.

mod endpoints;
mod proxy_metrics;

use std::process::ExitCode;

use super::GlobalArgs;

/// Inspect the mesh: raw proxy metrics, the destination service's endpoints
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    ProxyMetrics(proxy_metrics::Args),
    Endpoints(endpoints::Args),
}

pub fn run(args: Args, global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        Command::ProxyMetrics(args) => proxy_metrics::run(args, global),
        Command::Endpoints(args) => endpoints::run(args, global),
    }
}
