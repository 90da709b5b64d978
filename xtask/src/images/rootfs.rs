//! Debian packages fetched with `apt-get download`, unpacked with `dpkg-deb -x`, and the picked
//! paths read into layer trees.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use super::layout::{Node, Tree};
use super::spec::Pick;
use crate::util::sh;

/// Downloads (once, into `cache/debs`) and unpacks (into `cache/unpacked/<package>`) each
/// package. Returns the unpacked directory.
pub fn unpack(cache: &Path, packages: &[&str]) -> Result<PathBuf> {
    let debs = cache.join("debs");
    let unpacked = cache.join("unpacked");
    std::fs::create_dir_all(&debs).with_context(|| format!("creating {}", debs.display()))?;
    let missing: Vec<&str> = packages
        .iter()
        .copied()
        .filter(|pkg| find_deb(&debs, pkg).is_none())
        .collect();
    if !missing.is_empty() {
        let download = || {
            let mut cmd = Command::new("apt-get");
            cmd.arg("download").args(&missing).current_dir(&debs);
            sh(&mut cmd)
        };
        if download().is_err() {
            // A fresh machine has no package lists yet.
            sh(Command::new("apt-get").args(["update", "-qq"]))?;
            download()?;
        }
    }
    for pkg in packages {
        let deb = find_deb(&debs, pkg)
            .with_context(|| format!("apt-get download left no .deb for {pkg}"))?;
        let dir = unpacked.join(pkg);
        let stamp = unpacked.join(format!("{pkg}.from"));
        let name = deb.file_name().map(|n| n.to_string_lossy().into_owned());
        if std::fs::read_to_string(&stamp).ok() == name {
            continue;
        }
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
        std::fs::create_dir_all(&dir)?;
        sh(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&dir))?;
        std::fs::write(&stamp, name.unwrap_or_default())?;
    }
    Ok(unpacked)
}

/// `<package>_<version>_<arch>.deb` in `dir`; the newest name if several.
fn find_deb(dir: &Path, package: &str) -> Option<PathBuf> {
    let prefix = format!("{package}_");
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .map(|n| n.to_string_lossy())
                .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".deb"))
        })
        .collect();
    found.sort();
    found.pop()
}

/// Adds each picked path, read from `unpacked/<package>/<path>`, to `tree`.
pub fn add_picks(tree: &mut Tree, unpacked: &Path, picks: &[Pick]) -> Result<()> {
    for pick in picks {
        let src = unpacked.join(pick.package).join(pick.path);
        add_path(tree, &src, Path::new(pick.path))
            .with_context(|| format!("package {}: {}", pick.package, pick.path))?;
    }
    Ok(())
}

/// Adds the file, link or whole directory at `src` as `dest`. Modes are normalised to 0755 or
/// 0644 (directories 0755), so the host's umask never shows.
pub fn add_path(tree: &mut Tree, src: &Path, dest: &Path) -> Result<()> {
    let meta =
        std::fs::symlink_metadata(src).with_context(|| format!("reading {}", src.display()))?;
    if meta.file_type().is_symlink() {
        let target = std::fs::read_link(src)?;
        let target = target
            .to_str()
            .with_context(|| format!("link {} is not UTF-8", src.display()))?
            .to_owned();
        tree.insert(dest, Node::Symlink { target });
    } else if meta.is_dir() {
        tree.insert(dest, Node::Dir { mode: 0o755 });
        let mut children: Vec<PathBuf> = std::fs::read_dir(src)?
            .map(|e| e.map(|e| e.path()))
            .collect::<Result<_, _>>()?;
        children.sort();
        for child in children {
            let Some(name) = child.file_name() else {
                continue;
            };
            add_path(tree, &child, &dest.join(name))?;
        }
    } else if meta.is_file() {
        add_file(tree, src, dest, None)?;
    } else {
        bail!("{} is neither file, directory nor link", src.display());
    }
    Ok(())
}

/// Adds the regular file `src` as `dest`, executable if any execute bit is set.
pub fn add_file(tree: &mut Tree, src: &Path, dest: &Path, caps: Option<Vec<u8>>) -> Result<()> {
    let meta = std::fs::metadata(src).with_context(|| format!("reading {}", src.display()))?;
    let data = std::fs::read(src).with_context(|| format!("reading {}", src.display()))?;
    let mode = if meta.permissions().mode() & 0o111 != 0 {
        0o755
    } else {
        0o644
    };
    tree.insert(dest, Node::File { data, mode, caps });
    Ok(())
}
