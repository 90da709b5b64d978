//! Facts about one pod's proxy: where it sits, whether it is ready, which version it runs.

use k8s_openapi::api::core::v1::{Container, ContainerStatus, Namespace, Pod};

use mesh_names::annotations::{self, DISABLED, ENABLED, INGRESS, INJECT};
use mesh_names::containers::PROXY as PROXY_CONTAINER;
use mesh_names::labels::ADMISSION_WEBHOOKS;

/// `namespace/name`.
pub fn id(pod: &Pod) -> String {
    format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or(""),
        pod.metadata.name.as_deref().unwrap_or("")
    )
}

/// The proxy container: a native sidecar in `initContainers`, or a regular container.
pub fn proxy(pod: &Pod) -> Option<&Container> {
    let spec = pod.spec.as_ref()?;
    let sidecar = spec
        .init_containers
        .iter()
        .flatten()
        .find(|c| c.name == PROXY_CONTAINER && c.restart_policy.as_deref() == Some("Always"));
    sidecar.or_else(|| spec.containers.iter().find(|c| c.name == PROXY_CONTAINER))
}

/// Whether the proxy container reports Ready.
pub fn proxy_ready(pod: &Pod) -> bool {
    let Some(status) = pod.status.as_ref() else {
        return false;
    };
    status
        .init_container_statuses
        .iter()
        .flatten()
        .chain(status.container_statuses.iter().flatten())
        .any(|c| c.name == PROXY_CONTAINER && c.ready)
}

/// The pod's phase, `Unknown` when it has none.
pub fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("Unknown")
}

/// Whether the pod is Running and Ready.
pub fn ready(pod: &Pod) -> bool {
    let Some(status) = pod.status.as_ref() else {
        return false;
    };
    status.phase.as_deref() == Some("Running")
        && status
            .conditions
            .iter()
            .flatten()
            .any(|c| c.type_ == "Ready" && c.status == "True")
}

/// Why a pod is not running and ready, one cause per entry: each container that waits, has
/// stopped or is not ready, with the kubelet's reason and message (`ImagePullBackOff`,
/// `CrashLoopBackOff`); for a pod with no containers started, its unmet conditions
/// (`Unschedulable`); at least its phase.
pub fn not_ready_reasons(pod: &Pod) -> Vec<String> {
    let Some(status) = pod.status.as_ref() else {
        return vec!["the pod has no status yet".to_string()];
    };
    let inits = status.init_container_statuses.iter().flatten();
    let mains = status.container_statuses.iter().flatten();
    let mut reasons: Vec<String> = inits
        .map(|c| (c, true))
        .chain(mains.map(|c| (c, false)))
        .filter_map(|(c, init)| container_problem(c, init))
        .collect();
    if reasons.is_empty() {
        reasons.extend(
            status
                .conditions
                .iter()
                .flatten()
                .filter(|c| c.status == "False" && (c.reason.is_some() || c.message.is_some()))
                .map(|c| {
                    let reason = c.reason.as_deref().map(|r| format!(": {r}"));
                    let message = message(c.message.as_deref());
                    format!(
                        "{} is False{}{message}",
                        c.type_,
                        reason.unwrap_or_default()
                    )
                }),
        );
    }
    if reasons.is_empty() {
        reasons.push(format!("the pod is {}", phase(pod)));
    }
    reasons
}

/// Why the proxy container is not running and ready, if it is not.
pub fn proxy_problem(pod: &Pod) -> Option<String> {
    let status = pod.status.as_ref()?;
    let inits = status.init_container_statuses.iter().flatten();
    let mains = status.container_statuses.iter().flatten();
    let found = inits
        .map(|c| (c, true))
        .chain(mains.map(|c| (c, false)))
        .find(|(c, _)| c.name == PROXY_CONTAINER);
    match found {
        Some((c, init)) => container_problem(c, init),
        None => Some(format!("container {PROXY_CONTAINER} has not started")),
    }
}

/// What is wrong with one container, from its status; `None` when it is ready, or is an init
/// container that finished its work.
fn container_problem(c: &ContainerStatus, init: bool) -> Option<String> {
    if c.ready {
        return None;
    }
    let state = c.state.as_ref();
    let last_exit = c
        .last_state
        .as_ref()
        .and_then(|s| s.terminated.as_ref())
        .map(|t| {
            let reason = t.reason.as_deref().unwrap_or("Error");
            format!(" (last exit code {}: {reason})", t.exit_code)
        })
        .unwrap_or_default();
    let name = &c.name;
    Some(
        if let Some(waiting) = state.and_then(|s| s.waiting.as_ref()) {
            let reason = waiting.reason.as_deref().unwrap_or("Waiting");
            let message = message(waiting.message.as_deref());
            format!("container {name} is waiting: {reason}{message}{last_exit}")
        } else if let Some(done) = state.and_then(|s| s.terminated.as_ref()) {
            if init && done.exit_code == 0 {
                return None;
            }
            let reason = done.reason.as_deref().unwrap_or("Terminated");
            let message = message(done.message.as_deref());
            format!(
                "container {name} terminated: {reason} (exit code {}){message}",
                done.exit_code
            )
        } else if state.is_some_and(|s| s.running.is_some()) {
            format!("container {name} is running but not ready{last_exit}")
        } else {
            format!("container {name} has not started")
        },
    )
}

/// `: <first line of message>`, shortened, or nothing.
fn message(text: Option<&str>) -> String {
    const MAX: usize = 200;
    let Some(line) = text.and_then(|t| t.lines().map(str::trim).find(|l| !l.is_empty())) else {
        return String::new();
    };
    if line.len() <= MAX {
        return format!(": {line}");
    }
    let mut end = MAX;
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    format!(": {}…", &line[..end])
}

/// Succeeded, Failed, or every container has exited: nothing to check any more.
pub fn finished(pod: &Pod) -> bool {
    let Some(status) = pod.status.as_ref() else {
        return false;
    };
    if matches!(status.phase.as_deref(), Some("Succeeded" | "Failed")) {
        return true;
    }
    let containers = status.container_statuses.as_deref().unwrap_or_default();
    !containers.is_empty()
        && containers
            .iter()
            .all(|c| c.state.as_ref().is_some_and(|s| s.terminated.is_some()))
}

/// The version the proxy reports through its annotation, or else its image tag.
pub fn proxy_version(pod: &Pod) -> Option<String> {
    let annotated = pod
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(annotations::PROXY_VERSION))
        .filter(|v| !v.is_empty())
        .cloned();
    annotated.or_else(|| {
        let image = proxy(pod)?.image.as_deref()?;
        let tag = image.rsplit_once(':')?.1;
        (!tag.contains('/')).then(|| tag.to_string())
    })
}

/// Why the pod should have a proxy, if it should: the `linkerd.io/inject` annotation on the pod
/// or its namespace, unless the injector would skip it anyway.
pub fn injection_reason(pod: &Pod, namespace: Option<&Namespace>) -> Option<&'static str> {
    let ns_name = pod.metadata.namespace.as_deref().unwrap_or("");
    if ns_name == "kube-system" {
        return None;
    }
    if pod.spec.as_ref().and_then(|s| s.host_network) == Some(true) {
        return None;
    }
    let webhooks_off = namespace
        .and_then(|ns| ns.metadata.labels.as_ref())
        .and_then(|l| l.get(ADMISSION_WEBHOOKS))
        .is_some_and(|v| v == DISABLED);
    if webhooks_off {
        return None;
    }
    let pod_says = pod
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(INJECT))
        .map(String::as_str);
    match pod_says {
        Some(ENABLED | INGRESS) => return Some("linkerd.io/inject on the pod"),
        Some(_) => return None,
        None => {}
    }
    let ns_says = namespace
        .and_then(|ns| ns.metadata.annotations.as_ref())
        .and_then(|a| a.get(INJECT))
        .map(String::as_str);
    match ns_says {
        Some(ENABLED | INGRESS) => Some("linkerd.io/inject on the namespace"),
        _ => None,
    }
}

/// How to get a pod recreated so that it picks up injection or a new proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recreate {
    /// `kubectl rollout restart` restarts its workload, named as kubectl names it, e.g.
    /// `deployment/web`. Only Deployments, StatefulSets and DaemonSets can be restarted.
    Restart(String),
    /// Its owner (a ReplicaSet no Deployment manages, a Job, ...) cannot be restarted but
    /// recreates the pod once it is deleted.
    Delete,
    /// Nothing manages the pod: it has to be deleted and created again by hand.
    ByHand,
}

/// How `pod` can be recreated. A Deployment's ReplicaSet is named `<deployment>-<hash>` and
/// labels its pods with that `pod-template-hash`; a ReplicaSet without one is its own owner.
pub fn recreate(pod: &Pod) -> Recreate {
    let Some(owner) = pod
        .metadata
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true))
    else {
        return Recreate::ByHand;
    };
    match owner.kind.as_str() {
        "ReplicaSet" => {
            let hash = pod
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get("pod-template-hash"));
            match hash.and_then(|h| owner.name.strip_suffix(&format!("-{h}"))) {
                Some(deployment) if !deployment.is_empty() => {
                    Recreate::Restart(format!("deployment/{deployment}"))
                }
                _ => Recreate::Delete,
            }
        }
        "StatefulSet" => Recreate::Restart(format!("statefulset/{}", owner.name)),
        "DaemonSet" => Recreate::Restart(format!("daemonset/{}", owner.name)),
        _ => Recreate::Delete,
    }
}

/// Compares dotted version numbers (`v1.2.3`, `stable-2.14.1`, `edge-24.1.2`): `Some(true)` when
/// `have` is older than `want`, `None` when either has no numbers to compare.
pub fn older(have: &str, want: &str) -> Option<bool> {
    let numbers = |v: &str| -> Option<Vec<u64>> {
        let start = v.find(|c: char| c.is_ascii_digit())?;
        let core = v[start..].split(['-', '+']).next()?;
        core.split('.').map(|n| n.parse().ok()).collect()
    };
    Some(numbers(have)? < numbers(want)?)
}

/// Strips a leading `v`, so `v0.1.0` and `0.1.0` compare equal.
pub fn same_version(a: &str, b: &str) -> bool {
    a.trim_start_matches('v') == b.trim_start_matches('v')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_numerically() {
        assert_eq!(older("v0.1.0", "0.2.0"), Some(true));
        assert_eq!(older("0.10.0", "0.9.9"), Some(false));
        assert_eq!(older("stable-2.14.1", "stable-2.14.10"), Some(true));
        assert_eq!(older("dev", "0.1.0"), None);
        assert!(same_version("v0.1.0", "0.1.0"));
    }
}
