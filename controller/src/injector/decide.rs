//! What the injector does with one object, as Linkerd's injector does it: pure functions of the
//! object, its namespace's annotations and its owner, so the whole decision table is tested
//! without a cluster.

use std::collections::BTreeMap;
use std::fmt;

use mesh_inject::manual::{self, Context, ManualError, Owner};
use mesh_names::annotations::{CONFIG_PREFIX, CREATED_BY, DISABLED, ENABLED, INGRESS, INJECT, TAP};
use mesh_names::containers::{FOREIGN_SIDECARS, INJECTED};
use mesh_names::labels::CONTROL_PLANE_COMPONENT;
use serde_json::{Map, Value};

/// A namespace's annotations, as the namespace reflector keeps them.
pub type Annotations = BTreeMap<String, String>;

pub use mesh_names::annotations::OPAQUE_PORTS;

/// Prefixes of the proxy settings a pod inherits from its namespace (Linkerd copies its
/// `config.linkerd.io/*` and `config.alpha.linkerd.io/*` keys; mesh also has a beta one).
const INHERITED_PREFIXES: &[&str] = &[
    CONFIG_PREFIX,
    "config.alpha.linkerd.io/",
    "config.beta.linkerd.io/",
];

/// Why a pod is admitted without the proxy. The labels are Linkerd's skip reasons, the sentences
/// (`Display`) Linkerd's too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Skip {
    /// `hostNetwork: true`: the proxy's iptables rules would capture the node's traffic.
    HostNetwork,
    /// The pod carries a proxy already (ours or another mesh's).
    SidecarExists,
    /// A control-plane pod, which `mesh install` injects itself.
    ControlPlane,
    /// The pod says `disabled` while its namespace says `enabled`.
    InjectDisabled,
    /// Neither the pod nor its namespace asks for injection.
    InjectAbsent,
    /// The pod's `linkerd.io/inject` is not `enabled`, `ingress` or `disabled`.
    InvalidAtWorkload,
    /// The namespace's `linkerd.io/inject` is not `enabled`, `ingress` or `disabled`.
    InvalidAtNamespace,
}

impl Skip {
    /// Linkerd's name for the reason, a metric label.
    pub fn label(self) -> &'static str {
        match self {
            Skip::HostNetwork => "host_network_enabled",
            Skip::SidecarExists => "sidecar_already_exists",
            Skip::ControlPlane => "control_plane_component",
            Skip::InjectDisabled => "injection_disable_annotation_present",
            Skip::InjectAbsent => "injection_enable_annotation_absent",
            Skip::InvalidAtWorkload => "invalid_inject_annotation_at_workload",
            Skip::InvalidAtNamespace => "invalid_inject_annotation_at_ns",
        }
    }

    /// Whether the reason is only that injection was not asked for; such skips are routine and
    /// get no event.
    pub fn is_routine(self) -> bool {
        matches!(self, Skip::InjectDisabled | Skip::InjectAbsent)
    }
}

impl fmt::Display for Skip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Skip::HostNetwork => f.write_str("hostNetwork is enabled"),
            Skip::SidecarExists => f.write_str("pod has a sidecar injected already"),
            Skip::ControlPlane => write!(
                f,
                "pod is a control plane component ({CONTROL_PLANE_COMPONENT})"
            ),
            Skip::InjectDisabled => write!(f, "pod has the annotation \"{INJECT}:{DISABLED}\""),
            Skip::InjectAbsent => write!(
                f,
                "neither the namespace nor the pod have the annotation \"{INJECT}:{ENABLED}\""
            ),
            Skip::InvalidAtWorkload => {
                write!(f, "invalid value for annotation \"{INJECT}\" at workload")
            }
            Skip::InvalidAtNamespace => {
                write!(f, "invalid value for annotation \"{INJECT}\" at namespace")
            }
        }
    }
}

/// Which annotation asked for injection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum At {
    Namespace,
    Workload,
}

/// A pod to inject, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    pub at: At,
    /// The pod's own annotation says `ingress`. As in Linkerd, a namespace's `ingress` injects
    /// its pods but does not put their proxies in ingress mode: that is a per-workload choice.
    pub ingress: bool,
}

/// Decides whether to inject a pod (JSON, as the API server sends it), by Linkerd's table: the
/// pod's `linkerd.io/inject`, else its namespace's; `enabled` and `ingress` inject. Every reason
/// not to is returned, in Linkerd's order.
pub fn decide(pod: &Value, namespace: &Annotations) -> Result<Plan, Vec<Skip>> {
    let mut skips = Vec::new();
    let spec = &pod["spec"];
    if spec["hostNetwork"] == Value::Bool(true) {
        skips.push(Skip::HostNetwork);
    }
    if has_sidecar(spec) {
        skips.push(Skip::SidecarExists);
    }
    if pod["metadata"]["labels"]
        .get(CONTROL_PLANE_COMPONENT)
        .is_some()
    {
        skips.push(Skip::ControlPlane);
    }
    let on_pod = pod["metadata"]["annotations"][INJECT]
        .as_str()
        .unwrap_or("");
    let on_ns = namespace.get(INJECT).map_or("", String::as_str);
    let valid = |v: &str| matches!(v, "" | ENABLED | DISABLED | INGRESS);
    let wants = |v: &str| v == ENABLED || v == INGRESS;
    let at = if !valid(on_ns) {
        Err(Skip::InvalidAtNamespace)
    } else if !valid(on_pod) {
        Err(Skip::InvalidAtWorkload)
    } else if wants(on_ns) {
        if on_pod == DISABLED {
            Err(Skip::InjectDisabled)
        } else {
            Ok(At::Namespace)
        }
    } else if wants(on_pod) {
        Ok(At::Workload)
    } else {
        Err(Skip::InjectAbsent)
    };
    match at {
        Ok(at) if skips.is_empty() => Ok(Plan {
            at,
            ingress: on_pod == INGRESS,
        }),
        Ok(_) => Err(skips),
        Err(skip) => {
            skips.push(skip);
            Err(skips)
        }
    }
}

/// Whether a pod spec already carries a proxy: ours (`linkerd-proxy`, `linkerd-init`) or
/// another mesh's.
pub fn has_sidecar(spec: &Value) -> bool {
    ["containers", "initContainers"].iter().any(|list| {
        spec[*list].as_array().into_iter().flatten().any(|c| {
            c["name"]
                .as_str()
                .is_some_and(|n| INJECTED.contains(&n) || FOREIGN_SIDECARS.contains(&n))
        })
    })
}

/// The pod as the injector admits it: the namespace's proxy settings the pod does not set
/// itself (for tap, any of its keys) copied onto it (so that `mesh_inject::manual` sees them), the default opaque ports it
/// exposes, then the sidecar `mesh_inject::manual::inject_json_as` adds — the same code as
/// `mesh inject --manual` and `mesh install`.
pub fn injected(
    pod: &Value,
    namespace: &Annotations,
    plan: Plan,
    owner: Owner<'_>,
    context: &Context<'_>,
    created_by: &str,
) -> Result<Value, ManualError> {
    let mut target = pod.clone();
    let ports = container_ports(&pod["spec"]);
    let mut annotations = take_annotations(&mut target);
    // The tap keys are one setting: a pod with any of them decides for itself.
    let pod_says_tap = TAP.iter().any(|k| annotations.contains_key(*k));
    for (k, v) in namespace {
        let pod_says = if TAP.contains(&k.as_str()) {
            pod_says_tap
        } else {
            annotations.contains_key(k)
        };
        if inherited(k) && !pod_says {
            annotations.insert(k.clone(), Value::String(v.clone()));
        }
    }
    if !annotations.contains_key(OPAQUE_PORTS) {
        let default = &context.values.proxy.opaque_ports;
        let exposed: Vec<String> = ports
            .into_iter()
            .filter(|p| in_port_list(default, *p))
            .map(|p| p.to_string())
            .collect();
        if !exposed.is_empty() {
            annotations.insert(OPAQUE_PORTS.to_owned(), Value::String(exposed.join(",")));
        }
    }
    put_annotations(&mut target, annotations);
    manual::inject_json_as(&mut target, owner, context, plan.ingress)?;
    let mut annotations = take_annotations(&mut target);
    annotations.insert(CREATED_BY.to_owned(), Value::String(created_by.to_owned()));
    put_annotations(&mut target, annotations);
    Ok(target)
}

/// A Service as the injector admits it: as Linkerd does, one without
/// `config.linkerd.io/opaque-ports` gets its namespace's, else the default opaque ports its
/// ports target (a port without a numeric `targetPort` targets itself; a named one is unknown
/// here). `None` when there is nothing to add.
pub fn annotated_service(
    service: &Value,
    namespace: &Annotations,
    default_opaque_ports: &str,
) -> Option<Value> {
    if service["metadata"]["annotations"]
        .get(OPAQUE_PORTS)
        .is_some()
    {
        return None;
    }
    let value = match namespace.get(OPAQUE_PORTS) {
        Some(ports) => ports.clone(),
        None => {
            let ports: Vec<String> = service["spec"]["ports"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|p| {
                    let port = p["port"].as_u64()?;
                    let target = match &p["targetPort"] {
                        Value::Null => port,
                        Value::Number(n) => n.as_u64()?,
                        _ => return None,
                    };
                    let target = u16::try_from(target).ok()?;
                    in_port_list(default_opaque_ports, target).then(|| port.to_string())
                })
                .collect();
            if ports.is_empty() {
                return None;
            }
            ports.join(",")
        }
    };
    let mut target = service.clone();
    let mut annotations = take_annotations(&mut target);
    annotations.insert(OPAQUE_PORTS.to_owned(), Value::String(value));
    put_annotations(&mut target, annotations);
    Some(target)
}

/// The JSONPatch that turns `from` into `to`.
pub fn patch(from: &Value, to: &Value) -> json_patch::Patch {
    json_patch::diff(from, to)
}

/// The pod's controller reference (`ownerReferences` with `controller: true`).
pub fn controller_of(pod: &Value) -> Option<&Value> {
    pod["metadata"]["ownerReferences"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["controller"] == Value::Bool(true))
}

/// How logs name an object: `pod/<name>`, or its `generateName` prefix before it has a name.
pub fn display_name(kind: &str, object: &Value) -> String {
    let meta = &object["metadata"];
    let name = meta["name"]
        .as_str()
        .filter(|n| !n.is_empty())
        .or_else(|| meta["generateName"].as_str())
        .unwrap_or("");
    format!("{}/{name}", kind.to_ascii_lowercase())
}

/// Whether a pod inherits its namespace's annotation `key`: its proxy settings, and Linkerd viz's
/// tap opt-out, which lives outside them.
fn inherited(key: &str) -> bool {
    INHERITED_PREFIXES.iter().any(|p| key.starts_with(p)) || TAP.contains(&key)
}

/// Whether `port` is in a list like `25,443,4444-4450`.
fn in_port_list(list: &str, port: u16) -> bool {
    list.split(',')
        .map(str::trim)
        .any(|item| match item.split_once('-') {
            Some((lo, hi)) => match (lo.trim().parse::<u16>(), hi.trim().parse::<u16>()) {
                (Ok(lo), Ok(hi)) => (lo..=hi).contains(&port),
                _ => false,
            },
            None => item.parse::<u16>() == Ok(port),
        })
}

/// The container ports of the app containers, in order.
fn container_ports(spec: &Value) -> Vec<u16> {
    spec["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|c| c["ports"].as_array().into_iter().flatten())
        .filter_map(|p| p["containerPort"].as_u64())
        .filter_map(|p| u16::try_from(p).ok())
        .collect()
}

/// Takes `metadata.annotations` out of an object, to be edited and put back.
fn take_annotations(object: &mut Value) -> Map<String, Value> {
    match object.pointer_mut("/metadata/annotations").map(Value::take) {
        Some(Value::Object(map)) => map,
        _ => Map::new(),
    }
}

/// Puts `metadata.annotations` back, creating `metadata` if needed.
fn put_annotations(object: &mut Value, annotations: Map<String, Value>) {
    let Some(object) = object.as_object_mut() else {
        return;
    };
    let meta = object
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(meta) = meta {
        meta.insert("annotations".to_owned(), Value::Object(annotations));
    } else {
        let mut fresh = Map::new();
        fresh.insert("annotations".to_owned(), Value::Object(annotations));
        *meta = Value::Object(fresh);
    }
}

#[cfg(test)]
mod tests;
