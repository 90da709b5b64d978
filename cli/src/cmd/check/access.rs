//! The permissions `mesh install` needs, which `check --pre` asks the API server about.

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
