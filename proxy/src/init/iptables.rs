//! Running iptables, reading what iptables-save reports, and deciding what to change.
//!
//! Re-running `init` must not duplicate rules. A chain is left alone when iptables-save shows
//! exactly our rules in our order (same comment markers, and `iptables -C` confirms each rule);
//! otherwise it is flushed and rebuilt. The jump from the built-in chain is kept when it is the
//! only one and matches, and otherwise replaced by exactly one.

use std::collections::BTreeSet;
use std::io::{self, Write as _};
use std::process::{Command, ExitStatus, Output};

use super::config::Verbosity;
use super::rules::{ChainRules, comment_of};

/// A command that failed; the message shows the command so it can be re-run by hand.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// The command could not be started, usually because the binary is missing.
    #[error("cannot run `{command}`")]
    Spawn {
        command: String,
        #[source]
        source: io::Error,
    },
    /// The command ran and exited with a failure.
    #[error("`{command}` failed ({status}): {stderr}")]
    Failed {
        command: String,
        status: ExitStatus,
        stderr: String,
    },
}

/// One change to the nat table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    NewChain(String),
    Flush(String),
    Append { chain: String, spec: Vec<String> },
    Delete { chain: String, spec: Vec<String> },
}

impl Step {
    /// The iptables arguments for this step.
    pub fn args(&self) -> Vec<String> {
        let mut args = vec!["-t".to_string(), "nat".to_string()];
        match self {
            Step::NewChain(chain) => args.extend(["-N".to_string(), chain.clone()]),
            Step::Flush(chain) => args.extend(["-F".to_string(), chain.clone()]),
            Step::Append { chain, spec } => {
                args.extend(["-A".to_string(), chain.clone()]);
                args.extend(spec.iter().cloned());
            }
            Step::Delete { chain, spec } => {
                args.extend(["-D".to_string(), chain.clone()]);
                args.extend(spec.iter().cloned());
            }
        }
        args
    }
}

/// The nat table as iptables-save printed it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SavedTable {
    pub chains: BTreeSet<String>,
    /// Each `-A` line as (chain, the arguments after the chain name), in order.
    pub rules: Vec<(String, Vec<String>)>,
}

impl SavedTable {
    /// Reads `iptables-save -t nat` output. Lines it does not know are skipped.
    pub fn parse(text: &str) -> SavedTable {
        let mut table = SavedTable::default();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix(':') {
                if let Some(name) = rest.split_whitespace().next() {
                    table.chains.insert(name.to_string());
                }
            } else if line.starts_with("-A ") {
                let mut words = split_words(line).into_iter().skip(1);
                if let Some(chain) = words.next() {
                    table.rules.push((chain, words.collect()));
                }
            }
        }
        table
    }

    fn rules_in<'a>(&'a self, chain: &'a str) -> impl Iterator<Item = &'a Vec<String>> + 'a {
        self.rules
            .iter()
            .filter(move |(c, _)| c == chain)
            .map(|(_, spec)| spec)
    }
}

/// The steps that bring the saved table to the desired chains. `exact(chain, spec)` says whether
/// that rule exists exactly (`iptables -C`); it is asked only when the saved table already looks
/// right, so a fresh namespace costs no extra commands.
pub fn plan<E>(
    desired: &[ChainRules],
    saved: &SavedTable,
    mut exact: impl FnMut(&str, &[String]) -> Result<bool, E>,
) -> Result<Vec<Step>, E> {
    let mut steps = Vec::new();
    for chain in desired {
        let exists = saved.chains.contains(chain.name);
        let current: Vec<&Vec<String>> = saved.rules_in(chain.name).collect();
        let saved_comments: Vec<&str> = current.iter().filter_map(|s| comment_of(s)).collect();
        let mut up_to_date =
            exists && current.len() == chain.rules.len() && saved_comments == chain.comments();
        if up_to_date {
            for rule in &chain.rules {
                if !exact(chain.name, rule)? {
                    up_to_date = false;
                    break;
                }
            }
        }
        if !up_to_date {
            steps.push(if exists {
                Step::Flush(chain.name.to_string())
            } else {
                Step::NewChain(chain.name.to_string())
            });
            steps.extend(chain.rules.iter().map(|spec| Step::Append {
                chain: chain.name.to_string(),
                spec: spec.clone(),
            }));
        }

        let jumps: Vec<&Vec<String>> = saved
            .rules_in(chain.hook)
            .filter(|spec| jumps_to(spec, chain.name))
            .collect();
        let jump_ok = jumps.len() == 1 && exact(chain.hook, &chain.jump)?;
        if !jump_ok {
            steps.extend(jumps.into_iter().map(|spec| Step::Delete {
                chain: chain.hook.to_string(),
                spec: spec.clone(),
            }));
            steps.push(Step::Append {
                chain: chain.hook.to_string(),
                spec: chain.jump.clone(),
            });
        }
    }
    Ok(steps)
}

fn jumps_to(spec: &[String], chain: &str) -> bool {
    spec.windows(2)
        .any(|w| (w[0] == "-j" || w[0] == "--jump" || w[0] == "-g") && w[1] == chain)
}

/// Splits an iptables-save line into words, undoing its double quotes and backslash escapes.
pub fn split_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quoted = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                quoted = !quoted;
                in_word = true;
            }
            '\\' if quoted => {
                if let Some(next) = chars.next() {
                    word.push(next);
                }
            }
            c if c.is_whitespace() && !quoted => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

/// Runs iptables commands, in another network namespace if asked, echoing what changes.
#[derive(Debug, Clone)]
pub struct Runner {
    pub netns: Option<String>,
    pub wait_for_lock: bool,
    pub verbosity: Verbosity,
}

impl Runner {
    /// The command as it will run, `nsenter` included when a namespace was given.
    pub fn command(&self, bin: &str, args: &[String]) -> Command {
        let mut cmd = match &self.netns {
            Some(netns) => {
                let mut cmd = Command::new("nsenter");
                cmd.arg(format!("--net={netns}")).arg("--").arg(bin);
                cmd
            }
            None => Command::new(bin),
        };
        cmd.args(args);
        cmd
    }

    /// Runs a command that changes the table, with `-w` when asked.
    pub fn change(&self, bin: &str, step: &Step) -> Result<Output, InitError> {
        let mut args = step.args();
        if self.wait_for_lock {
            args.push("-w".to_string());
        }
        let mut cmd = self.command(bin, &args);
        if self.verbosity == Verbosity::Normal {
            // The echo is informational: a closed stdout must not stop the rules going in.
            let _ = writeln!(io::stdout(), "{}", shell_line(&cmd));
        }
        let out = output(&mut cmd)?;
        if out.status.success() {
            Ok(out)
        } else {
            Err(failed(&cmd, &out))
        }
    }

    /// Runs a command that only reads, and returns its stdout.
    pub fn read(&self, bin: &str, args: &[String]) -> Result<String, InitError> {
        let mut cmd = self.command(bin, args);
        let out = output(&mut cmd)?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(failed(&cmd, &out))
        }
    }

    /// `iptables -C`: whether exactly this rule exists. Exit 1 means no; other failures are
    /// errors.
    pub fn exists(&self, bin: &str, chain: &str, spec: &[String]) -> Result<bool, InitError> {
        let mut args = vec!["-t".to_string(), "nat".to_string(), "-C".to_string()];
        args.push(chain.to_string());
        args.extend(spec.iter().cloned());
        if self.wait_for_lock {
            args.push("-w".to_string());
        }
        let mut cmd = self.command(bin, &args);
        let out = output(&mut cmd)?;
        match out.status.code() {
            Some(0) => Ok(true),
            Some(1) => Ok(false),
            _ => Err(failed(&cmd, &out)),
        }
    }
}

fn output(cmd: &mut Command) -> Result<Output, InitError> {
    cmd.output().map_err(|source| InitError::Spawn {
        command: shell_line(cmd),
        source,
    })
}

fn failed(cmd: &Command, out: &Output) -> InitError {
    InitError::Failed {
        command: shell_line(cmd),
        status: out.status,
        stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
    }
}

/// The command as a line a shell would run the same way.
pub fn shell_line(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|arg| shell_quote(&arg.to_string_lossy()))
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn shell_quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:,=+@%".contains(c));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}
