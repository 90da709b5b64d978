//! `cargo xtask hot-symbols`: writes `proxy/hot-symbols.txt`, the mesh-proxy functions that
//! run while it serves traffic, which the release link places side by side (`proxy/build.rs`
//! hands the file to the linker as its symbol ordering file).
//!
//! Why: a sidecar's resident memory is mostly the pages of its own machine code. The kernel
//! maps a binary's code 64 KiB around every page a process touches, so a few hundred hot
//! functions spread over 6 MB of code made 3.8 MB of it resident. Placed together, they take
//! about 1 MB (see the commit that added this file for the figures).
//!
//! How: mesh-proxy is built in release mode and three of them run under callgrind: one in
//! HTTP proxy mode in front of nginx, as `bench proxy` runs it, and an outbound and inbound
//! pair that speak mTLS to each other through the file namer, as `bench mesh` runs them.
//! HTTP/1 and HTTP/2 loads, requests on new connections and admin requests go through them;
//! then they are stopped so that callgrind writes what ran. Every function of the mesh-proxy
//! binary that ran is listed, the busiest first. Symbols the linker does not find (after a
//! change of code or dependencies) are skipped, so a stale file costs memory, never a build.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use super::mesh::{certs, hops};
use super::proxy::count;
use super::proxy::load::{self, Conns, Endpoint, Load, Protocol};
use super::proxy::peers::{self, MeshPorts, mesh_command};
use super::proxy::procs::{self, Proc};
use crate::deps;
use crate::util::root;

/// Where the list goes, relative to the repository.
pub const FILE: &str = "proxy/hot-symbols.txt";

/// How long each load runs: callgrind makes the proxy some fifty times slower, and every
/// path only needs to run, not to be measured.
const LOAD: Duration = Duration::from_secs(3);

/// How long a proxy under callgrind has to start and to stop.
const START: Duration = Duration::from_secs(60);
const STOP: Duration = Duration::from_secs(60);

pub fn run(args: &[String]) -> Result<()> {
    if let Some(a) = args.first() {
        bail!("unexpected argument {a:?}\nusage: cargo xtask hot-symbols");
    }
    deps::ensure_debian(&[
        ("valgrind", "valgrind"),
        ("nginx", "nginx"),
        ("h2load", "nghttp2-client"),
    ])?;
    let bin = super::proxy::build_mesh_proxy()?;
    let dir = std::env::temp_dir().join(format!("mesh-hot-symbols-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let result = write(&bin, &dir);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn write(bin: &Path, dir: &Path) -> Result<()> {
    let mut layers = Vec::new();
    for dump in record(bin, dir)? {
        let text = std::fs::read_to_string(&dump)
            .with_context(|| format!("reading {}", dump.display()))?;
        layers.push(functions(&text, "mesh-proxy"));
    }
    let list = order(layers);
    if list.len() < 100 {
        bail!(
            "callgrind saw only {} mesh-proxy functions; the runs did not serve traffic",
            list.len()
        );
    }
    let out = root().join(FILE);
    std::fs::write(&out, render(&list)).with_context(|| format!("writing {}", out.display()))?;
    println!("wrote {} ({} functions)", out.display(), list.len());
    Ok(())
}

/// A line for the benchmarks: how much of `proxy/hot-symbols.txt` the binary still has.
/// Each change to the proxy renames a few functions (LLVM suffixes local functions it
/// shares between modules with a hash), which then land outside the hot run; once a tenth
/// are missing, the figures understate what a regenerated file gives.
pub fn coverage_note(bin: &Path) -> String {
    match coverage(bin) {
        Ok((found, listed)) if found * 10 >= listed * 9 => {
            format!("mesh-proxy's code layout: {found} of {listed} hot functions found")
        }
        Ok((found, listed)) => format!(
            "note: mesh-proxy's code layout is stale ({found} of {listed} hot functions found); \
             run `cargo xtask hot-symbols` and rebuild for the memory figures the release has"
        ),
        Err(e) => format!("note: mesh-proxy's code layout not checked: {e:#}"),
    }
}

/// How many of the listed symbols the binary defines, and how many are listed.
fn coverage(bin: &Path) -> Result<(usize, usize)> {
    let listed =
        std::fs::read_to_string(root().join(FILE)).with_context(|| format!("reading {FILE}"))?;
    let out = std::process::Command::new("nm")
        .arg("--defined-only")
        .arg(bin)
        .output()
        .context("running nm")?;
    if !out.status.success() {
        bail!("nm failed: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let defined: std::collections::HashSet<&str> = text
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2))
        .collect();
    let listed: Vec<&str> = listed
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let found = listed.iter().filter(|s| defined.contains(*s)).count();
    Ok((found, listed.len()))
}

/// Runs the proxies under callgrind with traffic through them; returns their dumps in the
/// order their functions are laid out: start-up and plain HTTP/1 (the path `bench proxy`
/// compares with nginx), then what HTTP/2 and the admin endpoints add, then the mTLS
/// client's and server's sides. Each scenario then touches a run of code at the front
/// rather than pages scattered through all of it.
fn record(bin: &Path, dir: &Path) -> Result<Vec<PathBuf>> {
    let backend = peers::start_backend(dir, 1)?;
    let mut dumps = Vec::new();

    // HTTP proxy mode, as `bench proxy` measures it.
    let (plain, ports) = spawn(bin, dir, "plain", &[])?;
    let via = |port: u16, authority: String| Endpoint {
        url: format!("http://127.0.0.1:{port}/"),
        authority: Some(authority),
    };
    drive(
        &via(ports.outbound, format!("127.0.0.1:{}", backend.h1)),
        Protocol::Http1,
        dir,
    )?;
    count::callgrind_control("-d", plain.pid())?;
    absolute_form(ports.outbound, backend.h1)?;
    dumps.push(count::newest_dump(&dir.join("callgrind.plain"))?);
    drive(
        &via(ports.outbound, format!("127.0.0.1:{}", backend.h2)),
        Protocol::Http2,
        dir,
    )?;
    admin(ports)?;
    dumps.push(stop(plain, dir, "plain")?);

    // An mTLS pair, as `bench mesh` measures it.
    let ids = certs::Identities::generate(&dir.join("certs"))?;
    let namer = dir.join("namer");
    std::fs::create_dir_all(&namer)?;
    let mut env = vec![(
        "MESH_PROXY_INBOUND_FORWARD_ADDR".to_string(),
        format!("127.0.0.1:{}", backend.h1),
    )];
    env.extend(ids.env(&ids.server));
    let (inbound, in_ports) = spawn(bin, dir, "inbound", &env)?;
    std::fs::write(
        namer.join(hops::SERVICE),
        hops::namer_line(in_ports.inbound, Some(certs::SERVER)),
    )?;
    let mut env = vec![
        ("MESH_PROXY_DTAB".to_string(), hops::DTAB.to_string()),
        (
            "MESH_PROXY_FS_NAMER_DIR".to_string(),
            namer.display().to_string(),
        ),
    ];
    env.extend(ids.env(&ids.client));
    let (outbound, out_ports) = spawn(bin, dir, "outbound", &env)?;
    let service = via(out_ports.outbound, hops::SERVICE.to_string());
    procs::wait_http_ok(
        SocketAddr::from(([127, 0, 0, 1], out_ports.outbound)),
        hops::SERVICE,
        "/",
        START,
    )
    .context("the mTLS pair did not answer")?;
    drive(&service, Protocol::Http1, dir)?;
    let fresh = Load {
        conns: Conns::PerRequest,
        ..load(Protocol::Http1)
    };
    load::run(fresh, &service, None, dir).context("new-connection load")?;
    admin(out_ports)?;
    admin(in_ports)?;
    dumps.push(stop(outbound, dir, "outbound")?);
    dumps.push(stop(inbound, dir, "inbound")?);
    Ok(dumps)
}

fn load(protocol: Protocol) -> Load {
    Load {
        protocol,
        conns: Conns::KeepAlive,
        connections: 16,
        h2_streams: 4,
        duration: LOAD,
        cpu: 1,
    }
}

fn drive(endpoint: &Endpoint, protocol: Protocol, dir: &Path) -> Result<()> {
    let sample = load::run(load(protocol), endpoint, None, dir)
        .with_context(|| format!("{} load through {}", protocol.name(), endpoint.url))?;
    if sample.requests < 1.0 {
        bail!(
            "no {} request went through {}",
            protocol.name(),
            endpoint.url
        );
    }
    Ok(())
}

/// Requests in absolute form (`GET http://host/`), as clients configured with
/// `http_proxy` send them.
fn absolute_form(proxy: u16, backend: u16) -> Result<()> {
    use std::io::{Read, Write};
    for _ in 0..20 {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", proxy))?;
        s.set_read_timeout(Some(START))?;
        write!(
            s,
            "GET http://127.0.0.1:{backend}/ HTTP/1.1\r\nHost: 127.0.0.1:{backend}\r\n\
             Connection: close\r\n\r\n"
        )?;
        let mut answer = String::new();
        s.read_to_string(&mut answer)?;
        if !answer.starts_with("HTTP/1.1 200") {
            bail!("an absolute-form request got {:?}", answer.lines().next());
        }
    }
    Ok(())
}

/// The admin endpoints a kubelet and a Prometheus call.
fn admin(ports: MeshPorts) -> Result<()> {
    for path in ["/ready", "/live", "/metrics"] {
        procs::get_text(ports.admin_addr(), path)
            .with_context(|| format!("GET {path} from the admin port"))?;
    }
    Ok(())
}

fn spawn(
    bin: &Path,
    dir: &Path,
    role: &str,
    env: &[(String, String)],
) -> Result<(Proc, MeshPorts)> {
    let ports = MeshPorts::fresh()?;
    let out = dir.join(format!("callgrind.{role}"));
    let wrapper = [
        "valgrind".to_string(),
        "--tool=callgrind".to_string(),
        "--demangle=no".to_string(),
        "--compress-strings=no".to_string(),
        "--compress-pos=no".to_string(),
        format!("--callgrind-out-file={}", out.display()),
    ];
    let log = dir.join(format!("{role}.log"));
    let mut proc = Proc::spawn_wrapped(
        &format!("{role} mesh-proxy"),
        0,
        &wrapper,
        &mut mesh_command(bin, ports, env),
        &log,
    )?;
    procs::wait_http_ok(ports.admin_addr(), "localhost", "/ready", START)
        .or_else(|e| proc.check_running(&log).and(Err(e)))?;
    Ok((proc, ports))
}

/// Stops a proxy with SIGTERM and returns the dump callgrind wrote as it exited.
fn stop(proc: Proc, dir: &Path, role: &str) -> Result<PathBuf> {
    proc.terminate(STOP)?;
    // After dumps on request (`X.1`, …) the last one may be `X` or the next number.
    let out = dir.join(format!("callgrind.{role}"));
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    [Some(out.clone()), count::newest_dump(&out).ok()]
        .into_iter()
        .flatten()
        .filter_map(|p| Some((modified(&p)?, p)))
        .max()
        .map(|(_, p)| p)
        .with_context(|| format!("callgrind wrote no dump for the {role} proxy"))
}

/// The functions of the object whose path ends with `object` in one callgrind dump (written
/// with `--compress-strings=no --compress-pos=no`), with the instructions each executed
/// itself (calls excluded).
pub fn functions(text: &str, object: &str) -> HashMap<String, u64> {
    let mut out: HashMap<String, u64> = HashMap::new();
    let mut ob_matches = false;
    let mut current: Option<String> = None;
    let mut after_calls = false;
    for line in text.lines() {
        if let Some(ob) = line.strip_prefix("ob=") {
            ob_matches = ob.trim_end().ends_with(object);
        } else if let Some(name) = line.strip_prefix("fn=") {
            current = (ob_matches && is_symbol(name)).then(|| name.to_string());
            if let Some(name) = &current {
                out.entry(name.clone()).or_default();
            }
            after_calls = false;
        } else if line.starts_with("calls=") {
            after_calls = true;
        } else if line.starts_with(|c: char| c.is_ascii_digit() || c == '+' || c == '-') {
            // A cost line, `<position> <instructions>`: after `calls=` it is the call's
            // inclusive cost, which belongs to the callee.
            if !after_calls
                && let Some(name) = &current
                && let Some(ir) = line.split_whitespace().nth(1)
                && let Ok(ir) = ir.parse::<u64>()
            {
                *out.entry(name.clone()).or_default() += ir;
            }
            after_calls = false;
        }
    }
    out
}

/// A linker symbol, not an address or valgrind's `(below main)`.
fn is_symbol(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with("0x")
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.$".contains(c))
}

/// The functions of every layer, each layer's busiest first (ties by name, so the same
/// counts give the same file), leaving out those an earlier layer listed.
pub fn order(layers: Vec<HashMap<String, u64>>) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for layer in layers {
        let mut list: Vec<(String, u64)> = layer.into_iter().collect();
        list.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        for (name, _) in list {
            if seen.insert(name.clone()) {
                out.push(name);
            }
        }
    }
    out
}

/// The file: a header, then one symbol a line.
pub fn render(list: &[String]) -> String {
    let mut out = String::from(
        "# The mesh-proxy functions that run while it serves: the release link places them\n\
         # side by side in this order, so fewer pages of code are resident. Written by\n\
         # `cargo xtask hot-symbols`; see proxy/build.rs.\n",
    );
    for name in list {
        out.push_str(name);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const DUMP: &str = "\
version: 1
events: Ir
ob=/usr/lib/x86_64-linux-gnu/libc.so.6
fn=memcpy
10 500
ob=/tmp/x/mesh-proxy
fn=_ZN4hyper5proto2h14role3foo17h0123456789abcdefE
12 40
cob=/usr/lib/x86_64-linux-gnu/libc.so.6
cfn=memcpy
calls=1 10
13 500
14 2
fn=0x0000000000001050
1 7
fn=_ZN4main17hfedcba9876543210E
1 1
";

    #[test]
    fn functions_are_the_binary_s_own_with_their_own_cost() {
        let f = functions(DUMP, "mesh-proxy");
        assert_eq!(
            f.get("_ZN4hyper5proto2h14role3foo17h0123456789abcdefE"),
            Some(&42),
            "{f:?}"
        );
        assert_eq!(f.get("_ZN4main17hfedcba9876543210E"), Some(&1));
        assert!(!f.contains_key("memcpy"), "libc's functions are not ours");
        assert_eq!(f.len(), 2, "addresses without a name are left out: {f:?}");
    }

    #[test]
    fn the_file_lists_each_layer_busiest_first_after_a_comment() {
        let first = functions(DUMP, "mesh-proxy");
        let second = HashMap::from([
            ("_ZN4main17hfedcba9876543210E".to_string(), 1000),
            ("_ZN5later17h0000000000000000E".to_string(), 1),
        ]);
        let text = render(&order(vec![first, second]));
        let lines: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(
            lines,
            [
                "_ZN4hyper5proto2h14role3foo17h0123456789abcdefE",
                "_ZN4main17hfedcba9876543210E",
                "_ZN5later17h0000000000000000E",
            ]
        );
        assert!(text.starts_with("# "), "lld reads # as a comment");
    }
}
