//! The backend and the proxies under test, each started with its own config in a temp dir.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result};

use super::load::Endpoint;
use super::procs::{self, Proc};

/// The backend: nginx answering `200 ok` on an HTTP/1.1 port and an h2c (prior knowledge) port.
pub struct Backend {
    /// Held so the backend stops when the benchmark ends.
    _proc: Proc,
    pub h1: u16,
    pub h2: u16,
}

/// A proxy under test, or direct (no process).
pub struct Target {
    pub name: String,
    pub proc: Option<Proc>,
    pub h1: Endpoint,
    pub h2: Endpoint,
}

/// How a proxy under test is started.
#[derive(Debug, Clone)]
pub enum Launch {
    /// On its own, pinned to its core.
    Plain,
    /// Under callgrind, which counts the user-space instructions it executes. Dumps go to
    /// this path with `.1`, `.2`, … appended.
    Callgrind(PathBuf),
}

impl Launch {
    fn wrapper(&self) -> Vec<String> {
        match self {
            Launch::Plain => Vec::new(),
            Launch::Callgrind(out) => vec![
                "valgrind".to_string(),
                "--tool=callgrind".to_string(),
                // Whole names in every dump, so each one reads on its own.
                "--compress-strings=no".to_string(),
                "--compress-pos=no".to_string(),
                format!("--callgrind-out-file={}", out.display()),
            ],
        }
    }

    /// Valgrind makes start-up some fifty times slower.
    fn ready_timeout(&self) -> Duration {
        match self {
            Launch::Plain => Duration::from_secs(5),
            Launch::Callgrind(_) => Duration::from_secs(60),
        }
    }

    /// nginx's master process forks the worker that serves; under callgrind the one
    /// process serves, so the counts are the serving process's.
    fn nginx_master(&self) -> &'static str {
        match self {
            Launch::Plain => "on",
            Launch::Callgrind(_) => "off",
        }
    }
}

/// nginx's temp paths point into `dir`, so no system directory is touched.
fn nginx_http_prelude(dir: &Path, master: &str) -> String {
    let d = dir.display();
    format!(
        "daemon off;\nmaster_process {master};\nworker_processes 1;\npid {d}/nginx.pid;\n\
         error_log {d}/error.log warn;\nevents {{ worker_connections 4096; }}\n\
         http {{\n  access_log off;\n  keepalive_requests 1000000;\n  keepalive_timeout 120s;\n\
         client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
         fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n"
    )
}

fn subdir(parent: &Path, name: &str) -> Result<PathBuf> {
    let dir = parent.join(name);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

pub fn start_backend(root: &Path, cpu: usize) -> Result<Backend> {
    let dir = subdir(root, "backend")?;
    let (h1, h2) = (procs::free_port()?, procs::free_port()?);
    let conf = format!(
        "{}  server {{ listen 127.0.0.1:{h1} backlog=4096; location / {{ return 200 \"ok\\n\"; }} }}\n\
         server {{ listen 127.0.0.1:{h2} http2 backlog=4096; location / {{ return 200 \"ok\\n\"; }} }}\n}}\n",
        nginx_http_prelude(&dir, "on")
    );
    let path = dir.join("nginx.conf");
    std::fs::write(&path, conf)?;
    let mut cmd = Command::new("nginx");
    cmd.arg("-p").arg(&dir).arg("-c").arg(&path);
    let mut proc = Proc::spawn("backend nginx", cpu, &mut cmd, &dir.join("out.log"))?;
    let host = format!("127.0.0.1:{h1}");
    procs::wait_http_ok(addr(h1), &host, "/", Duration::from_secs(5))
        .or_else(|e| proc.check_running(&dir.join("out.log")).and(Err(e)))?;
    Ok(Backend {
        _proc: proc,
        h1,
        h2,
    })
}

pub fn direct(backend: &Backend) -> Target {
    Target {
        name: "direct".to_string(),
        proc: None,
        h1: Endpoint {
            url: format!("http://127.0.0.1:{}/", backend.h1),
            authority: None,
        },
        h2: Endpoint {
            url: format!("http://127.0.0.1:{}/", backend.h2),
            authority: None,
        },
    }
}

/// nginx as a reverse proxy: proxy_pass to the backend with upstream keep-alive. It cannot
/// speak HTTP/2 upstream, so its h2c listener proxies to the HTTP/1.1 port.
pub fn start_nginx(root: &Path, backend: &Backend, cpu: usize, launch: &Launch) -> Result<Target> {
    let dir = subdir(root, "nginx")?;
    let (h1, h2) = (procs::free_port()?, procs::free_port()?);
    let location = "location / { proxy_pass http://backend; proxy_http_version 1.1; \
                    proxy_set_header Connection \"\"; proxy_buffering on; }";
    let conf = format!(
        "{}  upstream backend {{ server 127.0.0.1:{}; keepalive 128; keepalive_requests 1000000; }}\n\
         server {{ listen 127.0.0.1:{h1} backlog=4096; {location} }}\n\
         server {{ listen 127.0.0.1:{h2} http2 backlog=4096; {location} }}\n}}\n",
        nginx_http_prelude(&dir, launch.nginx_master()),
        backend.h1
    );
    let path = dir.join("nginx.conf");
    std::fs::write(&path, conf)?;
    let mut cmd = Command::new("nginx");
    cmd.arg("-p").arg(&dir).arg("-c").arg(&path);
    let log = dir.join("out.log");
    let mut proc = Proc::spawn_wrapped("nginx", cpu, &launch.wrapper(), &mut cmd, &log)?;
    procs::wait_http_ok(addr(h1), "bench", "/", launch.ready_timeout())
        .or_else(|e| proc.check_running(&log).and(Err(e)))?;
    Ok(Target {
        name: "nginx".to_string(),
        proc: Some(proc),
        h1: Endpoint {
            url: format!("http://127.0.0.1:{h1}/"),
            authority: None,
        },
        h2: Endpoint {
            url: format!("http://127.0.0.1:{h2}/"),
            authority: None,
        },
    })
}

/// haproxy in HTTP mode with connection reuse; HTTP/2 end to end on the h2c frontend.
pub fn start_haproxy(
    root: &Path,
    backend: &Backend,
    cpu: usize,
    launch: &Launch,
) -> Result<Target> {
    let dir = subdir(root, "haproxy")?;
    let (h1, h2) = (procs::free_port()?, procs::free_port()?);
    let conf = format!(
        "global\n  nbthread 1\n  maxconn 1024\n\
         defaults\n  mode http\n  timeout connect 5s\n  timeout client 60s\n  timeout server 60s\n\
         \x20 timeout http-keep-alive 60s\n  http-reuse always\n\
         frontend h1\n  bind 127.0.0.1:{h1}\n  default_backend be_h1\n\
         frontend h2\n  bind 127.0.0.1:{h2} proto h2\n  default_backend be_h2\n\
         backend be_h1\n  server s1 127.0.0.1:{}\n\
         backend be_h2\n  server s1 127.0.0.1:{} proto h2\n",
        backend.h1, backend.h2
    );
    let path = dir.join("haproxy.cfg");
    std::fs::write(&path, conf)?;
    let mut cmd = Command::new("haproxy");
    cmd.arg("-db").arg("-f").arg(&path);
    let log = dir.join("out.log");
    let mut proc = Proc::spawn_wrapped("haproxy", cpu, &launch.wrapper(), &mut cmd, &log)?;
    procs::wait_http_ok(addr(h1), "bench", "/", launch.ready_timeout())
        .or_else(|e| proc.check_running(&log).and(Err(e)))?;
    Ok(Target {
        name: "haproxy".to_string(),
        proc: Some(proc),
        h1: Endpoint {
            url: format!("http://127.0.0.1:{h1}/"),
            authority: None,
        },
        h2: Endpoint {
            url: format!("http://127.0.0.1:{h2}/"),
            authority: None,
        },
    })
}

/// The ports one mesh-proxy listens on.
#[derive(Debug, Clone, Copy)]
pub struct MeshPorts {
    pub outbound: u16,
    pub inbound: u16,
    pub admin: u16,
}

impl MeshPorts {
    pub fn fresh() -> Result<MeshPorts> {
        Ok(MeshPorts {
            outbound: procs::free_port()?,
            inbound: procs::free_port()?,
            admin: procs::free_port()?,
        })
    }

    pub fn admin_addr(self) -> SocketAddr {
        addr(self.admin)
    }
}

/// The mesh-proxy command with Linkerd's listen variables, one core, and the user's extras.
pub fn mesh_command(bin: &Path, ports: MeshPorts, extra_env: &[(String, String)]) -> Command {
    let mut cmd = Command::new(bin);
    cmd.env(
        "LINKERD2_PROXY_OUTBOUND_LISTEN_ADDR",
        format!("127.0.0.1:{}", ports.outbound),
    )
    .env(
        "LINKERD2_PROXY_INBOUND_LISTEN_ADDR",
        format!("127.0.0.1:{}", ports.inbound),
    )
    .env(
        "LINKERD2_PROXY_ADMIN_LISTEN_ADDR",
        format!("127.0.0.1:{}", ports.admin),
    )
    .env("LINKERD2_PROXY_CORES", "1")
    .env("LINKERD2_PROXY_LOG", "warn");
    for (key, value) in extra_env {
        cmd.env(key, value);
    }
    cmd
}

/// mesh-proxy in HTTP proxy mode: requests to its outbound port are routed by their Host
/// (HTTP/1) or :authority (HTTP/2) to the backend, with no iptables.
pub fn start_mesh(
    root: &Path,
    bin: &Path,
    backend: &Backend,
    cpu: usize,
    extra_env: &[(String, String)],
    launch: &Launch,
) -> Result<Target> {
    let dir = subdir(root, "mesh-proxy")?;
    let ports = MeshPorts::fresh()?;
    let log = dir.join("out.log");
    let mut proc = Proc::spawn_wrapped(
        "mesh-proxy",
        cpu,
        &launch.wrapper(),
        &mut mesh_command(bin, ports, extra_env),
        &log,
    )?;
    let ready = procs::wait_http_ok(
        ports.admin_addr(),
        "localhost",
        "/ready",
        launch.ready_timeout(),
    );
    ready.or_else(|e| proc.check_running(&log).and(Err(e)))?;
    let h1_host = format!("127.0.0.1:{}", backend.h1);
    procs::wait_http_ok(addr(ports.outbound), &h1_host, "/", launch.ready_timeout())
        .context("a request through mesh-proxy's outbound port (routed by Host) failed")?;
    let url = format!("http://127.0.0.1:{}/", ports.outbound);
    Ok(Target {
        name: "mesh-proxy".to_string(),
        proc: Some(proc),
        h1: Endpoint {
            url: url.clone(),
            authority: Some(h1_host),
        },
        h2: Endpoint {
            url,
            authority: Some(format!("127.0.0.1:{}", backend.h2)),
        },
    })
}
