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

use std::time::{Duration, Instant};

use support::BIN;
use support::destination::Destination;
use support::netns::{DEADLINE, Lab, PROXY_UID, PYTHON, Pod, ProcId, require};

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

/// `GET http://127.0.0.1:8080/` from root in the namespace (so redirected), with
/// `Host: host`; the body (the name of whoever answered).
fn get(lab: &Lab, ns: &Pod, proxy: ProcId, host: &str) -> String {
    let reply = lab.curl(
        ns,
        &["-H", &format!("Host: {host}")],
        "http://127.0.0.1:8080/",
    );
    assert_eq!(
        reply.status,
        200,
        "curl with Host {host}: {reply:?}\nproxy logs:\n{}",
        lab.output(proxy)
    );
    reply.body.trim().to_string()
}

/// Starts a Python script that prints `ready` once it listens.
fn python(lab: &mut Lab, ns: &Pod, script: &str, args: &[&str]) {
    let cmd = [&[PYTHON, "-c", script][..], args].concat();
    let id = lab.spawn(ns, false, &cmd, &[]);
    assert!(
        lab.wait_output(id, "ready", DEADLINE),
        "python {args:?} did not start: {}",
        lab.output(id)
    );
}

#[test]
fn redirected_requests_follow_the_control_plane_or_their_original_destination() {
    require(&["iptables-nft"]);
    let mut lab = Lab::new(BIN);
    let ns = lab.namespace("transparent");
    let socket = lab.dir.join("destination.sock");
    let dst = Destination::start_unix(&socket);
    dst.set(WEB, &["127.0.0.1:9090".parse().unwrap()]);

    python(&mut lab, &ns, NAMED_SERVER, &["8080", "original"]);
    python(&mut lab, &ns, NAMED_SERVER, &["9090", "discovered"]);
    python(
        &mut lab,
        &ns,
        UNIX_FORWARDER,
        &["8086", socket.to_str().unwrap()],
    );
    // The application's connections to 127.0.0.1:8080 go to the proxy; the proxy's own
    // connections are exempt by uid.
    lab.run(
        &ns,
        &[
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
        ],
    );
    // The proxy, as the uid iptables exempts, with its control plane at 127.0.0.1:8086.
    let proxy = lab.proxy(
        &ns,
        &[
            ("LINKERD2_PROXY_INBOUND_LISTEN_ADDR", "127.0.0.1:4143"),
            ("LINKERD2_PROXY_DESTINATION_SVC_ADDR", "127.0.0.1:8086"),
        ],
    );
    lab.wait_proxy_ready(&ns);
    let get = |host: &str| get(&lab, &ns, proxy, host);

    // A name the control plane knows goes to its endpoints; the rest to where the
    // connection was going.
    assert_eq!(get(WEB), "discovered");
    assert_eq!(get("other.ns.svc.cluster.local:8080"), "original");
    assert_eq!(get("127.0.0.1:8080"), "original");
    // Outside the profile suffixes, the control plane is not asked.
    assert_eq!(get("example.com"), "original");
    let gets = dst.gets();
    assert!(gets.iter().any(|g| g == WEB), "{gets:?}");
    assert!(!gets.iter().any(|g| g.contains("example.com")), "{gets:?}");

    // The control plane goes away: the known name keeps its last answer, and a name never
    // asked goes to its original destination at once.
    dst.kill();
    assert!(
        lab.wait_output(proxy, "destination lookup failed", Duration::from_secs(10)),
        "the proxy did not notice the control plane was gone:\n{}",
        lab.output(proxy)
    );
    assert_eq!(get(WEB), "discovered");
    let start = Instant::now();
    assert_eq!(get("third.ns.svc.cluster.local:8080"), "original");
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "waited {:?} for a control plane that is gone",
        start.elapsed()
    );
}
