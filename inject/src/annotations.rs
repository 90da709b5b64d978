//! The annotation and label keys mesh reads and writes. They are Linkerd's, so Linkerd manifests
//! and tooling carry over unchanged.

/// Turns injection on (`enabled`, `ingress`) or off (`disabled`) for a workload or namespace.
pub const INJECT: &str = "linkerd.io/inject";
/// Values of [`INJECT`].
pub const ENABLED: &str = "enabled";
pub const DISABLED: &str = "disabled";
pub const INGRESS: &str = "ingress";

/// The prefix of every proxy configuration annotation.
pub const CONFIG_PREFIX: &str = "config.linkerd.io/";

/// A label marking the mesh's own control-plane pods, which only manual injection may touch.
pub const CONTROL_PLANE_COMPONENT: &str = "linkerd.io/control-plane-component";

/// Containers of other meshes; a pod carrying one is not injected.
pub const FOREIGN_SIDECARS: &[&str] = &["istio-proxy", "istio-init"];
