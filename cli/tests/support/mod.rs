//! Helpers shared by the CLI's end-to-end tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The `mesh` binary under test.
pub fn mesh() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mesh"))
}

/// The repository's testdata directory.
pub fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata")
}

/// Linkerd's own fixtures, when the shared corpus sits next to the repository.
pub fn linkerd_fixtures() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/conformance/linkerd2/cli/cmd/testdata");
    dir.is_dir().then_some(dir)
}

/// The certificate flags (under `testdata/install`) that make `mesh install` output
/// deterministic.
pub const INSTALL_CERTS: &[&str] = &[
    "--identity-trust-anchors-file",
    "certs/ca.crt",
    "--identity-issuer-certificate-file",
    "certs/issuer.crt",
    "--identity-issuer-key-file",
    "certs/issuer.key",
];

pub fn update_goldens() -> bool {
    std::env::var_os("UPDATE_GOLDENS").is_some_and(|v| v != "0")
}

/// Compares `actual` with the golden file at `path`, or rewrites it under UPDATE_GOLDENS=1.
/// Returns a readable diff on mismatch.
pub fn check_golden(path: &Path, actual: &str) -> Result<(), String> {
    if update_goldens() {
        std::fs::write(path, actual)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        return Ok(());
    }
    let expected = std::fs::read_to_string(path).map_err(|e| {
        format!(
            "cannot read golden {} ({e}); run with UPDATE_GOLDENS=1 to create it",
            path.display()
        )
    })?;
    if expected == actual {
        return Ok(());
    }
    let diff = similar::TextDiff::from_lines(&expected, actual)
        .unified_diff()
        .header("expected", "actual")
        .to_string();
    Err(format!(
        "{} does not match (UPDATE_GOLDENS=1 to accept):\n{diff}",
        path.display()
    ))
}

/// Runs a command with `stdin` and returns its output.
pub fn run_with_stdin(cmd: &mut Command, stdin: &[u8]) -> Output {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut input = child.stdin.take().expect("stdin");
    let data = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let out = child.wait_with_output().expect("wait");
    writer.join().expect("writer");
    out
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
