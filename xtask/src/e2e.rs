//! `cargo xtask e2e [--install] [--workload] [-- CHECK_ARGS…]`: the control plane against a real
//! cluster.
//!
//! Needs `KUBECONFIG` pointing at a real cluster (kind works: load the images first with
//! `kind load image-archive`); the fake API server the tests use stands in for one everywhere
//! else, so CI does not run this. With `--install` it first installs the control plane
//! (`mesh install --crds | kubectl apply -f -`, then `mesh install | kubectl apply -f -`) and waits
//! for its Deployments to roll out. With `--workload` it then meshes a workload the way a user
//! does: a namespace annotated `linkerd.io/inject: enabled`, a Deployment applied with kubectl, and
//! checks that the injector gave its pods `linkerd-proxy` and `linkerd-init` and recorded an
//! `Injected` event. Last, it waits for `mesh check --proxy` to pass. With `--images` it first
//! builds the container images (`cargo xtask images`) and loads them into the cluster (`kind load
//! image-archive` on kind; elsewhere it prints the commands and waits), and at the end meshes
//! the demo application (`testdata/examples/demo.yaml`) and waits for `mesh stat` to show it.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use crate::util::{cargo, root, sh};

const USAGE: &str =
    "usage: cargo xtask e2e [--images] [--install] [--workload] [-- MESH_CHECK_ARGS...]";

/// The namespace `--workload` creates and deletes.
const WORKLOAD_NS: &str = "mesh-e2e";

/// A namespace with injection on and a Deployment that needs nothing from the network but its
/// image.
const WORKLOAD: &str = r#"apiVersion: v1
kind: Namespace
metadata:
  name: mesh-e2e
  annotations:
    linkerd.io/inject: enabled
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: pause
  namespace: mesh-e2e
spec:
  replicas: 1
  selector:
    matchLabels: {app: pause}
  template:
    metadata:
      labels: {app: pause}
    spec:
      containers:
      - name: pause
        image: registry.k8s.io/pause:3.10
"#;

pub fn run(args: &[String]) -> Result<()> {
    let mut install = false;
    let mut workload = false;
    let mut images = false;
    let mut check_args: Vec<String> = vec!["--proxy".into(), "--wait=5m".into()];
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--install" => install = true,
            "--workload" => workload = true,
            "--images" => images = true,
            "--" => {
                check_args = it.by_ref().cloned().collect();
            }
            other => bail!("unknown argument {other:?}\n{USAGE}"),
        }
    }
    let kubeconfig = std::env::var_os("KUBECONFIG")
        .filter(|v| !v.is_empty())
        .context("KUBECONFIG is not set: cargo xtask e2e runs against a real cluster, and only when KUBECONFIG points at one")?;
    eprintln!(
        "e2e: cluster from KUBECONFIG={}",
        kubeconfig.to_string_lossy()
    );
    sh(cargo().args(["build", "--quiet", "-p", "mesh-cli"]))?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| root().join("target"));
    let mesh = target.join("debug/mesh");

    if images {
        crate::images::cluster::build_and_load()?;
    }
    if install {
        apply(&mesh, &["install", "--crds"])?;
        apply(&mesh, &["install"])?;
        for component in ["identity", "destination", "proxy-injector"] {
            sh(Command::new("kubectl").args([
                "rollout",
                "status",
                "--namespace=linkerd",
                "--timeout=5m",
                &format!("deployment/linkerd-{component}"),
            ]))?;
        }
    }
    if workload {
        mesh_a_workload()?;
    }
    let status = Command::new(&mesh)
        .arg("check")
        .args(&check_args)
        .status()
        .with_context(|| format!("cannot run {}", mesh.display()))?;
    if !status.success() {
        bail!("mesh check failed against the cluster: {status}");
    }
    eprintln!("e2e: mesh check passed");
    if images {
        crate::images::cluster::demo(&mesh)?;
    }
    Ok(())
}

/// Applies [`WORKLOAD`] and checks that the injector meshed its pod.
fn mesh_a_workload() -> Result<()> {
    kubectl_apply(WORKLOAD.as_bytes(), "the e2e workload")?;
    sh(Command::new("kubectl").args([
        "rollout",
        "status",
        &format!("--namespace={WORKLOAD_NS}"),
        "--timeout=5m",
        "deployment/pause",
    ]))?;
    let out = Command::new("kubectl")
        .args([
            "get",
            "pods",
            &format!("--namespace={WORKLOAD_NS}"),
            "--selector=app=pause",
            "-o",
            "jsonpath={range .items[*]}{.spec.initContainers[*].name} {.spec.containers[*].name}{\"\\n\"}{end}",
        ])
        .output()
        .context("cannot run kubectl get pods")?;
    let pods = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() || pods.trim().is_empty() {
        bail!(
            "no pods of the e2e workload: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    for line in pods.lines() {
        for container in ["linkerd-proxy", "linkerd-init"] {
            if !line.split_whitespace().any(|c| c == container) {
                bail!("the injector did not add {container}: the pod has {line:?}");
            }
        }
    }
    let events = Command::new("kubectl")
        .args([
            "get",
            "events",
            &format!("--namespace={WORKLOAD_NS}"),
            "--field-selector=reason=Injected",
            "-o",
            "name",
        ])
        .output()
        .context("cannot run kubectl get events")?;
    if String::from_utf8_lossy(&events.stdout).trim().is_empty() {
        bail!("the injector recorded no Injected event in {WORKLOAD_NS}");
    }
    eprintln!("e2e: the injector meshed {}", pods.lines().count());
    Ok(())
}

/// `mesh ARGS | kubectl apply -f -`.
fn apply(mesh: &Path, args: &[&str]) -> Result<()> {
    let rendered = Command::new(mesh).args(args).output()?;
    if !rendered.status.success() {
        bail!(
            "mesh {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&rendered.stderr)
        );
    }
    kubectl_apply(&rendered.stdout, &format!("`mesh {}`", args.join(" ")))
}

/// `kubectl apply -f -` of `manifest`.
fn kubectl_apply(manifest: &[u8], what: &str) -> Result<()> {
    let mut kubectl = Command::new("kubectl")
        .args(["apply", "-f", "-"])
        .stdin(Stdio::piped())
        .spawn()
        .context("cannot run kubectl")?;
    kubectl
        .stdin
        .take()
        .context("kubectl stdin")?
        .write_all(manifest)?;
    let status = kubectl.wait()?;
    if !status.success() {
        bail!("kubectl apply of {what} failed: {status}");
    }
    Ok(())
}
