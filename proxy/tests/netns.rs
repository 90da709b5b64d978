//! End to end through real network namespaces: `mesh-proxy init` rules in a client and a server
//! namespace joined by a veth pair, curl in the client, an HTTP server in the server, and
//! transparent proxies on both sides running as the proxy user (uid 2102).
//!
//! ```text
//!  client ns (iptables-nft)                     server ns (iptables-legacy)
//!  curl 10.x.0.2:8080 --OUTPUT REDIRECT--> :4140 outbound proxy (uid 2102, exempt)
//!      --veth--> PREROUTING REDIRECT --> :4143 inbound proxy (uid 2102) --> :8080 server
//! ```
//!
//! The two sides use different iptables backends so both are covered. These tests need root,
//! iptables, iproute2 and setpriv; CI runs as root and installs them (`cargo xtask deps`).
//! Elsewhere they fail and say why.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::time::{Duration, Instant};

const MESH_PROXY: &str = env!("CARGO_BIN_EXE_mesh-proxy");
const PROXY_UID: &str = "2102";
/// Python from Debian: the pyenv shim cannot run as the proxy's uid.
const PYTHON: &str = "/usr/bin/python3";
const SERVER_PORT: u16 = 8080;

/// A transparent TCP forwarder: reads SO_ORIGINAL_DST, connects there, and pipes bytes both
/// ways, printing each original destination. It stands in for the proxy to show that the
/// rules alone route traffic correctly and keep the original destination.
const FORWARDER: &str = r#"
import socket, struct, sys, threading
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("0.0.0.0", int(sys.argv[1])))
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
    raw = c.getsockopt(socket.SOL_IP, 80, 16)  # SO_ORIGINAL_DST
    port = struct.unpack("!H", raw[2:4])[0]
    ip = socket.inet_ntoa(raw[4:8])
    print("original-dst %s:%d" % (ip, port), flush=True)
    u = socket.create_connection((ip, port))
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
        "this test needs root for network namespaces, veth and iptables; CI runs as root"
    );
    for bin in [
        "ip",
        "iptables-nft",
        "iptables-legacy",
        "setpriv",
        "curl",
        PYTHON,
    ] {
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

/// Two namespaces joined by a veth pair, and the processes started in them. Drop kills the
/// processes, then deletes the namespaces (which removes the veth pair), even on failure.
struct Topology {
    children: Vec<Child>,
    namespaces: Vec<String>,
    client: String,
    server: String,
    server_ip: String,
    dir: PathBuf,
}

impl Drop for Topology {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        for ns in &self.namespaces {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(out.status.success(), "ip {args:?}: {}", text(&out.stderr));
}

impl Topology {
    /// Namespaces `mpc<pid><tag>`/`mps<pid><tag>` with 10.233.<n>.1 and .2 on a veth pair.
    fn new(tag: &str, subnet: u8) -> Topology {
        let pid = std::process::id();
        let client = format!("mpc{pid}{tag}");
        let server = format!("mps{pid}{tag}");
        let dir = std::env::temp_dir().join(format!("mesh-netns-{pid}-{tag}"));
        let mut topo = Topology {
            children: Vec::new(),
            namespaces: Vec::new(),
            client: client.clone(),
            server: server.clone(),
            server_ip: format!("10.233.{subnet}.2"),
            dir: dir.clone(),
        };
        for ns in [&client, &server] {
            ip(&["netns", "add", ns]);
            topo.namespaces.push(ns.clone());
        }
        let (vc, vs) = (format!("vc{pid}{tag}"), format!("vs{pid}{tag}"));
        ip(&["link", "add", &vc, "type", "veth", "peer", "name", &vs]);
        ip(&["link", "set", &vc, "netns", &client]);
        ip(&["link", "set", &vs, "netns", &server]);
        for (ns, dev, host) in [(&client, &vc, 1), (&server, &vs, 2)] {
            let addr = format!("10.233.{subnet}.{host}/24");
            ip(&["-n", ns, "addr", "add", &addr, "dev", dev]);
            ip(&["-n", ns, "link", "set", dev, "up"]);
            ip(&["-n", ns, "link", "set", "lo", "up"]);
        }
        std::fs::create_dir_all(&dir).expect("create the server's directory");
        topo
    }

    fn exec(&self, ns: &str, cmd: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", ns])
            .args(cmd)
            .output()
            .expect("run ip netns exec")
    }

    /// `mesh-proxy init` with the flags the injected `linkerd-init` container passes.
    fn init(&self, ns: &str, backend: &str) {
        let bin = format!("iptables-{backend}");
        let save = format!("{bin}-save");
        let out = self.exec(
            ns,
            &[
                MESH_PROXY,
                "init",
                "--firewall-bin-path",
                &bin,
                "--firewall-save-bin-path",
                &save,
                "--ipv6=false",
                "--incoming-proxy-port",
                "4143",
                "--outgoing-proxy-port",
                "4140",
                "--proxy-uid",
                PROXY_UID,
                "--inbound-ports-to-ignore",
                "4190,4191",
                // Legacy iptables takes a machine-wide lock that other tests may hold.
                "--use-wait-flag",
            ],
        );
        assert!(
            out.status.success(),
            "mesh-proxy init in {ns}: {}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
    }

    /// Starts a command in a namespace, as the proxy user when `as_proxy` is set.
    fn spawn(&mut self, ns: &str, as_proxy: bool, cmd: &[&str], env: &[(&str, &str)]) -> usize {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", ns]);
        if as_proxy {
            command.args([
                "setpriv",
                &format!("--reuid={PROXY_UID}"),
                &format!("--regid={PROXY_UID}"),
                "--clear-groups",
            ]);
        }
        command
            .args(cmd)
            .envs(env.iter().copied())
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("start {cmd:?} in {ns}: {e}"));
        self.children.push(child);
        self.children.len() - 1
    }

    /// The HTTP server in the server namespace, serving one file with a known body.
    fn start_server(&mut self) -> String {
        let body = format!("hello from the server namespace {}\n", std::process::id());
        std::fs::write(self.dir.join("hello.txt"), &body).expect("write hello.txt");
        let server = self.server.clone();
        let port = SERVER_PORT.to_string();
        self.spawn(
            &server,
            false,
            &[PYTHON, "-m", "http.server", &port, "--bind", "0.0.0.0"],
            &[],
        );
        let url = format!("http://127.0.0.1:{SERVER_PORT}/hello.txt");
        self.wait_ready(&server, &url);
        body
    }

    /// Polls `url` inside `ns` until it answers, failing with the output of any process that
    /// exited meanwhile.
    fn wait_ready(&mut self, ns: &str, url: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            for child in &mut self.children {
                if let Ok(Some(status)) = child.try_wait() {
                    let mut err = String::new();
                    if let Some(stderr) = child.stderr.as_mut() {
                        let _ = stderr.read_to_string(&mut err);
                    }
                    panic!(
                        "a process in the test exited early ({status}) waiting for {url} in {ns}:\n{err}"
                    );
                }
            }
            let out = self.exec(ns, &["curl", "-sf", "--max-time", "1", url]);
            if out.status.success() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{url} in {ns}: not ready after 10 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// curl from the client namespace, as root, so OUTPUT redirects it.
    fn curl(&self, url: &str) -> Output {
        self.exec(
            &self.client,
            &["curl", "-sS", "--max-time", "10", "-D", "-", url],
        )
    }

    fn stdout_of(&mut self, index: usize) -> ChildStdout {
        self.children[index]
            .stdout
            .take()
            .expect("the child's stdout is piped")
    }
}

/// Reads the forwarder's lines after it has been killed.
fn rest_of(mut reader: BufReader<ChildStdout>) -> String {
    let mut rest = String::new();
    let _ = reader.read_to_string(&mut rest);
    rest
}

/// The rules from `mesh-proxy init` send curl's connection to the outbound port, let the
/// forwarder (uid 2102) out without looping, and send the arriving connection to the inbound
/// port; both forwarders see the original destination.
#[test]
fn init_rules_route_through_transparent_forwarders() {
    require_root_and_tools();
    let mut topo = Topology::new("f", 1);
    let body = topo.start_server();
    let (client, server) = (topo.client.clone(), topo.server.clone());
    topo.init(&client, "nft");
    topo.init(&server, "legacy");

    let out_idx = topo.spawn(&client, true, &[PYTHON, "-c", FORWARDER, "4140"], &[]);
    let in_idx = topo.spawn(&server, true, &[PYTHON, "-c", FORWARDER, "4143"], &[]);
    let mut outbound = BufReader::new(topo.stdout_of(out_idx));
    let mut inbound = BufReader::new(topo.stdout_of(in_idx));
    for reader in [&mut outbound, &mut inbound] {
        let mut line = String::new();
        reader.read_line(&mut line).expect("read the forwarder");
        assert_eq!(line.trim(), "ready", "a forwarder did not start");
    }

    let url = format!("http://{}:{SERVER_PORT}/hello.txt", topo.server_ip);
    let out = topo.curl(&url);
    assert!(out.status.success(), "curl {url}: {}", text(&out.stderr));
    assert!(text(&out.stdout).ends_with(&body), "{}", text(&out.stdout));

    for child in &mut topo.children {
        let _ = child.kill();
        let _ = child.wait();
    }
    let want = format!("original-dst {}:{SERVER_PORT}", topo.server_ip);
    let seen_out = rest_of(outbound);
    let seen_in = rest_of(inbound);
    assert_eq!(seen_out.trim(), want, "outbound forwarder saw: {seen_out}");
    assert_eq!(seen_in.trim(), want, "inbound forwarder saw: {seen_in}");
}

/// The acceptance test of transparent mode: curl in the client namespace reaches the server
/// through an outbound mesh-proxy and an inbound mesh-proxy, and both proxies count it.
#[test]
fn curl_through_outbound_and_inbound_mesh_proxies() {
    require_root_and_tools();
    let mut topo = Topology::new("m", 2);
    let body = topo.start_server();
    let (client, server) = (topo.client.clone(), topo.server.clone());
    topo.init(&client, "nft");
    topo.init(&server, "legacy");

    let env = [
        ("LINKERD2_PROXY_INBOUND_LISTEN_ADDR", "0.0.0.0:4143"),
        ("LINKERD2_PROXY_OUTBOUND_LISTEN_ADDR", "127.0.0.1:4140"),
        ("LINKERD2_PROXY_ADMIN_LISTEN_ADDR", "127.0.0.1:4191"),
        ("LINKERD2_PROXY_LOG", "info"),
    ];
    for ns in [&client, &server] {
        topo.spawn(ns, true, &[MESH_PROXY], &env);
    }
    for ns in [&client, &server] {
        topo.wait_ready(ns, "http://127.0.0.1:4191/ready");
    }

    let authority = format!("{}:{SERVER_PORT}", topo.server_ip);
    let url = format!("http://{authority}/hello.txt");
    let out = topo.curl(&url);
    assert!(out.status.success(), "curl {url}: {}", text(&out.stderr));
    let response = text(&out.stdout);
    let status = response.lines().next().unwrap_or_default();
    assert!(
        status.starts_with("HTTP/1.") && status.split(' ').nth(1) == Some("200"),
        "{response}"
    );
    assert!(response.ends_with(&body), "{response}");

    for (ns, direction) in [(&client, "outbound"), (&server, "inbound")] {
        let out = topo.exec(
            ns,
            &[
                "curl",
                "-sf",
                "--max-time",
                "5",
                "http://127.0.0.1:4191/metrics",
            ],
        );
        assert!(
            out.status.success(),
            "metrics in {ns}: {}",
            text(&out.stderr)
        );
        let metrics = text(&out.stdout);
        // Exactly one request, labelled with the server's address as Linkerd labels it.
        let counted = |name: &str, extra: &[&str]| {
            metrics.lines().any(|line| {
                line.starts_with(&format!("{name}{{"))
                    && line.contains(&format!("direction=\"{direction}\""))
                    && line.contains(&format!("authority=\"{authority}\""))
                    && line.contains(&format!("target_addr=\"{authority}\""))
                    && extra.iter().all(|label| line.contains(label))
                    && line.ends_with(" 1")
            })
        };
        assert!(
            counted("request_total", &[]),
            "the {direction} proxy's request_total does not show the request:\n{metrics}"
        );
        assert!(
            counted(
                "response_total",
                &["status_code=\"200\"", "classification=\"success\""]
            ),
            "the {direction} proxy's response_total does not show the response:\n{metrics}"
        );
        // The proxy accepted the connection and opened its own to the server.
        for peer in ["src", "dst"] {
            let opened = metrics.lines().any(|line| {
                line.starts_with("tcp_open_total{")
                    && line.contains(&format!("direction=\"{direction}\""))
                    && line.contains(&format!("peer=\"{peer}\""))
                    && line.contains(&format!("target_addr=\"{authority}\""))
                    && line.ends_with(" 1")
            });
            assert!(
                opened,
                "the {direction} proxy shows no {peer} connection:\n{metrics}"
            );
        }
    }
}
