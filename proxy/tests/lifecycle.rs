//! The process: configuration errors, the admin server, graceful shutdown, `await`.

// Helpers here are test code: a setup failure should panic.
#![allow(clippy::unwrap_used)]

mod support;

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::{Duration, Instant};

use support::backend::Backend;
use support::{Proxy, command, curl, http_request};

#[test]
fn bad_configuration_exits_64_naming_each_variable() {
    let out = command()
        .env("LINKERD2_PROXY_INBOUND_CONNECT_TIMEOUT", "100")
        .env("LINKERD2_PROXY_OUTBOUND_LISTEN_ADDR", "localhost:4140")
        .env("MESH_PROXY_SERVER_SPEAKS_FIRST_WINDOW", "fast")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    for name in [
        "LINKERD2_PROXY_INBOUND_CONNECT_TIMEOUT=\"100\"",
        "LINKERD2_PROXY_OUTBOUND_LISTEN_ADDR=\"localhost:4140\"",
        "MESH_PROXY_SERVER_SPEAKS_FIRST_WINDOW=\"fast\"",
    ] {
        assert!(err.contains(name), "{name} missing from:\n{err}");
    }
    let out = command().arg("frobnicate").output().unwrap();
    assert_eq!(out.status.code(), Some(64));
}

#[test]
fn a_port_in_use_fails_with_a_clear_message() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = command()
        .env("LINKERD2_PROXY_INBOUND_LISTEN_ADDR", "127.0.0.1:0")
        .env("LINKERD2_PROXY_OUTBOUND_LISTEN_ADDR", "127.0.0.1:0")
        .env("LINKERD2_PROXY_ADMIN_LISTEN_ADDR", &addr)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("binding the admin listener on {addr}")),
        "{err}"
    );
}

#[test]
fn unsupported_linkerd_variables_are_only_logged_at_debug() {
    let proxy = Proxy::start(&[
        ("LINKERD2_PROXY_LOG", "warn,mesh_proxy=debug"),
        (
            "LINKERD2_PROXY_TAP_SVC_NAME",
            "tap.linkerd-viz.serviceaccount.identity.linkerd.cluster.local",
        ),
        (
            "LINKERD2_PROXY_TRACE_ATTRIBUTES_PATH",
            "/var/run/linkerd/podinfo/labels",
        ),
        ("_pod_ns", "emojivoto"),
    ]);
    let logs = proxy.logs();
    assert!(
        logs.contains("variable=LINKERD2_PROXY_TAP_SVC_NAME") && logs.contains("not supported yet"),
        "{logs}"
    );
    assert_eq!(
        logs.matches("LINKERD2_PROXY_TRACE_ATTRIBUTES_PATH").count(),
        1,
        "logged once: {logs}"
    );
}

fn get(addr: SocketAddr, path: &str) -> support::RawResponse {
    http_request(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"),
    )
    .unwrap()
}

#[test]
fn admin_endpoints() {
    let proxy = Proxy::start(&[]);
    let r = get(proxy.admin, "/ready");
    assert_eq!((r.status, r.body_string().as_str()), (200, "ready\n"));
    let r = get(proxy.admin, "/live");
    assert_eq!((r.status, r.body_string().as_str()), (200, "live\n"));
    let r = get(proxy.admin, "/metrics");
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("text/plain; version=0.0.4")
    );
    assert!(
        r.body_string()
            .contains("# TYPE process_cpu_seconds_total counter")
    );
    let r = get(proxy.admin, "/nope");
    assert_eq!(r.status, 404);
    // Tap is off unless MESH_PROXY_TAP_ENABLED=true.
    let r = get(proxy.admin, "/tap");
    assert_eq!(r.status, 404);
    assert!(r.body_string().contains("MESH_PROXY_TAP_ENABLED=true"));
    let r = get(proxy.admin, "/shutdown");
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow").as_deref(), Some("POST"));

    // Log level: read, replace, reject nonsense.
    let r = get(proxy.admin, "/proxy-log-level");
    assert_eq!(r.body_string(), "warn,mesh_proxy=info\n");
    let url = format!("http://{}/proxy-log-level", proxy.admin);
    let (code, out, _) = curl(&[
        "-w",
        "%{http_code}",
        "-X",
        "PUT",
        "--data-binary",
        "debug,h2=off",
        &url,
    ]);
    assert_eq!((code, out.as_str()), (0, "204"));
    assert_eq!(
        get(proxy.admin, "/proxy-log-level").body_string(),
        "debug,h2=off\n"
    );
    let (_, out, _) = curl(&[
        "-w",
        " %{http_code}",
        "-X",
        "PUT",
        "--data-binary",
        "info,x=loud",
        &url,
    ]);
    assert!(
        out.starts_with("invalid log filter") && out.ends_with(" 400"),
        "{out}"
    );
    assert_eq!(
        get(proxy.admin, "/proxy-log-level").body_string(),
        "debug,h2=off\n"
    );
    // The new level is live: debug lines now appear for a new connection.
    let _ = std::net::TcpStream::connect(proxy.inbound);
    assert!(support::eventually(Duration::from_secs(5), || proxy
        .logs()
        .contains("DEBUG")));
}

#[test]
fn shutdown_endpoint_exits_zero_and_can_be_disabled() {
    let disabled = Proxy::start(&[("LINKERD2_PROXY_SHUTDOWN_ENDPOINT_ENABLED", "false")]);
    let r = http_request(
        disabled.admin,
        "POST /shutdown HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    assert_eq!(r.status, 404);

    // Several times: the answer must arrive before the process exits, however the admin
    // thread and the draining main task are scheduled.
    for _ in 0..10 {
        let mut proxy = Proxy::start(&[]);
        let r = http_request(
            proxy.admin,
            "POST /shutdown HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        )
        .unwrap();
        assert_eq!(r.status, 200);
        let status = proxy
            .wait_exit(Duration::from_secs(10))
            .expect("the proxy exits");
        assert_eq!(status.code(), Some(0));
        assert!(
            proxy.logs().contains("shutdown requested"),
            "{}",
            proxy.logs()
        );
    }
}

#[test]
fn sigterm_drains_in_flight_requests_under_load() {
    let backend = Backend::start();
    let fwd = backend.addr.to_string();
    let mut proxy = Proxy::start(&[
        ("MESH_PROXY_INBOUND_FORWARD_ADDR", &fwd),
        ("LINKERD2_PROXY_SHUTDOWN_GRACE_PERIOD", "10s"),
    ]);
    // 16 clients with slow requests in flight, each on its own connection.
    let url = format!("http://{}/slow/700", proxy.inbound);
    let clients: Vec<_> = (0..16)
        .map(|_| {
            std::process::Command::new("curl")
                .args([
                    "-sS",
                    "-o",
                    "/dev/null",
                    "-w",
                    "%{http_code}",
                    "--max-time",
                    "20",
                    &url,
                ])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    assert!(support::eventually(Duration::from_secs(5), || backend
        .requests()
        == 16));
    let start = Instant::now();
    proxy.signal("TERM");
    // New connections are refused once the listeners close.
    assert!(support::eventually(Duration::from_secs(5), || {
        std::net::TcpStream::connect(proxy.inbound).is_err()
    }));
    for c in clients {
        let out = c.wait_with_output().unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "200",
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let status = proxy
        .wait_exit(Duration::from_secs(10))
        .expect("exits after draining");
    assert_eq!(status.code(), Some(0));
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "drained in {:?}",
        start.elapsed()
    );
    let logs = proxy.logs();
    assert!(
        logs.contains("received SIGTERM") && logs.contains("drained"),
        "{logs}"
    );
}

#[test]
fn the_grace_period_bounds_the_drain() {
    let backend = Backend::start();
    let fwd = backend.addr.to_string();
    let mut proxy = Proxy::start(&[
        ("MESH_PROXY_INBOUND_FORWARD_ADDR", &fwd),
        ("LINKERD2_PROXY_SHUTDOWN_GRACE_PERIOD", "300ms"),
    ]);
    let url = format!("http://{}/slow/10000", proxy.inbound);
    let client = std::process::Command::new("curl")
        .args(["-sS", "--max-time", "20", &url])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(support::eventually(Duration::from_secs(5), || backend
        .requests()
        == 1));
    let start = Instant::now();
    proxy.signal("TERM");
    let status = proxy
        .wait_exit(Duration::from_secs(5))
        .expect("exits when the grace period ends");
    assert_eq!(status.code(), Some(0));
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
    assert!(
        proxy.logs().contains("grace period over"),
        "{}",
        proxy.logs()
    );
    let _ = client.wait_with_output();
}

fn await_cmd(admin: SocketAddr, args: &[&str]) -> std::process::Command {
    let mut cmd = command();
    cmd.env("LINKERD2_PROXY_ADMIN_LISTEN_ADDR", admin.to_string())
        .arg("await")
        .args(args);
    cmd
}

#[test]
fn await_runs_the_command_and_passes_its_exit_code() {
    let mut proxy = Proxy::start(&[]);
    let out = await_cmd(proxy.admin, &["--", "sh", "-c", "echo from-app; exit 7"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(7));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "from-app\n");
    assert!(
        proxy.wait_exit(Duration::from_millis(300)).is_none(),
        "the proxy keeps running"
    );

    // --shutdown stops the proxy once the command exits, as a Job needs.
    let out = await_cmd(proxy.admin, &["--shutdown", "--", "true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let status = proxy
        .wait_exit(Duration::from_secs(10))
        .expect("the proxy exits");
    assert_eq!(status.code(), Some(0));
}

#[test]
fn await_waits_for_a_proxy_that_starts_late() {
    let port = support::closed_port();
    let started = Instant::now();
    let waiter = await_cmd(port, &["--timeout", "20s", "--", "sh", "-c", "exit 3"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(400));
    let admin = port.to_string();
    let _proxy = Proxy::start(&[("LINKERD2_PROXY_ADMIN_LISTEN_ADDR", &admin)]);
    let out = waiter.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(started.elapsed() >= Duration::from_millis(400));
}

#[test]
fn await_without_a_command_only_waits() {
    // As the postStart hook of a proxy that is not a native sidecar: wait, then let the app start.
    let proxy = Proxy::start(&[]);
    let out = await_cmd(proxy.admin, &["--timeout=2m"]).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = await_cmd(support::closed_port(), &["--timeout=200ms"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(69));
}

#[test]
fn await_times_out_without_running_the_command() {
    let port = support::closed_port();
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("ran");
    let script = format!("touch {}", marker.display());
    let out = await_cmd(port, &["--timeout", "200ms", "--", "sh", "-c", &script])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(69));
    assert!(String::from_utf8_lossy(&out.stderr).contains("was not ready within 200ms"));
    assert!(!marker.exists(), "the command must not run");

    let out = await_cmd(port, &["--timeout", "soon", "--", "true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--timeout"));

    let out = await_cmd(port, &["--", "true"])
        .env("LINKERD_AWAIT_DISABLED", "1")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "LINKERD_AWAIT_DISABLED skips the wait"
    );
}

#[test]
fn startup_to_ready_is_fast() {
    // Not a benchmark: it prints the figure and only fails if startup is broken.
    let admin = support::closed_port();
    let start = Instant::now();
    let _proxy = Proxy::start(&[("LINKERD2_PROXY_ADMIN_LISTEN_ADDR", &admin.to_string())]);
    println!("spawn to /ready: {:?}", start.elapsed());
    assert!(start.elapsed() < Duration::from_secs(10));
}
