//! Test support: runs the real `mesh-proxy` binary on ephemeral ports, a backend HTTP
//! server, and small raw-socket HTTP helpers.

#![allow(dead_code)]
// Test helpers panic on setup failures, like the tests that call them.
#![allow(clippy::unwrap_used)]

pub mod apps;
pub mod backend;
pub mod certs;
pub mod client;
pub mod destination;
pub mod netns;
pub mod pods;
pub mod policy;
pub mod replica;
pub mod server_thread;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[allow(unused_imports)] // Not every test reads metrics.
pub use apps::metric_sum;

pub const BIN: &str = env!("CARGO_BIN_EXE_mesh-proxy");

/// A running proxy. Killed when dropped.
pub struct Proxy {
    child: Child,
    pub inbound: SocketAddr,
    pub outbound: SocketAddr,
    pub admin: SocketAddr,
    logs: Arc<Mutex<String>>,
}

/// A `mesh-proxy` command with no inherited Linkerd or mesh variables.
pub fn command() -> Command {
    let mut cmd = Command::new(BIN);
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy();
        if k.starts_with("LINKERD2_PROXY_")
            || k.starts_with("MESH_PROXY_")
            || k == "LINKERD_AWAIT_DISABLED"
        {
            cmd.env_remove(&*k);
        }
    }
    cmd
}

impl Proxy {
    /// Starts the proxy with all listeners on 127.0.0.1 ephemeral ports (unless `env` sets
    /// them) and waits until it logs its addresses.
    pub fn start(env: &[(&str, &str)]) -> Proxy {
        let mut cmd = command();
        cmd.env("LINKERD2_PROXY_INBOUND_LISTEN_ADDR", "127.0.0.1:0")
            .env("LINKERD2_PROXY_OUTBOUND_LISTEN_ADDR", "127.0.0.1:0")
            .env("LINKERD2_PROXY_ADMIN_LISTEN_ADDR", "127.0.0.1:0");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.stdout(Stdio::null()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn mesh-proxy");
        let stderr = child.stderr.take().expect("stderr");
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
                panic!(
                    "mesh-proxy did not report its listeners; logs:\n{}",
                    logs.lock().unwrap()
                );
            };
            let addr: SocketAddr = field(&line, "addr").parse().expect("listening addr");
            match field(&line, "server").as_str() {
                "inbound" => inbound = Some(addr),
                "outbound" => outbound = Some(addr),
                "admin" => admin = Some(addr),
                other => panic!("unknown server {other:?}"),
            }
        }
        let proxy = Proxy {
            child,
            inbound: inbound.unwrap(),
            outbound: outbound.unwrap(),
            admin: admin.unwrap(),
            logs,
        };
        proxy.wait_ready();
        proxy
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(r) = http_request(
                self.admin,
                "GET /ready HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
            ) && r.status == 200
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        panic!("proxy never became ready; logs:\n{}", self.logs());
    }

    pub fn metrics(&self) -> String {
        let r = http_request(
            self.admin,
            "GET /metrics HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
        )
        .expect("GET /metrics");
        assert_eq!(r.status, 200);
        r.body_string()
    }

    /// The value of the metric line starting with `prefix` (name and labels), if present.
    pub fn metric(&self, prefix: &str) -> Option<f64> {
        metric_value(&self.metrics(), prefix)
    }

    pub fn logs(&self) -> String {
        self.logs.lock().unwrap().clone()
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .args(["-s", sig, &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the process to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(s) = self.child.try_wait().unwrap() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Pulls `name=value` (value optionally quoted) out of a log line.
fn field(line: &str, name: &str) -> String {
    let start = line
        .find(&format!("{name}="))
        .unwrap_or_else(|| panic!("no {name} in {line:?}"))
        + name.len()
        + 1;
    line[start..]
        .split_whitespace()
        .next()
        .unwrap()
        .trim_matches('"')
        .to_string()
}

/// The value of the first metric line starting with `prefix`.
pub fn metric_value(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// A raw HTTP/1 response.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    }

    pub fn body_string(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Whether the response says the server closes the connection after it.
    pub fn closes(&self) -> bool {
        self.header("connection")
            .is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("close")))
    }
}

/// Reads one response from a keep-alive connection: the head, then a body framed by
/// `Content-Length` or chunked encoding, or running to the close when it has neither.
pub fn read_response(r: &mut impl BufRead) -> std::io::Result<RawResponse> {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        if line == "\r\n" {
            break;
        }
        head.push_str(&line);
    }
    let head = head.trim_end().to_string();
    let mut res = parse_response(format!("{head}\r\n\r\n").as_bytes())?;
    let chunked = res
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
    if chunked {
        loop {
            let mut size = String::new();
            r.read_line(&mut size)?;
            let n = usize::from_str_radix(size.trim().split(';').next().unwrap_or(""), 16)
                .map_err(std::io::Error::other)?;
            if n == 0 {
                let mut end = String::new();
                while r.read_line(&mut end)? > 2 {
                    end.clear();
                }
                break;
            }
            let mut chunk = vec![0; n + 2];
            r.read_exact(&mut chunk)?;
            res.body.extend_from_slice(&chunk[..n]);
        }
    } else if let Some(len) = res.header("content-length") {
        let mut body = vec![0; len.parse().map_err(std::io::Error::other)?];
        r.read_exact(&mut body)?;
        res.body = body;
    } else if !matches!(res.status, 100..=199 | 204 | 304) {
        r.read_to_end(&mut res.body)?;
    }
    Ok(res)
}

/// Sends raw bytes and reads until the server closes the connection.
pub fn http_request(addr: SocketAddr, raw: &str) -> std::io::Result<RawResponse> {
    http_request_bytes(addr, raw.as_bytes())
}

pub fn http_request_bytes(addr: SocketAddr, raw: &[u8]) -> std::io::Result<RawResponse> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.write_all(raw)?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
    parse_response(&buf)
}

pub fn parse_response(buf: &[u8]) -> std::io::Result<RawResponse> {
    let text = String::from_utf8_lossy(buf);
    let Some(end) = text.find("\r\n\r\n") else {
        return Err(std::io::Error::other(format!(
            "no response head in {text:?}"
        )));
    };
    let head = text[..end].to_string();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line in {head:?}")))?;
    Ok(RawResponse {
        status,
        head,
        body: buf[end + 4..].to_vec(),
    })
}

/// Runs curl and returns (exit code, stdout, stderr).
pub fn curl(args: &[&str]) -> (i32, String, String) {
    curl_env(args, &[])
}

pub fn curl_env(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--max-time", "20"]).args(args);
    for var in [
        "http_proxy",
        "HTTP_PROXY",
        "https_proxy",
        "HTTPS_PROXY",
        "all_proxy",
        "ALL_PROXY",
        "no_proxy",
        "NO_PROXY",
    ] {
        cmd.env_remove(var);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("curl is installed (TEST_PACKAGES)");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// An address nothing listens on.
pub fn closed_port() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

/// Polls `f` until it returns true or `timeout` passes.
pub fn eventually(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    f()
}
