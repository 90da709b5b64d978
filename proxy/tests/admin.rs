//! The admin server under hostile use: filters that are costly to build, clients that are not
//! on this host, and its isolation from the data plane.

// Helpers here are test code: a setup failure should panic.
#![allow(clippy::unwrap_used)]

mod support;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::backend::Backend;
use support::{Proxy, http_request};

/// A proxied request through the inbound forwarder; returns how long it took.
fn proxied(proxy: &Proxy) -> Duration {
    let start = Instant::now();
    let r = http_request(
        proxy.inbound,
        "GET /hello HTTP/1.1\r\nHost: svc\r\nConnection: close\r\n\r\n",
    )
    .expect("proxied request");
    assert_eq!(r.status, 200);
    start.elapsed()
}

fn put_filter(admin: SocketAddr, filter: &str) -> support::RawResponse {
    http_request(
        admin,
        &format!(
            "PUT /proxy-log-level HTTP/1.1\r\nHost: a\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{filter}",
            filter.len()
        ),
    )
    .expect("PUT /proxy-log-level")
}

/// Resident memory of a process, from /proc.
fn rss_bytes(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    kb * 1024
}

/// The review's body: built as a regex it froze a single-threaded proxy for 18.6 s and
/// grew it to 530 MB. Proxied requests sent while it is handled must still be answered at
/// once, the filter is accepted (its value matches literally), and memory stays small.
#[test]
fn a_costly_log_filter_neither_stalls_traffic_nor_grows_memory() {
    let backend = Backend::start();
    let fwd = backend.addr.to_string();
    let proxy = Proxy::start(&[("MESH_PROXY_INBOUND_FORWARD_ADDR", &fwd)]);
    proxied(&proxy);

    let filter = format!("mesh_proxy[{{x=[a-z]*a{}}}]=info", "[a-z]".repeat(20));
    let admin = proxy.admin;
    let put = {
        let filter = filter.clone();
        std::thread::spawn(move || put_filter(admin, &filter))
    };
    // Proxied requests while the PUT is sent and handled, and a few after it.
    let mut after = 0;
    for _ in 0..1000 {
        let took = proxied(&proxy);
        // Generous: the regex build took 18 s; a proxied request takes milliseconds.
        assert!(
            took < Duration::from_secs(2),
            "a proxied request took {took:?} while the admin server handled a log filter"
        );
        if put.is_finished() {
            after += 1;
            if after == 3 {
                break;
            }
        }
    }
    let r = put.join().unwrap();
    assert_eq!(r.status, 204, "{}", r.body_string());
    let r = http_request(
        admin,
        "GET /proxy-log-level HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    assert_eq!(r.body_string(), format!("{filter}\n"));
    let rss = rss_bytes(proxy.pid());
    assert!(rss < 100 << 20, "RSS {rss} bytes after a log filter change");

    // The alternation form passed 2 GB when compiled.
    let alt = format!("mesh_proxy[{{x=(a|b)*a{}}}]=info", "(a|b)".repeat(20));
    assert_eq!(put_filter(admin, &alt).status, 204);
    let rss = rss_bytes(proxy.pid());
    assert!(rss < 100 << 20, "RSS {rss} bytes after a log filter change");
}

#[test]
fn log_filters_are_bounded_in_size_and_directives() {
    let proxy = Proxy::start(&[]);
    let long = format!("info,{}", "a".repeat(5000));
    let r = put_filter(proxy.admin, &long);
    assert_eq!(r.status, 400, "{}", r.body_string());
    let many = vec!["a=info"; 65].join(",");
    let r = put_filter(proxy.admin, &many);
    assert_eq!(r.status, 400, "{}", r.body_string());
    assert!(
        r.body_string().contains("directives"),
        "{}",
        r.body_string()
    );
    let r = http_request(
        proxy.admin,
        "GET /proxy-log-level HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    assert_eq!(r.body_string(), "warn,mesh_proxy=info\n");
}

/// The admin server has a thread of its own, so nothing it does can hold the data plane's
/// single thread.
#[test]
fn the_admin_server_runs_on_its_own_thread() {
    let proxy = Proxy::start(&[]);
    let names: Vec<String> = std::fs::read_dir(format!("/proc/{}/task", proxy.pid()))
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .map(|n| n.trim().to_string())
        .collect();
    assert!(names.iter().any(|n| n == "admin"), "threads: {names:?}");
}

/// Fails, saying why, unless this runs as root with the tools on PATH.
fn require_root_and_tools() {
    let uid = Command::new("id").arg("-u").output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&uid.stdout).trim(),
        "0",
        "this test needs root for a network namespace; CI runs as root"
    );
    for bin in ["unshare", "nsenter", "ip", "curl"] {
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

/// A proxy in a network namespace of its own whose loopback device also carries a
/// non-loopback address, so a client in it can connect from either.
struct IsolatedProxy {
    child: Child,
    admin_port: u16,
}

/// Not a loopback address, but local to the namespace: connections to it come from it.
const OTHER_IP: &str = "10.233.77.1";

impl IsolatedProxy {
    fn start() -> IsolatedProxy {
        let script = format!(
            "ip link set lo up && ip addr add {OTHER_IP}/32 dev lo && exec {}",
            support::BIN
        );
        let mut cmd = Command::new("unshare");
        cmd.args(["-n", "sh", "-c", &script]);
        for (k, _) in std::env::vars_os() {
            let k = k.to_string_lossy();
            if k.starts_with("LINKERD2_PROXY_") || k.starts_with("MESH_PROXY_") {
                cmd.env_remove(&*k);
            }
        }
        cmd.env("LINKERD2_PROXY_INBOUND_LISTEN_ADDR", "127.0.0.1:0")
            .env("LINKERD2_PROXY_OUTBOUND_LISTEN_ADDR", "127.0.0.1:0")
            // As injected pods do: every address of the pod.
            .env("LINKERD2_PROXY_ADMIN_LISTEN_ADDR", "0.0.0.0:0")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn unshare");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if line.contains("listening") && line.contains("server=\"admin\"")
                    || line.contains("listening") && line.contains("server=admin")
                {
                    let _ = tx.send(line);
                }
            }
        });
        let line = match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                panic!("the proxy in its namespace did not report its admin listener");
            }
        };
        let addr = line
            .split_whitespace()
            .find_map(|f| f.strip_prefix("addr="))
            .unwrap()
            .trim_matches('"');
        let admin_port = addr.parse::<SocketAddr>().unwrap().port();
        IsolatedProxy { child, admin_port }
    }

    /// curl inside the proxy's namespace; returns the status code and body.
    fn curl(&self, ip: &str, args: &[&str], path: &str) -> (u16, String) {
        let url = format!("http://{ip}:{}{path}", self.admin_port);
        let out = Command::new("nsenter")
            .args(["-t", &self.child.id().to_string(), "-n", "curl", "-sS"])
            .args(["--max-time", "10", "-w", "\n%{http_code}"])
            .args(args)
            .arg(&url)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", ""));
        (code.parse().unwrap_or(0), body.to_string())
    }
}

impl Drop for IsolatedProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Injected pods listen on 0.0.0.0:4191. A client that is not on the pod's loopback gets
/// 403 for the log level (read or write), shutdown and the dtab, as from Linkerd; metrics and probes
/// stay open to it.
#[test]
fn log_level_and_shutdown_refuse_clients_that_are_not_local() {
    require_root_and_tools();
    let proxy = IsolatedProxy::start();

    let (code, body) = proxy.curl(OTHER_IP, &[], "/ready");
    assert_eq!((code, body.as_str()), (200, "ready\n"));
    let (code, _) = proxy.curl(OTHER_IP, &[], "/metrics");
    assert_eq!(code, 200);

    let forbidden = "Requests are only permitted from localhost.\n";
    let put = ["-X", "PUT", "--data-binary", "trace"];
    let (code, body) = proxy.curl(OTHER_IP, &put, "/proxy-log-level");
    assert_eq!((code, body.as_str()), (403, forbidden));
    let (code, body) = proxy.curl(OTHER_IP, &[], "/proxy-log-level");
    assert_eq!((code, body.as_str()), (403, forbidden));
    let (code, body) = proxy.curl(OTHER_IP, &["-X", "POST"], "/shutdown");
    assert_eq!((code, body.as_str()), (403, forbidden));
    let put_dtab = ["-X", "PUT", "--data-binary", "/svc => ~"];
    let (code, body) = proxy.curl(OTHER_IP, &put_dtab, "/dtab");
    assert_eq!((code, body.as_str()), (403, forbidden));
    let (code, body) = proxy.curl(OTHER_IP, &[], "/dtab");
    assert_eq!((code, body.as_str()), (403, forbidden));
    // From loopback the path answers: this proxy has no namer.
    let (code, _) = proxy.curl("127.0.0.1", &put_dtab, "/dtab");
    assert_eq!(code, 404);

    // The filter did not change, and the proxy is still up.
    let (code, body) = proxy.curl("127.0.0.1", &[], "/proxy-log-level");
    assert_eq!((code, body.as_str()), (200, "warn,mesh_proxy=info\n"));
    let (code, _) = proxy.curl("127.0.0.1", &put, "/proxy-log-level");
    assert_eq!(code, 204);
    let (code, body) = proxy.curl("127.0.0.1", &[], "/proxy-log-level");
    assert_eq!((code, body.as_str()), (200, "trace\n"));
    let (code, _) = proxy.curl(OTHER_IP, &[], "/ready");
    assert_eq!(code, 200);
}
