//! `MESH_PROXY_DTAB`, `MESH_PROXY_DTAB_FILE` and `MESH_PROXY_FS_NAMER_DIR`: a Linkerd 1
//! dtab over a file namer (see `outbound::discover::namer`).

use std::io::Read;
use std::path::PathBuf;

use super::{ConfigError, Env};
use crate::dtab::{Dtab, MAX_DTAB_LEN};

pub const DTAB: &str = "MESH_PROXY_DTAB";
pub const DTAB_FILE: &str = "MESH_PROXY_DTAB_FILE";
pub const FS_NAMER_DIR: &str = "MESH_PROXY_FS_NAMER_DIR";

/// The dtab used when only `MESH_PROXY_FS_NAMER_DIR` is set: a request for host `web` goes
/// to the endpoints listed in the file `web`.
pub const DEFAULT_DTAB: &str = "/svc => /#/io.l5d.fs";

/// The namer's settings: present when `MESH_PROXY_FS_NAMER_DIR` is set.
#[derive(Clone, Debug, PartialEq)]
pub struct NamerConfig {
    /// The dtab at start-up; the admin server's `PUT /dtab` may replace it.
    pub dtab: Dtab,
    /// Where `/#/io.l5d.fs/<name>` finds the file `<name>`.
    pub dir: PathBuf,
}

// A parsed dtab's weights are finite (the parser rejects anything else), so equality is
// reflexive and `Eq` holds.
impl Eq for NamerConfig {}

/// Reads the three variables; malformed ones are pushed onto `errors`.
pub(super) fn read(env: &dyn Env, errors: &mut Vec<ConfigError>) -> Option<NamerConfig> {
    let text = match (env.var(DTAB), env.var(DTAB_FILE)) {
        (Some(_), Some(_)) => {
            errors.push(ConfigError::Conflict {
                name: DTAB,
                other: DTAB_FILE,
            });
            return None;
        }
        (Some(text), None) => {
            Some(Dtab::parse(&text).map_err(|error| ConfigError::Dtab { name: DTAB, error }))
        }
        (None, Some(path)) => Some(read_dtab_file(&path)),
        (None, None) => None,
    };
    let dir = env.var(FS_NAMER_DIR);
    let dtab = match (text, &dir) {
        (Some(Err(e)), _) => {
            errors.push(e);
            return None;
        }
        (Some(Ok(_)), None) => {
            let name = if env.var(DTAB).is_some() {
                DTAB
            } else {
                DTAB_FILE
            };
            errors.push(ConfigError::Requires {
                name,
                needs: FS_NAMER_DIR,
            });
            return None;
        }
        (Some(Ok(dtab)), Some(_)) => dtab,
        (None, None) => return None,
        (None, Some(_)) => Dtab::parse(DEFAULT_DTAB).unwrap_or_default(),
    };
    let dir = PathBuf::from(dir?);
    match std::fs::metadata(&dir) {
        Ok(meta) if meta.is_dir() => Some(NamerConfig { dtab, dir }),
        Ok(_) => {
            errors.push(ConfigError::File {
                name: FS_NAMER_DIR,
                value: dir.display().to_string(),
                reason: "not a directory".into(),
            });
            None
        }
        Err(e) => {
            errors.push(ConfigError::File {
                name: FS_NAMER_DIR,
                value: dir.display().to_string(),
                reason: e.to_string(),
            });
            None
        }
    }
}

/// Reads and parses the dtab file, reading no more than the parser accepts (plus one byte, so
/// that a longer file is reported as too long).
fn read_dtab_file(path: &str) -> Result<Dtab, ConfigError> {
    let failed = |reason: String| ConfigError::File {
        name: DTAB_FILE,
        value: path.to_owned(),
        reason,
    };
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_DTAB_LEN as u64 + 1).read_to_end(&mut bytes))
        .map_err(|e| failed(e.to_string()))?;
    if bytes.len() > MAX_DTAB_LEN {
        return Err(failed(format!("longer than {MAX_DTAB_LEN} bytes")));
    }
    let text = String::from_utf8(bytes).map_err(|_| failed("not UTF-8".into()))?;
    Dtab::parse(&text).map_err(|error| ConfigError::DtabFile {
        name: DTAB_FILE,
        path: path.to_owned(),
        error,
    })
}
