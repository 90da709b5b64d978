//! One watched target: its streams merged into the published [`Destination`].

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::endpoints::Answer;
use super::stream::{self, ProfileState};
use super::{Shared, answered, publish};
use crate::outbound::discover::{Backend, Destination, Endpoint, Resolution};

/// Watches `path` until the last receiver of `tx` is dropped; then every stream of the
/// target is stopped.
pub(super) async fn watch(shared: Arc<Shared>, path: String, tx: watch::Sender<Arc<Destination>>) {
    let notify = Arc::new(Notify::new());
    let (profile_tx, profile_rx) = watch::channel(ProfileState::Pending);
    let _profile = Task(tokio::spawn(stream::get_profile(
        shared.clone(),
        path.clone(),
        profile_tx,
        notify.clone(),
    )));
    let mut gets: HashMap<String, Get> = HashMap::new();
    gets.insert(path.clone(), Get::spawn(&shared, &path, &notify));
    // The backends and their weights: the target itself, or a traffic split.
    let mut wanted: Vec<(String, u32)> = vec![(path.clone(), 1)];
    let mut deadline = Instant::now() + shared.timing.answer_timeout;
    let mut expired = false;
    loop {
        let (profile, overrides, endpoint) = match &*profile_rx.borrow() {
            ProfileState::Known(p) => (
                Some(p.profile.clone()),
                p.overrides.clone(),
                p.endpoint.clone(),
            ),
            ProfileState::Pending | ProfileState::Unknown => (None, Vec::new(), None),
        };
        let next = if overrides.is_empty() {
            vec![(path.clone(), 1)]
        } else {
            overrides
        };
        if next != wanted {
            // The target's own stream stays, so dropping a split falls back at once.
            gets.retain(|p, _| *p == path || next.iter().any(|(a, _)| a == p));
            for (authority, _) in &next {
                if !gets.contains_key(authority) {
                    gets.insert(authority.clone(), Get::spawn(&shared, authority, &notify));
                }
            }
            wanted = next;
            // New backends get their own time to answer; until then the last answer stays.
            deadline = Instant::now() + shared.timing.answer_timeout;
            expired = false;
        }
        let resolution = resolution(&path, &wanted, &gets, endpoint.as_ref(), expired)
            .unwrap_or_else(|| tx.borrow().resolution.clone());
        publish(
            &tx,
            Destination {
                resolution,
                profile,
            },
        );
        tokio::select! {
            () = notify.notified() => {}
            () = tokio::time::sleep_until(deadline), if !expired => {
                expired = true;
                if !answered(&tx.borrow().resolution) {
                    tracing::info!(path, "no answer from the control plane in time; unknown");
                }
            }
            () = tx.closed() => return,
        }
    }
}

/// The resolution the streams give, or `None` while a backend has not answered and the
/// time to answer has not `expired`.
fn resolution(
    path: &str,
    wanted: &[(String, u32)],
    gets: &HashMap<String, Get>,
    endpoint: Option<&Endpoint>,
    expired: bool,
) -> Option<Resolution> {
    let answer = |p: &str| {
        gets.get(p)
            .map(|g| g.rx.borrow().clone())
            .unwrap_or_default()
    };
    let backend = |name: &str, weight: u32, endpoints: Arc<[Endpoint]>| Backend {
        name: name.into(),
        weight,
        endpoints,
    };
    if let [(only, _)] = wanted
        && only == path
    {
        return match answer(path) {
            Answer::Endpoints(endpoints) => Some(Resolution::Backends(Arc::new([backend(
                path, 1, endpoints,
            )]))),
            // A known endpoint (a pod's address) the endpoint stream did not answer for.
            _ if endpoint.is_some() => Some(Resolution::Backends(Arc::new([backend(
                path,
                1,
                endpoint.cloned().into_iter().collect(),
            )]))),
            Answer::Unknown => Some(Resolution::Unknown),
            Answer::Pending if expired => Some(Resolution::Unknown),
            Answer::Pending => None,
        };
    }
    let mut backends = Vec::with_capacity(wanted.len());
    for (authority, weight) in wanted {
        let endpoints = match answer(authority) {
            Answer::Endpoints(endpoints) => endpoints,
            // A split's share to a backend that does not exist fails fast.
            Answer::Unknown => Arc::new([]),
            Answer::Pending if expired => Arc::new([]),
            Answer::Pending => return None,
        };
        backends.push(backend(authority, *weight, endpoints));
    }
    Some(Resolution::Backends(backends.into()))
}

/// One `Get` stream's task and its answer.
struct Get {
    rx: watch::Receiver<Answer>,
    _task: Task,
}

impl Get {
    fn spawn(shared: &Arc<Shared>, path: &str, notify: &Arc<Notify>) -> Get {
        let (tx, rx) = watch::channel(Answer::Pending);
        let task = tokio::spawn(stream::get(
            shared.clone(),
            path.to_owned(),
            tx,
            notify.clone(),
        ));
        Get {
            rx,
            _task: Task(task),
        }
    }
}

/// A stream's task, stopped when dropped.
struct Task(JoinHandle<()>);

impl Drop for Task {
    fn drop(&mut self) {
        self.0.abort();
    }
}
