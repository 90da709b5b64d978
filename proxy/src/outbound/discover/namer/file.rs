//! The file namer's files: one endpoint per line, read and re-read as they change.
//!
//! ```text
//! # web, version 1
//! 10.0.0.1:8080
//! 10.0.0.2:8080 tls=web.default.serviceaccount.identity.linkerd.cluster.local
//! [fd00::1]:8080
//! 10.0.0.3 8080
//! ```
//!
//! A line is an IP address and port, as `IP:PORT` (`[IPv6]:PORT`) or as Linkerd 1's fs namer
//! writes them, `IP PORT`; then optionally `tls=<identity>`, the name the endpoint must
//! present. Blank lines and `#` comments are ignored. A bad line is skipped with a warning
//! naming `file:line`; the rest of the file still counts. Host names are not resolved.
//!
//! A file holds at most [`MAX_FILE_BYTES`] and [`MAX_LINES`] lines; a larger file, or one
//! that cannot be read, counts as missing (negative) and is logged.

use std::collections::hash_map::DefaultHasher;
use std::hash::Hasher;
use std::io::Read;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::outbound::discover::{DstLabels, Endpoint};
use crate::throttle::Throttle;

/// The largest file read.
pub const MAX_FILE_BYTES: usize = 1024 * 1024;
/// Lines read from a file; the rest are ignored, with a warning.
pub const MAX_LINES: usize = 10_000;
/// The longest identity name after `tls=` (a DNS name's limit).
const MAX_IDENTITY: usize = 253;
/// A file modified this recently is read again even if its size and time look unchanged:
/// some file systems keep modification times in whole seconds, so two writes of the same
/// size within one would otherwise look the same.
const RECENT: Duration = Duration::from_secs(2);

/// Bad lines and unreadable files: logged at most once a second.
static BAD_FILE: Throttle = Throttle::new();

/// One line that was skipped, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadLine {
    /// 1-based.
    pub line: usize,
    pub reason: String,
}

/// A file's endpoints and the lines that were skipped. `labels` go onto every endpoint.
pub fn parse(text: &str, labels: &DstLabels) -> (Vec<Endpoint>, Vec<BadLine>) {
    let mut endpoints: Vec<Endpoint> = Vec::new();
    let mut bad = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if i >= MAX_LINES {
            bad.push(BadLine {
                line: i + 1,
                reason: format!("more than {MAX_LINES} lines; the rest are ignored"),
            });
            break;
        }
        let line = line.split('#').next().unwrap_or_default().trim();
        if line.is_empty() {
            continue;
        }
        match parse_line(line) {
            Ok((addr, identity)) => endpoints.push(Endpoint {
                addr,
                identity,
                h2_hint: false,
                opaque_transport: None,
                labels: labels.clone(),
            }),
            Err(reason) => bad.push(BadLine {
                line: i + 1,
                reason,
            }),
        }
    }
    // One endpoint per address, the first line's, in address order.
    endpoints.sort_by_key(|e| e.addr);
    endpoints.dedup_by_key(|e| e.addr);
    (endpoints, bad)
}

fn parse_line(line: &str) -> Result<(SocketAddr, Option<Arc<str>>), String> {
    let mut words = line.split_ascii_whitespace();
    let first = words.next().unwrap_or_default();
    let mut rest: Vec<&str> = words.collect();
    let addr = match first.parse::<SocketAddr>() {
        Ok(addr) => addr,
        Err(_) => {
            let ip: IpAddr = first
                .parse()
                .map_err(|_| format!("{first:?} is not IP:PORT, [IPv6]:PORT or IP PORT"))?;
            let port = rest
                .first()
                .and_then(|p| p.parse::<u16>().ok())
                .ok_or_else(|| format!("{first:?} has no port"))?;
            rest.remove(0);
            SocketAddr::new(ip, port)
        }
    };
    let mut identity = None;
    for option in rest {
        match option.strip_prefix("tls=") {
            Some(name) if identity.is_none() && is_identity(name) => identity = Some(name.into()),
            Some(_) if identity.is_some() => return Err("tls= is given twice".into()),
            Some(name) => return Err(format!("{name:?} is not an identity name")),
            None => return Err(format!("unknown option {option:?} (only tls=<identity>)")),
        }
    }
    Ok((addr, identity))
}

/// A DNS-like name: labels of letters, digits, `-` and `_`, separated by dots.
fn is_identity(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_IDENTITY
        && name.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// What a file held when last read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileState {
    /// Missing, unreadable or too large: the name is negative.
    Missing,
    /// The file's endpoints (none if it is empty).
    Present(Arc<[Endpoint]>),
}

/// A watched file: its state and what it looked like when read.
#[derive(Debug)]
pub struct Watched {
    pub state: FileState,
    stamp: Option<Stamp>,
    hash: u64,
}

/// What `stat` says about a file: if none of it changed, the contents have not either
/// (unless the change was very recent, see [`RECENT`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    dev: u64,
    ino: u64,
}

impl Watched {
    /// Reads `dir/name` for the first time.
    pub fn load(dir: &Path, name: &str) -> Watched {
        let mut file = Watched {
            state: FileState::Missing,
            stamp: None,
            hash: 0,
        };
        file.refresh(dir, name);
        file
    }

    /// Looks at the file again; `true` if its state changed.
    pub fn refresh(&mut self, dir: &Path, name: &str) -> bool {
        use std::os::unix::fs::MetadataExt;
        let path = dir.join(name);
        let meta = match std::fs::metadata(&path) {
            Ok(meta) => meta,
            Err(e) => {
                if e.kind() != std::io::ErrorKind::NotFound {
                    warn_unreadable(&path, &e.to_string());
                }
                return self.set(None, 0, FileState::Missing);
            }
        };
        let stamp = Stamp {
            modified: meta.modified().ok(),
            len: meta.len(),
            dev: meta.dev(),
            ino: meta.ino(),
        };
        let recent = stamp
            .modified
            .and_then(|m| SystemTime::now().duration_since(m).ok())
            .is_none_or(|age| age < RECENT);
        if self.stamp == Some(stamp) && !recent {
            return false;
        }
        let text = match read(&path) {
            Ok(text) => text,
            Err(reason) => {
                warn_unreadable(&path, &reason);
                return self.set(Some(stamp), 0, FileState::Missing);
            }
        };
        let mut hasher = DefaultHasher::new();
        hasher.write(text.as_bytes());
        let hash = hasher.finish();
        if self.stamp.is_some() && self.state != FileState::Missing && hash == self.hash {
            self.stamp = Some(stamp);
            return false;
        }
        let labels: DstLabels = Arc::new([("dst_service".into(), name.into())]);
        let (endpoints, bad) = parse(&text, &labels);
        if let Some(first) = bad.first()
            && let Some(skipped) = BAD_FILE.admit()
        {
            tracing::warn!(
                file = %format!("{}:{}", path.display(), first.line),
                reason = %first.reason,
                bad_lines = bad.len(),
                skipped,
                "skipping bad lines in a namer file"
            );
        }
        self.set(Some(stamp), hash, FileState::Present(endpoints.into()))
    }

    fn set(&mut self, stamp: Option<Stamp>, hash: u64, state: FileState) -> bool {
        self.stamp = stamp;
        self.hash = hash;
        let changed = self.state != state;
        self.state = state;
        changed
    }
}

/// The file as text, if it is a regular file of at most [`MAX_FILE_BYTES`] in UTF-8.
fn read(path: &Path) -> Result<String, String> {
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    if !file.metadata().map_err(|e| e.to_string())?.is_file() {
        return Err("not a regular file".into());
    }
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    if bytes.len() > MAX_FILE_BYTES {
        return Err(format!("larger than {MAX_FILE_BYTES} bytes"));
    }
    String::from_utf8(bytes).map_err(|_| "not UTF-8".into())
}

fn warn_unreadable(path: &Path, reason: &str) {
    if let Some(skipped) = BAD_FILE.admit() {
        tracing::warn!(file = %path.display(), %reason, skipped, "namer file unusable; treated as missing");
    }
}
