//! `cargo xtask images --check`: the archives are reproducible and well formed, and their root
//! filesystems run what the manifests run.
//!
//! Reproducible: a second build writes the same bytes. Well formed: docker's `manifest.json` and
//! the OCI index name the same image and blobs, every blob matches its digest, every layer's
//! `diff_id` matches its uncompressed tar, entries are owned by 0 with the fixed mtime, the
//! user, entrypoint and files are the expected ones, and only the xtables binaries carry file
//! capabilities. Runs (as root, in the unpacked root filesystem with `chroot`): each image's
//! smoke commands; for the proxy, `linkerd-init`'s exact command and arguments from
//! `mesh install`, as uid 65534 with no-new-privs and only NET_ADMIN and NET_RAW in the bounding
//! set (kept across the uid change, as runc does), in a fresh network namespace, with both
//! iptables backends, then its rules are read back; and the proxy as 2102 with an empty bounding
//! set.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail, ensure};
use serde_json::Value;

use super::layout::{caps_xattr, sha256};
use super::{Built, spec};
use crate::util::display;

pub fn run(built: &[Built], bin_dir: Option<&Path>) -> Result<()> {
    let first: Vec<(PathBuf, String)> = built
        .iter()
        .map(|b| Ok((b.path.clone(), sha256(&std::fs::read(&b.path)?))))
        .collect::<Result<_>>()?;
    eprintln!("images: building again to compare");
    let again = super::build_all(bin_dir)?;
    for ((path, digest), b) in first.iter().zip(&again) {
        let second = sha256(&std::fs::read(&b.path)?);
        ensure!(
            *digest == second,
            "{} is not reproducible: sha256 {digest} then {second}",
            path.display()
        );
    }
    examples_use(built)?;
    for b in built {
        let image = read(&b.path)?;
        structure(b, &image).with_context(|| format!("checking {}", b.path.display()))?;
        let dir = tempfile::tempdir()?;
        // A container's root is traversable by every user; the temporary directory is not.
        chmod(dir.path(), 0o755)?;
        unpack(&image, dir.path())?;
        if bin_dir.is_none() {
            // Binaries from elsewhere were not built with the remapping.
            no_host_paths(&dir.path().join(spec::binary_path(b.spec.binary)))?;
        }
        runs(b, dir.path()).with_context(|| format!("running {} in a chroot", b.spec.name))?;
        eprintln!("images: {} ok ({})", b.reference, b.manifest_digest);
    }
    Ok(())
}

/// The binary names neither the checkout nor cargo's home: both are remapped when building.
fn no_host_paths(binary: &Path) -> Result<()> {
    let bytes = std::fs::read(binary).with_context(|| format!("reading {}", binary.display()))?;
    let mut paths = vec![crate::util::root()];
    paths.extend(super::cargo_home());
    for path in paths {
        let needle = path.to_string_lossy();
        let needle = needle.as_bytes();
        ensure!(
            needle.len() > 1 && !bytes.windows(needle.len()).any(|w| w == needle),
            "{} contains the build path {}",
            binary.display(),
            path.display()
        );
    }
    Ok(())
}

/// The demo's example manifests name the image built here.
fn examples_use(built: &[Built]) -> Result<()> {
    let path = crate::util::root().join("testdata/examples/demo.yaml");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let images = image_lines(&text);
    ensure!(!images.is_empty(), "no image in {}", path.display());
    for image in images {
        ensure!(
            built.iter().any(|b| b.reference == image),
            "{}: image {image} is not one `cargo xtask images` builds",
            path.display()
        );
    }
    Ok(())
}

/// The values of `image:` keys, one per line as the examples write them.
pub fn image_lines(text: &str) -> Vec<&str> {
    text.lines()
        .filter_map(|l| l.trim().trim_start_matches("- ").strip_prefix("image:"))
        .map(|v| v.trim().trim_matches('"'))
        .collect()
}

/// An archive read back: its files, and each layer's entries.
pub struct Image {
    pub files: BTreeMap<String, Vec<u8>>,
    pub config: Value,
    pub layers: Vec<Vec<u8>>,
}

/// What a layer entry carries that the checks look at.
#[derive(Debug)]
pub struct Entry {
    pub path: String,
    pub kind: tar::EntryType,
    pub uid: u64,
    pub gid: u64,
    pub mtime: u64,
    pub caps: Option<Vec<u8>>,
}

pub fn read(path: &Path) -> Result<Image> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let mut files = BTreeMap::new();
    let mut archive = tar::Archive::new(bytes.as_slice());
    for entry in archive.entries()? {
        let mut entry = entry?;
        if entry.header().entry_type() != tar::EntryType::Regular {
            continue;
        }
        let name = entry.path()?.to_string_lossy().into_owned();
        let mut data = Vec::new();
        entry.read_to_end(&mut data)?;
        files.insert(name, data);
    }
    let blob = |digest: &str| -> Result<&Vec<u8>> {
        let name = format!("blobs/sha256/{}", digest.trim_start_matches("sha256:"));
        files.get(&name).with_context(|| format!("missing {name}"))
    };
    let index: Value = serde_json::from_slice(file(&files, "index.json")?)?;
    let manifest_digest = index["manifests"][0]["digest"].as_str().unwrap_or_default();
    let manifest: Value = serde_json::from_slice(blob(manifest_digest)?)?;
    let config: Value = serde_json::from_slice(blob(
        manifest["config"]["digest"].as_str().unwrap_or_default(),
    )?)?;
    let mut layers = Vec::new();
    for layer in manifest["layers"].as_array().into_iter().flatten() {
        let gz = blob(layer["digest"].as_str().unwrap_or_default())?;
        let mut tar = Vec::new();
        flate2::read::GzDecoder::new(gz.as_slice()).read_to_end(&mut tar)?;
        layers.push(tar);
    }
    Ok(Image {
        files,
        config,
        layers,
    })
}

fn file<'a>(files: &'a BTreeMap<String, Vec<u8>>, name: &str) -> Result<&'a Vec<u8>> {
    files.get(name).with_context(|| format!("missing {name}"))
}

pub fn entries(layer: &[u8]) -> Result<Vec<Entry>> {
    let mut out = Vec::new();
    let mut archive = tar::Archive::new(layer);
    for entry in archive.entries()? {
        let mut entry = entry?;
        let mut caps = None;
        if let Some(pax) = entry.pax_extensions()? {
            for ext in pax {
                let ext = ext?;
                if ext.key_bytes() == b"SCHILY.xattr.security.capability" {
                    caps = Some(ext.value_bytes().to_vec());
                }
            }
        }
        let h = entry.header();
        out.push(Entry {
            path: entry.path()?.to_string_lossy().into_owned(),
            kind: h.entry_type(),
            uid: h.uid()?,
            gid: h.gid()?,
            mtime: h.mtime()?,
            caps,
        });
    }
    Ok(out)
}

fn structure(b: &Built, image: &Image) -> Result<()> {
    // Every blob is what its name says.
    for (name, data) in &image.files {
        if let Some(digest) = name.strip_prefix("blobs/sha256/") {
            ensure!(sha256(data) == digest, "{name} does not match its digest");
        }
    }
    // Docker's view and the OCI view agree.
    let index: Value = serde_json::from_slice(file(&image.files, "index.json")?)?;
    let annotations = &index["manifests"][0]["annotations"];
    ensure!(
        annotations["io.containerd.image.name"] == b.reference.as_str(),
        "index.json names {}, expected {}",
        annotations["io.containerd.image.name"],
        b.reference
    );
    ensure!(file(&image.files, "oci-layout").is_ok());
    let docker: Value = serde_json::from_slice(file(&image.files, "manifest.json")?)?;
    ensure!(
        docker[0]["RepoTags"] == serde_json::json!([b.reference]),
        "manifest.json tags {}, expected {}",
        docker[0]["RepoTags"],
        b.reference
    );
    let manifest_digest = index["manifests"][0]["digest"].as_str().unwrap_or_default();
    let manifest: Value = serde_json::from_slice(file(
        &image.files,
        &format!(
            "blobs/sha256/{}",
            manifest_digest.trim_start_matches("sha256:")
        ),
    )?)?;
    let layer_names: Vec<String> = manifest["layers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|l| {
            format!(
                "blobs/sha256/{}",
                l["digest"]
                    .as_str()
                    .unwrap_or_default()
                    .trim_start_matches("sha256:")
            )
        })
        .collect();
    ensure!(
        docker[0]["Layers"] == serde_json::json!(layer_names),
        "manifest.json and the OCI manifest list different layers"
    );
    ensure!(
        docker[0]["Config"].as_str()
            == Some(&*format!(
                "blobs/sha256/{}",
                manifest["config"]["digest"]
                    .as_str()
                    .unwrap_or_default()
                    .trim_start_matches("sha256:")
            )),
        "manifest.json and the OCI manifest name different configs"
    );
    // The config.
    let config = &image.config["config"];
    let user = format!("{0}:{0}", b.user);
    ensure!(
        config["User"] == user.as_str(),
        "User is {}",
        config["User"]
    );
    let entrypoint = format!("/{}", spec::binary_path(b.spec.binary));
    ensure!(
        config["Entrypoint"] == serde_json::json!([entrypoint]),
        "Entrypoint is {}",
        config["Entrypoint"]
    );
    ensure!(
        config["Env"] == serde_json::json!([spec::PATH]),
        "Env is {}",
        config["Env"]
    );
    let diff_ids: Vec<String> = image
        .layers
        .iter()
        .map(|tar| format!("sha256:{}", sha256(tar)))
        .collect();
    ensure!(
        image.config["rootfs"]["diff_ids"] == serde_json::json!(diff_ids),
        "diff_ids do not match the layers"
    );
    ensure!(image.layers.len() == 2, "expected 2 layers");
    // The entries.
    let mut paths = BTreeSet::new();
    for layer in &image.layers {
        for e in entries(layer)? {
            ensure!(
                e.uid == 0 && e.gid == 0,
                "{} is owned by {}:{}",
                e.path,
                e.uid,
                e.gid
            );
            ensure!(
                e.mtime == b.epoch,
                "{} has mtime {}, not {}",
                e.path,
                e.mtime,
                b.epoch
            );
            let path = e.path.trim_end_matches('/').to_owned();
            let want = spec::file_caps(&path)
                .filter(|_| e.kind == tar::EntryType::Regular)
                .map(|effective| caps_xattr(spec::NET_CAPS_MASK, effective));
            ensure!(
                e.caps == want,
                "{path} has file capabilities {:?}, expected {want:?}",
                e.caps
            );
            paths.insert(path);
        }
    }
    let mut want: Vec<&str> = spec::BASE
        .iter()
        .chain(b.spec.picks)
        .map(|p| p.path)
        .collect();
    want.extend(spec::BASE_FILES.iter().map(|(dest, _)| *dest));
    let binary = spec::binary_path(b.spec.binary);
    want.push(&binary);
    for path in want {
        ensure!(paths.contains(path), "{path} is missing");
    }
    Ok(())
}

/// Applies the layers in order into `dir` (the images have no whiteouts), keeping modes and
/// the capability xattrs.
fn unpack(image: &Image, dir: &Path) -> Result<()> {
    for layer in &image.layers {
        let mut archive = tar::Archive::new(layer.as_slice());
        archive.set_preserve_permissions(true);
        archive.set_unpack_xattrs(true);
        archive.unpack(dir)?;
    }
    Ok(())
}

/// A command in the image root as root, with the image's PATH.
fn chroot(dir: &Path, argv: &[&str]) -> Command {
    let mut cmd = Command::new("chroot");
    cmd.arg(dir).args(argv);
    cmd.env_clear()
        .env("PATH", spec::PATH.trim_start_matches("PATH="));
    cmd
}

fn output(cmd: &mut Command) -> Result<String> {
    let out = cmd
        .output()
        .with_context(|| format!("starting {}", display(cmd)))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if !out.status.success() {
        bail!("{} failed ({}): {text}", display(cmd), out.status);
    }
    Ok(text)
}

fn runs(b: &Built, dir: &Path) -> Result<()> {
    for argv in b.spec.smoke {
        let text = output(&mut chroot(dir, argv))?;
        eprintln!(
            "images: {}: {} -> {}",
            b.spec.name,
            argv.join(" "),
            text.lines().next().unwrap_or_default()
        );
    }
    if b.spec.name != "mesh-proxy" {
        return Ok(());
    }
    // The proxy, as the proxy container runs it: its uid, no capability at all, no-new-privs.
    let mut cmd = Command::new("setpriv");
    cmd.args([
        "--no-new-privs",
        "--bounding-set=-all,+setuid,+setgid,+sys_chroot",
        "--",
        "chroot",
    ])
    .arg(format!("--userspec={0}:{0}", b.user))
    .arg(dir)
    .args([&*format!("/{}", spec::binary_path(b.spec.binary)), "--help"])
    .env_clear()
    .env("PATH", spec::PATH.trim_start_matches("PATH="));
    output(&mut cmd)?;
    // linkerd-init, as the manifests run it, with each backend.
    let init = b.rendered.container("linkerd-init")?;
    let uid = init.run_as_user.unwrap_or(65534);
    // The manifests mount an emptyDir at /run for the xtables lock, and a container runtime
    // gives every container /dev/null (which `mesh-proxy init` uses for its children's stdin).
    chmod(&dir.join("run"), 0o1777)?;
    std::fs::create_dir_all(dir.join("dev"))?;
    output(
        Command::new("mknod")
            .args(["-m", "666"])
            .arg(dir.join("dev/null"))
            .args(["c", "1", "3"]),
    )?;
    // runc switches to the container's user keeping the capabilities the spec grants, then
    // execs; setpriv does the same, so it runs inside the root (a copy, for this check only).
    scaffold_setpriv(dir)?;
    for (backend, save) in [
        ("iptables-nft", "iptables-nft-save"),
        ("iptables-legacy", "iptables-legacy-save"),
    ] {
        let args = with_backend(&init.args, backend, save);
        let script = format!(
            "set -e; ip link set lo up; \
             chroot \"$0\" /.setpriv --reuid={uid} --regid={uid} --clear-groups --no-new-privs \
             --bounding-set=-all,+net_admin,+net_raw -- {} {}; \
             chroot \"$0\" {save} -t nat",
            shell_words(&init.command),
            shell_words(&args),
        );
        let mut cmd = Command::new("unshare");
        cmd.args(["-n", "sh", "-c", &script])
            .arg(dir)
            .env_clear()
            .env("PATH", spec::PATH.trim_start_matches("PATH="));
        let text = output(&mut cmd).with_context(|| format!("linkerd-init with {backend}"))?;
        ensure!(
            text.contains("REDIRECT") && text.contains(&format!("--uid-owner {}", b.user)),
            "linkerd-init with {backend} left no redirect rules exempting {}:\n{text}",
            b.user
        );
        eprintln!("images: mesh-proxy: linkerd-init as {uid} with {backend}: rules in place");
    }
    Ok(())
}

/// Copies the host's setpriv and the library it needs into the throwaway root.
fn scaffold_setpriv(dir: &Path) -> Result<()> {
    let host = Path::new("/usr/bin/setpriv");
    std::fs::copy(host, dir.join(".setpriv")).context("copying setpriv")?;
    let ldd = output(Command::new("ldd").arg(host))?;
    for line in ldd.lines() {
        // "libcap-ng.so.0 => /lib/x86_64-linux-gnu/libcap-ng.so.0 (0x…)"
        let Some(lib) = line
            .split("=>")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
        else {
            continue;
        };
        let dest = dir.join(lib.trim_start_matches('/'));
        if !dest.exists() {
            if let Some(parent) = dest.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::copy(lib, &dest).with_context(|| format!("copying {lib}"))?;
        }
    }
    Ok(())
}

/// `args` with the firewall binaries switched to `backend`.
fn with_backend(args: &[String], backend: &str, save: &str) -> Vec<String> {
    let mut out = args.to_vec();
    for i in 0..out.len().saturating_sub(1) {
        match out[i].as_str() {
            "--firewall-bin-path" => out[i + 1] = backend.to_owned(),
            "--firewall-save-bin-path" => out[i + 1] = save.to_owned(),
            _ => {}
        }
    }
    out
}

fn shell_words(words: &[String]) -> String {
    words
        .iter()
        .map(|w| format!("'{}'", w.replace('\'', r"'\''")))
        .collect::<Vec<_>>()
        .join(" ")
}

fn chmod(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("chmod {}", path.display()))
}
