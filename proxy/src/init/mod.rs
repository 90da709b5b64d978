//! `mesh-proxy init`: installs the iptables rules that send a pod's traffic through the proxy.
//!
//! The rules, chain names, comment markers and flags are Linkerd's proxy-init's, so the
//! `linkerd-init` container that `linkerd inject` writes runs unchanged with this binary.
//! Commands run through `std::process::Command`; nothing here needs `unsafe`.

mod args;
mod config;
mod iptables;
mod rules;

use std::ffi::OsString;
use std::fmt::Write as _;
use std::io::Write as _;
use std::process::ExitCode;

use clap::Parser;

pub use args::InitArgs;
pub use config::{Config, Mode, UsageError};
pub use iptables::InitError;

use config::Verbosity;
use iptables::{Runner, SavedTable, Step, shell_line};

/// Exit code when the rules are in place.
const EXIT_OK: u8 = 0;
/// Exit code when an iptables (or sysctl) command failed; the message shows it.
const EXIT_FAILED: u8 = 1;
/// Exit code for a bad flag or value.
const EXIT_USAGE: u8 = 2;

/// Runs `mesh-proxy init` with the arguments after `init`.
pub fn run(args: Vec<OsString>) -> ExitCode {
    let argv = std::iter::once(OsString::from("mesh-proxy init")).chain(args);
    let args = match InitArgs::try_parse_from(argv) {
        Ok(args) => args,
        Err(err) => {
            let code = if err.use_stderr() {
                EXIT_USAGE
            } else {
                EXIT_OK
            };
            let _ = err.print();
            return ExitCode::from(code);
        }
    };
    let config = match Config::from_args(&args) {
        Ok(config) => config,
        Err(errors) => {
            for err in errors {
                eprintln!("mesh-proxy init: {err}");
            }
            return ExitCode::from(EXIT_USAGE);
        }
    };
    if config.mode == Mode::DryRun {
        let text = dry_run(&config);
        // A closed pipe (`| head`) is not an error worth reporting.
        let _ = std::io::stdout().write_all(text.as_bytes());
        return ExitCode::from(EXIT_OK);
    }
    match apply(&config) {
        Ok(()) => ExitCode::from(EXIT_OK),
        Err(err) => {
            let mut msg = format!("mesh-proxy init: {err}");
            let mut source = std::error::Error::source(&err);
            while let Some(cause) = source {
                let _ = write!(msg, ": {cause}");
                source = cause.source();
            }
            eprintln!("{msg}");
            ExitCode::from(EXIT_FAILED)
        }
    }
}

/// The commands that would set up a fresh network namespace, one per line, as a shell would
/// run them.
pub fn dry_run(config: &Config) -> String {
    let runner = runner(config);
    let mut out =
        String::from("# dry run: the commands for a fresh network namespace; nothing was run\n");
    if let Some(secs) = config.close_wait_timeout_secs {
        let _ = writeln!(out, "{}", shell_line(&sysctl_command(secs)));
    }
    for family in &config.families {
        let desired = rules::chains(config, family);
        let Ok(steps) = iptables::plan(&desired, &SavedTable::default(), |_, _| {
            Ok::<_, std::convert::Infallible>(false)
        });
        for step in steps {
            let mut args = step.args();
            if config.wait_for_lock {
                args.push("-w".to_string());
            }
            let _ = writeln!(out, "{}", shell_line(&runner.command(&family.bin, &args)));
        }
    }
    out
}

/// Brings the nat table of each address family to the desired rules.
pub fn apply(config: &Config) -> Result<(), InitError> {
    let runner = runner(config);
    if let Some(secs) = config.close_wait_timeout_secs {
        let mut cmd = sysctl_command(secs);
        let out = cmd.output().map_err(|source| InitError::Spawn {
            command: shell_line(&cmd),
            source,
        })?;
        if !out.status.success() {
            return Err(InitError::Failed {
                command: shell_line(&cmd),
                status: out.status,
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
    }
    for family in &config.families {
        let save_args = ["-t".to_string(), "nat".to_string()];
        let saved = SavedTable::parse(&runner.read(&family.save_bin, &save_args)?);
        let desired = rules::chains(config, family);
        let steps: Vec<Step> = iptables::plan(&desired, &saved, |chain, spec| {
            runner.exists(&family.bin, chain, spec)
        })?;
        if steps.is_empty() && config.verbosity == Verbosity::Normal {
            println!(
                "# {}: the rules are already in place; nothing to do",
                family.bin
            );
        }
        for step in &steps {
            runner.change(&family.bin, step)?;
        }
    }
    Ok(())
}

fn runner(config: &Config) -> Runner {
    Runner {
        netns: config.netns.clone(),
        wait_for_lock: config.wait_for_lock,
        verbosity: config.verbosity,
    }
}

fn sysctl_command(secs: u32) -> std::process::Command {
    let mut cmd = std::process::Command::new("sysctl");
    cmd.arg("-w").arg(format!(
        "net.netfilter.nf_conntrack_tcp_timeout_close_wait={secs}"
    ));
    cmd
}

#[cfg(test)]
mod tests;
