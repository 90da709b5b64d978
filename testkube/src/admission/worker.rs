//! Pods the fake controllers create while webhook configurations exist. Like the real
//! ReplicaSet, StatefulSet, DaemonSet and Job controllers, they create pods through admission;
//! since that means calling webhooks, which must not happen under the store's lock, the
//! controllers queue the pod and this worker admits and stores it. A pod that cannot be created
//! leaves a `FailedCreate` event on its owner and is retried a second later, as the controllers
//! retry with a back-off.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use super::{Attributes, admit, controller_user, plan};
use crate::resources::ResourceKey;
use crate::server::Shared;
use crate::status::ApiError;
use crate::store::{Part, State, core};
use crate::time;

/// How long a controller waits before trying a refused pod again.
const RETRY: Duration = Duration::from_secs(1);
/// At most this many creations per wake-up, so the loop is bounded.
const BATCH: usize = 10_000;

/// A pod a controller wants, waiting for admission.
#[derive(Debug, Clone)]
pub struct PendingPod {
    pub id: u64,
    pub owner_key: ResourceKey,
    pub owner_kind: String,
    pub owner_api_version: String,
    pub owner_name: String,
    pub owner_uid: String,
    pub namespace: String,
    /// The pod as the controller sends it: `generateName` or a fixed name, no status.
    pub pod: Value,
}

impl PendingPod {
    /// The kube-controller-manager controller that owns this kind of pod.
    pub fn controller(&self) -> String {
        format!("{}-controller", self.owner_kind.to_lowercase())
    }
}

/// Runs on the server's runtime until it stops.
pub async fn pod_worker(shared: Arc<Shared>) {
    let notify = shared.state().pod_work.clone();
    loop {
        notify.notified().await;
        for _ in 0..BATCH {
            let next = {
                let state = shared.state();
                state.pending_pods.first().cloned().map(|pending| {
                    let pods = state.type_of(&core("pods"));
                    let user = controller_user(&pending.controller());
                    let attrs = Attributes::create(&pods, "v1", &pending.namespace, user);
                    let plan = plan(&state, &attrs);
                    (pending, attrs, plan)
                })
            };
            let Some((pending, attrs, plan)) = next else {
                break;
            };
            let result = admit(&shared, &attrs, plan, pending.pod.clone()).await;
            let failed = store(&mut shared.state(), &pending, result.map(|a| a.object));
            if failed {
                tokio::time::sleep(RETRY).await;
                crate::kubelet::reconcile(&mut shared.state());
            }
        }
    }
}

/// Stores an admitted pod, or records why it could not be created. Returns whether it failed.
fn store(state: &mut State, pending: &PendingPod, admitted: Result<Value, ApiError>) -> bool {
    let before = state.pending_pods.len();
    state.pending_pods.retain(|p| p.id != pending.id);
    let owner_alive = state
        .get(&pending.owner_key, &pending.namespace, &pending.owner_name)
        .is_some_and(|o| o.uid() == pending.owner_uid);
    if state.pending_pods.len() == before || !owner_alive {
        return false;
    }
    let pods = state.type_of(&core("pods"));
    let result = admitted.and_then(|pod| state.create(&pods, &pending.namespace, pod, false));
    match result {
        Ok(_) => false,
        Err(e) => {
            failed_create(state, pending, &e.message);
            true
        }
    }
}

/// A `FailedCreate` warning on the owner, counted up when it repeats, as the controllers'
/// event recorder does.
fn failed_create(state: &mut State, pending: &PendingPod, message: &str) {
    let key = core("events");
    let rt = state.type_of(&key);
    let message = format!("Error creating: {message}");
    let now = time::now();
    let same = state
        .list(&key, Some(&pending.namespace))
        .into_iter()
        .find(|e| {
            e.value.pointer("/involvedObject/uid") == Some(&json!(pending.owner_uid))
                && e.value["reason"] == "FailedCreate"
                && e.value["message"] == json!(message)
        });
    if let Some(old) = same {
        let mut next = old.value.clone();
        next["count"] = json!(old.value["count"].as_i64().unwrap_or(1) + 1);
        next["lastTimestamp"] = json!(now);
        let _ = state.update(&rt, &pending.namespace, old.name(), next, Part::Main, false);
        return;
    }
    let id = state.next_id();
    let controller = pending.controller();
    let event = json!({
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "name": format!("{}.{id:016x}", pending.owner_name),
            "namespace": pending.namespace,
        },
        "involvedObject": {
            "apiVersion": pending.owner_api_version,
            "kind": pending.owner_kind,
            "name": pending.owner_name,
            "namespace": pending.namespace,
            "uid": pending.owner_uid,
        },
        "reason": "FailedCreate",
        "message": message,
        "type": "Warning",
        "source": { "component": controller },
        "reportingComponent": controller,
        "reportingInstance": "",
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    });
    let _ = state.create(&rt, &pending.namespace, event, false);
}
