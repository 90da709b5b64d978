//! Kubelet mode: workloads get running, Ready pods built from their templates, and their status
//! is filled in, so tools that wait for a rollout see one finish.
//!
//! Deployments own ReplicaSets that own pods, as in Kubernetes. StatefulSets own `name-0…`,
//! DaemonSets one pod per node, and Jobs pods that have already Succeeded. Everything happens
//! synchronously inside the write that triggered it, so a test sees the pods as soon as the
//! request that created the workload has returned.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::admission::PendingPod;
use crate::resources::ResourceType;
use crate::store::{Object, Part, State, core, owned_by, random_suffix};
use crate::time;

/// The node every pod runs on.
pub const NODE: &str = "testkube-node";
const NODE_IP: &str = "172.18.0.2";

pub fn ensure_node(state: &mut State) {
    let key = core("nodes");
    if state.get(&key, "", NODE).is_some() {
        return;
    }
    let rt = state.type_of(&key);
    let now = time::now();
    let node = json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": NODE,
            "labels": {
                "kubernetes.io/hostname": NODE,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "node-role.kubernetes.io/control-plane": "",
            },
        },
        "spec": { "podCIDR": "10.244.0.0/16" },
        "status": {
            "conditions": [{
                "type": "Ready", "status": "True", "reason": "KubeletReady",
                "message": "kubelet is posting ready status",
                "lastHeartbeatTime": now, "lastTransitionTime": now,
            }],
            "addresses": [
                { "type": "InternalIP", "address": NODE_IP },
                { "type": "Hostname", "address": NODE },
            ],
            "nodeInfo": {
                "kubeletVersion": format!("v{}.{}.0", state.server_version.0, state.server_version.1),
                "containerRuntimeVersion": "containerd://2.0.0",
                "operatingSystem": "linux",
                "architecture": "amd64",
            },
        },
    });
    let _ = state.create(&rt, "", node, false);
}

/// Gives a pod that has no status yet a node, an IP and a running, Ready status.
pub fn run_pod(state: &mut State, pod: &mut Value) {
    if pod.pointer("/status/phase").is_some() {
        return;
    }
    let id = state.next_id();
    let now = time::now();
    if pod.pointer("/spec/nodeName").is_none() {
        pod["spec"]["nodeName"] = json!(NODE);
    }
    if pod.pointer("/spec/restartPolicy").is_none() {
        pod["spec"]["restartPolicy"] = json!("Always");
    }
    if pod.pointer("/spec/serviceAccountName").is_none() {
        pod["spec"]["serviceAccountName"] = json!("default");
    }
    let completed = pod
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .is_some_and(|refs| refs.iter().any(|r| r["kind"] == "Job"));
    let ip = format!("10.244.{}.{}", (id >> 8) & 0xff, id & 0xff);
    let container_status = |c: &Value, init: bool| -> Value {
        let sidecar = init && c["restartPolicy"] == "Always";
        let (ready, started, state) = if (init && !sidecar) || completed {
            let done = json!({ "terminated": {
                "exitCode": 0, "reason": "Completed", "startedAt": now, "finishedAt": now,
                "containerID": format!("containerd://{id:064x}"),
            }});
            (init && !completed, false, done)
        } else {
            (true, true, json!({ "running": { "startedAt": now } }))
        };
        let image = c["image"].as_str().unwrap_or("unknown");
        json!({
            "name": c["name"],
            "image": image,
            "imageID": format!("{image}@sha256:{id:064x}"),
            "containerID": format!("containerd://{id:064x}"),
            "ready": ready,
            "started": started,
            "restartCount": 0,
            "state": state,
        })
    };
    let statuses = |field: &str, init: bool| -> Vec<Value> {
        pod.pointer(&format!("/spec/{field}"))
            .and_then(Value::as_array)
            .map(|cs| cs.iter().map(|c| container_status(c, init)).collect())
            .unwrap_or_default()
    };
    let containers = statuses("containers", false);
    let inits = statuses("initContainers", true);
    let (phase, ready, reason) = if completed {
        ("Succeeded", "False", Some("PodCompleted"))
    } else {
        ("Running", "True", None)
    };
    let condition = |t: &str, status: &str| {
        let mut c = json!({ "type": t, "status": status, "lastTransitionTime": now });
        if let (Some(reason), "False") = (reason, status) {
            c["reason"] = json!(reason);
        }
        c
    };
    let mut status = json!({
        "phase": phase,
        "conditions": [
            condition("PodReadyToStartContainers", ready),
            condition("Initialized", "True"),
            condition("Ready", ready),
            condition("ContainersReady", ready),
            condition("PodScheduled", "True"),
        ],
        "hostIP": NODE_IP,
        "hostIPs": [{ "ip": NODE_IP }],
        "podIP": ip,
        "podIPs": [{ "ip": ip }],
        "startTime": now,
        "qosClass": "BestEffort",
        "containerStatuses": containers,
    });
    if !inits.is_empty() {
        status["initContainerStatuses"] = json!(inits);
    }
    pod["status"] = status;
}

/// Brings every workload's pods and status in line with its spec.
pub fn reconcile(state: &mut State) {
    state.reconciling = true;
    // Each pass can create objects the next pass must look at (Deployment, then ReplicaSet).
    for _ in 0..4 {
        let mut changed = false;
        for (group, plural, sync) in SYNCS {
            let key = (group.to_string(), plural.to_string());
            let Some(rt) = state.registry.by_key(&key).cloned() else {
                continue;
            };
            for obj in state.list(&key, None) {
                changed |= sync(state, &rt, &obj);
            }
        }
        if !changed {
            break;
        }
    }
    state.reconciling = false;
}

type Sync = fn(&mut State, &ResourceType, &Arc<Object>) -> bool;

const SYNCS: [(&str, &str, Sync); 5] = [
    ("apps", "deployments", sync_deployment),
    ("apps", "replicasets", sync_replicaset),
    ("apps", "statefulsets", sync_statefulset),
    ("apps", "daemonsets", sync_daemonset),
    ("batch", "jobs", sync_job),
];

fn sync_deployment(state: &mut State, rt: &ResourceType, deploy: &Arc<Object>) -> bool {
    let ns = deploy.namespace().to_string();
    let replicas = deploy
        .value
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    let template = deploy
        .value
        .pointer("/spec/template")
        .cloned()
        .unwrap_or(json!({}));
    let hash = template_hash(&template);
    let rs_name = format!("{}-{hash}", deploy.name());
    let rs_key = ("apps".to_string(), "replicasets".to_string());
    let Some(rs_type) = state.registry.by_key(&rs_key).cloned() else {
        return false;
    };
    let mut changed = false;
    let owned: Vec<Arc<Object>> = state
        .list(&rs_key, Some(&ns))
        .into_iter()
        .filter(|rs| owned_by(&rs.value, deploy.uid()))
        .collect();
    for rs in &owned {
        let want = if rs.name() == rs_name { replicas } else { 0 };
        if rs.value.pointer("/spec/replicas").and_then(Value::as_i64) != Some(want) {
            let mut next = rs.value.clone();
            next["spec"]["replicas"] = json!(want);
            changed |= state
                .update(&rs_type, &ns, rs.name(), next, Part::Main, false)
                .is_ok();
        }
    }
    if !owned.iter().any(|rs| rs.name() == rs_name) {
        let mut template = template;
        template["metadata"]["labels"]["pod-template-hash"] = json!(hash);
        let mut selector = deploy
            .value
            .pointer("/spec/selector")
            .cloned()
            .unwrap_or(json!({}));
        selector["matchLabels"]["pod-template-hash"] = json!(hash);
        let mut labels = template["metadata"]["labels"].clone();
        labels["pod-template-hash"] = json!(hash);
        let rs = json!({
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": rs_name,
                "namespace": ns,
                "labels": labels,
                "annotations": { "deployment.kubernetes.io/revision": "1" },
                "ownerReferences": [owner_ref(rt, deploy)],
            },
            "spec": { "replicas": replicas, "selector": selector, "template": template },
        });
        changed |= state.create(&rs_type, &ns, rs, false).is_ok();
    }
    let current = state.get(&rs_key, &ns, &rs_name);
    let count = |field: &str| {
        current
            .as_ref()
            .and_then(|rs| rs.value.pointer(&format!("/status/{field}")))
            .and_then(Value::as_i64)
            .unwrap_or(0)
    };
    let ready = count("readyReplicas");
    let now = time::now();
    let available = if ready >= replicas { "True" } else { "False" };
    let status = json!({
        "observedGeneration": deploy.value.pointer("/metadata/generation").cloned().unwrap_or(json!(1)),
        "replicas": count("replicas"),
        "updatedReplicas": count("replicas"),
        "readyReplicas": ready,
        "availableReplicas": ready,
        "unavailableReplicas": (replicas - ready).max(0),
        "conditions": [
            { "type": "Available", "status": available, "reason": "MinimumReplicasAvailable",
              "message": "Deployment has minimum availability.", "lastUpdateTime": now, "lastTransitionTime": now },
            { "type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable",
              "message": format!("ReplicaSet \"{rs_name}\" has successfully progressed."),
              "lastUpdateTime": now, "lastTransitionTime": now },
        ],
    });
    changed | set_status(state, rt, deploy, status)
}

fn sync_replicaset(state: &mut State, rt: &ResourceType, rs: &Arc<Object>) -> bool {
    let replicas = rs
        .value
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    let mut changed = false;
    let pods = owned_pods(state, rs);
    let pending = pending_for(state, rs).len();
    if ((pods.len() + pending) as i64) < replicas {
        for _ in (pods.len() + pending) as i64..replicas {
            changed |= create_pod(state, rt, rs, &generated(rs), json!({}), None);
        }
    } else {
        changed |= delete_pods(state, pods.iter().skip(replicas.max(0) as usize));
    }
    let pods = owned_pods(state, rs);
    let ready = pods.iter().filter(|p| is_ready(p)).count();
    let status = json!({
        "observedGeneration": rs.value.pointer("/metadata/generation").cloned().unwrap_or(json!(1)),
        "replicas": pods.len(),
        "fullyLabeledReplicas": pods.len(),
        "readyReplicas": ready,
        "availableReplicas": ready,
    });
    changed | set_status(state, rt, rs, status)
}

fn sync_statefulset(state: &mut State, rt: &ResourceType, sts: &Arc<Object>) -> bool {
    let replicas = sts
        .value
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1)
        .max(0);
    let template = sts
        .value
        .pointer("/spec/template")
        .cloned()
        .unwrap_or(json!({}));
    let revision = format!("{}-{}", sts.name(), template_hash(&template));
    let mut changed = false;
    let pods = owned_pods(state, sts);
    let stale = pods.iter().filter(|p| {
        let ordinal = p
            .name()
            .rsplit('-')
            .next()
            .and_then(|n| n.parse::<i64>().ok());
        ordinal.is_none_or(|o| o >= replicas)
            || p.value
                .pointer("/metadata/labels/controller-revision-hash")
                .and_then(Value::as_str)
                != Some(revision.as_str())
    });
    changed |= delete_pods(state, stale);
    for i in 0..replicas {
        let name = format!("{}-{i}", sts.name());
        let queued = pending_for(state, sts)
            .iter()
            .any(|p| p.pod["metadata"]["name"] == json!(name));
        if state.get(&core("pods"), sts.namespace(), &name).is_none() && !queued {
            let labels = json!({
                "controller-revision-hash": revision,
                "statefulset.kubernetes.io/pod-name": name,
                "apps.kubernetes.io/pod-index": i.to_string(),
            });
            changed |= create_pod(state, rt, sts, &PodName::Fixed(name), labels, None);
        }
    }
    let pods = owned_pods(state, sts);
    let ready = pods.iter().filter(|p| is_ready(p)).count();
    let status = json!({
        "observedGeneration": sts.value.pointer("/metadata/generation").cloned().unwrap_or(json!(1)),
        "replicas": pods.len(),
        "readyReplicas": ready,
        "currentReplicas": pods.len(),
        "updatedReplicas": pods.len(),
        "availableReplicas": ready,
        "currentRevision": revision,
        "updateRevision": revision,
        "collisionCount": 0,
    });
    changed | set_status(state, rt, sts, status)
}

fn sync_daemonset(state: &mut State, rt: &ResourceType, ds: &Arc<Object>) -> bool {
    let template = ds
        .value
        .pointer("/spec/template")
        .cloned()
        .unwrap_or(json!({}));
    let hash = template_hash(&template);
    let mut changed = false;
    let pods = owned_pods(state, ds);
    let stale = pods.iter().filter(|p| {
        p.value
            .pointer("/metadata/labels/controller-revision-hash")
            .and_then(Value::as_str)
            != Some(hash.as_str())
    });
    changed |= delete_pods(state, stale);
    let nodes: Vec<String> = state
        .list(&core("nodes"), None)
        .iter()
        .map(|n| n.name().to_string())
        .collect();
    for node in &nodes {
        let pods = owned_pods(state, ds);
        let on_node = |pod: &Value| pod.pointer("/spec/nodeName") == Some(&json!(node));
        if !pods.iter().any(|p| on_node(&p.value))
            && !pending_for(state, ds).iter().any(|p| on_node(&p.pod))
        {
            let labels =
                json!({ "controller-revision-hash": hash, "pod-template-generation": "1" });
            changed |= create_pod(state, rt, ds, &generated(ds), labels, Some(node));
        }
    }
    let pods = owned_pods(state, ds);
    let ready = pods.iter().filter(|p| is_ready(p)).count();
    let status = json!({
        "observedGeneration": ds.value.pointer("/metadata/generation").cloned().unwrap_or(json!(1)),
        "desiredNumberScheduled": nodes.len(),
        "currentNumberScheduled": pods.len(),
        "updatedNumberScheduled": pods.len(),
        "numberReady": ready,
        "numberAvailable": ready,
        "numberMisscheduled": 0,
    });
    changed | set_status(state, rt, ds, status)
}

fn sync_job(state: &mut State, rt: &ResourceType, job: &Arc<Object>) -> bool {
    let completions = job
        .value
        .pointer("/spec/completions")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    let mut changed = false;
    let pods = owned_pods(state, job);
    if pods.is_empty() && pending_for(state, job).is_empty() {
        for _ in 0..completions.max(0) {
            let name = generated(job);
            let labels = json!({
                "batch.kubernetes.io/job-name": job.name(),
                "job-name": job.name(),
                "batch.kubernetes.io/controller-uid": job.uid(),
                "controller-uid": job.uid(),
            });
            changed |= create_pod(state, rt, job, &name, labels, None);
        }
    }
    if job.value.pointer("/status/completionTime").is_some() {
        return changed;
    }
    let now = time::now();
    let status = json!({
        "startTime": now,
        "completionTime": now,
        "succeeded": owned_pods(state, job).len(),
        "ready": 0,
        "terminating": 0,
        "uncountedTerminatedPods": {},
        "conditions": [
            { "type": "SuccessCriteriaMet", "status": "True", "lastProbeTime": now, "lastTransitionTime": now },
            { "type": "Complete", "status": "True", "lastProbeTime": now, "lastTransitionTime": now },
        ],
    });
    changed | set_status(state, rt, job, status)
}

fn owner_ref(rt: &ResourceType, owner: &Arc<Object>) -> Value {
    json!({
        "apiVersion": rt.api_version(rt.preferred_version()),
        "kind": rt.kind,
        "name": owner.name(),
        "uid": owner.uid(),
        "controller": true,
        "blockOwnerDeletion": true,
    })
}

fn owned_pods(state: &State, owner: &Arc<Object>) -> Vec<Arc<Object>> {
    state
        .list(&core("pods"), Some(owner.namespace()))
        .into_iter()
        .filter(|p| owned_by(&p.value, owner.uid()))
        .collect()
}

/// How a controller names its pods: `generateName: <owner>-`, as the API server then names
/// them (after admission, which sees no name).
fn generated(owner: &Object) -> PodName {
    PodName::Generate(format!("{}-", owner.name()))
}

/// A fixed pod name (StatefulSets) or a prefix for the server to complete.
enum PodName {
    Fixed(String),
    Generate(String),
}

fn pending_for(state: &State, owner: &Object) -> Vec<PendingPod> {
    state
        .pending_pods
        .iter()
        .filter(|p| p.owner_uid == owner.uid())
        .cloned()
        .collect()
}

/// Creates a pod for `owner`; when webhook configurations exist it is queued for admission
/// instead, and appears once the webhooks have answered.
fn create_pod(
    state: &mut State,
    rt: &ResourceType,
    owner: &Arc<Object>,
    name: &PodName,
    extra_labels: Value,
    node: Option<&str>,
) -> bool {
    let template = owner
        .value
        .pointer("/spec/template")
        .cloned()
        .unwrap_or(json!({}));
    let template = if rt.kind == "CronJob" {
        owner
            .value
            .pointer("/spec/jobTemplate/spec/template")
            .cloned()
            .unwrap_or(template)
    } else {
        template
    };
    let mut meta = template.get("metadata").cloned().unwrap_or(json!({}));
    if !meta["labels"].is_object() {
        meta["labels"] = json!({});
    }
    if let Value::Object(extra) = extra_labels {
        for (k, v) in extra {
            meta["labels"][k] = v;
        }
    }
    match name {
        PodName::Fixed(name) => meta["name"] = json!(name),
        PodName::Generate(prefix) => meta["generateName"] = json!(prefix),
    }
    meta["namespace"] = json!(owner.namespace());
    meta["ownerReferences"] = json!([owner_ref(rt, owner)]);
    let mut spec = template.get("spec").cloned().unwrap_or(json!({}));
    if let Some(node) = node {
        spec["nodeName"] = json!(node);
    }
    let pod = json!({ "apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec });
    if crate::admission::has_configurations(state) {
        let id = state.next_id();
        state.pending_pods.push(PendingPod {
            id,
            owner_key: rt.key(),
            owner_kind: rt.kind.clone(),
            owner_api_version: rt.api_version(rt.preferred_version()),
            owner_name: owner.name().to_string(),
            owner_uid: owner.uid().to_string(),
            namespace: owner.namespace().to_string(),
            pod,
        });
        state.pod_work.notify_one();
        return false;
    }
    let pods = state.type_of(&core("pods"));
    state.create(&pods, owner.namespace(), pod, false).is_ok()
}

fn delete_pods<'a>(state: &mut State, pods: impl Iterator<Item = &'a Arc<Object>>) -> bool {
    let rt = state.type_of(&core("pods"));
    let mut changed = false;
    for pod in pods {
        changed |= state
            .delete(&rt, pod.namespace(), pod.name(), false)
            .is_ok();
    }
    changed
}

fn set_status(state: &mut State, rt: &ResourceType, obj: &Arc<Object>, status: Value) -> bool {
    let Some(current) = state.get(&rt.key(), obj.namespace(), obj.name()) else {
        return false;
    };
    if same_ignoring_times(current.value.get("status"), &status) {
        return false;
    }
    let mut next = current.value.clone();
    next["status"] = status;
    if let Some(m) = next.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("resourceVersion");
    }
    state
        .update(rt, obj.namespace(), obj.name(), next, Part::Status, false)
        .is_ok()
}

/// Compares statuses without the timestamps, so an unchanged status is not rewritten every second.
fn same_ignoring_times(old: Option<&Value>, new: &Value) -> bool {
    fn strip(v: &Value) -> Value {
        match v {
            Value::Object(m) => Value::Object(
                m.iter()
                    .filter(|(k, _)| !k.ends_with("Time"))
                    .map(|(k, v)| (k.clone(), strip(v)))
                    .collect(),
            ),
            Value::Array(a) => Value::Array(a.iter().map(strip).collect()),
            other => other.clone(),
        }
    }
    old.is_some_and(|old| strip(old) == strip(new))
}

pub fn is_ready(pod: &Object) -> bool {
    pod.value
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
}

/// A stable 10-character hash of a pod template, like `pod-template-hash`.
fn template_hash(template: &Value) -> String {
    let text = serde_json::to_string(template).unwrap_or_default();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{}{}", random_suffix(h), random_suffix(h.rotate_left(32)))
}
