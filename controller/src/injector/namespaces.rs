//! The namespace reflector: every namespace's annotations, watched once and shared, so that an
//! admission never waits on the API server for them.

use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Namespace;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use tokio_util::sync::CancellationToken;

use super::decide::Annotations;

/// How long a lookup of a namespace the reflector has not seen yet may take.
const MISS_TIMEOUT: Duration = Duration::from_secs(2);

/// Shared access to the namespaces.
#[derive(Clone)]
pub struct Namespaces {
    store: Store<Namespace>,
    client: Client,
}

impl Namespaces {
    /// Starts the reflector; it runs until `shutdown`.
    pub fn spawn(client: Client, shutdown: CancellationToken) -> Namespaces {
        let (store, writer) = reflector::store();
        let stream = reflector::reflector(
            writer,
            watcher(
                Api::<Namespace>::all(client.clone()),
                watcher::Config::default(),
            ),
        )
        .default_backoff();
        tokio::spawn(async move {
            let mut stream = std::pin::pin!(stream);
            loop {
                tokio::select! {
                    event = stream.next() => match event {
                        Some(Ok(_)) => {}
                        Some(Err(err)) => tracing::warn!(%err, "namespace watch failed; retrying"),
                        None => return,
                    },
                    _ = shutdown.cancelled() => return,
                }
            }
        });
        Namespaces { store, client }
    }

    /// Resolves once the first list has been read.
    pub async fn synced(&self) -> bool {
        self.store.wait_until_ready().await.is_ok()
    }

    /// The annotations of namespace `name`. A namespace the reflector has not seen yet (created
    /// an instant ago) is read once from the API server, with a deadline.
    pub async fn annotations(&self, name: &str) -> Result<Annotations, kube::Error> {
        if let Some(ns) = self.store.get(&ObjectRef::new(name)) {
            return Ok(ns.metadata.annotations.clone().unwrap_or_default());
        }
        let api = Api::<Namespace>::all(self.client.clone());
        match tokio::time::timeout(MISS_TIMEOUT, api.get(name)).await {
            Ok(ns) => Ok(ns?.metadata.annotations.unwrap_or_default()),
            Err(_) => Err(kube::Error::Service(
                format!("reading namespace {name} took over {MISS_TIMEOUT:?}").into(),
            )),
        }
    }
}
