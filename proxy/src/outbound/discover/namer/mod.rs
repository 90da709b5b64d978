//! A Linkerd 1 dtab over a file namer (`io.l5d.fs`) as a source of answers.
//!
//! A request for host `web` (the `Host` or authority without its port) has the logical name
//! `/svc/web`, as Linkerd 1's default HTTP identifier gives. The dtab delegates it (see
//! [`delegate`]) to bound names `/#/io.l5d.fs/<file>`, each the endpoints listed in
//! `MESH_PROXY_FS_NAMER_DIR/<file>` (see [`file`](mod@file)). The answer is one [`Backend`] per bound
//! name, named by it, with the name's share of traffic as its weight (scaled to
//! [`WEIGHT_SCALE`]); every endpoint carries the label `dst_service="<file>"`. `$` becomes a
//! backend named `$` with no endpoints. A name that resolves negative (`~`, no rule, every
//! file missing), fails (`!`), or goes past an evaluation bound becomes one backend named
//! after the logical name with no endpoints: requests fail fast with 503, never wait.
//!
//! Linkerd 1's identifier puts the `Host` header as written into the name, port and all;
//! here the port is left out, so `web` and `web:8080` are one service, and the endpoints
//! carry their own ports.
//!
//! One thread (not a task on the proxy's runtime, which may have a single thread that file
//! I/O must not stall) looks at every file a watched name depends on every [`POLL`], files
//! found missing included, and re-evaluates the names whose files changed, so an edit reaches
//! the balancers within that. Names nobody watches any more are dropped on the next pass.
//! [`Namer::set_dtab`] replaces the dtab and re-evaluates every watched name before it
//! returns. Changing `MESH_PROXY_DTAB_FILE` after start-up changes nothing: use the admin
//! server's `PUT /dtab`.

pub mod delegate;
pub mod file;

#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::{Backend, Destination, Resolution, Resolve};
use crate::config::NamerConfig;
use crate::dtab::Dtab;
use crate::target::Logical;
use crate::throttle::Throttle;
use delegate::{Delegation, Target};
use file::{FileState, Watched};

/// How often watched files are looked at.
pub const POLL: Duration = Duration::from_millis(250);
/// The weights of a name's backends sum to about this.
pub const WEIGHT_SCALE: f64 = 1_000_000.0;
/// Names watched at once; past it a name gets an empty answer (503) and a warning.
const MAX_NAMES: usize = 10_000;
/// The longest host accepted (a DNS name's limit); a longer one gets an empty answer.
const MAX_HOST: usize = 253;

/// Names that went past an evaluation bound, and names refused past [`MAX_NAMES`].
static DELEGATION: Throttle = Throttle::new();

/// The dtab and file namer. Dropping it stops its thread within [`POLL`].
pub struct Namer {
    shared: Arc<Shared>,
    /// Wakes the thread at once (a new name); its closing stops the thread.
    wake: SyncSender<()>,
}

struct Shared {
    dir: PathBuf,
    dtab: Mutex<Arc<Dtab>>,
    /// The watched names: the data path's lock, held only to look up or insert.
    names: Mutex<HashMap<Arc<str>, watch::Sender<Arc<Destination>>>>,
    /// Evaluation state; held while files are read, never by the data path.
    work: Mutex<Work>,
}

#[derive(Default)]
struct Work {
    files: HashMap<String, Watched>,
    /// Each evaluated name's files (found or missing), and the dtab it was evaluated with.
    evaluated: HashMap<Arc<str>, (Arc<Dtab>, Vec<String>)>,
}

impl Namer {
    /// Starts the namer's thread.
    pub fn new(config: &NamerConfig) -> std::io::Result<Namer> {
        let shared = Arc::new(Shared {
            dir: config.dir.clone(),
            dtab: Mutex::new(Arc::new(config.dtab.clone())),
            names: Mutex::default(),
            work: Mutex::default(),
        });
        let (wake, woken) = sync_channel(1);
        let poller = shared.clone();
        std::thread::Builder::new()
            .name("namer".into())
            .spawn(move || poll(&poller, &woken))?;
        Ok(Namer { shared, wake })
    }

    /// The dtab in use.
    pub fn dtab(&self) -> Arc<Dtab> {
        self.shared
            .dtab
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Replaces the dtab; every watched name has its new answer when this returns.
    pub fn set_dtab(&self, dtab: Dtab) {
        let mut work = self.shared.work.lock().unwrap_or_else(|e| e.into_inner());
        *self.shared.dtab.lock().unwrap_or_else(|e| e.into_inner()) = Arc::new(dtab);
        self.shared.pass(&mut work, false);
    }
}

impl std::fmt::Debug for Namer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Namer")
            .field("dir", &self.shared.dir)
            .finish_non_exhaustive()
    }
}

impl Resolve for Namer {
    fn resolve(&self, target: &Logical) -> Option<watch::Receiver<Arc<Destination>>> {
        let Logical::Name(host, _) = target else {
            return None;
        };
        if host.len() > MAX_HOST {
            return Some(watch::channel(Arc::new(no_backends(host))).1);
        }
        let mut names = self.shared.names.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(tx) = names.get(host)
            && !tx.is_closed()
        {
            return Some(tx.subscribe());
        }
        names.retain(|_, tx| !tx.is_closed());
        if names.len() >= MAX_NAMES {
            if let Some(skipped) = DELEGATION.admit() {
                tracing::warn!(%host, skipped, max = MAX_NAMES, "too many names watched; answering with no endpoints");
            }
            return Some(watch::channel(Arc::new(no_backends(host))).1);
        }
        let (tx, rx) = watch::channel(Arc::new(Destination::default()));
        names.insert(host.clone(), tx);
        drop(names);
        // A full channel means a wake-up is already pending.
        let _ = self.wake.try_send(());
        Some(rx)
    }
}

/// The thread: a pass every [`POLL`] or when woken, until the [`Namer`] is dropped.
/// A wake-up evaluates the new names only: files are looked at once per [`POLL`], however
/// many new names arrive.
fn poll(shared: &Shared, woken: &Receiver<()>) {
    let mut looked = Instant::now();
    loop {
        let wait = POLL.saturating_sub(looked.elapsed());
        match woken.recv_timeout(wait) {
            Ok(()) | Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        let look = looked.elapsed() >= POLL;
        if look {
            looked = Instant::now();
        }
        let mut work = shared.work.lock().unwrap_or_else(|e| e.into_inner());
        shared.pass(&mut work, look);
    }
}

impl Shared {
    /// Drops names nobody watches, looks at the files (if `look`), and re-evaluates the
    /// names that are new, were evaluated with another dtab, or depend on a changed file.
    fn pass(&self, work: &mut Work, look: bool) {
        let names: Vec<(Arc<str>, watch::Sender<Arc<Destination>>)> = {
            let mut names = self.names.lock().unwrap_or_else(|e| e.into_inner());
            names.retain(|_, tx| !tx.is_closed());
            names.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
        };
        let dtab = self.dtab.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let live: HashSet<&str> = names.iter().map(|(name, _)| &**name).collect();
        work.evaluated.retain(|name, _| live.contains(&**name));
        let mut changed = HashSet::new();
        if look {
            for (name, file) in &mut work.files {
                if file.refresh(&self.dir, name) {
                    changed.insert(name.clone());
                }
            }
        }
        for (host, tx) in &names {
            let stale = match work.evaluated.get(host) {
                None => true,
                Some((with, files)) => {
                    !Arc::ptr_eq(with, &dtab) || files.iter().any(|f| changed.contains(f))
                }
            };
            if stale {
                let (answer, files) = self.evaluate(&dtab, host, &mut work.files);
                work.evaluated.insert(host.clone(), (dtab.clone(), files));
                publish(tx, answer);
            }
        }
        let used: HashSet<&String> = work.evaluated.values().flat_map(|(_, f)| f).collect();
        let keep: HashSet<String> = used.into_iter().cloned().collect();
        work.files.retain(|name, _| keep.contains(name));
    }

    /// `host`'s answer, and the files it looked at.
    fn evaluate(
        &self,
        dtab: &Dtab,
        host: &str,
        files: &mut HashMap<String, Watched>,
    ) -> (Destination, Vec<String>) {
        let mut seen = Vec::new();
        let mut exists = |name: &str| {
            let file = files
                .entry(name.to_owned())
                .or_insert_with(|| Watched::load(&self.dir, name));
            if !seen.iter().any(|s| s == name) {
                seen.push(name.to_owned());
            }
            file.state != FileState::Missing
        };
        let path = vec![b"svc".to_vec(), host.as_bytes().to_vec()];
        let result = delegate::delegate(dtab, &path, &mut exists);
        let answer = match result {
            Ok(Delegation::Bound(shares)) => {
                let backends: Vec<Backend> = shares
                    .into_iter()
                    .map(|share| backend(&share.target, share.weight, files))
                    .collect();
                Destination {
                    resolution: Resolution::Backends(backends.into()),
                    profile: None,
                }
            }
            Ok(Delegation::Neg | Delegation::Fail) => no_backends(host),
            Err(error) => {
                if let Some(skipped) = DELEGATION.admit() {
                    tracing::warn!(name = %format!("/svc/{host}"), %error, skipped, "dtab evaluation stopped");
                }
                no_backends(host)
            }
        };
        (answer, seen)
    }
}

fn backend(target: &Target, weight: f64, files: &HashMap<String, Watched>) -> Backend {
    let weight = (weight * WEIGHT_SCALE).round().clamp(1.0, WEIGHT_SCALE) as u32;
    match target {
        Target::Empty => Backend {
            name: "$".into(),
            weight,
            endpoints: Arc::new([]),
        },
        Target::File(name) => Backend {
            name: format!("/#/io.l5d.fs/{name}").into(),
            weight,
            endpoints: match files.get(name).map(|f| &f.state) {
                Some(FileState::Present(endpoints)) => endpoints.clone(),
                _ => Arc::new([]),
            },
        },
    }
}

/// The answer for a name that resolves to nothing: one backend with no endpoints.
fn no_backends(host: &str) -> Destination {
    Destination::endpoints(&format!("/svc/{host}"), Vec::new())
}

/// Sends `answer` if it differs from the current one.
fn publish(tx: &watch::Sender<Arc<Destination>>, answer: Destination) {
    tx.send_if_modified(|current| {
        let changed = current.resolution != answer.resolution;
        if changed {
            *current = Arc::new(answer);
        }
        changed
    });
}
