//! The `Get` and `GetProfile` streams of one path, reconnected with backoff.
//!
//! Each stream runs as a task publishing what it knows into a `watch` channel and waking
//! its target's task. A failed stream keeps its last answer; a new stream replaces it with
//! its first message (the control plane starts every stream with the whole current state).

use std::sync::Arc;

use linkerd2_proxy_api::destination::GetDestination;
use tokio::sync::{Notify, watch};

use super::Shared;
use super::endpoints::{Answer, EndpointSet};
use super::profile::{self, ProfileAnswer};
use crate::backoff::Backoff;
use crate::control::{self, Event};

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
    let mut set = EndpointSet::default();
    let open = || {
        let mut client = shared.client.clone();
        let request = request(&shared, &path);
        async move { client.get(request).await }
    };
    control::watch(backoff(&shared), open, |event| match event {
        Event::Message(update, first) => {
            if first {
                set.clear();
            }
            set.apply(update);
            send(&tx, &notify, set.answer());
        }
        Event::Ended(Some(status)) if refused(&status) => {
            tracing::debug!(path, %status, "the control plane does not know the target");
            set.clear();
            send(&tx, &notify, Answer::Unknown);
        }
        Event::Ended(Some(status)) => {
            tracing::info!(path, %status, "destination lookup failed; retrying");
            if *tx.borrow() == Answer::Pending {
                send(&tx, &notify, Answer::Unknown);
            }
        }
        Event::Ended(None) => tracing::debug!(path, "destination stream ended; reconnecting"),
    })
    .await;
}

/// Watches the profile of `path` until the task is aborted.
pub(super) async fn get_profile(
    shared: Arc<Shared>,
    path: String,
    tx: watch::Sender<ProfileState>,
    notify: Arc<Notify>,
) {
    let open = || {
        let mut client = shared.client.clone();
        let request = request(&shared, &path);
        async move { client.get_profile(request).await }
    };
    control::watch(backoff(&shared), open, |event| match event {
        Event::Message(p, _) => {
            tx.send_replace(ProfileState::Known(profile::convert(&p)));
            notify.notify_one();
        }
        Event::Ended(Some(status)) if refused(&status) => {
            tracing::debug!(path, %status, "the control plane has no profile for the target");
            tx.send_replace(ProfileState::Unknown);
            notify.notify_one();
        }
        Event::Ended(Some(status)) => {
            tracing::info!(path, %status, "profile lookup failed; retrying");
            if matches!(*tx.borrow(), ProfileState::Pending) {
                tx.send_replace(ProfileState::Unknown);
                notify.notify_one();
            }
        }
        Event::Ended(None) => tracing::debug!(path, "profile stream ended; reconnecting"),
    })
    .await;
}

fn backoff(shared: &Shared) -> Backoff {
    Backoff::new(shared.timing.backoff_min, shared.timing.backoff_max)
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
