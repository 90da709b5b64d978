//! Facts about one pod's proxy: where it sits, whether it is ready, which version it runs.

use k8s_openapi::api::core::v1::{Container, Namespace, Pod};

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

/// The workload that created the pod, as `kubectl rollout restart` names it, e.g.
/// `deployment/web`; `None` for a bare pod or a Job's pod, which cannot be restarted.
pub fn workload(pod: &Pod) -> Option<String> {
    let owner = pod
        .metadata
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true))?;
    match owner.kind.as_str() {
        "ReplicaSet" => {
            let hash = pod
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get("pod-template-hash"));
            match hash.and_then(|h| owner.name.strip_suffix(&format!("-{h}"))) {
                Some(deployment) => Some(format!("deployment/{deployment}")),
                None => Some(format!("replicaset/{}", owner.name)),
            }
        }
        "StatefulSet" => Some(format!("statefulset/{}", owner.name)),
        "DaemonSet" => Some(format!("daemonset/{}", owner.name)),
        _ => None,
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
