//! The proxies of one mode: an inbound proxy in front of the server, an outbound proxy that
//! finds it through the file namer, and a second outbound proxy that keeps no idle
//! connections for the new-connection runs. Each is checked to reach the server before it
//! is measured.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::super::balance::backend::Backend;
use super::super::harness;
use super::super::proxy::load::Endpoint;
use super::super::proxy::peers::MeshPorts;
use super::super::proxy::procs::{self, Proc};
use super::certs::{self, Identities};
use super::options::{Mode, Options};

/// The dtab that sends every `/svc/<host>` to the file namer's `<host>` file.
pub const DTAB: &str = "/svc => /#/io.l5d.fs";

/// The logical name the client's requests carry (`Host: web`, `/svc/web` in the dtab).
pub const SERVICE: &str = "web";

/// Requests sent one at a time through a fresh chain before it is measured.
const PROBES: u64 = 20;

/// How long a chain has to answer its first request.
const READY: Duration = Duration::from_secs(5);

/// One running mesh-proxy.
pub struct Proxy {
    proc: Proc,
    pub admin: SocketAddr,
    log: std::path::PathBuf,
}

impl Proxy {
    pub fn pid(&self) -> u32 {
        self.proc.pid()
    }

    /// The last lines of its log, for an error message.
    fn tail(&self) -> String {
        let tail = procs::log_tail(&self.log.with_extension("err"));
        if tail.trim().is_empty() {
            "(nothing logged)".to_string()
        } else {
            tail
        }
    }
}

/// The processes behind one mode, and where its loads go.
pub struct Chain {
    pub mode: Mode,
    /// Where keep-alive load goes: the outbound proxy, or the server itself.
    pub endpoint: Endpoint,
    /// Where new-connection load goes: the outbound proxy without a pool, or the server.
    pub fresh_endpoint: Endpoint,
    pub outbound: Option<Proxy>,
    pub inbound: Option<Proxy>,
    pub fresh: Option<Proxy>,
}

impl Chain {
    /// The processes that serve keep-alive load: outbound, then inbound.
    pub fn pids(&self) -> Vec<u32> {
        [&self.outbound, &self.inbound]
            .into_iter()
            .flatten()
            .map(Proxy::pid)
            .collect()
    }

    /// The processes that serve new-connection load: the poolless outbound, then inbound.
    pub fn fresh_pids(&self) -> Vec<u32> {
        [&self.fresh, &self.inbound]
            .into_iter()
            .flatten()
            .map(Proxy::pid)
            .collect()
    }
}

/// Starts the proxies of `mode` in front of `server` (none for direct) and checks that
/// requests for `web` reach the server through them; the poolless outbound proxy too when
/// new connections are measured.
pub fn start(
    mode: Mode,
    opts: &Options,
    bin: Option<&Path>,
    dir: &Path,
    server: &Backend,
    identities: Option<&Identities>,
) -> Result<Chain> {
    let direct = Endpoint {
        url: format!("http://{}/", server.addr),
        authority: None,
    };
    let bin = match (mode, bin) {
        (Mode::Direct, _) => {
            return Ok(Chain {
                mode,
                endpoint: direct.clone(),
                fresh_endpoint: direct,
                outbound: None,
                inbound: None,
                fresh: None,
            });
        }
        (_, Some(bin)) => bin,
        (_, None) => bail!("no mesh-proxy binary for {}", mode.name()),
    };
    let identities = match (mode, identities) {
        (Mode::Mtls, None) => bail!("no identities for mtls"),
        (Mode::Mtls, ids) => ids,
        _ => None,
    };
    let dir = dir.join(mode.name());
    let namer = dir.join("namer");
    std::fs::create_dir_all(&namer).with_context(|| format!("creating {}", namer.display()))?;

    let mut env = vec![(
        "MESH_PROXY_INBOUND_FORWARD_ADDR".to_string(),
        server.addr.to_string(),
    )];
    if let Some(ids) = identities {
        env.extend(ids.env(&ids.server));
    }
    env.extend(opts.common.mesh_env.iter().cloned());
    let (inbound, ports) = spawn(bin, &dir, "inbound", opts.inbound_cpu, &env)?;
    std::fs::write(
        namer.join(SERVICE),
        namer_line(ports.inbound, identities.map(|_| certs::SERVER)),
    )?;

    let mut env = vec![
        ("MESH_PROXY_DTAB".to_string(), DTAB.to_string()),
        (
            "MESH_PROXY_FS_NAMER_DIR".to_string(),
            namer.display().to_string(),
        ),
    ];
    if let Some(ids) = identities {
        env.extend(ids.env(&ids.client));
    }
    env.extend(opts.common.mesh_env.iter().cloned());
    let (outbound, ports) = spawn(bin, &dir, "outbound", opts.outbound_cpu, &env)?;
    let outbound_port = ports.outbound;
    check(outbound_port, server, [&outbound, &inbound], mode)?;

    let (fresh, fresh_port) = if opts.handshakes() {
        // No idle connection is kept, so each request opens a connection to the inbound proxy.
        env.push((
            "LINKERD2_PROXY_OUTBOUND_MAX_IDLE_CONNS_PER_ENDPOINT".to_string(),
            "0".to_string(),
        ));
        let (p, ports) = spawn(bin, &dir, "fresh", opts.outbound_cpu, &env)?;
        check(ports.outbound, server, [&p, &inbound], mode)?;
        (Some(p), ports.outbound)
    } else {
        (None, outbound_port)
    };
    let via = |port: u16| Endpoint {
        url: format!("http://127.0.0.1:{port}/"),
        authority: Some(SERVICE.to_string()),
    };
    Ok(Chain {
        mode,
        endpoint: via(outbound_port),
        fresh_endpoint: via(fresh_port),
        outbound: Some(outbound),
        inbound: Some(inbound),
        fresh,
    })
}

/// The namer file's line for the inbound proxy: `127.0.0.1 PORT`, with `tls=<identity>`
/// when the outbound proxy must speak mTLS to it.
pub fn namer_line(port: u16, identity: Option<&str>) -> String {
    match identity {
        Some(name) => format!("127.0.0.1 {port} tls={name}\n"),
        None => format!("127.0.0.1 {port}\n"),
    }
}

/// Starts one proxy pinned to `cpu` and waits for its `/ready`; returns it with its ports.
fn spawn(
    bin: &Path,
    dir: &Path,
    role: &str,
    cpu: usize,
    env: &[(String, String)],
) -> Result<(Proxy, MeshPorts)> {
    let log = dir.join(format!("{role}.log"));
    let name = format!("{role} mesh-proxy");
    let (proc, ports) = harness::start_mesh(bin, &name, cpu, env, &log)
        .with_context(|| format!("{name} did not become ready"))?;
    Ok((
        Proxy {
            proc,
            admin: ports.admin_addr(),
            log,
        },
        ports,
    ))
}

/// Fails unless requests for `web` sent to `port` get `200` from the server: a proxy that
/// routes elsewhere or answers itself would make every figure meaningless.
fn check(port: u16, server: &Backend, proxies: [&Proxy; 2], mode: Mode) -> Result<()> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let fail = |what: String| -> anyhow::Error {
        let logs: Vec<String> = proxies
            .iter()
            .map(|p| format!("{}:\n{}", p.proc.name, p.tail()))
            .collect();
        anyhow::anyhow!(
            "{}: {what}\n\nthe last lines of the proxies' logs:\n{}",
            mode.name(),
            logs.join("\n")
        )
    };
    let before = server.requests();
    let deadline = Instant::now() + READY;
    let mut last = procs::http_get(addr, SERVICE, "/");
    // Bounded by the deadline.
    while !matches!(last, Ok(200)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        last = procs::http_get(addr, SERVICE, "/");
    }
    match last {
        Ok(200) => {}
        Ok(status) => return Err(fail(format!("`GET /` with `Host: {SERVICE}` got {status}"))),
        Err(err) => return Err(fail(format!("`GET /` with `Host: {SERVICE}`: {err:#}"))),
    }
    for n in 1..=PROBES {
        match procs::http_get(addr, SERVICE, "/") {
            Ok(200) => {}
            other => return Err(fail(format!("probe {n} of {PROBES}: {other:?}"))),
        }
    }
    let reached = server.requests() - before;
    if reached < PROBES + 1 {
        return Err(fail(format!(
            "only {reached} of {} requests reached the server",
            PROBES + 1
        )));
    }
    Ok(())
}
