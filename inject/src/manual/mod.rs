//! Manual injection: the full proxy sidecar written into a pod spec, as `mesh inject --manual`, the
//! injector webhook and `mesh install` (for the control plane's own pods) all do it.
//!
//! Work in progress: the sidecar is being built out; until then `inject_json` leaves the pod alone.

use serde_json::Value;

use crate::values::Values;

/// Everything manual injection needs besides the pod itself.
#[derive(Debug, Clone)]
pub struct Context<'a> {
    /// Proxy, proxy-init and identity settings, already merged from defaults and overrides.
    pub values: &'a Values,
    /// The PEM bundle of identity trust anchors the proxy verifies peers against.
    pub trust_anchors_pem: &'a str,
    /// The namespace of the control plane (`-L`), for service addresses and identities.
    pub control_plane_namespace: &'a str,
    /// The CLI's version, for `linkerd.io/created-by` and the default image tag.
    pub cli_version: &'a str,
}

/// The workload whose pod template is injected, for labels such as `linkerd.io/proxy-deployment`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner<'a> {
    /// The kind as Kubernetes spells it, e.g. `Deployment`.
    pub kind: &'a str,
    pub name: &'a str,
    pub namespace: &'a str,
}

/// Why a pod cannot be injected manually.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManualError {
    /// A `config.linkerd.io/*` annotation on the pod has a value that cannot be used.
    #[error("annotation {annotation}: {reason}")]
    BadAnnotation { annotation: String, reason: String },
}

/// Adds the proxy sidecar, the init container, volumes, annotations and labels to a pod template
/// (a JSON object with `metadata` and `spec`), in place.
pub fn inject_json(
    _pod_template: &mut Value,
    _owner: Owner<'_>,
    _context: &Context<'_>,
) -> Result<(), ManualError> {
    Ok(())
}
