//! Helpers for the traffic tests (`stat`, `tap`, `top`): real `mesh-proxy` processes on
//! loopback, a small HTTP backend, a client with a known traffic mix, and a fake API server
//! whose pod proxy reaches each proxy's admin port.
#![allow(dead_code)]
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mesh_testkube::FakeKube;

/// The `mesh-proxy` binary: the one `cargo test --workspace` built beside `mesh` when it is
/// fresh, else built (see `mesh_testkube::workspace`).
pub fn proxy_binary() -> PathBuf {
    let profile_dir = Path::new(env!("CARGO_BIN_EXE_mesh")).parent().unwrap();
    mesh_testkube::workspace::binary(profile_dir, "mesh-proxy", "mesh-proxy").unwrap()
}

/// A running `mesh-proxy`, killed on drop.
pub struct Proxy {
    child: Child,
    pub inbound: SocketAddr,
    pub outbound: SocketAddr,
    pub admin: SocketAddr,
    logs: Arc<Mutex<String>>,
}

impl Proxy {
    /// Starts a proxy on ephemeral loopback ports; inbound connections go to `forward`.
    pub fn start(forward: SocketAddr, env: &[(&str, &str)]) -> Proxy {
        let mut cmd = Command::new(proxy_binary());
        for (k, _) in std::env::vars_os() {
            let k = k.to_string_lossy().into_owned();
            if k.starts_with("LINKERD2_PROXY_") || k.starts_with("MESH_PROXY_") {
                cmd.env_remove(k);
            }
        }
        cmd.env("LINKERD2_PROXY_INBOUND_LISTEN_ADDR", "127.0.0.1:0")
            .env("LINKERD2_PROXY_OUTBOUND_LISTEN_ADDR", "127.0.0.1:0")
            .env("LINKERD2_PROXY_ADMIN_LISTEN_ADDR", "127.0.0.1:0")
            .env("MESH_PROXY_INBOUND_FORWARD_ADDR", forward.to_string());
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.stdout(Stdio::null()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn mesh-proxy");
        let stderr = child.stderr.take().unwrap();
        let logs = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if line.contains("listening") {
                    let _ = tx.send(line.clone());
                }
                let mut logs = sink.lock().unwrap();
                logs.push_str(&line);
                logs.push('\n');
            }
        });
        let (mut inbound, mut outbound, mut admin) = (None, None, None);
        let deadline = Instant::now() + Duration::from_secs(10);
        while inbound.is_none() || outbound.is_none() || admin.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(line) = rx.recv_timeout(left) else {
                let _ = child.kill();
                panic!("mesh-proxy did not start; logs:\n{}", logs.lock().unwrap());
            };
            let addr: SocketAddr = field(&line, "addr").parse().unwrap();
            match field(&line, "server").as_str() {
                "inbound" => inbound = Some(addr),
                "outbound" => outbound = Some(addr),
                "admin" => admin = Some(addr),
                _ => {}
            }
        }
        Proxy {
            child,
            inbound: inbound.unwrap(),
            outbound: outbound.unwrap(),
            admin: admin.unwrap(),
            logs,
        }
    }

    pub fn logs(&self) -> String {
        self.logs.lock().unwrap().clone()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn field(line: &str, name: &str) -> String {
    let start = line.find(&format!("{name}=")).unwrap() + name.len() + 1;
    line[start..]
        .split_whitespace()
        .next()
        .unwrap()
        .trim_matches('"')
        .to_string()
}

/// An HTTP/1.1 backend. `GET /…?ms=N` answers after N milliseconds; a path starting with
/// `/fail` answers 500, anything else 200.
pub struct Backend {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
}

impl Backend {
    pub fn start() -> Backend {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stopping.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                std::thread::spawn(move || serve(conn));
            }
        });
        Backend { addr, stop }
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(self.addr);
    }
}

fn serve(conn: TcpStream) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut writer = conn;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let mut length = 0usize;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            if header == "\r\n" || header == "\n" {
                break;
            }
            if let Some((name, value)) = header.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let target = request_line
            .split_whitespace()
            .nth(1)
            .unwrap_or("/")
            .to_string();
        let (path, query) = target.split_once('?').unwrap_or((&target, ""));
        let delay = query
            .split('&')
            .find_map(|kv| kv.strip_prefix("ms="))
            .and_then(|ms| ms.parse().ok())
            .unwrap_or(0);
        std::thread::sleep(Duration::from_millis(delay));
        let (status, text) = if path.starts_with("/fail") {
            ("500 Internal Server Error", "fail")
        } else {
            ("200 OK", "ok")
        };
        let response = format!(
            "HTTP/1.1 {status}\r\nContent-Length: {}\r\nContent-Type: text/plain\r\n\r\n{text}",
            text.len()
        );
        if writer.write_all(response.as_bytes()).is_err() {
            return;
        }
    }
}

/// A client sending `rps` requests per second to `addr` on one keep-alive connection, on a
/// fixed schedule, until dropped: every `fail_every`-th request goes to `/fail`, and every
/// request asks the backend to wait `ms` milliseconds.
pub struct Load {
    stop: Arc<AtomicBool>,
    pub sent: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Load {
    pub fn start(addr: SocketAddr, host: &str, rps: u32, fail_every: u64, ms: u64) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicU64::new(0));
        let (stopping, counter, host) = (stop.clone(), sent.clone(), host.to_string());
        let thread = std::thread::spawn(move || {
            let period = Duration::from_secs_f64(1.0 / f64::from(rps));
            let start = Instant::now();
            let mut conn: Option<BufReader<TcpStream>> = None;
            let mut n = 0u64;
            while !stopping.load(Ordering::Relaxed) {
                let due = start + period.mul_f64(n as f64);
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                n += 1;
                let path = if fail_every > 0 && n.is_multiple_of(fail_every) {
                    "/fail"
                } else {
                    "/ok"
                };
                let request = format!(
                    "GET {path}?ms={ms} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: stat-test\r\n\r\n"
                );
                if conn.is_none() {
                    conn = TcpStream::connect(addr).ok().map(BufReader::new);
                }
                let Some(c) = conn.as_mut() else { continue };
                if c.get_mut().write_all(request.as_bytes()).is_err() || read_response(c).is_err() {
                    conn = None;
                    continue;
                }
                counter.fetch_add(1, Ordering::Relaxed);
            }
        });
        Load {
            stop,
            sent,
            thread: Some(thread),
        }
    }
}

impl Load {
    /// Waits until `n` requests have been answered, so that the proxy has counted them.
    pub fn wait_for(&self, n: u64) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.sent.load(Ordering::Relaxed) < n {
            assert!(
                Instant::now() < deadline,
                "only {} of {n} requests answered in 30 s",
                self.sent.load(Ordering::Relaxed)
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn read_response(reader: &mut BufReader<TcpStream>) -> std::io::Result<u16> {
    let mut status_line = String::new();
    if reader.read_line(&mut status_line)? == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut length = 0usize;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        if header == "\r\n" {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    Ok(status)
}

/// A meshed Deployment: pods with a `linkerd-proxy` container whose admin port is 4191.
pub fn meshed_deployment(namespace: &str, name: &str, replicas: usize) -> String {
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  namespace: {namespace}
spec:
  replicas: {replicas}
  selector:
    matchLabels:
      app: {name}
  template:
    metadata:
      labels:
        app: {name}
    spec:
      serviceAccountName: {name}
      containers:
      - name: {name}
        image: example/{name}:1
        ports:
        - name: http
          containerPort: 8080
      - name: linkerd-proxy
        image: cr.l5d.io/linkerd/proxy:edge
        ports:
        - name: linkerd-proxy
          containerPort: 4143
        - name: linkerd-admin
          containerPort: 4191
"
    )
}

/// The names of the pods of Deployment `name` (label `app=name`), sorted.
pub fn pods_of(server: &FakeKube, namespace: &str, name: &str) -> Vec<String> {
    let mut pods: Vec<String> = server
        .objects("Pod", Some(namespace))
        .iter()
        .filter(|p| p["metadata"]["labels"]["app"] == name)
        .map(|p| p["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    pods.sort();
    pods
}

/// Runs `mesh` against `server` with a private kubeconfig and cache.
pub fn mesh(server: &FakeKube, args: &[&str]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = server.write_kubeconfig(dir.path()).unwrap();
    mesh_command(&kubeconfig, dir.path())
        .args(args)
        .output()
        .unwrap()
}

/// A `mesh` command with `--kubeconfig` set and no inherited kube environment.
pub fn mesh_command(kubeconfig: &Path, cache: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mesh"));
    cmd.arg("--kubeconfig")
        .arg(kubeconfig)
        .env_remove("KUBECONFIG")
        .env("KUBECACHEDIR", cache.join("cache"));
    cmd
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}
