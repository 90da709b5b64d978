//! `mesh generate`: hidden helpers for packaging, such as man pages.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::CommandFactory;

/// Generate packaging artifacts
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    what: What,
}

#[derive(Debug, clap::Subcommand)]
enum What {
    /// Write a man page for mesh and each subcommand into a directory
    Man {
        #[arg(long, value_name = "DIR")]
        out_dir: PathBuf,
    },
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.what {
        What::Man { out_dir } => {
            std::fs::create_dir_all(&out_dir)
                .with_context(|| format!("cannot create {}", out_dir.display()))?;
            clap_mangen::generate_to(super::Cli::command(), &out_dir)
                .with_context(|| format!("cannot write man pages to {}", out_dir.display()))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
