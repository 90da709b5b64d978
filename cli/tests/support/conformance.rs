//! Linkerd's own fixtures, which CI keeps next to the repository (`../shared/conformance`) and a
//! user's clone lacks.
//!
//! Every test that compares with them asks [`linkerd_testdata`] for the directory. Where it is
//! absent the test says so and passes without checking anything, unless
//! `MESH_REQUIRE_CONFORMANCE=1` (CI sets it): then the absence fails the test, so a moved or
//! missing corpus cannot pass silently. `MESH_CONFORMANCE_DIR` names another copy of the corpus.
//!
//! Included by the crate's unit tests and by `tests/support`, so both follow one rule.

use std::path::{Path, PathBuf};

/// Set to `1` to turn an absent corpus into a test failure.
pub const REQUIRE_VAR: &str = "MESH_REQUIRE_CONFORMANCE";
/// The corpus root, when it is not `shared/conformance` next to the repository.
pub const DIR_VAR: &str = "MESH_CONFORMANCE_DIR";

/// Linkerd's CLI test data (`linkerd2/cli/cmd/testdata` in the corpus), or `None` when the corpus
/// is absent and not required.
///
/// # Panics
/// When the corpus is absent and `MESH_REQUIRE_CONFORMANCE=1`.
pub fn linkerd_testdata() -> Option<PathBuf> {
    let root = match std::env::var_os(DIR_VAR) {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance"),
    };
    let dir = root.join("linkerd2/cli/cmd/testdata");
    if dir.is_dir() {
        return Some(dir);
    }
    let required = std::env::var_os(REQUIRE_VAR).is_some_and(|v| !v.is_empty() && v != "0");
    assert!(
        !required,
        "{REQUIRE_VAR} is set but Linkerd's fixtures are not at {}",
        dir.display()
    );
    eprintln!(
        "skipped: Linkerd's fixtures are not at {} (set {DIR_VAR} to the corpus to compare)",
        dir.display()
    );
    None
}
