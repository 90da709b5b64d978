//! `cargo xtask e2e --images`: the images built here, on the cluster in `$KUBECONFIG`, running
//! the demo application. Not run in CI (there is no cluster there).

use std::io::{BufRead, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};

use super::Built;
use crate::util::{root, sh};

/// The demo's namespace in `testdata/examples/demo.yaml`.
pub const DEMO_NS: &str = "mesh-demo";
const DEMO_DEPLOYMENTS: &[&str] = &["web", "books", "authors", "load"];

/// Builds the archives and puts them where the cluster's nodes can run them: `kind load
/// image-archive` on a kind cluster; elsewhere it prints the commands and waits for Enter.
pub fn build_and_load() -> Result<Vec<Built>> {
    let built = super::build_all(None)?;
    let context = kubectl_text(&["config", "current-context"])?;
    if let Some(cluster) = context.trim().strip_prefix("kind-") {
        for b in &built {
            sh(Command::new("kind")
                .args(["load", "image-archive", "--name", cluster])
                .arg(&b.path))?;
        }
        return Ok(built);
    }
    eprintln!(
        "e2e: context {:?} is not a kind cluster; load the images on every node, e.g.",
        context.trim()
    );
    for b in &built {
        eprintln!(
            "  ctr -n k8s.io images import {}    # or: docker load -i {0} && docker push {}",
            b.path.display(),
            b.reference
        );
    }
    eprint!("then press Enter to go on: ");
    std::io::stderr().flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(built)
}

/// Meshes and applies the demo, waits for it, and checks it the way a user would.
pub fn demo(mesh: &Path) -> Result<()> {
    let file = root().join("testdata/examples/demo.yaml");
    let injected = Command::new(mesh)
        .arg("inject")
        .arg(&file)
        .output()
        .with_context(|| format!("running {} inject", mesh.display()))?;
    ensure!(
        injected.status.success(),
        "mesh inject {} failed: {}",
        file.display(),
        String::from_utf8_lossy(&injected.stderr)
    );
    let mut kubectl = Command::new("kubectl")
        .args(["apply", "-f", "-"])
        .stdin(Stdio::piped())
        .spawn()
        .context("cannot run kubectl")?;
    kubectl
        .stdin
        .take()
        .context("kubectl stdin")?
        .write_all(&injected.stdout)?;
    ensure!(
        kubectl.wait()?.success(),
        "kubectl apply of the demo failed"
    );
    for d in DEMO_DEPLOYMENTS {
        sh(Command::new("kubectl").args([
            "rollout",
            "status",
            &format!("--namespace={DEMO_NS}"),
            "--timeout=5m",
            &format!("deployment/{d}"),
        ]))?;
    }
    let pods = kubectl_text(&[
        "get",
        "pods",
        &format!("--namespace={DEMO_NS}"),
        "-o",
        "jsonpath={range .items[*]}{.metadata.name}: {.spec.initContainers[*].name} {.spec.containers[*].name}{\"\\n\"}{end}",
    ])?;
    ensure!(!pods.trim().is_empty(), "no demo pods");
    for line in pods.lines() {
        ensure!(
            line.split_whitespace().any(|c| c == "linkerd-proxy"),
            "a demo pod has no linkerd-proxy: {line}"
        );
    }
    sh(Command::new(mesh).args(["check", "--proxy", "--namespace", DEMO_NS, "--wait=5m"]))?;
    // The load generator needs a little while before every deployment has served requests.
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let out = Command::new(mesh)
            .args(["stat", "deploy", "--namespace", DEMO_NS])
            .output()?;
        let table = String::from_utf8_lossy(&out.stdout).into_owned();
        if out.status.success() && has_success_rate(&table, "web") {
            println!("{table}");
            eprintln!("e2e: the demo runs meshed and mesh stat shows its success rate");
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "mesh stat deploy -n {DEMO_NS} showed no success rate for web in 3m:\n{table}{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_secs(5));
    }
}

/// Whether the row of `name` in `mesh stat`'s table shows a success rate (a percentage).
pub fn has_success_rate(table: &str, name: &str) -> bool {
    table.lines().any(|line| {
        let mut cols = line.split_whitespace();
        cols.next() == Some(name) && cols.any(|c| c.ends_with('%') && c.len() > 1)
    })
}

fn kubectl_text(args: &[&str]) -> Result<String> {
    let out = Command::new("kubectl")
        .args(args)
        .output()
        .context("cannot run kubectl")?;
    ensure!(
        out.status.success(),
        "kubectl {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
