//! One kube-runtime watcher per kind, shared by every stream, each feeding the index. A relist
//! (after the watch expires) deletes what disappeared meanwhile, as a reflector's store would.

use std::collections::HashSet;
use std::fmt::Debug;
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use kube::Resource;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use serde::de::DeserializeOwned;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use super::index::{Index, ServiceRef};

/// Feeds one kind into the index until `shutdown`; `synced` fires after the first full list.
pub async fn feed<K>(
    kind: &'static str,
    api: kube::Api<K>,
    index: Arc<Mutex<Index>>,
    synced: oneshot::Sender<()>,
    shutdown: CancellationToken,
    apply: fn(&mut Index, &K),
    delete: fn(&mut Index, &ServiceRef),
) where
    K: Resource + Clone + DeserializeOwned + Debug + Send + 'static,
{
    let stream = watcher::watcher(api, watcher::Config::default()).default_backoff();
    let mut stream = std::pin::pin!(stream);
    let mut synced = Some(synced);
    let mut known: HashSet<ServiceRef> = HashSet::new();
    let mut seen: HashSet<ServiceRef> = HashSet::new();
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
        let mut index = match index.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        match event {
            Event::Init => seen.clear(),
            Event::InitApply(obj) => {
                if let Some(id) = object_ref(&obj) {
                    apply(&mut index, &obj);
                    seen.insert(id);
                }
            }
            Event::InitDone => {
                for gone in known.difference(&seen) {
                    delete(&mut index, gone);
                }
                known = std::mem::take(&mut seen);
                drop(index);
                tracing::debug!(kind, objects = known.len(), "synced");
                if let Some(tx) = synced.take() {
                    let _ = tx.send(());
                }
            }
            Event::Apply(obj) => {
                if let Some(id) = object_ref(&obj) {
                    apply(&mut index, &obj);
                    known.insert(id);
                }
            }
            Event::Delete(obj) => {
                if let Some(id) = object_ref(&obj) {
                    delete(&mut index, &id);
                    known.remove(&id);
                }
            }
        }
    }
}

fn object_ref<K: Resource>(obj: &K) -> Option<ServiceRef> {
    let meta = obj.meta();
    Some(ServiceRef {
        namespace: meta.namespace.clone()?,
        name: meta.name.clone()?,
    })
}
