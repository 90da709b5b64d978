//! The names `mesh install` gives the control plane's objects, which `check`, `inject` and the
//! controller look up.

/// The ConfigMap holding the effective install values, under [`CONFIG_VALUES_KEY`].
pub const CONFIG: &str = "linkerd-config";
/// The key of [`CONFIG`] whose YAML the injector builds sidecars from and `mesh upgrade` starts from.
pub const CONFIG_VALUES_KEY: &str = "values";
/// The ConfigMap holding the trust anchors, under [`TRUST_ROOTS_KEY`].
pub const TRUST_ROOTS: &str = "linkerd-identity-trust-roots";
pub const TRUST_ROOTS_KEY: &str = "ca-bundle.crt";
/// The Secret holding the identity issuer's certificate and key.
pub const ISSUER_SECRET: &str = "linkerd-identity-issuer";
/// The Secret holding the proxy injector webhook's serving certificate.
pub const INJECTOR_TLS_SECRET: &str = "linkerd-proxy-injector-k8s-tls";
/// The MutatingWebhookConfiguration that sends pod creations to the injector.
pub const INJECTOR_WEBHOOK: &str = "linkerd-proxy-injector-webhook-config";

/// The control plane's components: each is a Deployment, its ServiceAccount and a Service.
pub const DESTINATION: &str = "linkerd-destination";
/// The `linkerd.io/control-plane-component` label of the destination pods.
pub const DESTINATION_COMPONENT: &str = "destination";
/// The destination controller's admin path answering `?authority=NAME:PORT` with what a `Get`
/// for it starts with, as JSON (`mesh diagnostics endpoints` reads it).
pub const ENDPOINTS_LOOKUP_PATH: &str = "/endpoints";
pub const IDENTITY: &str = "linkerd-identity";
pub const PROXY_INJECTOR: &str = "linkerd-proxy-injector";
pub const COMPONENTS: [&str; 3] = [DESTINATION, IDENTITY, PROXY_INJECTOR];

/// Services the proxies dial: destination (headless), policy and identity (headless).
pub const DESTINATION_HEADLESS_SERVICE: &str = "linkerd-dst-headless";
pub const POLICY_SERVICE: &str = "linkerd-policy";
pub const IDENTITY_HEADLESS_SERVICE: &str = "linkerd-identity-headless";

/// The CRDs `mesh install --crds` creates and the control plane needs.
pub const CRDS: [&str; 7] = [
    "serviceprofiles.linkerd.io",
    "servers.policy.linkerd.io",
    "httproutes.policy.linkerd.io",
    "authorizationpolicies.policy.linkerd.io",
    "meshtlsauthentications.policy.linkerd.io",
    "networkauthentications.policy.linkerd.io",
    "serverauthorizations.policy.linkerd.io",
];

/// The cluster-wide ClusterRoles (and bindings) of each component, for a control plane in `ns`.
pub fn cluster_roles(ns: &str) -> Vec<String> {
    ["destination", "identity", "proxy-injector"]
        .iter()
        .map(|c| format!("linkerd-{ns}-{c}"))
        .collect()
}

/// The name the API server verifies a webhook Service's certificate against: `<svc>.<ns>.svc`.
pub fn service_server_name(service: &str, ns: &str) -> String {
    format!("{service}.{ns}.svc")
}
