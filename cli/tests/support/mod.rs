//! Helpers shared by the CLI's end-to-end tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The `mesh` binary under test.
pub fn mesh() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mesh"))
}

/// The `mesh` binary with no cluster configured (no `$KUBECONFIG`, no ~/.kube/config, not in a
/// cluster), whatever the machine running the tests has: `mesh install` then checks no cluster.
pub fn mesh_offline() -> Command {
    let mut cmd = mesh();
    cmd.env("HOME", testdata().join("no-home"))
        .env_remove("KUBECONFIG")
        .env_remove("KUBERNETES_SERVICE_HOST");
    cmd
}

/// The repository's testdata directory.
pub fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata")
}

pub mod conformance;

/// Linkerd's own fixtures directory; see [`conformance::linkerd_testdata`] for when it is `None`.
pub fn linkerd_fixtures() -> Option<PathBuf> {
    conformance::linkerd_testdata()
}

/// The certificate flags (under `testdata/install`) that make `mesh install` output
/// deterministic.
pub const INSTALL_CERTS: &[&str] = &[
    "--identity-trust-anchors-file",
    "certs/ca.crt",
    "--identity-issuer-certificate-file",
    "certs/issuer.crt",
    "--identity-issuer-key-file",
    "certs/issuer.key",
];

pub fn update_goldens() -> bool {
    std::env::var_os("UPDATE_GOLDENS").is_some_and(|v| v != "0")
}

/// Compares `actual` with the golden file at `path`, or rewrites it under UPDATE_GOLDENS=1.
/// Returns a readable diff on mismatch.
pub fn check_golden(path: &Path, actual: &str) -> Result<(), String> {
    if update_goldens() {
        std::fs::write(path, actual)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        return Ok(());
    }
    let expected = std::fs::read_to_string(path).map_err(|e| {
        format!(
            "cannot read golden {} ({e}); run with UPDATE_GOLDENS=1 to create it",
            path.display()
        )
    })?;
    if expected == actual {
        return Ok(());
    }
    let diff = similar::TextDiff::from_lines(&expected, actual)
        .unified_diff()
        .header("expected", "actual")
        .to_string();
    Err(format!(
        "{} does not match (UPDATE_GOLDENS=1 to accept):\n{diff}",
        path.display()
    ))
}

/// Runs a command with `stdin` and returns its output.
pub fn run_with_stdin(cmd: &mut Command, stdin: &[u8]) -> Output {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut input = child.stdin.take().expect("stdin");
    let data = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let out = child.wait_with_output().expect("wait");
    writer.join().expect("writer");
    out
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A stand-in for a controller's admin server on 127.0.0.1: answers every request with `status`
/// and `body`. It serves until the test process exits.
pub fn admin_server(status: u16, body: &'static str) -> std::net::SocketAddr {
    admin_server_with(move |_| (status, body.to_string()))
}

/// As [`admin_server`], answering each request from its request line (`GET /path?query HTTP/1.1`)
/// with `respond`.
pub fn admin_server_with(
    respond: impl Fn(&str) -> (u16, String) + Send + Sync + 'static,
) -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind an admin server");
    let addr = listener.local_addr().expect("admin server address");
    let respond = std::sync::Arc::new(respond);
    std::thread::spawn(move || {
        for stream in listener.incoming().take(10_000) {
            let Ok(stream) = stream else { continue };
            let respond = respond.clone();
            std::thread::spawn(move || answer(stream, &*respond));
        }
    });
    addr
}

fn answer(mut stream: std::net::TcpStream, respond: &dyn Fn(&str) -> (u16, String)) {
    use std::io::{Read, Write};
    let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(5)));
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 64 * 1024 {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let head = String::from_utf8_lossy(&head);
    let (status, body) = respond(head.lines().next().unwrap_or(""));
    let reason = match status {
        200..=299 => "OK",
        404 => "Not Found",
        _ => "Service Unavailable",
    };
    let _ = write!(
        stream,
        "HTTP/1.1 {status} {reason}\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
}

/// The control plane's components: their pods' `linkerd.io/control-plane-component` label and
/// their controller's admin port.
pub const CONTROL_PLANE_ADMIN: [(&str, u16); 3] = [
    ("destination", 9996),
    ("identity", 9990),
    ("proxy-injector", 9995),
];

/// The names of the pods in `ns` whose `linkerd.io/control-plane-component` label is `component`.
pub fn component_pods(server: &mesh_testkube::FakeKube, ns: &str, component: &str) -> Vec<String> {
    server
        .objects("Pod", Some(ns))
        .iter()
        .filter(|p| p["metadata"]["labels"]["linkerd.io/control-plane-component"] == component)
        .filter_map(|p| p["metadata"]["name"].as_str().map(str::to_string))
        .collect()
}

/// Sends the pod proxy requests for every control plane pod's admin port to `addr`, as if each
/// controller were running there.
pub fn route_control_plane_admin(
    server: &mesh_testkube::FakeKube,
    ns: &str,
    addr: std::net::SocketAddr,
) {
    for (component, port) in CONTROL_PLANE_ADMIN {
        for pod in component_pods(server, ns, component) {
            server.set_pod_proxy(ns, &pod, port, addr);
        }
    }
}
