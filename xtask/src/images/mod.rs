//! `cargo xtask images [--check]`: container images for mesh-proxy, mesh-controller and
//! mesh-demo, written as archives under `target/images/` without a container engine.
//!
//! The names and tags are the ones `mesh install` renders: the release `mesh` binary built here
//! prints its manifests, and the image of each container there is the image built. The users are
//! the manifests' `runAsUser`. Root filesystems are Debian bookworm files (see `spec.rs`), laid out
//! by `layout.rs`; `--check` builds every archive twice, compares the bytes, and runs the
//! structure checks of `check.rs`; `--containers` runs them in containerd and runc
//! (`containers.rs`).

mod check;
pub mod cluster;
mod containers;
mod layout;
mod refs;
mod rootfs;
mod spec;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::util::{cargo, root, sh};
use layout::{Layer, Node, RunConfig, Tree};
use spec::ImageSpec;

const USAGE: &str = "usage: cargo xtask images [--check] [--containers] [--bin-dir DIR]

  --bin-dir DIR   take mesh and the images' binaries from DIR instead of building them";

pub fn run(args: &[String]) -> Result<()> {
    let mut check = false;
    let mut containers = false;
    let mut bin_dir = None;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--bin-dir" => {
                bin_dir = Some(PathBuf::from(
                    args.next().context("--bin-dir needs a value")?,
                ))
            }
            "--check" => check = true,
            "--containers" => containers = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => bail!("unknown argument {other:?}\n{USAGE}"),
        }
    }
    let built = build_all(bin_dir.as_deref())?;
    if check {
        check::run(&built, bin_dir.as_deref())?;
    }
    if containers {
        containers::run(&built)?;
    }
    Ok(())
}

/// An archive written to disk, with what the checks need to know about it.
pub struct Built {
    pub spec: ImageSpec,
    pub path: PathBuf,
    pub reference: String,
    pub user: u32,
    pub manifest_digest: String,
    pub epoch: u64,
    pub rendered: refs::Rendered,
}

/// Where everything goes: `$CARGO_TARGET_DIR` or `target/`.
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"))
}

/// Builds the release binaries (unless `bin_dir` has them), then writes every archive.
pub fn build_all(bin_dir: Option<&Path>) -> Result<Vec<Built>> {
    let specs = spec::images();
    let bin_dir = match bin_dir {
        Some(dir) => dir.to_path_buf(),
        None => build_binaries(&specs)?,
    };
    let rendered = refs::rendered(&bin_dir.join("mesh"))?;
    let epoch = source_date_epoch();
    let out = target_dir().join("images");
    let unpacked = rootfs::unpack(&out.join("cache"), &spec::packages(&specs))?;
    let base = base_layer(&unpacked, epoch)?;
    let mut built = Vec::new();
    for spec in specs {
        let (reference, user) = rendered.image(&spec)?;
        let app = app_layer(&spec, &unpacked, &bin_dir, epoch)?;
        let run = run_config(&spec, user);
        let archive = layout::archive(&reference, &run, &[&base, &app], epoch)?;
        let path = out.join(format!("{}.tar", spec.name));
        std::fs::write(&path, &archive.bytes)
            .with_context(|| format!("writing {}", path.display()))?;
        println!(
            "{}: {reference} {} layers {} compressed, {} uncompressed",
            path.display(),
            archive.manifest_digest,
            mib(archive.compressed),
            mib(archive.uncompressed)
        );
        built.push(Built {
            spec,
            path,
            reference,
            user,
            manifest_digest: archive.manifest_digest,
            epoch,
            rendered: rendered.clone(),
        });
    }
    Ok(built)
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// `cargo build --release` of `mesh` and every image's binary, in a target directory of its own:
/// the paths of the checkout and of cargo's registry are remapped so the binaries carry no host
/// path, and debug info is stripped (line tables would only add size).
fn build_binaries(specs: &[ImageSpec]) -> Result<PathBuf> {
    build_release(specs)
}

/// The images' release binaries, built as [`build_all`] builds them (same packages, flags and
/// target directory), so that what a benchmark measures, and what `cargo xtask hot-symbols`
/// records the names of, is the very binary the images ship. Returns their directory.
pub fn build_shipped_binaries() -> Result<PathBuf> {
    build_release(&spec::images())
}

fn build_release(specs: &[ImageSpec]) -> Result<PathBuf> {
    let target = image_target_dir();
    let mut flags = std::env::var("RUSTFLAGS").unwrap_or_default();
    let mut remap = |from: &Path, to: &str| {
        flags.push_str(&format!(" --remap-path-prefix={}={to}", from.display()));
    };
    remap(&root(), "/build");
    if let Some(home) = cargo_home() {
        remap(&home, "/cargo");
    }
    let mut cmd = cargo();
    cmd.args(["build", "--release", "--locked", "-p", "mesh-cli"]);
    for spec in specs {
        cmd.args(["-p", spec.package]);
    }
    cmd.env("CARGO_TARGET_DIR", &target)
        .env("RUSTFLAGS", flags.trim())
        .env("CARGO_PROFILE_RELEASE_STRIP", "debuginfo");
    sh(&mut cmd)?;
    Ok(binaries_dir())
}

fn image_target_dir() -> PathBuf {
    target_dir().join("image-build")
}

/// Where the images' release binaries are built: `cargo xtask ci` attacks these same
/// binaries with `cargo xtask chaos`.
pub fn binaries_dir() -> PathBuf {
    image_target_dir().join("release")
}

fn cargo_home() -> Option<PathBuf> {
    std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
}

/// `SOURCE_DATE_EPOCH` if set, else the last commit's time, else 0: every mtime and the
/// config's `created`.
fn source_date_epoch() -> u64 {
    if let Some(secs) = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse().ok())
    {
        return secs;
    }
    Command::new("git")
        .args(["log", "-1", "--format=%ct"])
        .current_dir(root())
        .output()
        .ok()
        .and_then(|out| String::from_utf8_lossy(&out.stdout).trim().parse().ok())
        .unwrap_or(0)
}

/// The layer every image shares: loader, libc, libgcc_s, users and groups.
fn base_layer(unpacked: &Path, epoch: u64) -> Result<Layer> {
    let mut tree = Tree::default();
    rootfs::add_picks(&mut tree, unpacked, spec::BASE)?;
    for (dest, src) in spec::BASE_FILES {
        rootfs::add_file(&mut tree, &root().join(src), Path::new(dest), None)?;
    }
    for (dir, mode) in spec::BASE_DIRS {
        tree.insert(Path::new(dir), Node::Dir { mode: *mode });
    }
    layout::layer(&tree, epoch, "base: glibc, libgcc_s, /etc/passwd")
}

/// The image's own layer: its Debian files and its binary.
fn app_layer(spec: &ImageSpec, unpacked: &Path, bin_dir: &Path, epoch: u64) -> Result<Layer> {
    let mut tree = Tree::default();
    rootfs::add_picks(&mut tree, unpacked, spec.picks)?;
    let dest = spec::binary_path(spec.binary);
    rootfs::add_file(
        &mut tree,
        &bin_dir.join(spec.binary),
        Path::new(&dest),
        None,
    )?;
    for (path, effective) in spec::FILE_CAPS {
        if let Some(Node::File { caps, .. }) = tree.0.get_mut(Path::new(path)) {
            *caps = Some(layout::caps_xattr(spec::NET_CAPS_MASK, *effective));
        }
    }
    layout::layer(&tree, epoch, &format!("/{dest}"))
}

fn run_config(spec: &ImageSpec, user: u32) -> RunConfig {
    let mut labels = BTreeMap::new();
    labels.insert(
        "org.opencontainers.image.title".to_owned(),
        spec.name.to_owned(),
    );
    labels.insert(
        "org.opencontainers.image.version".to_owned(),
        env!("CARGO_PKG_VERSION").to_owned(),
    );
    RunConfig {
        user: format!("{user}:{user}"),
        entrypoint: vec![format!("/{}", spec::binary_path(spec.binary))],
        cmd: Vec::new(),
        env: vec![spec::PATH.to_owned()],
        labels,
    }
}
