//! Manual injection: the full proxy sidecar written into a pod spec, as `mesh inject --manual`, the
//! injector webhook and `mesh install` (for the control plane's own pods) all do it.
//!
//! [`sidecar`] works out what to add from the values and the pod's own `config.linkerd.io/*`
//! annotations. [`inject_json`] applies it to a pod template as data; the text path
//! (`mesh inject --manual`) applies the same [`Sidecar`] as line insertions, so that both give the
//! same objects.

mod config;
mod sidecar;

use mesh_names::{annotations, containers, labels};
use serde_json::{Map, Value};

pub use config::ProxyConfig;
/// The `config.linkerd.io/*` annotations a pod's sidecar is configured by, besides the flags'.
pub use mesh_names::annotations::config as keys;
pub use sidecar::{Sidecar, trust_anchors_sha256};

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
    /// The pod turns off the service account token and token projection is off too, so the
    /// proxy would have no way to prove its identity.
    #[error(
        "automountServiceAccountToken is false and identity.serviceAccountTokenProjection is off; the proxy could not obtain an identity"
    )]
    NoToken,
}

/// Works out what to add to a pod template given as JSON (`{metadata, spec}`).
pub fn sidecar(
    pod_template: &Value,
    owner: Owner<'_>,
    context: &Context<'_>,
    ingress: bool,
) -> Result<Sidecar, ManualError> {
    let empty = Map::new();
    let annotations = pod_template["metadata"]["annotations"]
        .as_object()
        .unwrap_or(&empty);
    let mut config = ProxyConfig::resolve(context.values, context.cli_version, annotations)?;
    config.ingress = ingress;
    let spec = &pod_template["spec"];
    if spec["automountServiceAccountToken"] == Value::Bool(false)
        && !context.values.identity.service_account_token_projection
    {
        return Err(ManualError::NoToken);
    }
    Ok(sidecar::build(&config, spec, owner, context))
}

/// Whether a pod template (as JSON) already carries what manual injection adds.
pub fn is_injected(pod_template: &Value) -> bool {
    let spec = &pod_template["spec"];
    ["containers", "initContainers"].iter().any(|list| {
        spec[*list].as_array().into_iter().flatten().any(|c| {
            c["name"]
                .as_str()
                .is_some_and(|n| containers::INJECTED.contains(&n))
        })
    })
}

/// Adds the proxy sidecar, the init container, volumes, annotations and labels to a pod template
/// (a JSON object with `metadata` and `spec`), in place. A template that is injected already is
/// uninjected first, so the result is the same either way.
pub fn inject_json(
    pod_template: &mut Value,
    owner: Owner<'_>,
    context: &Context<'_>,
) -> Result<(), ManualError> {
    inject_json_as(pod_template, owner, context, false)
}

/// [`inject_json`], with the proxy in ingress mode when `ingress` is set (what
/// `linkerd.io/inject: ingress` asks of the injector webhook).
pub fn inject_json_as(
    pod_template: &mut Value,
    owner: Owner<'_>,
    context: &Context<'_>,
    ingress: bool,
) -> Result<(), ManualError> {
    uninject_json(pod_template);
    let sidecar = sidecar(pod_template, owner, context, ingress)?;
    let Some(template) = pod_template.as_object_mut() else {
        return Ok(());
    };
    let metadata = object_at(template, "metadata");
    let annotations = object_at(metadata, "annotations");
    for (k, v) in &sidecar.annotations {
        annotations.insert(k.clone(), Value::String(v.clone()));
    }
    let labels = object_at(metadata, "labels");
    for (k, v) in &sidecar.labels {
        labels.insert(k.clone(), Value::String(v.clone()));
    }
    let spec = object_at(template, "spec");
    prepend(spec, "initContainers", sidecar.init_containers);
    prepend(spec, "containers", sidecar.containers);
    if let Value::Array(volumes) = spec
        .entry("volumes")
        .or_insert_with(|| Value::Array(vec![]))
    {
        volumes.extend(sidecar.volumes);
    }
    Ok(())
}

/// Removes everything manual injection adds from a pod template given as JSON.
pub fn uninject_json(pod_template: &mut Value) {
    let Some(template) = pod_template.as_object_mut() else {
        return;
    };
    if let Some(Value::Object(metadata)) = template.get_mut("metadata") {
        if let Some(Value::Object(annotations)) = metadata.get_mut("annotations") {
            annotations.retain(|k, _| !annotations::INJECTED.contains(&k.as_str()));
        }
        if let Some(Value::Object(labels)) = metadata.get_mut("labels") {
            labels.retain(|k, _| !labels::is_injected(k));
        }
    }
    if let Some(Value::Object(spec)) = template.get_mut("spec") {
        for (list, doomed) in [
            ("containers", containers::INJECTED),
            ("initContainers", containers::INJECTED),
            ("volumes", containers::VOLUMES),
        ] {
            let emptied = match spec.get_mut(list) {
                Some(Value::Array(items)) => {
                    items.retain(|i| !i["name"].as_str().is_some_and(|n| doomed.contains(&n)));
                    items.is_empty() && list != "containers"
                }
                _ => false,
            };
            if emptied {
                spec.remove(list);
            }
        }
    }
}

fn object_at<'m>(map: &'m mut Map<String, Value>, key: &str) -> &'m mut Map<String, Value> {
    let slot = map
        .entry(key.to_owned())
        .or_insert_with(|| Value::Object(Map::new()));
    if !slot.is_object() {
        *slot = Value::Object(Map::new());
    }
    match slot {
        Value::Object(m) => m,
        _ => unreachable_object(),
    }
}

fn unreachable_object() -> ! {
    panic!("a slot just set to an object is an object")
}

fn prepend(spec: &mut Map<String, Value>, key: &str, items: Vec<Value>) {
    if items.is_empty() {
        return;
    }
    if let Value::Array(existing) = spec
        .entry(key.to_owned())
        .or_insert_with(|| Value::Array(vec![]))
    {
        existing.splice(0..0, items);
    }
}

#[cfg(test)]
mod tests;
