//! mesh-inject: the manifest transforms behind `mesh inject`, `mesh uninject` and (later) the
//! injector webhook.
//!
//! The crate is pure: text in, edits and a report out. It does no I/O, starts no runtime and knows
//! nothing of a cluster, so the CLI and the webhook cannot drift apart.
//!
//! Output is the input with edits applied. For block-style YAML the edits only insert or remove
//! whole lines, so comments, quoting, key order, anchors and block scalars survive byte for byte.

pub mod manual;
mod overrides;
mod render;
mod report;
mod run;
mod transform;
pub mod values;
pub mod yaml;

pub use overrides::{FlagError, Overrides, POLICIES, Setting, quantity};
pub use render::{Format, render_as};
pub use report::{Entry, Outcome, Report, Warning};
pub use run::{Transformed, inject, uninject};

/// How to inject.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Proxy settings to write as `config.linkerd.io/*` annotations.
    pub overrides: Overrides,
    /// Mark workloads `linkerd.io/inject: ingress` rather than `enabled` (with `manual`, run the
    /// proxy in ingress mode).
    pub ingress: bool,
    /// Write the whole sidecar into pod specs instead of the annotation.
    pub manual: Option<ManualSettings>,
}

/// What manual injection needs beyond the pod: see [`manual::Context`].
#[derive(Debug, Clone)]
pub struct ManualSettings {
    pub values: values::Values,
    pub trust_anchors_pem: String,
    pub control_plane_namespace: String,
    pub cli_version: String,
}

/// Why a pod may not be injected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The pod shares the node's network, where the proxy's iptables rules would capture the node's
    /// traffic.
    HostNetwork,
    /// The pod already carries another mesh's proxy.
    Sidecar,
    /// The pod is part of the control plane, which only manual injection may change.
    ControlPlane,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Refusal::HostNetwork => "hostNetwork is enabled",
            Refusal::Sidecar => "pod has a sidecar injected already",
            Refusal::ControlPlane => "--manual must be set when injecting control plane components",
        })
    }
}

/// Why a stream could not be transformed. Nothing should be written when this is returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The text is not valid YAML (or JSON).
    #[error("document {document}, {error}")]
    Syntax {
        /// 1-based document number in the stream.
        document: usize,
        error: yaml::SyntaxError,
    },
    /// An object may not be injected, as Linkerd refuses it too.
    #[error("failed to inject {kind}/{name} (document {document}): {reason}")]
    Refused {
        document: usize,
        kind: String,
        name: String,
        reason: Refusal,
    },
    /// Manual injection cannot work out the sidecar for an object.
    #[error("failed to inject {kind}/{name} (document {document}): {error}")]
    Manual {
        document: usize,
        kind: String,
        name: String,
        error: manual::ManualError,
    },
    /// An object's YAML is shaped so that editing it would change its meaning.
    #[error("cannot edit {kind}/{name} (document {document}), {error}")]
    Edit {
        document: usize,
        kind: String,
        name: String,
        error: yaml::EditError,
    },
}

impl Error {
    /// The same error for a document numbered `offset` further into the stream.
    fn shift_document(mut self, offset: usize) -> Error {
        match &mut self {
            Error::Syntax { document, .. }
            | Error::Refused { document, .. }
            | Error::Manual { document, .. }
            | Error::Edit { document, .. } => *document += offset,
        }
        self
    }
}
