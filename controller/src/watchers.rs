//! One kube-runtime watcher per kind, shared by every stream, each feeding the indexes that need
//! it (the destination and policy indexes share the Pod watch). A relist (after the watch
//! expires) deletes what disappeared meanwhile, as a reflector's store would.

use std::collections::HashSet;
use std::fmt::Debug;

use futures::StreamExt;
use kube::Resource;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use serde::de::DeserializeOwned;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

/// Feeds one kind until `shutdown`: `apply` gets each new or changed object, `delete` the
/// namespace and name of each one that is gone. `synced` fires after the first full list.
pub async fn feed<K>(
    kind: &'static str,
    api: kube::Api<K>,
    synced: oneshot::Sender<()>,
    shutdown: CancellationToken,
    apply: impl Fn(&K) + Send + 'static,
    delete: impl Fn(&str, &str) + Send + 'static,
) where
    K: Resource + Clone + DeserializeOwned + Debug + Send + 'static,
{
    let stream = watcher::watcher(api, watcher::Config::default()).default_backoff();
    let mut stream = std::pin::pin!(stream);
    let mut synced = Some(synced);
    let mut known: HashSet<(String, String)> = HashSet::new();
    let mut seen: HashSet<(String, String)> = HashSet::new();
    loop {
        let event = tokio::select! {
            _ = shutdown.cancelled() => return,
            event = stream.next() => event,
        };
        let event = match event {
            None => return,
            Some(Err(err)) => {
                tracing::warn!(kind, %err, "watch failed; retrying");
                continue;
            }
            Some(Ok(event)) => event,
        };
        match event {
            Event::Init => seen.clear(),
            Event::InitApply(obj) => {
                if let Some(id) = object_ref(&obj) {
                    apply(&obj);
                    seen.insert(id);
                }
            }
            Event::InitDone => {
                for (namespace, name) in known.difference(&seen) {
                    delete(namespace, name);
                }
                known = std::mem::take(&mut seen);
                tracing::debug!(kind, objects = known.len(), "synced");
                if let Some(tx) = synced.take() {
                    let _ = tx.send(());
                }
            }
            Event::Apply(obj) => {
                if let Some(id) = object_ref(&obj) {
                    apply(&obj);
                    known.insert(id);
                }
            }
            Event::Delete(obj) => {
                if let Some(id) = object_ref(&obj) {
                    delete(&id.0, &id.1);
                    known.remove(&id);
                }
            }
        }
    }
}

fn object_ref<K: Resource>(obj: &K) -> Option<(String, String)> {
    let meta = obj.meta();
    Some((meta.namespace.clone()?, meta.name.clone()?))
}
