//! Bounded runs of a command: killed past a time or a memory limit, output kept up to a size.

use std::io::Read;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::proc::rss_bytes;

/// One bounded run of a command.
#[derive(Debug)]
pub struct Run {
    pub status: Option<ExitStatus>,
    /// Why the harness killed it, if it did.
    pub killed: Option<String>,
    pub elapsed: Duration,
    pub peak_rss: u64,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Run {
    /// `exit 2 in 12 ms, peak RSS 8.1 MB`, or what killed it. RSS is sampled every 5 ms, so
    /// a run of a few milliseconds shows none.
    pub fn describe(&self) -> String {
        use std::os::unix::process::ExitStatusExt;
        let how = match (&self.killed, self.status) {
            (Some(why), _) => format!("killed by the harness ({why})"),
            (None, Some(s)) => match (s.code(), s.signal()) {
                (Some(code), _) => format!("exit {code}"),
                (None, Some(sig)) => format!("signal {sig}"),
                _ => s.to_string(),
            },
            (None, None) => "no status".to_string(),
        };
        match self.peak_rss {
            // Sampled before the program was loaded: nothing worth showing.
            0..1_000_000 => format!("{how} in {}", super::ms(self.elapsed)),
            rss => format!(
                "{how} in {}, peak RSS {}",
                super::ms(self.elapsed),
                super::mb(rss)
            ),
        }
    }

    pub fn code(&self) -> Option<i32> {
        self.status.and_then(|s| s.code())
    }

    pub fn panicked(&self) -> bool {
        self.stderr.contains("panicked")
    }

    /// The first line of stderr, shortened.
    pub fn first_error(&self) -> String {
        let line = self.stderr.lines().next().unwrap_or("").trim();
        line.chars().take(80).collect()
    }
}

/// Runs `cmd` with stdin from `stdin`, killing it past `timeout` or `rss_limit` bytes.
pub fn run_bounded(cmd: &mut Command, timeout: Duration, rss_limit: u64) -> Result<Run> {
    const KEEP: u64 = 16 << 20;
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = cmd.spawn().context("starting the command")?;
    let out = child.stdout.take().context("stdout")?;
    let err = child.stderr.take().context("stderr")?;
    let out = std::thread::spawn(move || drain(out, KEEP));
    let err = std::thread::spawn(move || drain(err, KEEP));
    let (mut peak, mut killed) = (0, None);
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        peak = rss_bytes(child.id(), "VmHWM:").unwrap_or(0).max(peak);
        if peak > rss_limit {
            killed = Some(format!("RSS over {}", super::mb(rss_limit)));
        } else if start.elapsed() > timeout {
            killed = Some(format!("running over {} s", timeout.as_secs()));
        }
        if killed.is_some() {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let elapsed = start.elapsed();
    let stdout = out.join().unwrap_or_default();
    let stderr = String::from_utf8_lossy(&err.join().unwrap_or_default()).into_owned();
    Ok(Run {
        status,
        killed,
        elapsed,
        peak_rss: peak,
        stdout,
        stderr,
    })
}

/// Reads `r` to the end, keeping the first `keep` bytes.
fn drain(mut r: impl Read, keep: u64) -> Vec<u8> {
    let mut kept = Vec::new();
    let _ = (&mut r).take(keep).read_to_end(&mut kept);
    let _ = std::io::copy(&mut r, &mut std::io::sink());
    kept
}
