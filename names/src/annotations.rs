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
/// The inbound policy of a pod's ports that no `Server` selects (a
/// [`crate::policy::DefaultInboundPolicy`]), overriding the cluster's default.
pub const DEFAULT_INBOUND_POLICY: &str = "config.linkerd.io/default-inbound-policy";
/// Inbound ports (or ranges) on which a pod's default policy admits only mTLS-authenticated
/// clients; the injector passes them to the proxy in
/// [`crate::env::INBOUND_PORTS_REQUIRE_IDENTITY`], and the controller reads them from the pod.
pub const REQUIRE_IDENTITY_INBOUND_PORTS: &str =
    "config.linkerd.io/proxy-require-identity-inbound-ports";

/// Turns the proxy's tap stream (`GET /tap` on the admin port, read by `mesh tap` and `mesh top`)
/// on (`"true"`) or off (`"false"`), on a pod or a namespace. mesh's own key, written by
/// `mesh inject --enable-tap`: tap is off unless asked for, because nothing authorizes its readers
/// yet (Linkerd's is on by default because only its mTLS-authenticated tap service may read it).
pub const ENABLE_TAP: &str = "config.linkerd.io/enable-tap";
/// Linkerd's opt-out (2.3 to 2.9, `linkerd inject --disable-tap`), read as the opposite of
/// [`ENABLE_TAP`], so that a workload Linkerd kept out of tap stays out.
pub const DISABLE_TAP: &str = "config.linkerd.io/disable-tap";
/// Linkerd viz's opt-out (2.10 and later), read as [`DISABLE_TAP`].
pub const VIZ_DISABLE_TAP: &str = "viz.linkerd.io/disable-tap";
/// The annotations that decide tap, in precedence on one object: the first present decides. They
/// are one setting: a pod with any of them decides for itself, and its namespace's are not read.
pub const TAP: [&str; 3] = [ENABLE_TAP, DISABLE_TAP, VIZ_DISABLE_TAP];

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
    pub use super::REQUIRE_IDENTITY_INBOUND_PORTS;
    pub const INBOUND_CONNECT_TIMEOUT: &str = "config.linkerd.io/proxy-inbound-connect-timeout";
    pub const OUTBOUND_CONNECT_TIMEOUT: &str = "config.linkerd.io/proxy-outbound-connect-timeout";
    pub const SHUTDOWN_GRACE_PERIOD: &str = "config.linkerd.io/shutdown-grace-period";
    pub const NATIVE_SIDECAR: &str = "config.beta.linkerd.io/proxy-enable-native-sidecar";
}
