//! Binaries of this workspace that a test runs but its own package does not build: the CLI's
//! traffic tests and the control plane's identity tests start the real `mesh-proxy`.
//!
//! [`binary`] takes the one cargo put beside the caller's own binaries (`target/<profile>/`)
//! when it is fresh, and otherwise has cargo build it in a target directory of its own:
//!
//! - **Beside, when fresh.** `cargo test --workspace` (what CI runs) builds it there in the same
//!   invocation, so nothing is built twice. Fresh means that cargo's dep-info for it
//!   (`<binary>.d`, every workspace source it was built from) and `Cargo.lock` name no file newer
//!   than it. Without that check, `cargo test -p mesh-cli` after an edit to the proxy would test
//!   the binary of an earlier workspace build. An edit to a manifest alone is not seen.
//! - **Otherwise built**: `cargo build --quiet -p <package> --bin <bin>` with the caller's
//!   profile, in `target/test-binaries/`. Cargo does nothing there when that build is fresh.
//!
//! Why not `cargo build` into the caller's own target directory: it would not deadlock (`cargo
//! test` releases the build directory's lock before it runs the test binaries), but a `-p` build
//! unifies dependency features differently from a workspace build (futures-util, mio, nix and
//! tokio get other features), so cargo would build a second variant of the binary and link it
//! over the one the workspace build put there, which the binary's own tests run.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::sync::{Mutex, PoisonError};
use std::time::SystemTime;

/// Why a binary could not be had.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("{0} is not a cargo profile directory (target/<profile>)")]
    Layout(PathBuf),
    #[error("run cargo build -p {package}")]
    Spawn {
        package: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cargo build -p {package} failed: {status}")]
    Failed { package: String, status: ExitStatus },
}

/// Where the binaries built here go, beside the caller's profile directories.
const OWN_TARGET_DIR: &str = "test-binaries";

/// The binary `bin` of `package`, for a caller whose own binaries are in `profile_dir`
/// (`target/<profile>`, the directory of a `CARGO_BIN_EXE_*`): see the module docs. Built once
/// per process; concurrent callers wait for the first.
pub fn binary(profile_dir: &Path, package: &str, bin: &str) -> Result<PathBuf, BuildError> {
    static FOUND: Mutex<Vec<((PathBuf, String), PathBuf)>> = Mutex::new(Vec::new());
    let key = (profile_dir.to_path_buf(), bin.to_owned());
    // Held while building, so that the threads of one test binary build once.
    let mut found = FOUND.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((_, path)) = found.iter().find(|(k, _)| *k == key) {
        return Ok(path.clone());
    }
    let path = find_or_build(profile_dir, package, bin)?;
    found.push((key, path.clone()));
    Ok(path)
}

fn find_or_build(profile_dir: &Path, package: &str, bin: &str) -> Result<PathBuf, BuildError> {
    let beside = profile_dir.join(bin);
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap_or(Path::new("."));
    if fresh(&beside, &[workspace.join("Cargo.lock")]) {
        return Ok(beside);
    }
    let layout = || BuildError::Layout(profile_dir.to_path_buf());
    let profile = profile_dir
        .file_name()
        .and_then(|name| name.to_str())
        .ok_or_else(layout)?;
    let target_dir = profile_dir
        .parent()
        .ok_or_else(layout)?
        .join(OWN_TARGET_DIR);
    let mut build = Command::new(env!("CARGO"));
    build
        .args(["build", "--quiet", "-p", package, "--bin", bin])
        .arg("--target-dir")
        .arg(&target_dir)
        .current_dir(workspace);
    // The directory is named after the profile, except `dev`'s (and `test`'s) and `bench`'s.
    match profile {
        "debug" => {}
        "release" => {
            build.arg("--release");
        }
        custom => {
            build.args(["--profile", custom]);
        }
    }
    eprintln!("building {bin} for the tests in {}", target_dir.display());
    let status = build.status().map_err(|source| BuildError::Spawn {
        package: package.to_owned(),
        source,
    })?;
    if !status.success() {
        return Err(BuildError::Failed {
            package: package.to_owned(),
            status,
        });
    }
    Ok(target_dir.join(profile).join(bin))
}

/// Whether `binary` exists and neither the sources its dep-info (`<binary>.d`) lists nor `also`
/// were modified after it. A source that is gone, or a dep-info that cannot be read, is not
/// fresh.
fn fresh(binary: &Path, also: &[PathBuf]) -> bool {
    let modified = |path: &Path| std::fs::metadata(path).and_then(|m| m.modified()).ok();
    let Some(built) = modified(binary) else {
        return false;
    };
    let mut dep_info = binary.as_os_str().to_owned();
    dep_info.push(".d");
    let Ok(text) = std::fs::read_to_string(&dep_info) else {
        return false;
    };
    let sources = dep_info_sources(&text);
    let not_newer = |path: &Path| modified(path).is_some_and(|t: SystemTime| t <= built);
    !sources.is_empty() && sources.iter().all(|s| not_newer(s)) && also.iter().all(|p| not_newer(p))
}

/// The files a cargo dep-info names for its first target: `target: a b\ c` (cargo escapes
/// spaces, nothing else).
fn dep_info_sources(text: &str) -> Vec<PathBuf> {
    let Some((_, list)) = text.lines().next().and_then(|l| l.split_once(": ")) else {
        return Vec::new();
    };
    list.replace("\\ ", "\0")
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(|s| PathBuf::from(s.replace('\0', " ")))
        .collect()
}

#[cfg(test)]
mod tests;
