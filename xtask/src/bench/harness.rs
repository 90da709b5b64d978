//! What `bench balance` and `bench mesh` share: the flags for rounds, load and the mesh-proxy
//! binary, and the parsing of the rest.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};

/// The flags both benchmarks take; each sets its own defaults.
#[derive(Debug, Clone)]
pub struct Common {
    pub rounds: usize,
    pub duration: Duration,
    pub warm_up: Duration,
    pub connections: usize,
    pub mesh_bin: Option<PathBuf>,
    pub mesh_env: Vec<(String, String)>,
    pub load_cpu: usize,
}

impl Common {
    /// `--quick`: a smoke test, 1 round of 2 s after a 1 s warm-up.
    pub fn quick(&mut self) {
        self.rounds = 1;
        self.duration = Duration::from_secs(2);
        self.warm_up = Duration::from_secs(1);
    }

    /// Takes the flag `flags` is at, with its value; fails on a flag that is not common.
    /// Zero rounds, seconds or connections would measure nothing, so they count as one.
    pub fn take(&mut self, flags: &mut Flags) -> Result<()> {
        match flags.flag {
            "--rounds" => self.rounds = flags.count()?,
            "--duration" => self.duration = Duration::from_secs(flags.number()?.max(1)),
            "--warm-up" => self.warm_up = flags.seconds()?,
            "--connections" => self.connections = flags.count()?,
            "--load-cpu" => self.load_cpu = flags.number()? as usize,
            "--mesh-bin" => self.mesh_bin = Some(PathBuf::from(flags.value()?)),
            "--mesh-env" => {
                let value = flags.value()?;
                let (k, v) = value
                    .split_once('=')
                    .with_context(|| format!("invalid value {value:?} for --mesh-env: K=V"))?;
                self.mesh_env.push((k.to_string(), v.to_string()));
            }
            other => bail!("unknown flag {other:?}\n\n{}", flags.usage),
        }
        Ok(())
    }
}

/// Walks a benchmark's arguments flag by flag; errors name the flag and end with the usage.
pub struct Flags<'a> {
    args: std::slice::Iter<'a, String>,
    usage: &'static str,
    flag: &'a str,
}

impl<'a> Flags<'a> {
    pub fn new(args: &'a [String], usage: &'static str) -> Flags<'a> {
        Flags {
            args: args.iter(),
            usage,
            flag: "",
        }
    }

    /// The next flag; `-h` or `--help` prints the usage and exits.
    pub fn next_flag(&mut self) -> Option<&'a str> {
        self.flag = self.args.next()?;
        if matches!(self.flag, "-h" | "--help") {
            print!("{}", self.usage);
            std::process::exit(0);
        }
        Some(self.flag)
    }

    /// The current flag's value.
    pub fn value(&mut self) -> Result<&'a str> {
        let flag = self.flag;
        let usage = self.usage;
        self.args
            .next()
            .map(String::as_str)
            .with_context(|| format!("{flag} needs a value\n\n{usage}"))
    }

    pub fn number(&mut self) -> Result<u64> {
        let value = self.value()?;
        value.parse().with_context(|| {
            format!(
                "invalid value {value:?} for {}: expected a number",
                self.flag
            )
        })
    }

    /// A number of rounds or connections: at least one.
    pub fn count(&mut self) -> Result<usize> {
        Ok(self.number()?.max(1) as usize)
    }

    pub fn seconds(&mut self) -> Result<Duration> {
        Ok(Duration::from_secs(self.number()?))
    }

    /// A comma-separated list of names, each of which `parse` must know.
    pub fn list<T>(&mut self, parse: impl Fn(&str) -> Option<T>) -> Result<Vec<T>> {
        let (flag, usage) = (self.flag, self.usage);
        self.value()?
            .split(',')
            .map(|name| {
                parse(name).with_context(|| format!("invalid value {name:?} for {flag}\n\n{usage}"))
            })
            .collect()
    }
}
