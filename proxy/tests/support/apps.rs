//! What runs in a [`Lab`]'s pods besides the proxy: an HTTP application that logs what it
//! was sent, curl, and the proxy's metrics page. The methods extend [`Lab`] from here (an
//! inherent `impl` may live in any module of its crate) to keep `netns.rs` about namespaces
//! and processes.

use super::netns::{ADMIN, DEADLINE, Lab, PYTHON, Pod, ProcId, poll};

/// Where the application in a pod listens (every address).
pub const APP_PORT: u16 = 8080;
/// An HTTP/1 application: answers every request with 200 and `hello from <name>`, closing
/// the connection, and prints `request <request line>` for each. A connection whose first
/// byte cannot begin a request method gets 400 at once, as nginx answers, and is printed as
/// `not-http <first byte in hex>`. Prints `ready` once it listens.
pub const APP: &str = r#"
import socket, sys, threading
port, name = int(sys.argv[1]), sys.argv[2]
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("0.0.0.0", port))
ls.listen(128)
print("ready", flush=True)
def handle(c):
    try:
        c.settimeout(10)
        head = b""
        while b"\r\n\r\n" not in head and len(head) < 65536:
            data = c.recv(4096)
            if not data:
                return
            if not head and not (65 <= data[0] <= 90):
                print("not-http %02x" % data[0], flush=True)
                c.sendall(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                return
            head += data
        print("request %s" % head.split(b"\r\n", 1)[0].decode("latin-1"), flush=True)
        body = ("hello from %s\n" % name).encode()
        c.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\nconnection: close\r\n\r\n" % len(body) + body)
    except OSError:
        pass
    finally:
        c.close()
while True:
    c, _ = ls.accept()
    threading.Thread(target=handle, args=(c,), daemon=True).start()
"#;

/// A curl answer: the status (0 when none came), the head and the body.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub head: String,
    pub body: String,
    /// curl's own complaint, when the request failed.
    pub error: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

impl Lab {
    /// [`APP`] on every address of `pod`, answering as `name`; waits until it listens.
    pub fn app(&mut self, pod: &Pod, name: &str) -> ProcId {
        self.app_on(pod, APP_PORT, name)
    }

    /// [`Lab::app`] on another port.
    pub fn app_on(&mut self, pod: &Pod, port: u16, name: &str) -> ProcId {
        let port = port.to_string();
        let id = self.spawn(pod, false, &[PYTHON, "-c", APP, &port, name], &[]);
        let started = poll(DEADLINE, || {
            self.check_running("the application");
            self.output(id).contains("ready")
        });
        assert!(started, "the application in {} did not start", pod.ns);
        id
    }

    /// The requests [`APP`] served, and the connections it refused as not HTTP.
    pub fn app_log(&self, app: ProcId) -> (usize, usize) {
        let out = self.output(app);
        let count = |p: &str| out.lines().filter(|l| l.starts_with(p)).count();
        (count("request "), count("not-http "))
    }

    /// curl in `pod`, as root (so the pod's iptables rules redirect it), with no proxy
    /// from the environment; `args` before the URL.
    pub fn curl(&self, pod: &Pod, args: &[&str], url: &str) -> Reply {
        let fixed = [
            "curl",
            "-sS",
            "--noproxy",
            "*",
            "--max-time",
            "10",
            "-D",
            "-",
        ];
        let cmd = [&fixed[..], args, &[url]].concat();
        let out = self.exec(pod, &cmd);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let (head, body) = stdout.split_once("\r\n\r\n").unwrap_or((&stdout, ""));
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        Reply {
            status,
            head: head.to_owned(),
            body: body.to_owned(),
            error: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// The `/metrics` page of the proxy in `pod`.
    pub fn metrics(&self, pod: &Pod) -> String {
        self.run(
            pod,
            &[
                "curl",
                "-sSf",
                "--noproxy",
                "*",
                "--max-time",
                "10",
                &format!("http://{ADMIN}/metrics"),
            ],
        )
    }
}

/// The sum of the values of every series of metric `name` whose labels include all of
/// `labels` (each written `key="value"`).
pub fn metric_sum(page: &str, name: &str, labels: &[&str]) -> f64 {
    page.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")))
        .filter(|l| labels.iter().all(|want| l.contains(want)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}
