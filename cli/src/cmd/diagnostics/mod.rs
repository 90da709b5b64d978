//! `mesh diagnostics`: looking inside the data plane.

mod proxy_metrics;

use std::process::ExitCode;

use super::GlobalArgs;

/// Inspect the data plane: raw proxy metrics
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    ProxyMetrics(proxy_metrics::Args),
}

pub fn run(args: Args, global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        Command::ProxyMetrics(args) => proxy_metrics::run(args, global),
    }
}
