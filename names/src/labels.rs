//! Label keys mesh writes on pods and on its own objects, and reads back.

/// The control plane namespace: on injected pods and on the control plane's cluster-scoped objects.
pub const CONTROL_PLANE_NS: &str = "linkerd.io/control-plane-ns";
/// The namespace of the workload an injected pod belongs to.
pub const WORKLOAD_NS: &str = "linkerd.io/workload-ns";
/// Marks the mesh's own control-plane pods, which only manual injection may touch.
pub const CONTROL_PLANE_COMPONENT: &str = "linkerd.io/control-plane-component";
/// `disabled` on a namespace or pod keeps the injector webhook from being called for it.
pub const ADMISSION_WEBHOOKS: &str = "config.linkerd.io/admission-webhooks";

/// The prefix of the label naming an injected pod's workload, e.g. `linkerd.io/proxy-deployment`.
pub const WORKLOAD_PREFIX: &str = "linkerd.io/proxy-";
/// The workload kinds (lowercase) that get a [`workload`] label.
pub const WORKLOAD_KINDS: &[&str] = &[
    "deployment",
    "statefulset",
    "daemonset",
    "replicaset",
    "replicationcontroller",
    "job",
    "cronjob",
];

/// The label naming an injected pod's workload of `kind` (as Kubernetes spells it, e.g.
/// `Deployment`): `linkerd.io/proxy-deployment`.
pub fn workload(kind: &str) -> String {
    format!("{WORKLOAD_PREFIX}{}", kind.to_ascii_lowercase())
}

/// Whether `label` is one injection adds.
pub fn is_injected(label: &str) -> bool {
    label == CONTROL_PLANE_NS
        || label == WORKLOAD_NS
        || label
            .strip_prefix(WORKLOAD_PREFIX)
            .is_some_and(|kind| WORKLOAD_KINDS.contains(&kind))
}

#[cfg(test)]
mod tests {
    #[test]
    fn workload_labels_are_injected_labels() {
        assert_eq!(super::workload("Deployment"), "linkerd.io/proxy-deployment");
        for kind in super::WORKLOAD_KINDS {
            assert!(super::is_injected(&super::workload(kind)), "{kind}");
        }
        assert!(!super::is_injected("linkerd.io/proxy-pod"));
        assert!(!super::is_injected(super::CONTROL_PLANE_COMPONENT));
    }
}
