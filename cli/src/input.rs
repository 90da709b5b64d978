//! Reading manifests from files, directories, stdin and https URLs.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};

use crate::exit::Failed;

/// One input, read in full.
#[derive(Debug)]
pub struct Input {
    /// How messages name it: the path, the URL, or `<stdin>`.
    pub name: String,
    pub text: String,
}

/// Reads every input named on the command line, in order. Directories are walked recursively for
/// `.yaml`, `.yml` and `.json` files, in sorted order. Nothing is returned unless everything could
/// be read.
pub fn read_all(args: &[String]) -> anyhow::Result<Vec<Input>> {
    let mut inputs = Vec::new();
    let mut stdin_used = false;
    for arg in args {
        if arg == "-" {
            if stdin_used {
                bail!("`-` (stdin) was given more than once");
            }
            stdin_used = true;
            let mut bytes = Vec::new();
            std::io::stdin()
                .lock()
                .read_to_end(&mut bytes)
                .context("cannot read stdin")?;
            inputs.push(decode("<stdin>".to_owned(), bytes)?);
        } else if let Some(rest) = arg.strip_prefix("http://") {
            bail!(
                "refusing to fetch {arg}: plain http can be read and altered in transit; use https://{rest}"
            );
        } else if arg.starts_with("https://") {
            inputs.push(decode(arg.clone(), fetch(arg)?)?);
        } else {
            let path = Path::new(arg);
            let meta = std::fs::metadata(path).with_context(|| format!("cannot read {arg}"))?;
            if meta.is_dir() {
                let mut files = Vec::new();
                walk(path, &mut files)?;
                if files.is_empty() {
                    bail!("no .yaml, .yml or .json files found under {arg}");
                }
                files.sort();
                for file in files {
                    inputs.push(read_file(&file)?);
                }
            } else {
                inputs.push(read_file(path)?);
            }
        }
    }
    Ok(inputs)
}

fn read_file(path: &Path) -> anyhow::Result<Input> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    decode(path.display().to_string(), bytes)
}

fn decode(name: String, bytes: Vec<u8>) -> anyhow::Result<Input> {
    match String::from_utf8(bytes) {
        Ok(text) => Ok(Input { name, text }),
        Err(e) => Err(Failed(format!(
            "{name}: not UTF-8 text (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        ))
        .into()),
    }
}

/// Collects the manifest files under `dir`, as `kubectl apply -R -f` does: symbolic links to
/// files are read, symbolic links to directories are not followed (a link to a parent would
/// otherwise list the same files again and again), and the walk keeps its own stack so no
/// directory depth can overflow the thread's.
fn walk(dir: &Path, files: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let entries = std::fs::read_dir(&dir)
            .with_context(|| format!("cannot read directory {}", dir.display()))?;
        for entry in entries {
            let entry =
                entry.with_context(|| format!("cannot read directory {}", dir.display()))?;
            let path = entry.path();
            let kind = entry
                .file_type()
                .with_context(|| format!("cannot read {}", path.display()))?;
            if kind.is_dir() {
                pending.push(path);
                continue;
            }
            if kind.is_symlink() && path.is_dir() {
                continue;
            }
            if path
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| matches!(e, "yaml" | "yml" | "json"))
            {
                files.push(path);
            }
        }
    }
    Ok(())
}

/// Fetches an https URL, trusting the system's roots (and `SSL_CERT_FILE`, if set).
fn fetch(url: &str) -> anyhow::Result<Vec<u8>> {
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .https_only(true)
        .build()
        .context("cannot set up an https client")?;
    let response = client
        .get(url)
        .send()
        .with_context(|| format!("cannot fetch {url}"))?;
    let status = response.status();
    if !status.is_success() {
        bail!("cannot fetch {url}: the server answered {status}");
    }
    let body = response
        .bytes()
        .with_context(|| format!("cannot fetch {url}"))?;
    Ok(body.to_vec())
}
