//! Processes the benchmark starts, and what /proc says about their CPU time and memory.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::thread::JoinHandle;
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

    /// Sends SIGTERM and waits up to `timeout` for the process to exit.
    pub fn terminate(mut self, timeout: Duration) -> Result<()> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.child.try_wait()?.is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!("{} did not exit within {timeout:?} of SIGTERM", self.name)
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

/// The largest response [`get_text`] reads: a proxy's metrics page is some tens of KiB.
const MAX_TEXT: u64 = 16 << 20;

/// One HTTP/1.1 GET read to the end (the connection is closed after it); returns the body.
/// Used for admin pages such as `/metrics`.
pub fn get_text(addr: SocketAddr, path: &str) -> Result<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(1))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )?;
    let mut text = String::new();
    s.take(MAX_TEXT)
        .read_to_string(&mut text)
        .with_context(|| format!("reading http://{addr}{path}"))?;
    let (head, body) = text
        .split_once("\r\n\r\n")
        .with_context(|| format!("no HTTP response from http://{addr}{path}"))?;
    if !head.starts_with("HTTP/1.1 200") {
        bail!(
            "GET http://{addr}{path}: {}",
            head.lines().next().unwrap_or_default()
        );
    }
    Ok(body.to_string())
}

/// Pins this process and all its threads to `cpu` (where a benchmark's in-process backends
/// run), so the processes under test have their cores to themselves.
pub fn pin_self(cpu: usize) {
    let pinned = Command::new("taskset")
        .args([
            "-a",
            "-cp",
            &cpu.to_string(),
            &std::process::id().to_string(),
        ])
        .stdout(Stdio::null())
        .status();
    if !pinned.is_ok_and(|s| s.success()) {
        eprintln!("bench: could not pin the backends to CPU {cpu}; figures may be noisier");
    }
}

/// The last 20 lines of a log, for an error message.
pub fn log_tail(path: &std::path::Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// What one watched process (with its descendants) used while a [`Watch`] ran.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Usage {
    /// User plus system CPU seconds.
    pub cpu_s: f64,
    /// The largest resident memory seen, sampled every 100 ms, in bytes.
    pub peak_rss: u64,
}

/// Watches the CPU time and memory of some processes while the caller runs a load.
pub struct Watch {
    ticks: f64,
    sets: Vec<BTreeSet<u32>>,
    cpu_before: Vec<f64>,
    stop: Arc<AtomicBool>,
    sampler: Option<JoinHandle<Vec<u64>>>,
}

impl Watch {
    /// Starts watching `pids`, each with its descendants; none to watch is allowed.
    pub fn start(pids: &[u32]) -> Watch {
        let ticks = clock_ticks();
        let sets: Vec<BTreeSet<u32>> = pids.iter().map(|&p| tree(p)).collect();
        let cpu_before = sets.iter().map(|s| cpu_seconds(s, ticks)).collect();
        let stop = Arc::new(AtomicBool::new(false));
        let sampler = (!sets.is_empty()).then(|| {
            let (stop, sets) = (stop.clone(), sets.clone());
            std::thread::spawn(move || {
                let mut max = vec![0; sets.len()];
                // Bounded by the stop flag, which `finish` sets after the load's bounded run.
                while !stop.load(Relaxed) {
                    for (m, s) in max.iter_mut().zip(&sets) {
                        *m = (*m).max(rss_bytes(s));
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
                max
            })
        });
        Watch {
            ticks,
            sets,
            cpu_before,
            stop,
            sampler,
        }
    }

    /// Stops watching; one [`Usage`] per watched process, in the order given.
    pub fn finish(self) -> Vec<Usage> {
        self.stop.store(true, Relaxed);
        let rss = self.sampler.and_then(|s| s.join().ok()).unwrap_or_default();
        self.sets
            .iter()
            .zip(&self.cpu_before)
            .enumerate()
            .map(|(i, (set, before))| Usage {
                cpu_s: cpu_seconds(set, self.ticks) - before,
                peak_rss: rss.get(i).copied().unwrap_or(0),
            })
            .collect()
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
