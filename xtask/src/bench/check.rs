//! `cargo xtask bench check`: `mesh check --proxy` against a fake API server holding a healthy
//! control plane and 10 000 meshed pods in 200 namespaces. Target: under 1 s.
//!
//! The server is the test-support crate's `serve` example, a separate process, so the figure is
//! the CLI's own: client set-up, paginated lists over HTTP, JSON decoding and the checks. As a
//! baseline it also times `kubectl get pods -A -o name`, which reads the same pages.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::util::{cargo, have, root, sh};

const RUNS: usize = 5;
const TARGET: Duration = Duration::from_secs(1);

pub fn run(args: &[String]) -> Result<()> {
    let mut pods = 10_000usize;
    let mut namespaces = 200usize;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut number = |flag: &str| -> Result<usize> {
            it.next()
                .with_context(|| format!("{flag} needs a number"))?
                .parse()
                .with_context(|| format!("{flag} needs a number"))
        };
        match arg.as_str() {
            "--pods" => pods = number("--pods")?,
            "--namespaces" => namespaces = number("--namespaces")?.max(1),
            other => bail!(
                "unknown argument {other:?}; usage: cargo xtask bench check [--pods N] [--namespaces N]"
            ),
        }
    }
    sh(cargo().args(["build", "--release", "--quiet", "-p", "mesh-cli"]))?;
    sh(cargo().args([
        "build",
        "--release",
        "--quiet",
        "-p",
        "mesh-testkube",
        "--example",
        "serve",
    ]))?;
    let target = target_dir();
    let mesh = target.join("release/mesh");
    let serve = target.join("release/examples/serve");

    let version = version(&mesh)?;
    let fixtures = target.join("bench/check");
    std::fs::create_dir_all(&fixtures)?;
    std::fs::write(
        fixtures.join("control-plane.yaml"),
        control_plane(&version)?,
    )?;
    std::fs::write(
        fixtures.join("pods.yaml"),
        data_plane(&version, pods, namespaces),
    )?;
    eprintln!("fixture: {pods} meshed pods in {namespaces} namespaces, plus the control plane");

    let loading = Instant::now();
    let mut server = Server::start(&serve, &fixtures)?;
    eprintln!(
        "fake API server up in {:.1} s",
        loading.elapsed().as_secs_f64()
    );

    let check = |out_format: &str| -> Result<Duration> {
        let start = Instant::now();
        let out = Command::new(&mesh)
            .arg("--kubeconfig")
            .arg(&server.kubeconfig)
            .args(["check", "--proxy", "--wait=0s", "-o", out_format])
            .output()?;
        let took = start.elapsed();
        // The fake API server runs no controller, so their admin `/ready` checks fail; those
        // failures, and only those, are expected.
        let stdout = String::from_utf8_lossy(&out.stdout);
        let only_admin = stdout
            .lines()
            .filter(|l| l.starts_with('×'))
            .all(|l| l.ends_with("answers ready on its admin port"));
        let expected = out.status.success() || (out.status.code() == Some(1) && only_admin);
        if !expected {
            bail!(
                "mesh check failed on the benchmark fixture:\n{}{}",
                stdout,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(took)
    };
    check("short")?; // warm-up: page cache, server allocations
    let mut times: Vec<Duration> = (0..RUNS).map(|_| check("short")).collect::<Result<_>>()?;
    times.sort();
    let median = times[RUNS / 2];

    let baseline = if have("kubectl") {
        let cache = fixtures.join("kubectl-cache");
        let list = || -> Result<Duration> {
            let start = Instant::now();
            let out = Command::new("kubectl")
                .arg("--kubeconfig")
                .arg(&server.kubeconfig)
                .arg("--cache-dir")
                .arg(&cache)
                .args(["get", "pods", "-A", "-o", "name"])
                .output()?;
            if !out.status.success() {
                bail!(
                    "kubectl get pods failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            Ok(start.elapsed())
        };
        list()?;
        let mut t: Vec<Duration> = (0..RUNS).map(|_| list()).collect::<Result<_>>()?;
        t.sort();
        Some(t[RUNS / 2])
    } else {
        None
    };
    server.stop();

    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!("mesh check --proxy, {pods} pods in {namespaces} namespaces ({RUNS} runs):");
    println!(
        "  median {:.0} ms, min {:.0} ms, max {:.0} ms",
        ms(median),
        ms(times[0]),
        ms(times[RUNS - 1])
    );
    println!(
        "  target < {:.0} ms: ratio {:.2} ({})",
        ms(TARGET),
        median.as_secs_f64() / TARGET.as_secs_f64(),
        if median < TARGET { "met" } else { "missed" }
    );
    if let Some(baseline) = baseline {
        println!(
            "  kubectl get pods -A -o name: median {:.0} ms; mesh check / kubectl = {:.2}",
            ms(baseline),
            median.as_secs_f64() / baseline.as_secs_f64()
        );
    }
    Ok(())
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"))
}

fn version(mesh: &Path) -> Result<String> {
    let out = Command::new(mesh)
        .args(["version", "--client", "--short"])
        .output()?;
    if !out.status.success() {
        bail!("mesh version failed");
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The fake API server, serving until its stdin closes.
struct Server {
    child: Child,
    kubeconfig: PathBuf,
}

impl Server {
    fn start(serve: &Path, fixtures: &Path) -> Result<Server> {
        let mut child = Command::new(serve)
            .arg("--kubelet")
            .arg(fixtures)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot start {}", serve.display()))?;
        let stdout = child.stdout.take().context("no stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        if line.trim().is_empty() {
            let status = child.wait()?;
            bail!("the fake API server exited before serving: {status}");
        }
        Ok(Server {
            child,
            kubeconfig: PathBuf::from(line.trim()),
        })
    }

    fn stop(&mut self) {
        // Closing stdin asks it to exit; it is our own child.
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// testdata/check/control-plane.yaml with the committed test certificates.
fn control_plane(version: &str) -> Result<String> {
    let dir = root().join("testdata/check");
    let read = |name: &str| -> Result<String> {
        std::fs::read_to_string(dir.join(name))
            .with_context(|| format!("cannot read testdata/check/{name}"))
    };
    let anchors = read("certs/anchors.pem")?;
    let b64 = |name: &str| -> Result<String> { Ok(STANDARD.encode(read(name)?)) };
    Ok(read("control-plane.yaml")?
        .replace("{{version}}", version)
        .replace("{{anchors}}", &json_string(&anchors))
        .replace("{{issuer_crt}}", &b64("certs/issuer.crt")?)
        .replace("{{issuer_key}}", &b64("certs/issuer.key")?)
        .replace("{{webhook_crt}}", &b64("certs/webhook.crt")?)
        .replace("{{webhook_key}}", &b64("certs/webhook.key")?)
        .replace("{{webhook_ca}}", &b64("certs/webhook-ca.crt")?))
}

/// Meshed pods as `mesh inject --manual` shapes them, Running and Ready.
fn data_plane(version: &str, pods: usize, namespaces: usize) -> String {
    let mut out = String::with_capacity(pods * 2600);
    let per_ns = pods.div_ceil(namespaces);
    for n in 0..namespaces {
        let _ = write!(
            out,
            "---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: bench-{n:03}\n  annotations: {{linkerd.io/inject: enabled}}\n"
        );
    }
    for i in 0..pods {
        let ns = i / per_ns;
        let app = format!("app-{}", i % 5);
        let _ = write!(
            out,
            r#"---
apiVersion: v1
kind: Pod
metadata:
  name: {app}-7d4b9c8f5-{i:05}
  namespace: bench-{ns:03}
  labels: {{app: {app}, pod-template-hash: 7d4b9c8f5, linkerd.io/control-plane-ns: linkerd, linkerd.io/proxy-deployment: {app}, linkerd.io/workload-ns: bench-{ns:03}}}
  annotations: {{linkerd.io/created-by: mesh/cli {version}, linkerd.io/proxy-version: "{version}", linkerd.io/trust-root-sha256: 4ff1e37a2f37a6f1c2dcbeb3e3bfd5f1b3a2c0e5f3d2b1a0c9d8e7f6a5b4c3d2}}
  ownerReferences:
  - {{apiVersion: apps/v1, kind: ReplicaSet, name: {app}-7d4b9c8f5, uid: 00000000-0000-4000-8000-{i:012}, controller: true, blockOwnerDeletion: true}}
spec:
  initContainers:
  - name: linkerd-init
    image: ghcr.io/mesh-project/mesh-proxy:{version}
    args: [init, --incoming-proxy-port, "4143", --outgoing-proxy-port, "4140", --proxy-uid, "2102"]
  - name: linkerd-proxy
    image: ghcr.io/mesh-project/mesh-proxy:{version}
    restartPolicy: Always
    env:
    - {{name: LINKERD2_PROXY_LOG, value: "warn,linkerd=info"}}
    - {{name: LINKERD2_PROXY_INBOUND_LISTEN_ADDR, value: "0.0.0.0:4143"}}
    - {{name: LINKERD2_PROXY_OUTBOUND_LISTEN_ADDR, value: "127.0.0.1:4140"}}
    - {{name: LINKERD2_PROXY_ADMIN_LISTEN_ADDR, value: "0.0.0.0:4191"}}
    ports: [{{name: linkerd-proxy, containerPort: 4143}}, {{name: linkerd-admin, containerPort: 4191}}]
    readinessProbe: {{httpGet: {{path: /ready, port: 4191}}}}
    livenessProbe: {{httpGet: {{path: /live, port: 4191}}}}
    securityContext: {{runAsUser: 2102, readOnlyRootFilesystem: true}}
  containers:
  - name: {app}
    image: docker.io/example/{app}:v1
    ports: [{{containerPort: 8080, name: http}}]
  nodeName: testkube-node
status:
  phase: Running
  podIP: 10.244.{}.{}
  conditions:
  - {{type: Initialized, status: "True"}}
  - {{type: Ready, status: "True"}}
  - {{type: ContainersReady, status: "True"}}
  - {{type: PodScheduled, status: "True"}}
  initContainerStatuses:
  - {{name: linkerd-init, ready: true, restartCount: 0, image: mesh-proxy, imageID: "", state: {{terminated: {{exitCode: 0, reason: Completed}}}}}}
  - {{name: linkerd-proxy, ready: true, started: true, restartCount: 0, image: mesh-proxy, imageID: "", state: {{running: {{}}}}}}
  containerStatuses:
  - {{name: {app}, ready: true, started: true, restartCount: 0, image: "{app}", imageID: "", state: {{running: {{}}}}}}
"#,
            i / 250,
            i % 250
        );
    }
    out
}

fn json_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
