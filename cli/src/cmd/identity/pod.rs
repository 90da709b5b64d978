//! What a pod says about its proxy: whether it has one, where it listens, and the identity name
//! it holds. Plain functions of the pod object, no I/O.

use std::collections::HashMap;

use k8s_openapi::api::core::v1::{Container, Pod};
use mesh_names::{containers, ports};

/// The variable that names the proxy's identity.
pub const LOCAL_NAME: &str = "LINKERD2_PROXY_IDENTITY_LOCAL_NAME";
/// Set when the proxy runs without an identity (Linkerd's `--disable-identity`).
const IDENTITY_DISABLED: &str = "LINKERD2_PROXY_IDENTITY_DISABLED";

/// A meshed, running pod's proxy: what to dial and which name to ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyTarget {
    /// The identity name, sent as the TLS server name.
    pub identity: String,
    /// The proxy's inbound port in the pod.
    pub port: u16,
}

/// Why a pod's proxy cannot be asked for its certificate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PodError {
    /// The pod has no proxy container.
    #[error("not meshed: it has no {} container", containers::PROXY)]
    NotMeshed,
    /// The pod is not in phase Running.
    #[error("not running (phase {0})")]
    NotRunning(String),
    /// The proxy runs without an identity.
    #[error("the proxy has no identity ({0})")]
    NoIdentity(String),
}

/// The proxy of `pod`, if it is meshed, running and has an identity.
pub fn proxy_target(pod: &Pod) -> Result<ProxyTarget, PodError> {
    let spec = pod.spec.as_ref();
    let proxy = spec
        .into_iter()
        .flat_map(|s| {
            s.containers
                .iter()
                .chain(s.init_containers.iter().flatten())
        })
        .find(|c| c.name == containers::PROXY)
        .ok_or(PodError::NotMeshed)?;
    let phase = pod
        .status
        .as_ref()
        .and_then(|s| s.phase.clone())
        .unwrap_or_else(|| "Unknown".to_string());
    if phase != "Running" {
        return Err(PodError::NotRunning(phase));
    }
    let env = environment(pod, proxy);
    if env.get(IDENTITY_DISABLED).is_some_and(|v| !v.is_empty()) {
        return Err(PodError::NoIdentity(format!("{IDENTITY_DISABLED} is set")));
    }
    let identity = env
        .get(LOCAL_NAME)
        .filter(|v| !v.is_empty())
        .cloned()
        .ok_or_else(|| PodError::NoIdentity(format!("{LOCAL_NAME} is not set")))?;
    let port = proxy
        .ports
        .iter()
        .flatten()
        .find(|p| p.name.as_deref() == Some(containers::PROXY))
        .and_then(|p| u16::try_from(p.container_port).ok())
        .unwrap_or(ports::PROXY_INBOUND);
    Ok(ProxyTarget { identity, port })
}

/// The container's environment as the kubelet gives it: literal values and the pod fields
/// `fieldRef`s name, each with `$(VAR)` references to earlier variables expanded and `$$`
/// meaning `$`. Values from ConfigMaps, Secrets and resources are left out: no identity name
/// is built from them.
pub fn environment(pod: &Pod, container: &Container) -> HashMap<String, String> {
    let mut env = HashMap::new();
    for var in container.env.iter().flatten() {
        let value = match (&var.value, &var.value_from) {
            (Some(value), _) => expand(value, &env),
            (None, Some(from)) => match from
                .field_ref
                .as_ref()
                .and_then(|f| field(pod, &f.field_path))
            {
                Some(value) => value,
                None => continue,
            },
            (None, None) => String::new(),
        };
        env.insert(var.name.clone(), value);
    }
    env
}

/// A pod field a `fieldRef` may name.
fn field(pod: &Pod, path: &str) -> Option<String> {
    let meta = &pod.metadata;
    let spec = pod.spec.as_ref();
    let status = pod.status.as_ref();
    match path {
        "metadata.name" => meta.name.clone(),
        "metadata.namespace" => meta.namespace.clone(),
        "metadata.uid" => meta.uid.clone(),
        // The kubelet's default when the field is empty.
        "spec.serviceAccountName" => Some(
            spec.and_then(|s| s.service_account_name.clone())
                .unwrap_or_else(|| "default".to_string()),
        ),
        "spec.nodeName" => spec.and_then(|s| s.node_name.clone()),
        "status.podIP" => status.and_then(|s| s.pod_ip.clone()),
        "status.hostIP" => status.and_then(|s| s.host_ip.clone()),
        _ => None,
    }
}

/// Expands `$(NAME)` from `env` as the kubelet does: an unknown name stays as written, `$$`
/// is a literal `$`. One pass over the text, so it cannot loop.
pub fn expand(text: &str, env: &HashMap<String, String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(inner) = after.strip_prefix('(')
            && let Some(end) = inner.find(')')
        {
            let name = &inner[..end];
            match env.get(name) {
                Some(value) => out.push_str(value),
                None => {
                    out.push_str("$(");
                    out.push_str(name);
                    out.push(')');
                }
            }
            rest = &inner[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}
