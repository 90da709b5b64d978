//! Annotation keys (and their values) mesh reads and writes on workloads, pods and namespaces.

/// Turns injection on (`enabled`, `ingress`) or off (`disabled`) for a workload or namespace.
pub const INJECT: &str = "linkerd.io/inject";
/// Values of [`INJECT`].
pub const ENABLED: &str = "enabled";
pub const DISABLED: &str = "disabled";
pub const INGRESS: &str = "ingress";

/// Written by injection: who injected the pod, the proxy's version and the trust anchors' digest.
pub const CREATED_BY: &str = "linkerd.io/created-by";
pub const PROXY_VERSION: &str = "linkerd.io/proxy-version";
pub const TRUST_ROOT_SHA256: &str = "linkerd.io/trust-root-sha256";
/// Annotations injection adds. `config.linkerd.io/*` settings are the user's and stay.
pub const INJECTED: &[&str] = &[CREATED_BY, PROXY_VERSION, TRUST_ROOT_SHA256];

/// The prefix of every proxy configuration annotation.
pub const CONFIG_PREFIX: &str = "config.linkerd.io/";
/// Ports (or ranges, or named container ports) whose traffic is opaque TCP, on a pod, a service
/// or a namespace.
pub const OPAQUE_PORTS: &str = "config.linkerd.io/opaque-ports";
/// Inbound ports the proxy does not intercept.
pub const SKIP_INBOUND_PORTS: &str = "config.linkerd.io/skip-inbound-ports";

/// Proxy configuration annotations that are not written from `mesh inject` flags.
pub mod config {
    pub const PROXY_IMAGE: &str = "config.linkerd.io/proxy-image";
    pub const PROXY_VERSION: &str = "config.linkerd.io/proxy-version";
    pub const PULL_POLICY: &str = "config.linkerd.io/image-pull-policy";
    pub const CONTROL_PORT: &str = "config.linkerd.io/control-port";
    pub const INBOUND_PORT: &str = "config.linkerd.io/inbound-port";
    pub const OUTBOUND_PORT: &str = "config.linkerd.io/outbound-port";
    pub const PROXY_UID: &str = "config.linkerd.io/proxy-uid";
    pub const LOG_FORMAT: &str = "config.linkerd.io/proxy-log-format";
    pub const SKIP_SUBNETS: &str = "config.linkerd.io/skip-subnets";
    pub const INBOUND_CONNECT_TIMEOUT: &str = "config.linkerd.io/proxy-inbound-connect-timeout";
    pub const OUTBOUND_CONNECT_TIMEOUT: &str = "config.linkerd.io/proxy-outbound-connect-timeout";
    pub const SHUTDOWN_GRACE_PERIOD: &str = "config.linkerd.io/shutdown-grace-period";
    pub const NATIVE_SIDECAR: &str = "config.beta.linkerd.io/proxy-enable-native-sidecar";
}
