//! `mesh version`.

use std::process::ExitCode;

/// Print the mesh version
///
/// Prints the version of this CLI. The proxy version that `mesh inject --manual` writes into
/// workloads is the same version.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print only the version number
    #[arg(long)]
    short: bool,
    /// Output format
    #[arg(short, long, value_enum, default_value_t = Format::Text)]
    output: Format,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Format {
    Text,
    Json,
}

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let text = match (args.output, args.short) {
        (Format::Json, _) => format!("{}\n", serde_json::json!({ "clientVersion": VERSION })),
        (Format::Text, true) => format!("{VERSION}\n"),
        (Format::Text, false) => format!("Client version: {VERSION}\n"),
    };
    crate::output::stdout(|out| out.write_all(text.as_bytes()))?;
    Ok(ExitCode::SUCCESS)
}
