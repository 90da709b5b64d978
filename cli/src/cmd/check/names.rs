//! The names `mesh install` gives the control plane's objects (Linkerd's names), in one place.

/// The ConfigMap holding the effective install values.
pub const CONFIG: &str = "linkerd-config";
/// The ConfigMap holding the trust anchors, under [`TRUST_ROOTS_KEY`].
pub const TRUST_ROOTS: &str = "linkerd-identity-trust-roots";
pub const TRUST_ROOTS_KEY: &str = "ca-bundle.crt";
/// The Secret holding the identity issuer's certificate and key.
pub const ISSUER_SECRET: &str = "linkerd-identity-issuer";
/// The Secret holding the proxy injector webhook's serving certificate.
pub const INJECTOR_TLS_SECRET: &str = "linkerd-proxy-injector-k8s-tls";
pub const INJECTOR_WEBHOOK: &str = "linkerd-proxy-injector-webhook-config";

/// The control plane's Deployments, which are also its ServiceAccounts' names.
pub const COMPONENTS: [&str; 3] = [
    "linkerd-destination",
    "linkerd-identity",
    "linkerd-proxy-injector",
];

/// The label on cluster-scoped control plane objects, whose value is the control plane namespace.
pub const CONTROL_PLANE_NS_LABEL: &str = "linkerd.io/control-plane-ns";

/// The CRDs `mesh install --crds` creates and the control plane needs.
pub const CRDS: [&str; 4] = [
    "serviceprofiles.linkerd.io",
    "servers.policy.linkerd.io",
    "httproutes.policy.linkerd.io",
    "authorizationpolicies.policy.linkerd.io",
];

pub const PROXY_CONTAINER: &str = "linkerd-proxy";
pub const PROXY_VERSION_ANNOTATION: &str = "linkerd.io/proxy-version";
pub const INJECT_ANNOTATION: &str = "linkerd.io/inject";

/// The cluster-wide ClusterRoles (and bindings) each component needs, for a control plane in `ns`.
pub fn cluster_roles(ns: &str) -> Vec<String> {
    ["destination", "identity", "proxy-injector"]
        .iter()
        .map(|c| format!("linkerd-{ns}-{c}"))
        .collect()
}

/// One permission `mesh install` needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Access {
    pub verb: &'static str,
    pub group: &'static str,
    pub resource: &'static str,
    /// Asked in the control plane namespace rather than cluster-wide.
    pub namespaced: bool,
    /// How the check names it.
    pub what: &'static str,
}

const fn access(
    verb: &'static str,
    group: &'static str,
    resource: &'static str,
    namespaced: bool,
    what: &'static str,
) -> Access {
    Access {
        verb,
        group,
        resource,
        namespaced,
        what,
    }
}

/// Every kind `mesh install` creates, and reading Secrets, which the identity service does.
pub const INSTALL_ACCESS: [Access; 12] = [
    access("create", "", "namespaces", false, "Namespaces"),
    access(
        "create",
        "rbac.authorization.k8s.io",
        "clusterroles",
        false,
        "ClusterRoles",
    ),
    access(
        "create",
        "rbac.authorization.k8s.io",
        "clusterrolebindings",
        false,
        "ClusterRoleBindings",
    ),
    access(
        "create",
        "apiextensions.k8s.io",
        "customresourcedefinitions",
        false,
        "CustomResourceDefinitions",
    ),
    access(
        "create",
        "admissionregistration.k8s.io",
        "mutatingwebhookconfigurations",
        false,
        "MutatingWebhookConfigurations",
    ),
    access("create", "", "serviceaccounts", true, "ServiceAccounts"),
    access("create", "", "services", true, "Services"),
    access("create", "apps", "deployments", true, "Deployments"),
    access("create", "", "configmaps", true, "ConfigMaps"),
    access("create", "", "secrets", true, "Secrets"),
    access(
        "create",
        "policy",
        "poddisruptionbudgets",
        true,
        "PodDisruptionBudgets",
    ),
    access("get", "", "secrets", true, "read Secrets"),
];
