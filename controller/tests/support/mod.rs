//! Running the real `mesh-controller` against the fake API server: one harness for the
//! end-to-end tests and the benchmarks (which include this module by path), so that starting
//! the binary, finding its listeners, reading its log and stopping it are written once.
#![allow(dead_code)] // Each test or benchmark uses part of it.
#![allow(clippy::unwrap_used)] // Harness failures are test failures.

/// What runs in those pods besides the proxy, shared with the proxy's tests.
#[path = "../../../proxy/tests/support/apps.rs"]
pub mod apps;
pub mod identity;
pub mod injector;
/// Pods in network namespaces, shared with the proxy's tests.
#[path = "../../../proxy/tests/support/netns.rs"]
pub mod netns;
/// Meshed pods and the scenarios every identity source must pass, shared with the proxy's
/// tests.
#[path = "../../../proxy/tests/support/pods.rs"]
pub mod pods;
pub mod proxy;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a start, a log line or a condition may take before the harness gives up.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// The CRDs `mesh install --crds` renders (its golden output): the destination controller waits
/// for the watches of ServiceProfiles and the `policy.linkerd.io` kinds, as on a real cluster.
pub const CRDS: &str = include_str!("../../../testdata/install/crds.golden.yaml");

/// The binary for a benchmark: `$MESH_CONTROLLER`, else the one built beside the example.
pub fn bench_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("MESH_CONTROLLER") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/examples/<bench> → target/<profile>/mesh-controller
    let profile = exe.parent().and_then(|examples| examples.parent()).unwrap();
    profile.join("mesh-controller")
}

/// A running `mesh-controller`, killed on drop.
pub struct Controller {
    child: Child,
    log: Arc<Mutex<String>>,
    /// The admin server (`/metrics`, `/ready`, `/live`).
    pub admin: SocketAddr,
    /// The component's own listener (gRPC, or the webhook).
    pub addr: SocketAddr,
}

/// Spawns `command`, which must pass `--admin-addr 127.0.0.1:0` and the component's listener on
/// port 0, and waits until both are logged as listening (`server="admin"` and
/// `server="<server>"`). On failure: the exit status if it exited, and its log.
pub fn start(
    mut command: Command,
    server: &str,
) -> Result<Controller, (Option<ExitStatus>, String)> {
    command
        .env_remove("KUBECONFIG")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("mesh-controller starts");
    let (log, reader) = collect_log(child.stderr.take().expect("stderr is piped"));

    let deadline = Instant::now() + DEADLINE;
    loop {
        let text = log.lock().unwrap().clone();
        if let (Some(admin), Some(addr)) = (listening(&text, "admin"), listening(&text, server)) {
            return Ok(Controller {
                child,
                log,
                admin,
                addr,
            });
        }
        if let Ok(Some(status)) = child.try_wait() {
            // The process is gone, so the pipe ends: the reader drains it and stops.
            let _ = reader.join();
            let text = log.lock().unwrap().clone();
            return Err((Some(status), text));
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err((None, text));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A log that `pipe` is read into line by line, and the thread that reads it. The thread keeps
/// draining, so the process never blocks on a full pipe, and ends when the pipe does.
fn collect_log(pipe: impl Read + Send + 'static) -> (Arc<Mutex<String>>, JoinHandle<()>) {
    let log = Arc::new(Mutex::new(String::new()));
    let sink = log.clone();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            let mut text = sink.lock().unwrap();
            text.push_str(&line);
            text.push('\n');
        }
    });
    (log, reader)
}

/// The address of the `listening ... server="<server>"` log line.
fn listening(text: &str, server: &str) -> Option<SocketAddr> {
    let tag = format!("server=\"{server}\"");
    text.lines()
        .filter(|l| l.contains("listening") && l.contains(&tag))
        .find_map(|l| {
            let at = l.find("addr=")? + "addr=".len();
            l[at..].split_whitespace().next()?.parse().ok()
        })
}

/// Polls `check` every 20 ms until it holds (true) or `limit` passes (false).
pub fn wait_until(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if check() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Controller {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything logged so far.
    pub fn stderr(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    pub fn logged(&self, needle: &str) -> bool {
        self.log.lock().unwrap().contains(needle)
    }

    /// Polls the log until it contains `needle` (at most `limit`).
    pub fn wait_for_log(&self, needle: &str, limit: Duration) -> bool {
        wait_until(limit, || self.logged(needle))
    }

    /// `GET path` on the admin server: status and body (status 0 if it did not answer).
    pub fn admin_get(&self, path: &str) -> (u16, String) {
        get(self.admin, path)
    }

    /// Waits (at most `limit`) until `/ready` answers 200.
    pub fn wait_ready(&self, limit: Duration) -> bool {
        wait_until(limit, || self.admin_get("/ready").0 == 200)
    }

    /// Sends SIGTERM and waits (at most `limit`) for the exit.
    pub fn terminate(mut self, limit: Duration) -> Option<ExitStatus> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let mut status = None;
        wait_until(limit, || {
            status = self.child.try_wait().ok().flatten();
            status.is_some()
        });
        status
    }

    /// A field of `/proc/<pid>/status` in kB (`VmRSS`, `VmHWM`).
    pub fn status_kb(&self, field: &str) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
    }

    /// CPU time used so far (user + system), from `/proc/<pid>/stat`.
    pub fn cpu_time(&self) -> Option<Duration> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).ok()?;
        // Fields after the command name, which is in parentheses and may hold spaces.
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        let ticks: u64 =
            fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
        // The kernel's USER_HZ is 100 on every Linux architecture we run on.
        Some(Duration::from_millis(ticks * 10))
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `GET path` over HTTP/1.0: status and body; status 0 when nothing answered.
pub fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let Ok(mut stream) = TcpStream::connect(addr) else {
        return (0, String::new());
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    if write!(stream, "GET {path} HTTP/1.0\r\nHost: admin\r\n\r\n").is_err() {
        return (0, String::new());
    }
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}
