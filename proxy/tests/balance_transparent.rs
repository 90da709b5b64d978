//! Transparent mode with a control plane, in a throwaway network namespace: a redirected
//! connection's requests go where the control plane says their `Host` is, and to the
//! connection's original destination when it does not know the name, including while the
//! control plane is down.
//!
//! ```text
//!  namespace (lo only)
//!  curl -H 'Host: web…' 127.0.0.1:8080 --OUTPUT REDIRECT--> :4140 mesh-proxy (uid 2102, exempt)
//!      --> 127.0.0.1:9090 "discovered" (the control plane's endpoint for web…)
//!      --> 127.0.0.1:8080 "original"   (names it does not know)
//!  mesh-proxy --> 127.0.0.1:8086 forwarder --unix socket--> the test's Destination server
//! ```
//!
//! The Destination server runs in the test process, outside the namespace; a Unix socket
//! (not bound to any network namespace) joins them. Needs root, iptables-nft, iproute2,
//! setpriv and Debian's python3 (`cargo xtask deps`); elsewhere it fails and says why.

// Tests panic on what they did not expect.
#![allow(clippy::unwrap_used)]

mod support;

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::destination::Destination;
use support::{BIN, eventually};

const PROXY_UID: &str = "2102";
/// Python from Debian: the pyenv shim cannot run in every environment.
const PYTHON: &str = "/usr/bin/python3";
const WEB: &str = "web.ns.svc.cluster.local:8080";

/// An HTTP/1.1 server that answers every GET with its name.
const NAMED_SERVER: &str = r#"
import http.server, sys
name = sys.argv[2]
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        body = (name + "\n").encode()
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
s = http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H)
print("ready", flush=True)
s.serve_forever()
"#;

/// Forwards TCP connections on 127.0.0.1:PORT to a Unix socket.
const UNIX_FORWARDER: &str = r#"
import socket, sys, threading
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", int(sys.argv[1])))
ls.listen(64)
print("ready", flush=True)
def pipe(a, b):
    try:
        while True:
            data = a.recv(65536)
            if not data:
                break
            b.sendall(data)
    except OSError:
        pass
    finally:
        try:
            b.shutdown(socket.SHUT_WR)
        except OSError:
            pass
def handle(c):
    u = socket.socket(socket.AF_UNIX)
    try:
        u.connect(sys.argv[2])
    except OSError:
        c.close()
        return
    threading.Thread(target=pipe, args=(u, c), daemon=True).start()
    pipe(c, u)
while True:
    c, _ = ls.accept()
    threading.Thread(target=handle, args=(c,), daemon=True).start()
"#;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Fails, saying why, unless this runs as root with the tools on PATH.
fn require_root_and_tools() {
    let uid = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| text(&o.stdout))
        .unwrap_or_default();
    assert_eq!(
        uid.trim(),
        "0",
        "this test needs root for a network namespace and iptables; CI runs as root"
    );
    for bin in ["ip", "iptables-nft", "setpriv", "curl", PYTHON] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {bin} >/dev/null")])
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            found,
            "{bin} is missing; `cargo xtask deps` installs the test packages"
        );
    }
}

/// A namespace with only loopback, and the processes started in it. Drop kills the
/// processes, then deletes the namespace, even on failure.
struct Namespace {
    name: String,
    children: Vec<Child>,
    dir: PathBuf,
    proxy_logs: Arc<Mutex<String>>,
}

impl Drop for Namespace {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Namespace {
    fn new() -> Namespace {
        let pid = std::process::id();
        let name = format!("mpt{pid}");
        let dir = std::env::temp_dir().join(format!("mesh-transparent-{pid}"));
        std::fs::create_dir_all(&dir).unwrap();
        let out = Command::new("ip")
            .args(["netns", "add", &name])
            .output()
            .unwrap();
        assert!(out.status.success(), "ip netns add: {}", text(&out.stderr));
        let ns = Namespace {
            name: name.clone(),
            children: Vec::new(),
            dir,
            proxy_logs: Arc::default(),
        };
        ns.run(&["ip", "link", "set", "lo", "up"]);
        ns
    }

    fn command(&self, cmd: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name]).args(cmd);
        c
    }

    fn run(&self, cmd: &[&str]) -> String {
        let out = self.command(cmd).output().unwrap();
        assert!(
            out.status.success(),
            "{cmd:?}: {}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        text(&out.stdout)
    }

    /// Starts a Python script that prints `ready` once it listens.
    fn python(&mut self, script: &str, args: &[&str]) {
        let mut cmd = self.command(&[PYTHON, "-c", script]);
        cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::null());
        let mut child = cmd.spawn().expect("start python in the namespace");
        let stdout = child.stdout.take().unwrap();
        self.children.push(child);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(Duration::from_secs(10)).unwrap_or_default();
        assert_eq!(line.trim(), "ready", "python {args:?} did not start");
    }

    /// The proxy, as the uid iptables exempts, with its control plane at 127.0.0.1:8086.
    fn proxy(&mut self) {
        let mut cmd = self.command(&[
            "setpriv",
            &format!("--reuid={PROXY_UID}"),
            &format!("--regid={PROXY_UID}"),
            "--clear-groups",
            BIN,
        ]);
        for (k, _) in std::env::vars_os() {
            let k = k.to_string_lossy();
            if k.starts_with("LINKERD2_PROXY_") || k.starts_with("MESH_PROXY_") {
                cmd.env_remove(&*k);
            }
        }
        cmd.env("LINKERD2_PROXY_OUTBOUND_LISTEN_ADDR", "127.0.0.1:4140")
            .env("LINKERD2_PROXY_INBOUND_LISTEN_ADDR", "127.0.0.1:4143")
            .env("LINKERD2_PROXY_ADMIN_LISTEN_ADDR", "127.0.0.1:4191")
            .env("LINKERD2_PROXY_DESTINATION_SVC_ADDR", "127.0.0.1:8086")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start mesh-proxy in the namespace");
        let stderr = child.stderr.take().unwrap();
        self.children.push(child);
        let logs = self.proxy_logs.clone();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stderr);
            let mut buf = [0; 4096];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                logs.lock().unwrap().push_str(&text(&buf[..n]));
            }
        });
        let ready = eventually(Duration::from_secs(10), || {
            let out = self
                .command(&[
                    "curl",
                    "-s",
                    "-o",
                    "/dev/null",
                    "-w",
                    "%{http_code}",
                    "http://127.0.0.1:4191/ready",
                ])
                .output()
                .unwrap();
            text(&out.stdout) == "200"
        });
        assert!(ready, "the proxy never became ready:\n{}", self.logs());
    }

    fn logs(&self) -> String {
        self.proxy_logs.lock().unwrap().clone()
    }

    /// `GET http://127.0.0.1:8080/` from root in the namespace (so redirected), with
    /// `Host: host`; the body (the name of whoever answered).
    fn get(&self, host: &str) -> String {
        let out = self
            .command(&[
                "curl",
                "-sS",
                "--max-time",
                "5",
                "-H",
                &format!("Host: {host}"),
                "http://127.0.0.1:8080/",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "curl with Host {host}: {}\nproxy logs:\n{}",
            text(&out.stderr),
            self.logs()
        );
        text(&out.stdout).trim().to_string()
    }
}

#[test]
fn redirected_requests_follow_the_control_plane_or_their_original_destination() {
    require_root_and_tools();
    let mut ns = Namespace::new();
    let socket = ns.dir.join("destination.sock");
    let dst = Destination::start_unix(&socket);
    dst.set(WEB, &["127.0.0.1:9090".parse().unwrap()]);

    ns.python(NAMED_SERVER, &["8080", "original"]);
    ns.python(NAMED_SERVER, &["9090", "discovered"]);
    ns.python(UNIX_FORWARDER, &["8086", socket.to_str().unwrap()]);
    // The application's connections to 127.0.0.1:8080 go to the proxy; the proxy's own
    // connections are exempt by uid.
    ns.run(&[
        "iptables-nft",
        "-t",
        "nat",
        "-A",
        "OUTPUT",
        "-p",
        "tcp",
        "-d",
        "127.0.0.1",
        "--dport",
        "8080",
        "-m",
        "owner",
        "!",
        "--uid-owner",
        PROXY_UID,
        "-j",
        "REDIRECT",
        "--to-ports",
        "4140",
    ]);
    ns.proxy();

    // A name the control plane knows goes to its endpoints; the rest to where the
    // connection was going.
    assert_eq!(ns.get(WEB), "discovered");
    assert_eq!(ns.get("other.ns.svc.cluster.local:8080"), "original");
    assert_eq!(ns.get("127.0.0.1:8080"), "original");
    // Outside the profile suffixes, the control plane is not asked.
    assert_eq!(ns.get("example.com"), "original");
    let gets = dst.gets();
    assert!(gets.iter().any(|g| g == WEB), "{gets:?}");
    assert!(!gets.iter().any(|g| g.contains("example.com")), "{gets:?}");

    // The control plane goes away: the known name keeps its last answer, and a name never
    // asked goes to its original destination at once.
    dst.kill();
    assert!(
        eventually(Duration::from_secs(10), || ns
            .logs()
            .contains("destination lookup failed")),
        "the proxy did not notice the control plane was gone:\n{}",
        ns.logs()
    );
    assert_eq!(ns.get(WEB), "discovered");
    let start = Instant::now();
    assert_eq!(ns.get("third.ns.svc.cluster.local:8080"), "original");
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "waited {:?} for a control plane that is gone",
        start.elapsed()
    );
}
