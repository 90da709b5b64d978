//! Which Deployment owns a ReplicaSet, for naming the workload of an injected pod in events and
//! logs. A reflector keeps every ReplicaSet's owner references (and nothing else: specs and
//! statuses are dropped as they arrive, so memory grows with the number of ReplicaSets, not
//! their size), so an admission does not wait on the API server. A ReplicaSet the reflector has
//! not seen yet (every rollout creates one an instant before its pods) is read once, with a
//! deadline.

use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use tokio_util::sync::CancellationToken;

/// How long reading a ReplicaSet the reflector has not seen may take.
const MISS_TIMEOUT: Duration = Duration::from_secs(1);

/// Why the owner of a ReplicaSet is unknown.
#[derive(Debug, thiserror::Error)]
pub enum OwnerError {
    #[error("reading replicaset {namespace}/{name}: {source}")]
    Read {
        namespace: String,
        name: String,
        source: kube::Error,
    },
    #[error("reading replicaset {namespace}/{name} took over {MISS_TIMEOUT:?}")]
    Timeout { namespace: String, name: String },
}

/// Shared access to the ReplicaSets' owners.
#[derive(Clone)]
pub struct ReplicaSets {
    store: Store<ReplicaSet>,
    client: Client,
}

impl ReplicaSets {
    /// Starts the reflector; it runs until `shutdown`.
    pub fn spawn(client: Client, shutdown: CancellationToken) -> ReplicaSets {
        let (store, writer) = reflector::store();
        let stream = watcher(
            Api::<ReplicaSet>::all(client.clone()),
            watcher::Config::default(),
        )
        .default_backoff()
        .modify(keep_owners)
        .reflect(writer);
        tokio::spawn(async move {
            let mut stream = std::pin::pin!(stream);
            loop {
                tokio::select! {
                    event = stream.next() => match event {
                        Some(Ok(_)) => {}
                        Some(Err(err)) => tracing::warn!(%err, "replicaset watch failed; retrying"),
                        None => return,
                    },
                    _ = shutdown.cancelled() => return,
                }
            }
        });
        ReplicaSets { store, client }
    }

    /// The owner references of ReplicaSet `namespace/name`.
    pub async fn owners(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Vec<OwnerReference>, OwnerError> {
        if let Some(rs) = self.store.get(&ObjectRef::new(name).within(namespace)) {
            return Ok(rs.metadata.owner_references.clone().unwrap_or_default());
        }
        let api = Api::<ReplicaSet>::namespaced(self.client.clone(), namespace);
        match tokio::time::timeout(MISS_TIMEOUT, api.get(name)).await {
            Ok(Ok(rs)) => Ok(rs.metadata.owner_references.unwrap_or_default()),
            Ok(Err(source)) => Err(OwnerError::Read {
                namespace: namespace.to_owned(),
                name: name.to_owned(),
                source,
            }),
            Err(_) => Err(OwnerError::Timeout {
                namespace: namespace.to_owned(),
                name: name.to_owned(),
            }),
        }
    }
}

/// Drops everything the injector does not read from a ReplicaSet.
fn keep_owners(rs: &mut ReplicaSet) {
    rs.spec = None;
    rs.status = None;
    let meta = &mut rs.metadata;
    meta.managed_fields = None;
    meta.annotations = None;
    meta.labels = None;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_owners_are_kept() {
        let mut rs: ReplicaSet = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web-7c9d", "namespace": "shop",
                "labels": {"app": "web"}, "annotations": {"big": "x".repeat(4096)},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment",
                    "name": "web", "uid": "u", "controller": true}]},
            "spec": {"selector": {"matchLabels": {"app": "web"}},
                "template": {"spec": {"containers": [{"name": "web"}]}}},
            "status": {"replicas": 3},
        }))
        .unwrap_or_default();
        keep_owners(&mut rs);
        assert!(rs.spec.is_none() && rs.status.is_none());
        assert!(rs.metadata.annotations.is_none() && rs.metadata.labels.is_none());
        assert_eq!(rs.metadata.name.as_deref(), Some("web-7c9d"));
        let owners = rs.metadata.owner_references.unwrap_or_default();
        assert_eq!(owners.len(), 1);
        assert_eq!(owners[0].name, "web");
    }
}
