//! The `Get` and `GetProfile` streams of one path, reconnected with backoff.
//!
//! Each stream runs as a task publishing what it knows into a `watch` channel and waking
//! its target's task. A failed stream keeps its last answer; a new stream replaces it with
//! its first message (the control plane starts every stream with the whole current state).

use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::time::Duration;

use linkerd2_proxy_api::destination::GetDestination;
use tokio::sync::{Notify, watch};

use super::endpoints::{Answer, EndpointSet};
use super::profile::{self, ProfileAnswer};
use super::{Shared, Timing};

/// What one `GetProfile` stream has said so far.
#[derive(Clone, Debug, Default)]
pub(super) enum ProfileState {
    #[default]
    Pending,
    /// No profile: the lookup was refused, or the control plane was never reached.
    Unknown,
    Known(ProfileAnswer),
}

/// Watches the endpoints of `path` until the task is aborted.
pub(super) async fn get(
    shared: Arc<Shared>,
    path: String,
    tx: watch::Sender<Answer>,
    notify: Arc<Notify>,
) {
    let mut backoff = Backoff::new(shared.timing);
    let mut set = EndpointSet::default();
    loop {
        let mut client = shared.client.clone();
        let failure = match client.get(request(&shared, &path)).await {
            Ok(response) => {
                let mut updates = response.into_inner();
                let mut fresh = true;
                loop {
                    match updates.message().await {
                        Ok(Some(update)) => {
                            if fresh {
                                set.clear();
                                fresh = false;
                                backoff.reset();
                            }
                            set.apply(update);
                            send(&tx, &notify, set.answer());
                        }
                        Ok(None) => break None,
                        Err(status) => break Some(status),
                    }
                }
            }
            Err(status) => Some(status),
        };
        match failure {
            Some(status) if refused(&status) => {
                tracing::debug!(path, %status, "the control plane does not know the target");
                set.clear();
                send(&tx, &notify, Answer::Unknown);
            }
            Some(status) => {
                tracing::info!(path, %status, "destination lookup failed; retrying");
                if *tx.borrow() == Answer::Pending {
                    send(&tx, &notify, Answer::Unknown);
                }
            }
            None => tracing::debug!(path, "destination stream ended; reconnecting"),
        }
        tokio::time::sleep(backoff.next()).await;
    }
}

/// Watches the profile of `path` until the task is aborted.
pub(super) async fn get_profile(
    shared: Arc<Shared>,
    path: String,
    tx: watch::Sender<ProfileState>,
    notify: Arc<Notify>,
) {
    let mut backoff = Backoff::new(shared.timing);
    loop {
        let mut client = shared.client.clone();
        let failure = match client.get_profile(request(&shared, &path)).await {
            Ok(response) => {
                let mut profiles = response.into_inner();
                loop {
                    match profiles.message().await {
                        Ok(Some(p)) => {
                            backoff.reset();
                            tx.send_replace(ProfileState::Known(profile::convert(&p)));
                            notify.notify_one();
                        }
                        Ok(None) => break None,
                        Err(status) => break Some(status),
                    }
                }
            }
            Err(status) => Some(status),
        };
        match failure {
            Some(status) if refused(&status) => {
                tracing::debug!(path, %status, "the control plane has no profile for the target");
                tx.send_replace(ProfileState::Unknown);
                notify.notify_one();
            }
            Some(status) => {
                tracing::info!(path, %status, "profile lookup failed; retrying");
                if matches!(*tx.borrow(), ProfileState::Pending) {
                    tx.send_replace(ProfileState::Unknown);
                    notify.notify_one();
                }
            }
            None => tracing::debug!(path, "profile stream ended; reconnecting"),
        }
        tokio::time::sleep(backoff.next()).await;
    }
}

fn request(shared: &Shared, path: &str) -> GetDestination {
    GetDestination {
        scheme: "k8s".into(),
        path: path.into(),
        context_token: shared.context.clone(),
    }
}

fn send(tx: &watch::Sender<Answer>, notify: &Notify, answer: Answer) {
    if tx.send_if_modified(|current| {
        let changed = *current != answer;
        *current = answer;
        changed
    }) {
        notify.notify_one();
    }
}

/// The control plane's way of saying it does not know a target (Linkerd's destination
/// service answers InvalidArgument for names and addresses it cannot look up).
fn refused(status: &tonic::Status) -> bool {
    matches!(
        status.code(),
        tonic::Code::InvalidArgument | tonic::Code::NotFound
    )
}

/// Exponential backoff with jitter: each delay is drawn from the upper half of the
/// current step, so proxies that lost the control plane together do not return together.
#[derive(Debug)]
pub(super) struct Backoff {
    step: Duration,
    timing: Timing,
}

impl Backoff {
    pub(super) fn new(timing: Timing) -> Backoff {
        Backoff {
            step: timing.backoff_min,
            timing,
        }
    }

    pub(super) fn reset(&mut self) {
        self.step = self.timing.backoff_min;
    }

    pub(super) fn next(&mut self) -> Duration {
        let step = self.step;
        self.step = step.saturating_mul(2).min(self.timing.backoff_max);
        let half = step / 2;
        let nanos = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
        half + Duration::from_nanos(random() % nanos.saturating_add(1))
    }
}

/// A random number from the standard library's per-process hash keys: good enough for
/// jitter, and no dependency.
fn random() -> u64 {
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
}
