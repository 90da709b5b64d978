//! `cargo xtask ci`: exactly what CI runs.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::deps;
use crate::util::{cargo, root, sh};

pub fn run(_args: &[String]) -> Result<()> {
    check_conformance()?;
    deps::ensure_all()?;
    sh(cargo().args(["fmt", "--all", "--check"]))?;
    sh(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    sh(cargo().args(["test", "--workspace", "--no-fail-fast"]))?;
    validate_goldens()?;
    // Container images: reproducible, well formed, and running what the manifests run.
    crate::images::run(&["--check".to_owned(), "--containers".to_owned()])?;
    // Last: attacks on the release binaries the image step just built, the ones that ship
    // (the short run, under 3 minutes). It fails while any case is broken; `cargo xtask chaos
    // --list` names them, `--case N` runs one.
    let bins = crate::images::binaries_dir();
    crate::chaos::run(&["--bin-dir".to_owned(), bins.to_string_lossy().into_owned()])?;
    eprintln!("ci: all steps passed");
    Ok(())
}

/// Set (by `.ci/run`) where Linkerd's fixtures must be present; the tests that compare with them
/// then fail instead of skipping.
const REQUIRE_CONFORMANCE: &str = "MESH_REQUIRE_CONFORMANCE";
/// Where the fixtures are, when not `shared/conformance` next to the repository.
const CONFORMANCE_DIR: &str = "MESH_CONFORMANCE_DIR";

/// Fails early, with one clear message, when the fixtures are required but absent.
fn check_conformance() -> Result<()> {
    let required = std::env::var_os(REQUIRE_CONFORMANCE).is_some_and(|v| !v.is_empty() && v != "0");
    if !required {
        eprintln!(
            "ci: {REQUIRE_CONFORMANCE} is not set: tests that compare with Linkerd's fixtures skip where they are absent"
        );
        return Ok(());
    }
    let corpus = match std::env::var_os(CONFORMANCE_DIR) {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => root().join("../shared/conformance"),
    };
    let testdata = corpus.join("linkerd2/cli/cmd/testdata");
    if !testdata.is_dir() {
        bail!(
            "{REQUIRE_CONFORMANCE} is set but Linkerd's fixtures are not at {} (set {CONFORMANCE_DIR} to the corpus)",
            testdata.display()
        );
    }
    Ok(())
}

/// Checks every rendered manifest golden against Kubernetes' own schemas, offline.
pub fn validate_goldens() -> Result<()> {
    let mut files = Vec::new();
    for dir in ["testdata/inject", "testdata/install"] {
        collect_goldens(&root().join(dir), &mut files)?;
    }
    if files.is_empty() {
        bail!("no manifest goldens found under testdata/");
    }
    // The example application's manifests, as users apply them.
    files.push(root().join("testdata/examples/demo.yaml"));
    let mut cmd = Command::new("python3");
    cmd.args(["-c", VALIDATE, KUBERNETES_VERSION]);
    cmd.args(&files);
    sh(&mut cmd).context("a golden manifest does not match Kubernetes' schemas")
}

/// The Kubernetes version whose schemas rendered manifests must satisfy.
const KUBERNETES_VERSION: &str = "1.33.0";

/// Reads manifests as kubectl does (YAML 1.1, JSON streams, `kind: List`) and validates each
/// object with the `kubernetes-validate` package's offline schemas.
const VALIDATE: &str = include_str!("validate/validate.py");

fn collect_goldens(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    if !dir.is_dir() {
        return Ok(());
    }
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    paths.sort();
    out.extend(paths.into_iter().filter(|p| {
        p.file_name().is_some_and(|n| {
            let n = n.to_string_lossy();
            n.ends_with(".golden.yaml") || n.ends_with(".golden.json")
        })
    }));
    Ok(())
}
