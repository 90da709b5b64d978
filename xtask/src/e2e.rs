//! `cargo xtask e2e [--install] [-- CHECK_ARGS…]`: `mesh check` against a real cluster.
//!
//! Needs `KUBECONFIG` pointing at a real cluster; the fake API server the tests use stands in for
//! one everywhere else, so CI does not run this. With `--install` it first installs the control
//! plane (`mesh install --crds | kubectl apply -f -`, then `mesh install | kubectl apply -f -`)
//! and then waits for `mesh check --proxy` to pass, as a user would after installing.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use crate::util::{cargo, root, sh};

const USAGE: &str = "usage: cargo xtask e2e [--install] [-- MESH_CHECK_ARGS...]";

pub fn run(args: &[String]) -> Result<()> {
    let mut install = false;
    let mut check_args: Vec<String> = vec!["--proxy".into(), "--wait=5m".into()];
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--install" => install = true,
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

    if install {
        apply(&mesh, &["install", "--crds"])?;
        apply(&mesh, &["install"])?;
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
    let mut kubectl = Command::new("kubectl")
        .args(["apply", "-f", "-"])
        .stdin(Stdio::piped())
        .spawn()
        .context("cannot run kubectl")?;
    kubectl
        .stdin
        .take()
        .context("kubectl stdin")?
        .write_all(&rendered.stdout)?;
    let status = kubectl.wait()?;
    if !status.success() {
        bail!(
            "kubectl apply of `mesh {}` failed: {status}",
            args.join(" ")
        );
    }
    Ok(())
}
