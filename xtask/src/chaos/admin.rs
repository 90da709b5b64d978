//! The admin port: a log filter that is expensive to compile, and who may change things.

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::backend::Backend;
use super::proc::{Probe, Proxy};
use super::{Ctx, Outcome, ProbeRule, Report, Verdict, inbound_proxy, mb, ms, wire};
use crate::util::have;

/// A field-value regex whose DFA is exponential in the number of `[a-z]` after the `a`.
fn regex_filter(repeats: usize) -> String {
    format!("mesh_proxy[{{x=[a-z]*a{}}}]=info", "[a-z]".repeat(repeats))
}

/// Row 1: `PUT /proxy-log-level` with a small filter that is costly to compile must not
/// freeze the proxy nor grow its memory.
pub fn log_level_regex(ctx: &Ctx) -> Result<Outcome> {
    let backend = Backend::start()?;
    let mut proxy = inbound_proxy(ctx, &backend, &[])?;
    let filter = regex_filter(ctx.pick(16, 18));
    let mut report = Report::new(format!(
        "PUT /proxy-log-level with a {}-byte regex filter",
        filter.len()
    ));
    let before = proxy.usage();
    let probe = Probe::start(proxy.inbound);
    std::thread::sleep(Duration::from_millis(300));
    let raw = format!(
        "PUT /proxy-log-level HTTP/1.1\r\nHost: chaos.test\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{filter}",
        filter.len()
    );
    let start = Instant::now();
    let res = wire::exchange(proxy.admin, raw.as_bytes(), Duration::from_secs(60));
    let took = start.elapsed();
    std::thread::sleep(Duration::from_millis(300));
    let probe = probe.finish();
    match &res {
        Ok(r) => report.note(format!("PUT answered {} in {}", r.status, ms(took))),
        Err(e) => report.note(format!("PUT failed after {}: {e}", ms(took))),
    }
    // Parsing a filter of a hundred bytes, or refusing it, takes microseconds.
    report.expect(
        took < Duration::from_millis(500),
        format!("the PUT took {}", ms(took)),
    );
    let growth = proxy.peak_rss().saturating_sub(before.rss);
    report.proxy(&mut proxy, before, &probe, ProbeRule::MustPass);
    report.expect(growth < 32 << 20, format!("RSS grew {}", mb(growth)));
    Ok(report.outcome())
}

/// Row 1, second half: `PUT /proxy-log-level` and `POST /shutdown` from a peer that is not
/// loopback are refused, while `/metrics` and `/ready` still answer it. Runs in a network
/// namespace of its own, where the admin port listens on a non-loopback address.
pub fn loopback_only(ctx: &Ctx) -> Result<Outcome> {
    let root = nix::unistd::geteuid().is_root();
    if !root || !have("ip") || !have("curl") {
        return Ok(Outcome {
            verdict: Verdict::Skipped,
            measured: "needs root, ip and curl for a network namespace".to_string(),
        });
    }
    let ns = Netns::create(&format!("mesh-chaos-{}", std::process::id()))?;
    let admin = "10.254.0.1:4191";
    let wrapper = ["ip", "netns", "exec", &ns.name].map(String::from);
    let env = [("LINKERD2_PROXY_ADMIN_LISTEN_ADDR", admin.to_string())];
    let mut proxy = Proxy::start_in(&wrapper, &ctx.proxy_bin, &env)?;
    let curl = |method: &str, path: &str, body: &str| -> Result<(String, String)> {
        let out = Command::new("ip")
            .args(["netns", "exec", &ns.name, "curl", "-sS", "-o", "/dev/null"])
            .args(["-w", "%{http_code} %{local_ip}", "--max-time", "5"])
            .args(["-X", method, "--data-binary", body])
            .arg(format!("http://{admin}{path}"))
            .output()
            .context("running curl in the namespace")?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (code, from) = text.split_once(' ').unwrap_or((&text, ""));
        Ok((code.to_string(), from.to_string()))
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while curl("GET", "/ready", "")?.0 != "200" {
        if Instant::now() > deadline {
            bail!("the proxy in the namespace never became ready");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let (ready, from) = curl("GET", "/ready", "")?;
    let (metrics, _) = curl("GET", "/metrics", "")?;
    let (put, _) = curl("PUT", "/proxy-log-level", "trace")?;
    let (shutdown, _) = curl("POST", "/shutdown", "")?;
    std::thread::sleep(Duration::from_millis(200));
    let exited = proxy.exited();
    let mut report = Report::new(format!("admin requests from {from} (not loopback)"));
    report.note(format!(
        "GET /ready {ready}, GET /metrics {metrics}, PUT /proxy-log-level {put}, \
         POST /shutdown {shutdown}"
    ));
    let refused = |code: &str| code.starts_with('4');
    report.expect(
        refused(&put),
        format!("PUT /proxy-log-level answered {put}"),
    );
    report.expect(
        refused(&shutdown),
        format!("POST /shutdown answered {shutdown}"),
    );
    report.expect(exited.is_none(), "the proxy shut down");
    report.expect(
        ready == "200" && metrics == "200",
        "read-only endpoints refused",
    );
    let (panics, first) = proxy.panics();
    report.expect(
        panics == 0,
        format!("{panics} panics: {}", first.unwrap_or_default()),
    );
    drop(proxy);
    drop(ns);
    Ok(report.outcome())
}

/// A network namespace with loopback up and 10.254.0.1 on it, deleted when dropped.
struct Netns {
    name: String,
}

impl Netns {
    fn create(name: &str) -> Result<Netns> {
        let ip = |args: &[&str]| -> Result<()> {
            let status = Command::new("ip").args(args).status()?;
            if !status.success() {
                bail!("ip {} failed: {status}", args.join(" "));
            }
            Ok(())
        };
        ip(&["netns", "add", name])?;
        let ns = Netns {
            name: name.to_string(),
        };
        ip(&["-n", name, "link", "set", "lo", "up"])?;
        ip(&["-n", name, "addr", "add", "10.254.0.1/32", "dev", "lo"])?;
        Ok(ns)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}
