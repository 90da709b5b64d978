//! Image archives written byte for byte: gzip tar layers, the OCI layout and docker's
//! `manifest.json` in one tar, so `docker load`, `ctr images import` and `kind load
//! image-archive` all read it.
//!
//! Everything is reproducible: entries sorted, one fixed mtime, uid and gid 0, no user names, no
//! host paths. File capabilities ride along as PAX `SCHILY.xattr.security.capability` records,
//! the only form image layers keep them in.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use flate2::Compression;
use flate2::write::GzEncoder;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// One filesystem object of a layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Dir {
        mode: u32,
    },
    File {
        data: Vec<u8>,
        mode: u32,
        caps: Option<Vec<u8>>,
    },
    Symlink {
        target: String,
    },
}

/// A layer's content, keyed by relative path. `PathBuf`'s order is component-wise, so a
/// directory always comes before what is inside it.
#[derive(Debug, Default, Clone)]
pub struct Tree(pub BTreeMap<PathBuf, Node>);

impl Tree {
    /// Adds `node` at `path` and every missing parent directory (mode 0755).
    pub fn insert(&mut self, path: &Path, node: Node) {
        let mut parent = PathBuf::new();
        if let Some(dir) = path.parent() {
            for part in dir.components() {
                parent.push(part);
                self.0
                    .entry(parent.clone())
                    .or_insert(Node::Dir { mode: 0o755 });
            }
        }
        self.0.insert(path.to_path_buf(), node);
    }
}

/// The `security.capability` xattr value (VFS_CAP_REVISION_2) for `permitted`, nothing
/// inheritable: what `setcap <caps>=ep` (or `=p` without `effective`) writes.
pub fn caps_xattr(permitted: u32, effective: bool) -> Vec<u8> {
    const REVISION_2: u32 = 0x0200_0000;
    let flags = REVISION_2 | u32::from(effective);
    let mut out = Vec::with_capacity(20);
    for word in [flags, permitted, 0, 0, 0] {
        out.extend_from_slice(&word.to_le_bytes());
    }
    out
}

/// A layer: its uncompressed tar's digest (the config's `diff_id`) and the gzip blob.
pub struct Layer {
    pub diff_id: String,
    /// The uncompressed tar's size.
    pub raw: u64,
    /// What the history entry says made it.
    pub created_by: String,
    pub size: u64,
    pub gz: Vec<u8>,
    pub digest: String,
}

pub fn sha256(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut out = String::with_capacity(64);
    for b in digest {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

fn header(kind: tar::EntryType, mode: u32, size: u64, mtime: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(mtime);
    h.set_size(size);
    h
}

/// The tar of `tree`, reproducible for a given `mtime`.
pub fn layer_tar(tree: &Tree, mtime: u64) -> Result<Vec<u8>> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, node) in &tree.0 {
        let name = path
            .to_str()
            .with_context(|| format!("path {} is not UTF-8", path.display()))?;
        match node {
            Node::Dir { mode } => {
                let mut h = header(tar::EntryType::Directory, *mode, 0, mtime);
                b.append_data(&mut h, format!("{name}/"), std::io::empty())?;
            }
            Node::File { data, mode, caps } => {
                if let Some(caps) = caps {
                    b.append_pax_extensions([(
                        "SCHILY.xattr.security.capability",
                        caps.as_slice(),
                    )])?;
                }
                let mut h = header(tar::EntryType::Regular, *mode, data.len() as u64, mtime);
                b.append_data(&mut h, name, data.as_slice())?;
            }
            Node::Symlink { target } => {
                let mut h = header(tar::EntryType::Symlink, 0o777, 0, mtime);
                b.append_link(&mut h, name, target)?;
            }
        }
    }
    Ok(b.into_inner()?)
}

pub fn gzip(bytes: &[u8]) -> Result<Vec<u8>> {
    let mut gz = GzEncoder::new(Vec::new(), Compression::new(9));
    gz.write_all(bytes)?;
    Ok(gz.finish()?)
}

pub fn layer(tree: &Tree, mtime: u64, created_by: &str) -> Result<Layer> {
    let tar = layer_tar(tree, mtime)?;
    let gz = gzip(&tar)?;
    Ok(Layer {
        diff_id: format!("sha256:{}", sha256(&tar)),
        raw: tar.len() as u64,
        created_by: created_by.to_owned(),
        size: gz.len() as u64,
        digest: format!("sha256:{}", sha256(&gz)),
        gz,
    })
}

/// How the image runs: its config's `config` object.
pub struct RunConfig {
    pub user: String,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub labels: BTreeMap<String, String>,
}

/// A finished archive: the bytes, and the manifest digest that names the image.
pub struct Archive {
    pub bytes: Vec<u8>,
    pub manifest_digest: String,
    /// Sum of the compressed layers, and of the uncompressed layer tars.
    pub compressed: u64,
    pub uncompressed: u64,
}

/// Writes the image `reference` (`repo:tag`) from `layers` as one tar holding both the OCI
/// image layout (`oci-layout`, `index.json`, `blobs/sha256/…`) and docker's `manifest.json`,
/// which points at the same blobs.
pub fn archive(reference: &str, run: &RunConfig, layers: &[&Layer], mtime: u64) -> Result<Archive> {
    let Some((_, tag)) = reference
        .rsplit_once(':')
        .filter(|(repo, _)| !repo.is_empty())
    else {
        bail!("image reference {reference:?} has no tag");
    };
    let created = rfc3339(mtime);
    let config = json!({
        "created": created,
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "User": run.user,
            "Env": run.env,
            "Entrypoint": run.entrypoint,
            "Cmd": if run.cmd.is_empty() { Value::Null } else { json!(run.cmd) },
            "WorkingDir": "/",
            "Labels": run.labels,
        },
        "rootfs": {
            "type": "layers",
            "diff_ids": layers.iter().map(|l| l.diff_id.as_str()).collect::<Vec<_>>(),
        },
        "history": layers.iter().map(|l| json!({"created": created, "created_by": l.created_by})).collect::<Vec<_>>(),
    });
    let config = serde_json::to_vec(&config)?;
    let config_digest = format!("sha256:{}", sha256(&config));
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest,
            "size": config.len(),
        },
        "layers": layers.iter().map(|l| json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": l.digest,
            "size": l.size,
        })).collect::<Vec<_>>(),
    });
    let manifest = serde_json::to_vec(&manifest)?;
    let manifest_digest = format!("sha256:{}", sha256(&manifest));
    let index = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest,
            "size": manifest.len(),
            "annotations": {
                "io.containerd.image.name": reference,
                "org.opencontainers.image.ref.name": tag,
            },
        }],
    });
    let blob = |digest: &str| format!("blobs/sha256/{}", digest.trim_start_matches("sha256:"));
    let docker = json!([{
        "Config": blob(&config_digest),
        "RepoTags": [reference],
        "Layers": layers.iter().map(|l| blob(&l.digest)).collect::<Vec<_>>(),
    }]);

    let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    files.insert(blob(&config_digest), config);
    files.insert(blob(&manifest_digest), manifest);
    for l in layers {
        files.insert(blob(&l.digest), l.gz.clone());
    }
    files.insert("index.json".into(), serde_json::to_vec(&index)?);
    files.insert("manifest.json".into(), serde_json::to_vec(&docker)?);
    files.insert(
        "oci-layout".into(),
        br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
    );

    let mut b = tar::Builder::new(Vec::new());
    for dir in ["blobs/", "blobs/sha256/"] {
        let mut h = header(tar::EntryType::Directory, 0o755, 0, mtime);
        b.append_data(&mut h, dir, std::io::empty())?;
    }
    for (name, data) in &files {
        let mut h = header(tar::EntryType::Regular, 0o644, data.len() as u64, mtime);
        b.append_data(&mut h, name, data.as_slice())?;
    }
    Ok(Archive {
        bytes: b.into_inner()?,
        manifest_digest,
        compressed: layers.iter().map(|l| l.size).sum(),
        uncompressed: layers.iter().map(|l| l.raw).sum(),
    })
}

/// `secs` since the epoch as RFC 3339 UTC, e.g. `2026-12-02T19:00:00Z`.
pub fn rfc3339(secs: u64) -> String {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}
