//! Pods in network namespaces, for tests that run the real `mesh-proxy` as a cluster runs it:
//! each pod a namespace with `mesh-proxy init`'s iptables rules and a proxy running as the
//! proxy user, the pods on one bridge (the node's pod network) in a namespace of its own,
//! and, when a control plane runs in the test process, the host joined to that bridge.
//!
//! ```text
//!  host (the test, a control plane) 10.A.B.1 ──veth── [lan: bridge] ──veth── pod 10.A.B.n
//!                                                                  └─veth── pod 10.A.B.m
//! ```
//!
//! `A` comes from the test process's id and `B` counts labs within it, so tests and test
//! binaries running at once do not share addresses; only a joined host holds one outside
//! the namespaces. Dropping a [`Lab`] kills its processes and deletes its namespaces, which
//! removes every veth with them, even when the test fails.
//!
//! What runs in the pods besides the proxy (the application, curl, metrics) is in
//! `apps.rs`. The controller's tests include both files by path, so they use the standard
//! library only and take the `mesh-proxy` binary as an argument.

use std::io::{BufRead, BufReader, Read};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The uid the proxy runs as, which `mesh-proxy init` exempts from redirection.
pub const PROXY_UID: &str = "2102";
/// Python from Debian: the pyenv shim cannot run as the proxy's uid.
pub const PYTHON: &str = "/usr/bin/python3";
/// Linkerd's admin port, on the pod's loopback here.
pub const ADMIN: &str = "127.0.0.1:4191";
/// The tools every lab needs.
pub const TOOLS: &[&str] = &["ip", "setpriv", "curl", PYTHON];

/// How long a start or a condition may take before a test gives up.
pub const DEADLINE: Duration = Duration::from_secs(30);

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// What keeps a lab from running here: not root, or a missing tool (beyond [`TOOLS`]).
pub fn missing(tools: &[&str]) -> Option<String> {
    // The effective uid: the second field of the kernel's `Uid:` line.
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let euid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1));
    if euid != Some("0") {
        return Some("not root: network namespaces, veth and iptables need root".into());
    }
    TOOLS.iter().chain(tools).find_map(|bin| {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {bin} >/dev/null")])
            .status()
            .is_ok_and(|s| s.success());
        (!found).then(|| format!("{bin} is missing; `cargo xtask deps` installs the test packages"))
    })
}

/// Fails saying why, unless the lab can run (for tests CI must run as root).
pub fn require(tools: &[&str]) {
    if let Some(why) = missing(tools) {
        panic!("{why}");
    }
}

/// Whether `test` must be skipped here; prints why if so.
pub fn skip(test: &str, tools: &[&str]) -> bool {
    let why = missing(tools);
    if let Some(why) = &why {
        eprintln!("skipping {test}: {why}");
    }
    why.is_some()
}

/// A network namespace of a lab, and its address on the lab's bridge (none for a
/// namespace with loopback only).
#[derive(Clone, Debug)]
pub struct Pod {
    pub ns: String,
    pub ip: Option<Ipv4Addr>,
}

impl Pod {
    /// The pod's address on the bridge (panics for a loopback-only namespace).
    pub fn ip(&self) -> Ipv4Addr {
        self.ip.expect("the namespace is on the lab's bridge")
    }
}

/// An index into a lab's processes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcId(usize);

struct Proc {
    child: Child,
    what: String,
    /// stdout and stderr, as they come.
    output: Arc<Mutex<String>>,
}

/// Namespaces, the bridge between them, and the processes in them.
pub struct Lab {
    /// Short and unique among running tests: interface names have 15 bytes.
    id: String,
    proxy_bin: PathBuf,
    /// A directory for the lab's files, readable by the proxy user.
    pub dir: PathBuf,
    /// `10.A.B`: the bridge's /24.
    subnet: [u8; 3],
    lan: Option<String>,
    host_link: Option<String>,
    namespaces: Vec<String>,
    next_host: u8,
    procs: Vec<Proc>,
}

impl Drop for Lab {
    fn drop(&mut self) {
        for proc in &mut self.procs {
            let _ = proc.child.kill();
            let _ = proc.child.wait();
        }
        for ns in self.namespaces.iter().chain(&self.lan) {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
        // Gone with its peer in the bridge's namespace; deleted here in case that failed.
        if let Some(link) = &self.host_link {
            let _ = Command::new("ip").args(["link", "del", link]).output();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(out.status.success(), "ip {args:?}: {}", text(&out.stderr));
}

impl Lab {
    /// A lab whose proxies are `proxy_bin`.
    pub fn new(proxy_bin: impl Into<PathBuf>) -> Lab {
        static LABS: AtomicU32 = AtomicU32::new(0);
        let pid = std::process::id();
        let n = LABS.fetch_add(1, Ordering::Relaxed) % 256;
        let id = format!("{pid:x}{n:02x}");
        let dir = std::env::temp_dir().join(format!("mesh-lab-{id}"));
        std::fs::create_dir_all(&dir).expect("create the lab's directory");
        // The proxy user reads tokens and certificates here.
        let _ = Command::new("chmod").arg("755").arg(&dir).status();
        Lab {
            id,
            proxy_bin: proxy_bin.into(),
            dir,
            subnet: [10, 200 + (pid % 50) as u8, n as u8],
            lan: None,
            host_link: None,
            namespaces: Vec::new(),
            next_host: 2,
            procs: Vec::new(),
        }
    }

    fn addr(&self, host: u8) -> Ipv4Addr {
        let [a, b, c] = self.subnet;
        Ipv4Addr::new(a, b, c, host)
    }

    /// A namespace with loopback only, named `mesh-<lab>-<name>`.
    pub fn namespace(&mut self, name: &str) -> Pod {
        let ns = format!("mesh-{}-{name}", self.id);
        ip(&["netns", "add", &ns]);
        self.namespaces.push(ns.clone());
        ip(&["-n", &ns, "link", "set", "lo", "up"]);
        Pod { ns, ip: None }
    }

    /// The namespace holding the bridge, made on first use.
    fn lan(&mut self) -> String {
        if let Some(lan) = &self.lan {
            return lan.clone();
        }
        let lan = format!("mesh-{}-lan", self.id);
        ip(&["netns", "add", &lan]);
        self.lan = Some(lan.clone());
        ip(&["-n", &lan, "link", "add", "br0", "type", "bridge"]);
        ip(&["-n", &lan, "link", "set", "br0", "up"]);
        lan
    }

    /// A namespace on the bridge, with the next address (`eth0`, a /24).
    pub fn pod(&mut self, name: &str) -> Pod {
        let lan = self.lan();
        let mut pod = self.namespace(name);
        let host = self.next_host;
        self.next_host += 1;
        let port = format!("m{}b{host}", self.id);
        ip(&[
            "-n", &pod.ns, "link", "add", "eth0", "type", "veth", "peer", "name", &port, "netns",
            &lan,
        ]);
        ip(&["-n", &lan, "link", "set", &port, "master", "br0", "up"]);
        let addr = self.addr(host);
        ip(&[
            "-n",
            &pod.ns,
            "addr",
            "add",
            &format!("{addr}/24"),
            "dev",
            "eth0",
        ]);
        ip(&["-n", &pod.ns, "link", "set", "eth0", "up"]);
        pod.ip = Some(addr);
        pod
    }

    /// Joins the host (the test process's namespace) to the bridge; its address there,
    /// where a server in the test process can listen for the pods.
    pub fn join_host(&mut self) -> Ipv4Addr {
        let lan = self.lan();
        let link = format!("m{}h", self.id);
        let port = format!("m{}b1", self.id);
        ip(&[
            "link", "add", &link, "type", "veth", "peer", "name", &port, "netns", &lan,
        ]);
        self.host_link = Some(link.clone());
        ip(&["-n", &lan, "link", "set", &port, "master", "br0", "up"]);
        let addr = self.addr(1);
        ip(&["addr", "add", &format!("{addr}/24"), "dev", &link]);
        ip(&["link", "set", &link, "up"]);
        addr
    }

    fn command(&self, pod: &Pod, cmd: &[&str]) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &pod.ns]).args(cmd);
        command
    }

    /// Runs `cmd` in `pod` (as root) to the end.
    pub fn exec(&self, pod: &Pod, cmd: &[&str]) -> Output {
        self.command(pod, cmd).output().expect("run ip netns exec")
    }

    /// Runs `cmd` in `pod`, which must succeed; its stdout.
    pub fn run(&self, pod: &Pod, cmd: &[&str]) -> String {
        let out = self.exec(pod, cmd);
        assert!(
            out.status.success(),
            "{cmd:?} in {}: {}{}",
            pod.ns,
            text(&out.stdout),
            text(&out.stderr)
        );
        text(&out.stdout)
    }

    /// `mesh-proxy init` in `pod` with the flags the injected `linkerd-init` container
    /// passes, on the iptables `backend` (`nft` or `legacy`).
    pub fn init(&self, pod: &Pod, backend: &str) {
        let bin = format!("iptables-{backend}");
        let save = format!("{bin}-save");
        let proxy = self.proxy_bin.to_string_lossy();
        self.run(
            pod,
            &[
                &proxy,
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
    }

    /// Starts `cmd` in `pod`, as the proxy user when `as_proxy` is set, its output kept.
    pub fn spawn(
        &mut self,
        pod: &Pod,
        as_proxy: bool,
        cmd: &[&str],
        env: &[(&str, &str)],
    ) -> ProcId {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &pod.ns]);
        if as_proxy {
            command.args([
                "setpriv",
                &format!("--reuid={PROXY_UID}"),
                &format!("--regid={PROXY_UID}"),
                "--clear-groups",
            ]);
        }
        for (k, _) in std::env::vars_os() {
            let k = k.to_string_lossy();
            if k.starts_with("LINKERD2_PROXY_") || k.starts_with("MESH_PROXY_") {
                command.env_remove(&*k);
            }
        }
        command
            .args(cmd)
            .envs(env.iter().copied())
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("start {cmd:?} in {}: {e}", pod.ns));
        let output = Arc::new(Mutex::new(String::new()));
        let stdout = child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>);
        let stderr = child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>);
        for pipe in [stdout, stderr].into_iter().flatten() {
            let sink = output.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines() {
                    let Ok(line) = line else { break };
                    let mut out = sink.lock().unwrap_or_else(|e| e.into_inner());
                    out.push_str(&line);
                    out.push('\n');
                }
            });
        }
        let what = format!("{} in {}", cmd.first().copied().unwrap_or_default(), pod.ns);
        self.procs.push(Proc {
            child,
            what,
            output,
        });
        ProcId(self.procs.len() - 1)
    }

    /// Everything a process printed so far.
    pub fn output(&self, id: ProcId) -> String {
        let out = &self.procs[id.0].output;
        out.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Polls a process's output until it holds `needle` (at most `limit`).
    pub fn wait_output(&self, id: ProcId, needle: &str, limit: Duration) -> bool {
        poll(limit, || self.output(id).contains(needle))
    }

    /// Panics, with its output, if a process has exited.
    pub fn check_running(&mut self, waiting_for: &str) {
        for proc in &mut self.procs {
            if let Ok(Some(status)) = proc.child.try_wait() {
                let output = proc
                    .output
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone();
                panic!(
                    "{} exited ({status}) while waiting for {waiting_for}:\n{output}",
                    proc.what
                );
            }
        }
    }

    /// `mesh-proxy` in `pod` as the proxy user, on Linkerd's ports (inbound on every
    /// address), with `env` over those and with no variable of the test's own environment.
    /// Does not wait: see [`Lab::wait_ready`].
    pub fn proxy(&mut self, pod: &Pod, env: &[(&str, &str)]) -> ProcId {
        let mut all = vec![
            ("LINKERD2_PROXY_INBOUND_LISTEN_ADDR", "0.0.0.0:4143"),
            ("LINKERD2_PROXY_OUTBOUND_LISTEN_ADDR", "127.0.0.1:4140"),
            ("LINKERD2_PROXY_ADMIN_LISTEN_ADDR", ADMIN),
            ("LINKERD2_PROXY_LOG", "warn,mesh_proxy=info"),
        ];
        all.extend_from_slice(env);
        let bin = self.proxy_bin.to_string_lossy().into_owned();
        self.spawn(pod, true, &[&bin], &all)
    }

    /// Polls `url` in `pod` until it answers 200 (at most [`DEADLINE`]), failing with the
    /// output of any process that exited meanwhile.
    pub fn wait_ready(&mut self, pod: &Pod, url: &str) {
        let deadline = Instant::now() + DEADLINE;
        loop {
            self.check_running(url);
            let out = self.exec(
                pod,
                &["curl", "-sf", "--noproxy", "*", "--max-time", "1", url],
            );
            if out.status.success() {
                return;
            }
            if Instant::now() > deadline {
                let outputs: Vec<String> = self
                    .procs
                    .iter()
                    .map(|p| {
                        let out = p.output.lock().unwrap_or_else(|e| e.into_inner()).clone();
                        format!("--- {}:\n{out}", p.what)
                    })
                    .collect();
                panic!(
                    "{url} in {}: not ready after {DEADLINE:?}\n{}",
                    pod.ns,
                    outputs.join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until the proxy in `pod` is ready.
    pub fn wait_proxy_ready(&mut self, pod: &Pod) {
        self.wait_ready(pod, &format!("http://{ADMIN}/ready"));
    }

    /// Writes `contents` to `name` in the lab's directory, readable by the proxy user.
    pub fn write(&self, name: &str, contents: &[u8]) -> PathBuf {
        let path = self.dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create a directory in the lab");
            let _ = Command::new("chmod").arg("755").arg(parent).status();
        }
        write_replacing(&path, contents);
        path
    }
}

/// Writes a file by renaming a new one into place, so a reader never sees half of it.
pub fn write_replacing(path: &Path, contents: &[u8]) {
    let mut fresh = path.as_os_str().to_owned();
    fresh.push(".new");
    std::fs::write(&fresh, contents).expect("write a file in the lab");
    std::fs::rename(&fresh, path).expect("move a file into place in the lab");
}

/// Polls `check` every 20 ms until it holds (true) or `limit` passes (false).
pub fn poll(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if check() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
