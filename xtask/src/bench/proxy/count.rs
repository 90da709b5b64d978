//! `--instructions`: what each proxy does per request, counted instead of timed.
//!
//! Timings on a shared machine move with whatever else runs; counts do not. Each proxy
//! runs under callgrind, which counts the user-space instructions it executes (the
//! kernel's share is not in them), and then on its own under strace, which counts its
//! system calls, the other half of the cost. The same client, h2load (`--h1` for
//! HTTP/1.1), sends the same number of requests through each, after an uncounted
//! warm-up that opens the connections and fills the pools.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use super::load::{Client, Endpoint, Protocol};
use super::peers::{Launch, Target};
use super::procs;

/// Debian packages the counting needs beyond the benchmark's own.
pub const PACKAGES: &[(&str, &str)] = &[
    ("valgrind", "valgrind"),
    ("callgrind_control", "valgrind"),
    ("strace", "strace"),
];

/// How much load to count over.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    pub requests: u64,
    pub connections: usize,
    pub h2_streams: usize,
    pub load_cpu: usize,
}

/// System calls per request, grouped.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Syscalls {
    pub reads: f64,
    pub writes: f64,
    pub waits: f64,
    pub other: f64,
}

impl Syscalls {
    pub fn total(&self) -> f64 {
        self.reads + self.writes + self.waits + self.other
    }
}

/// One target's counts for one protocol.
#[derive(Debug, Clone, Default)]
pub struct Counts {
    pub instructions: Option<f64>,
    pub syscalls: Option<Syscalls>,
    pub failure: Option<String>,
}

/// Starts a target the way `launch` says; the caller's closure knows the peers.
pub type Start<'a> = dyn Fn(&str, &Launch) -> Result<Target> + 'a;

/// Counts every target for every protocol and prints the table.
pub fn run(
    plan: Plan,
    targets: &[String],
    protocols: &[Protocol],
    start: &Start<'_>,
    dir: &Path,
) -> Result<()> {
    let mut table: BTreeMap<(usize, Protocol), Counts> = BTreeMap::new();
    for (i, name) in targets.iter().enumerate() {
        let out = dir.join(format!("callgrind.{name}"));
        match start(name, &Launch::Callgrind(out.clone())) {
            Ok(target) => {
                for &protocol in protocols {
                    let entry = table.entry((i, protocol)).or_default();
                    match instructions(plan, &target, protocol, &out) {
                        Ok(n) => entry.instructions = Some(n),
                        Err(e) => entry.failure = Some(format!("callgrind: {e:#}")),
                    }
                }
            }
            Err(e) => eprintln!("bench: {name} under callgrind: {e:#}"),
        }
        match start(name, &Launch::Plain) {
            Ok(target) => {
                for &protocol in protocols {
                    let entry = table.entry((i, protocol)).or_default();
                    match syscalls(plan, &target, protocol, dir) {
                        Ok(s) => entry.syscalls = Some(s),
                        Err(e) => entry.failure = Some(format!("strace: {e:#}")),
                    }
                }
            }
            Err(e) => eprintln!("bench: {name}: {e:#}"),
        }
    }
    print(plan, targets, protocols, &table);
    Ok(())
}

/// The backend is shared; direct has no proxy to count.
pub fn countable(targets: &[String]) -> Vec<String> {
    targets
        .iter()
        .filter(|t| t.as_str() != "direct")
        .cloned()
        .collect()
}

fn instructions(plan: Plan, target: &Target, protocol: Protocol, out: &Path) -> Result<f64> {
    let pid = target.proc.as_ref().context("no process")?.pid();
    warm_up(plan, target, protocol)?;
    callgrind_control("-z", pid)?;
    send(plan, target, protocol, plan.requests)?;
    callgrind_control("-d", pid)?;
    let dump = newest_dump(out)?;
    let text =
        std::fs::read_to_string(&dump).with_context(|| format!("reading {}", dump.display()))?;
    let total = dump_total(&text).with_context(|| format!("no total in {}", dump.display()))?;
    Ok(total as f64 / plan.requests as f64)
}

fn syscalls(plan: Plan, target: &Target, protocol: Protocol, dir: &Path) -> Result<Syscalls> {
    let pid = target.proc.as_ref().context("no process")?.pid();
    warm_up(plan, target, protocol)?;
    let out = dir.join("strace.out");
    let mut strace = Command::new("strace");
    // -f with -p attaches every thread of each process, not only the one named.
    strace.args(["-c", "-f", "-o"]).arg(&out);
    for p in procs::tree(pid) {
        strace.args(["-p", &p.to_string()]);
    }
    let mut child = strace
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting strace")?;
    // strace has no signal for "attached"; give it time before the counted load.
    std::thread::sleep(Duration::from_millis(500));
    let sent = send(plan, target, protocol, plan.requests);
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    child.wait().context("waiting for strace")?;
    sent?;
    let text =
        std::fs::read_to_string(&out).with_context(|| format!("reading {}", out.display()))?;
    Ok(per_request(&parse_strace(&text), plan.requests))
}

fn warm_up(plan: Plan, target: &Target, protocol: Protocol) -> Result<()> {
    send(plan, target, protocol, plan.requests.min(2_000))
}

/// Sends `n` requests with h2load and fails unless every one was answered 2xx.
fn send(plan: Plan, target: &Target, protocol: Protocol, n: u64) -> Result<()> {
    let endpoint: &Endpoint = match protocol {
        Protocol::Http1 => &target.h1,
        Protocol::Http2 => &target.h2,
    };
    let mut cmd = Command::new("taskset");
    cmd.args(["-c", &plan.load_cpu.to_string(), "h2load", "-t1"])
        .arg(format!("-n{n}"))
        .arg(format!("-c{}", plan.connections));
    match protocol {
        Protocol::Http1 => cmd.arg("--h1"),
        Protocol::Http2 => cmd.arg(format!("-m{}", plan.h2_streams)),
    };
    if let Some(header) = endpoint.authority_header(Client::H2load) {
        cmd.args(["-H", &header]);
    }
    cmd.arg(&endpoint.url);
    let out = cmd.output().context("running h2load")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let ok = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("status codes: "))
        .and_then(|codes| codes.split(' ').next())
        .and_then(|n| n.parse::<u64>().ok());
    if !out.status.success() || ok != Some(n) {
        bail!("h2load: {ok:?} of {n} requests answered 2xx:\n{text}");
    }
    Ok(())
}

pub(in crate::bench) fn callgrind_control(command: &str, pid: u32) -> Result<()> {
    let out = Command::new("callgrind_control")
        .args([command, &pid.to_string()])
        .output()
        .context("running callgrind_control")?;
    if !out.status.success() {
        bail!(
            "callgrind_control {command} {pid} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// The dump with the highest `.N` suffix: the one just written.
pub(in crate::bench) fn newest_dump(out: &Path) -> Result<PathBuf> {
    let dir = out.parent().context("dump path has no directory")?;
    let stem = out
        .file_name()
        .and_then(|n| n.to_str())
        .context("dump path has no name")?;
    let mut best: Option<(u32, PathBuf)> = None;
    for entry in std::fs::read_dir(dir)?.flatten() {
        let name = entry.file_name();
        let Some(n) = name
            .to_str()
            .and_then(|n| n.strip_prefix(stem))
            .and_then(|rest| rest.strip_prefix('.'))
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if best.as_ref().is_none_or(|(b, _)| n > *b) {
            best = Some((n, entry.path()));
        }
    }
    best.map(|(_, p)| p)
        .with_context(|| format!("callgrind wrote no dump next to {}", out.display()))
}

/// The instructions counted in one callgrind dump (its `summary:` or `totals:` line).
pub fn dump_total(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| {
            l.strip_prefix("summary:")
                .or_else(|| l.strip_prefix("totals:"))
        })
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// System call counts by name from `strace -c`'s table.
pub fn parse_strace(text: &str) -> BTreeMap<String, u64> {
    let mut calls = BTreeMap::new();
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        // % time, seconds, usecs/call, calls, [errors,] name.
        if words.len() < 5 || words[0].parse::<f64>().is_err() {
            continue;
        }
        let (Ok(n), Some(name)) = (words[3].parse::<u64>(), words.last()) else {
            continue;
        };
        if *name != "total" {
            calls.insert(name.to_string(), n);
        }
    }
    calls
}

fn per_request(calls: &BTreeMap<String, u64>, requests: u64) -> Syscalls {
    let mut s = Syscalls::default();
    for (name, &n) in calls {
        let n = n as f64 / requests as f64;
        match name.as_str() {
            "read" | "readv" | "recvfrom" | "recvmsg" | "recvmmsg" => s.reads += n,
            "write" | "writev" | "sendto" | "sendmsg" | "sendmmsg" | "sendfile" | "splice" => {
                s.writes += n
            }
            "epoll_wait" | "epoll_pwait" | "epoll_pwait2" | "poll" | "ppoll" | "select" => {
                s.waits += n
            }
            _ => s.other += n,
        }
    }
    s
}

fn print(
    plan: Plan,
    targets: &[String],
    protocols: &[Protocol],
    table: &BTreeMap<(usize, Protocol), Counts>,
) {
    println!(
        "\nper request, counted over {} requests (h2load -c{}, -m{} for HTTP/2), after a warm-up",
        plan.requests, plan.connections, plan.h2_streams
    );
    println!("instructions: user space only, under callgrind; system calls: strace -c -f");
    for &protocol in protocols {
        println!("\n{}", protocol.name());
        println!(
            "{:<11} {:>13} {:>9} {:>7} {:>7} {:>7} {:>7}",
            "target", "instructions", "syscalls", "reads", "writes", "waits", "other"
        );
        for (i, name) in targets.iter().enumerate() {
            let Some(c) = table.get(&(i, protocol)) else {
                continue;
            };
            let instr = c
                .instructions
                .map_or("—".to_string(), |n| format!("{:.1}k", n / 1000.0));
            let s = c.syscalls;
            let f = |v: Option<f64>| v.map_or("—".to_string(), |v| format!("{v:.2}"));
            println!(
                "{:<11} {:>13} {:>9} {:>7} {:>7} {:>7} {:>7}",
                name,
                instr,
                f(s.map(|s| s.total())),
                f(s.map(|s| s.reads)),
                f(s.map(|s| s.writes)),
                f(s.map(|s| s.waits)),
                f(s.map(|s| s.other)),
            );
            if let Some(failure) = &c.failure {
                println!("{name}: {failure}");
            }
        }
        let find = |name: &str| {
            targets
                .iter()
                .position(|t| t == name)
                .and_then(|i| table.get(&(i, protocol)))
                .and_then(|c| c.instructions)
        };
        if let Some(mesh) = find("mesh-proxy") {
            for peer in ["nginx", "haproxy"] {
                if let Some(p) = find(peer) {
                    println!("mesh-proxy / {peer}: instructions {:.2}×", mesh / p);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_strace_summary() {
        let text = "\
% time     seconds  usecs/call     calls    errors syscall
------ ----------- ----------- --------- --------- ----------------
 41.72    0.255673           6     40002           writev
 40.01    0.245193           6     40040        33 recvfrom
  0.56    0.003411           1      1720           epoll_wait
  0.01    0.000070           1        40           close
------ ----------- ----------- --------- --------- ----------------
100.00    0.612799           7     81802        33 total
";
        let calls = parse_strace(text);
        assert_eq!(calls.get("recvfrom"), Some(&40040));
        assert_eq!(calls.get("close"), Some(&40));
        assert!(!calls.contains_key("total"));
        let s = per_request(&calls, 20_000);
        assert_eq!(s.writes, 2.0001);
        assert_eq!(s.reads, 2.002);
        assert_eq!(s.waits, 0.086);
        assert_eq!(s.other, 0.002);
    }

    #[test]
    fn reads_callgrind_totals() {
        let text = "events: Ir\nsummary: 409239201\n\nfn=main\n";
        assert_eq!(dump_total(text), Some(409_239_201));
        assert_eq!(dump_total("events: Ir\ntotals: 12\n"), Some(12));
        assert_eq!(dump_total("events: Ir\n"), None);
    }

    #[test]
    fn counts_only_proxies() {
        let targets = ["direct", "mesh-proxy", "nginx"].map(String::from);
        assert_eq!(countable(&targets), ["mesh-proxy", "nginx"]);
    }
}
