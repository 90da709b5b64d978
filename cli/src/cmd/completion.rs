//! `mesh completion`.

use std::process::ExitCode;

use clap::CommandFactory;
use clap_complete::Shell;

/// Print a shell completion script
///
/// Load completions for the current bash session with:
///
///     source <(mesh completion bash)
///
/// or install them for every session, e.g. for zsh:
///
///     mesh completion zsh > "${fpath[1]}/_mesh"
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// The shell to write completions for
    #[arg(value_enum)]
    shell: CompletionShell,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum CompletionShell {
    Bash,
    Zsh,
    Fish,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let shell = match args.shell {
        CompletionShell::Bash => Shell::Bash,
        CompletionShell::Zsh => Shell::Zsh,
        CompletionShell::Fish => Shell::Fish,
    };
    let mut cmd = super::Cli::command();
    crate::output::stdout(|out| {
        clap_complete::generate(shell, &mut cmd, "mesh", out);
        Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}
