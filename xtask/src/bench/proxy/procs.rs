//! Processes the benchmark starts, and what /proc says about their CPU time and memory.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// A started process, killed with its process group's leader on drop.
pub struct Proc {
    pub name: String,
    child: Child,
}

impl Proc {
    /// Starts `cmd` pinned to `cpu` with taskset; output goes to `log`.
    pub fn spawn(name: &str, cpu: usize, cmd: &mut Command, log: &std::path::Path) -> Result<Proc> {
        Self::spawn_wrapped(name, cpu, &[], cmd, log)
    }

    /// Like [`Proc::spawn`], with `cmd` run by `wrapper` (a program and its arguments,
    /// such as valgrind), which must exec or stay the process the caller measures.
    pub fn spawn_wrapped(
        name: &str,
        cpu: usize,
        wrapper: &[String],
        cmd: &mut Command,
        log: &std::path::Path,
    ) -> Result<Proc> {
        let mut pinned = Command::new("taskset");
        pinned
            .args(["-c", &cpu.to_string()])
            .args(wrapper)
            .arg(cmd.get_program())
            .args(cmd.get_args())
            .envs(cmd.get_envs().filter_map(|(k, v)| v.map(|v| (k, v))))
            .stdin(Stdio::null())
            .stdout(Stdio::from(std::fs::File::create(log)?))
            .stderr(Stdio::from(std::fs::File::create(
                log.with_extension("err"),
            )?));
        let child = pinned.spawn().with_context(|| format!("starting {name}"))?;
        Ok(Proc {
            name: name.to_string(),
            child,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Fails if the process has exited, with its stderr.
    pub fn check_running(&mut self, log: &std::path::Path) -> Result<()> {
        if let Some(status) = self.child.try_wait()? {
            let err = std::fs::read_to_string(log.with_extension("err")).unwrap_or_default();
            bail!("{} exited ({status}):\n{}", self.name, err.trim());
        }
        Ok(())
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        // SIGTERM first so nginx and haproxy take their workers down with them.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free loopback port: bound, then released for the server to take.
pub fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// One HTTP/1.1 GET; returns the status code.
pub fn http_get(addr: SocketAddr, host: &str, path: &str) -> Result<u16> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(500))?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head)?;
    let text = String::from_utf8_lossy(&head);
    text.get(9..12)
        .and_then(|code| code.parse().ok())
        .with_context(|| format!("not an HTTP response from {addr}: {text:?}"))
}

/// Polls until `GET path` answers 200, for up to `timeout`.
pub fn wait_http_ok(addr: SocketAddr, host: &str, path: &str, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let last = http_get(addr, host, path);
        if let Ok(200) = last {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "GET http://{addr}{path} (Host: {host}) did not answer 200 within {timeout:?}: {last:?}"
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Clock ticks per second, for the CPU times in /proc/PID/stat.
pub fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// `pid` and all its descendants.
pub fn tree(pid: u32) -> BTreeSet<u32> {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(p) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            if let Some(ppid) = stat_fields(p).and_then(|f| f.get(1).and_then(|s| s.parse().ok())) {
                parents.push((p, ppid));
            }
        }
    }
    let mut set = BTreeSet::from([pid]);
    loop {
        let before = set.len();
        for &(p, ppid) in &parents {
            if set.contains(&ppid) {
                set.insert(p);
            }
        }
        if set.len() == before {
            return set;
        }
    }
}

/// The fields of /proc/PID/stat after the command name: state, ppid, … (so utime is index 11).
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    Some(rest.split_whitespace().map(str::to_string).collect())
}

/// User plus system CPU seconds used so far by the processes.
pub fn cpu_seconds(pids: &BTreeSet<u32>, ticks: f64) -> f64 {
    pids.iter()
        .filter_map(|&p| stat_fields(p))
        .map(|f| {
            let field = |i: usize| f.get(i).and_then(|s| s.parse::<f64>().ok()).unwrap_or(0.0);
            field(11) + field(12)
        })
        .sum::<f64>()
        / ticks
}

/// Resident memory of the largest process among them, in bytes: the one serving traffic
/// (nginx's worker, not its master, whose pages are mostly shared with it).
pub fn rss_bytes(pids: &BTreeSet<u32>) -> u64 {
    pids.iter()
        .filter_map(|p| std::fs::read_to_string(format!("/proc/{p}/status")).ok())
        .filter_map(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .max()
        .unwrap_or(0)
        * 1024
}
