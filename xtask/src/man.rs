//! `cargo xtask man [DIR]`: man pages for `mesh`, rendered by the binary itself with clap_mangen.

use anyhow::Result;

use crate::util::{cargo, root, sh};

pub fn run(args: &[String]) -> Result<()> {
    let dir = match args.first() {
        Some(dir) => std::path::PathBuf::from(dir),
        None => root().join("target/man"),
    };
    std::fs::create_dir_all(&dir)?;
    sh(cargo()
        .args([
            "run",
            "--quiet",
            "-p",
            "mesh-cli",
            "--",
            "generate",
            "man",
            "--out-dir",
        ])
        .arg(&dir))?;
    eprintln!("man pages written to {}", dir.display());
    Ok(())
}
