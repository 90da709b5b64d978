//! mesh-proxy over the file namer for one scenario, checked to answer for `web` from
//! the scenario's backends before it is measured.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::super::harness;
use super::super::proxy::load::Endpoint;
use super::super::proxy::procs;
use super::{Backend, Backends, Options, Scenario, Started};

/// The dtab that sends every `/svc/<host>` to the file namer's `<host>` file.
const DTAB: &str = "/svc => /#/io.l5d.fs";

/// The logical name the benchmark's requests carry (`/svc/web` in the dtab).
const SERVICE: &str = "web";

/// Requests sent one at a time through a fresh proxy before it is measured, to check that
/// it routes `web` to the backends at all.
const PROBES: u64 = 30;

/// Starts mesh-proxy with `balancer` over `set` through the file namer, and checks that it
/// answers for `web` from those backends.
pub(super) fn start(
    opts: &Options,
    bin: &Path,
    dir: &Path,
    scenario: Scenario,
    balancer: &str,
    set: &[Backend],
) -> Result<Started> {
    let dir = dir.join(scenario.name());
    let namer = dir.join("namer");
    std::fs::create_dir_all(&namer).with_context(|| format!("creating {}", namer.display()))?;
    let lines: String = set.iter().map(|b| format!("{}\n", b.addr)).collect();
    std::fs::write(namer.join(SERVICE), lines)?;
    let mut env: Vec<(String, String)> = vec![
        ("MESH_PROXY_BALANCER".into(), balancer.into()),
        ("MESH_PROXY_DTAB".into(), DTAB.into()),
        (
            "MESH_PROXY_FS_NAMER_DIR".into(),
            namer.display().to_string(),
        ),
    ];
    env.extend(opts.common.mesh_env.iter().cloned());
    let log = dir.join("out.log");
    let (proc, ports) = harness::start_mesh(bin, "mesh-proxy", opts.proxy_cpu, &env, &log)?;
    let outbound = SocketAddr::from(([127, 0, 0, 1], ports.outbound));
    if let Err(err) = check_routes(outbound, set, scenario) {
        let log = procs::log_tail(&log.with_extension("err"));
        if log.trim().is_empty() {
            bail!("{err:#}\n(mesh-proxy logged nothing)");
        }
        bail!("{err:#}\n\nthe last lines of mesh-proxy's log:\n{log}");
    }
    Ok(Started {
        scenario,
        admin: Some(ports.admin_addr()),
        proc: Some(proc),
        endpoint: Endpoint {
            url: format!("http://{outbound}/"),
            authority: Some(SERVICE.to_string()),
        },
    })
}

/// Fails unless requests for `web` get `200` from the backends in `set`: a proxy without
/// the file namer answers 502 or routes elsewhere, and its figures would be meaningless.
fn check_routes(outbound: SocketAddr, set: &[Backend], scenario: Scenario) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(5);
    let (_, before) = Backends::counts(set);
    // A status, once seen, says more than a later timeout (a name the system resolver
    // takes seconds to reject).
    let mut last = procs::http_get(outbound, SERVICE, "/");
    while !matches!(last, Ok(200)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        match procs::http_get(outbound, SERVICE, "/") {
            Err(_) if last.is_ok() => {}
            next => last = next,
        }
    }
    let not_wired = "this bench needs a mesh-proxy that reads MESH_PROXY_DTAB and \
                     MESH_PROXY_FS_NAMER_DIR and balances each request with MESH_PROXY_BALANCER";
    match last {
        Ok(200) => {}
        Ok(status) => bail!(
            "{}: mesh-proxy answered {status} to `GET /` with `Host: {SERVICE}` for 5 s; \
             it does not route {SERVICE:?} through the file namer ({not_wired})",
            scenario.name()
        ),
        Err(err) => bail!(
            "{}: `GET /` with `Host: {SERVICE}` through mesh-proxy failed for 5 s: {} \
             ({not_wired})",
            scenario.name(),
            describe(&err)
        ),
    }
    let probed: Vec<u64> = set.iter().map(Backend::requests).collect();
    for n in 1..=PROBES {
        let status = procs::http_get(outbound, SERVICE, "/").map_err(|err| {
            anyhow::anyhow!(
                "{}: probe request {n} of {PROBES} for {SERVICE:?} through mesh-proxy: {}",
                scenario.name(),
                describe(&err)
            )
        })?;
        if status != 200 {
            bail!(
                "{}: mesh-proxy answered {status} to probe request {n} of {PROBES} for \
                 {SERVICE:?}, after answering 200",
                scenario.name()
            );
        }
    }
    let reached = set.iter().zip(&probed).filter(|(b, n)| b.requests() > **n);
    let reached = reached.count();
    let (_, after) = Backends::counts(set);
    if after - before < PROBES + 1 {
        bail!(
            "{}: mesh-proxy answered 200 for {SERVICE:?}, but only {} of {} requests reached \
             the backends in the namer's file: something else answers for {SERVICE:?}",
            scenario.name(),
            after - before,
            PROBES + 1
        );
    }
    if set.len() > 1 && reached < 2 {
        println!(
            "note: {}: all {PROBES} probe requests reached one backend; the proxy may not be \
             balancing per request",
            scenario.name()
        );
    }
    Ok(())
}

/// A failed request in words: a read timeout is the proxy not answering.
fn describe(err: &anyhow::Error) -> String {
    let timed_out = err.downcast_ref::<std::io::Error>().is_some_and(|e| {
        matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        )
    });
    if timed_out {
        "no answer within 2 s".to_string()
    } else {
        format!("{err:#}")
    }
}
