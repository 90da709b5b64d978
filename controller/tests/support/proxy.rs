//! The real `mesh-proxy` next to the control plane: found (or built) as the CLI's traffic tests
//! find it, started on loopback ports with the variables a test gives, its log kept.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::DEADLINE;

/// The `mesh-proxy` binary: the one `cargo test --workspace` built beside `mesh-controller`
/// when it is fresh, else built (see `mesh_testkube::workspace`).
pub fn binary() -> PathBuf {
    let profile_dir = match option_env!("CARGO_BIN_EXE_mesh-controller") {
        Some(controller) => Path::new(controller).parent().unwrap().to_path_buf(),
        // Benchmarks include this harness too; they have no CARGO_BIN_EXE_*, and run from
        // target/<profile>/examples/.
        None => std::env::current_exe()
            .unwrap()
            .parent()
            .and_then(Path::parent)
            .unwrap()
            .to_path_buf(),
    };
    mesh_testkube::workspace::binary(&profile_dir, "mesh-proxy", "mesh-proxy").unwrap()
}

/// A running `mesh-proxy`, killed on drop.
pub struct Proxy {
    child: Child,
    log: Arc<Mutex<String>>,
    pub admin: SocketAddr,
    pub inbound: SocketAddr,
}

impl Proxy {
    /// Starts the proxy on ephemeral loopback ports with `env` (and none of the test's own
    /// proxy variables), and waits until its three listeners are logged.
    pub fn start(env: &[(&str, &str)]) -> Proxy {
        let mut command = Command::new(binary());
        for (name, _) in std::env::vars_os() {
            let name = name.to_string_lossy().into_owned();
            if name.starts_with("LINKERD2_PROXY_") || name.starts_with("MESH_PROXY_") {
                command.env_remove(name);
            }
        }
        command
            .env("LINKERD2_PROXY_INBOUND_LISTEN_ADDR", "127.0.0.1:0")
            .env("LINKERD2_PROXY_OUTBOUND_LISTEN_ADDR", "127.0.0.1:0")
            .env("LINKERD2_PROXY_ADMIN_LISTEN_ADDR", "127.0.0.1:0")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("mesh-proxy starts");
        let (log, _) = super::collect_log(child.stderr.take().unwrap());
        let deadline = Instant::now() + DEADLINE;
        loop {
            let text = log.lock().unwrap().clone();
            let addr = |server: &str| super::listening(&text, server);
            if let (Some(admin), Some(inbound), Some(_)) =
                (addr("admin"), addr("inbound"), addr("outbound"))
            {
                return Proxy {
                    child,
                    log,
                    admin,
                    inbound,
                };
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("mesh-proxy exited with {status}:\n{text}");
            }
            assert!(
                Instant::now() < deadline,
                "mesh-proxy did not start:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Everything logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Polls the log until `needle` appears `count` times (at most `limit`).
    pub fn wait_for_log(&self, needle: &str, count: usize, limit: Duration) -> bool {
        super::wait_until(limit, || self.log().matches(needle).count() >= count)
    }

    /// `GET path` on the admin server: status and body.
    pub fn admin_get(&self, path: &str) -> (u16, String) {
        super::get(self.admin, path)
    }

    /// A value of the admin server's `/metrics` page.
    pub fn metric(&self, name: &str) -> Option<f64> {
        let (_, page) = self.admin_get("/metrics");
        page.lines()
            .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP/1 server on loopback that answers every request with 200 and `hello`, for at most
/// `connections` connections.
pub fn backend(connections: usize) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(connections) {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                let _ = stream.set_read_timeout(Some(DEADLINE));
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && head.len() < 64 * 1024 {
                    match stream.read(&mut byte) {
                        Ok(1) => head.push(byte[0]),
                        _ => return,
                    }
                }
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
                );
            });
        }
    });
    addr
}

/// Sends `GET /` to `addr` without reading the answer.
pub fn send_request(addr: SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: web.shop\r\nConnection: close\r\n\r\n")
        .unwrap();
    stream
}

/// Reads a whole response (the server closes the connection), waiting at most `limit`.
pub fn read_response(stream: &mut TcpStream, limit: Duration) -> String {
    stream.set_read_timeout(Some(limit)).unwrap();
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response
}
