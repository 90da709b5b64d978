//! The processes under attack: mesh-proxy with its log, memory and fds watched, a probe that
//! keeps asking it for a page, and bounded runs of the `mesh` CLI.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::wire;

/// A proxy above this RSS is killed: the harness must stay bounded even when the proxy is not.
const RSS_KILL_BYTES: u64 = 1536 << 20;
/// How much of the proxy's log is kept for the report; panics are counted on all of it.
const LOG_KEEP_BYTES: usize = 1 << 20;

/// A running mesh-proxy, killed when dropped.
pub struct Proxy {
    child: Child,
    pub inbound: SocketAddr,
    pub outbound: SocketAddr,
    pub admin: SocketAddr,
    log: Arc<Log>,
    watch: Arc<Watch>,
}

#[derive(Default)]
struct Log {
    text: Mutex<String>,
    panics: AtomicUsize,
    first_panic: Mutex<Option<String>>,
}

#[derive(Default)]
struct Watch {
    stop: AtomicBool,
    peak_rss: AtomicU64,
    killed_at_rss: AtomicU64,
}

/// Memory and descriptors at one moment.
#[derive(Debug, Clone, Copy)]
pub struct Usage {
    pub rss: u64,
    pub fds: usize,
}

impl Proxy {
    /// Starts `bin` with every listener on a 127.0.0.1 ephemeral port, `env` on top.
    pub fn start(bin: &Path, env: &[(&str, String)]) -> Result<Proxy> {
        let mut proxy = Proxy::start_in(&[], bin, env)?;
        proxy.wait_ready()?;
        Ok(proxy)
    }

    /// Like [`Proxy::start`], run through `wrapper` (such as `ip netns exec NS`), which must
    /// exec the proxy so that its pid is the proxy's. Returns once the listeners are up,
    /// without asking `/ready`: the admin port may be out of this process's reach.
    pub fn start_in(wrapper: &[String], bin: &Path, env: &[(&str, String)]) -> Result<Proxy> {
        let mut cmd = match wrapper.split_first() {
            Some((program, args)) => {
                let mut cmd = Command::new(program);
                cmd.args(args).arg(bin);
                cmd
            }
            None => Command::new(bin),
        };
        for (k, _) in std::env::vars_os() {
            let k = k.to_string_lossy();
            if k.starts_with("LINKERD2_PROXY_") || k.starts_with("MESH_PROXY_") {
                cmd.env_remove(&*k);
            }
        }
        cmd.env("LINKERD2_PROXY_INBOUND_LISTEN_ADDR", "127.0.0.1:0")
            .env("LINKERD2_PROXY_OUTBOUND_LISTEN_ADDR", "127.0.0.1:0")
            .env("LINKERD2_PROXY_ADMIN_LISTEN_ADDR", "127.0.0.1:0")
            .env("LINKERD2_PROXY_LOG", "warn,mesh_proxy=info");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().context("starting mesh-proxy")?;
        let stderr = child.stderr.take().context("mesh-proxy stderr")?;
        let log = Arc::new(Log::default());
        let (tx, rx) = mpsc::channel();
        let sink = log.clone();
        std::thread::spawn(move || read_log(stderr, &sink, &tx));
        let watch = Arc::new(Watch::default());
        let pid = child.id();
        let watcher = watch.clone();
        std::thread::spawn(move || watch_rss(pid, &watcher));

        let (mut inbound, mut outbound, mut admin) = (None, None, None);
        let deadline = Instant::now() + Duration::from_secs(10);
        while inbound.is_none() || outbound.is_none() || admin.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(line) = rx.recv_timeout(left) else {
                let _ = child.kill();
                let _ = child.wait();
                bail!("mesh-proxy did not report its listeners: {}", log.tail());
            };
            let (Some(server), Some(addr)) = (field(&line, "server"), field(&line, "addr")) else {
                continue;
            };
            let addr: SocketAddr = addr.parse().with_context(|| format!("in {line:?}"))?;
            match server {
                "inbound" => inbound = Some(addr),
                "outbound" => outbound = Some(addr),
                "admin" => admin = Some(addr),
                _ => {}
            }
        }
        let (Some(inbound), Some(outbound), Some(admin)) = (inbound, outbound, admin) else {
            bail!("mesh-proxy listeners missing");
        };
        Ok(Proxy {
            child,
            inbound,
            outbound,
            admin,
            log,
            watch,
        })
    }

    fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(r) = wire::get(self.admin, "/ready", Duration::from_secs(1))
                && r.status == 200
            {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        bail!("mesh-proxy never became ready: {}", self.log.tail())
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn usage(&self) -> Usage {
        Usage {
            rss: rss_bytes(self.pid(), "VmRSS:").unwrap_or(0),
            fds: std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
                .map(|d| d.count())
                .unwrap_or(0),
        }
    }

    /// The proxy's TCP sockets other than its listeners, by local side and state, e.g.
    /// `outbound CLOSE-WAIT×4, upstream ESTABLISHED×1`: what a growth in fds is made of.
    pub fn sockets(&self) -> String {
        let pid = self.pid();
        let inodes: std::collections::BTreeSet<String> =
            std::fs::read_dir(format!("/proc/{pid}/fd"))
                .into_iter()
                .flatten()
                .flatten()
                .filter_map(|e| std::fs::read_link(e.path()).ok())
                .filter_map(|l| {
                    let l = l.to_string_lossy().into_owned();
                    Some(l.strip_prefix("socket:[")?.strip_suffix(']')?.to_string())
                })
                .collect();
        let table = std::fs::read_to_string(format!("/proc/{pid}/net/tcp")).unwrap_or_default();
        let mut counts = std::collections::BTreeMap::new();
        for line in table.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (Some(local), Some(state), Some(inode)) = (f.get(1), f.get(3), f.get(9)) else {
                continue;
            };
            if !inodes.contains(*inode) || *state == "0A" {
                continue;
            }
            let port = local
                .rsplit(':')
                .next()
                .and_then(|p| u16::from_str_radix(p, 16).ok());
            let side = match port {
                Some(p) if p == self.inbound.port() => "inbound",
                Some(p) if p == self.outbound.port() => "outbound",
                Some(p) if p == self.admin.port() => "admin",
                _ => "upstream",
            };
            let state = match *state {
                "01" => "ESTABLISHED",
                "04" => "FIN-WAIT-1",
                "05" => "FIN-WAIT-2",
                "06" => "TIME-WAIT",
                "08" => "CLOSE-WAIT",
                "09" => "LAST-ACK",
                other => other,
            };
            *counts.entry(format!("{side} {state}")).or_insert(0) += 1;
        }
        if counts.is_empty() {
            return "no sockets".to_string();
        }
        counts
            .iter()
            .map(|(k, n)| format!("{k}×{n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The largest RSS seen so far, sampled every 100 ms.
    pub fn peak_rss(&self) -> u64 {
        self.watch.peak_rss.load(Relaxed).max(self.usage().rss)
    }

    /// Non-zero when the watcher killed the proxy for its memory.
    pub fn killed_at_rss(&self) -> u64 {
        self.watch.killed_at_rss.load(Relaxed)
    }

    pub fn signal(&self, sig: Signal) -> Result<()> {
        kill(Pid::from_raw(self.pid() as i32), sig).with_context(|| format!("sending {sig}"))
    }

    /// The exit status, if the proxy has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.exited() {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Panics in the log so far, and the first one.
    pub fn panics(&self) -> (usize, Option<String>) {
        let first = self
            .log
            .first_panic
            .lock()
            .map(|p| p.clone())
            .unwrap_or(None);
        (self.log.panics.load(Relaxed), first)
    }

    /// `/metrics` and its size in bytes (the body is kept up to `keep` bytes).
    pub fn metrics(&self, keep: usize) -> Result<(String, u64)> {
        let r = wire::get_keep(self.admin, "/metrics", Duration::from_secs(60), keep)?;
        Ok((String::from_utf8_lossy(&r.body).into_owned(), r.body_len))
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.watch.stop.store(true, Relaxed);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Log {
    fn tail(&self) -> String {
        let text = self.text.lock().map(|t| t.clone()).unwrap_or_default();
        let start = text.len().saturating_sub(2000);
        let start = (start..text.len())
            .find(|&i| text.is_char_boundary(i))
            .unwrap_or(text.len());
        text[start..].trim().to_string()
    }
}

fn read_log(stderr: impl Read, log: &Log, listening: &mpsc::Sender<String>) {
    for line in BufReader::new(stderr).lines() {
        let Ok(line) = line else { break };
        if line.contains("listening") {
            let _ = listening.send(line.clone());
        }
        if line.contains("panicked")
            && log.panics.fetch_add(1, Relaxed) == 0
            && let Ok(mut first) = log.first_panic.lock()
        {
            *first = Some(line.chars().take(300).collect());
        }
        if let Ok(mut text) = log.text.lock()
            && text.len() < LOG_KEEP_BYTES
        {
            text.push_str(&line);
            text.push('\n');
        }
    }
}

/// Samples the proxy's RSS every 100 ms until it is dropped or gone (at most a day).
fn watch_rss(pid: u32, watch: &Watch) {
    for _ in 0..864_000 {
        if watch.stop.load(Relaxed) {
            return;
        }
        let Some(rss) = rss_bytes(pid, "VmRSS:") else {
            return;
        };
        watch.peak_rss.fetch_max(rss, Relaxed);
        if rss > RSS_KILL_BYTES {
            watch.killed_at_rss.store(rss, Relaxed);
            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A `/proc/PID/status` memory line (`VmRSS:`, `VmHWM:`) in bytes.
pub fn rss_bytes(pid: u32, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: u64 = status
        .lines()
        .find(|l| l.starts_with(key))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kb * 1024)
}

/// `name=value` (value optionally quoted) out of a log line.
fn field<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let start = line.find(&format!("{name}="))? + name.len() + 1;
    Some(line[start..].split_whitespace().next()?.trim_matches('"'))
}

/// A request every 100 ms on a new connection, as any other client of the proxy would make,
/// timing each one.
pub struct Probe {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<ProbeStats>,
}

#[derive(Debug, Clone, Default)]
pub struct ProbeStats {
    pub ok: u32,
    pub failed: u32,
    pub worst: Duration,
    pub last_error: Option<String>,
}

impl Probe {
    /// Probes `GET /probe` on `addr` (the inbound port, which forwards to the backend).
    pub fn start(addr: SocketAddr) -> Probe {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::spawn(move || {
            let mut stats = ProbeStats::default();
            // Bounded: a day of probes at most.
            for _ in 0..864_000 {
                if flag.load(Relaxed) {
                    break;
                }
                let start = Instant::now();
                let result = wire::get(addr, "/probe", Duration::from_secs(20));
                stats.worst = stats.worst.max(start.elapsed());
                match result {
                    Ok(r) if r.status == 200 => stats.ok += 1,
                    Ok(r) => {
                        stats.failed += 1;
                        stats.last_error = Some(format!("status {}", r.status));
                    }
                    Err(e) => {
                        stats.failed += 1;
                        stats.last_error = Some(e.to_string());
                    }
                }
                let next = start + Duration::from_millis(100);
                std::thread::sleep(next.saturating_duration_since(Instant::now()));
            }
            stats
        });
        Probe { stop, handle }
    }

    pub fn finish(self) -> ProbeStats {
        self.stop.store(true, Relaxed);
        self.handle.join().unwrap_or_default()
    }
}
