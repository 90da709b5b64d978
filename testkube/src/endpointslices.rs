//! The EndpointSlice controller of kube-controller-manager: every Service with a selector (and
//! not `ExternalName`) gets `discovery.k8s.io/v1` EndpointSlices listing its pods.
//!
//! As in Kubernetes: one endpoint per selected pod that has an IPv4 address and is not
//! terminal, with `ready`/`serving`/`terminating` from its Ready condition, deletion and
//! `publishNotReadyAddresses`; ports are the Service's, with `targetPort` resolved per pod (a
//! named port is looked up in the pod's containers), so pods that resolve differently land in
//! different slices; at most 100 endpoints a slice; a Service with no endpoints keeps one empty
//! placeholder slice. Slices are owned by their Service and go with it.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Map, Value, json};

use crate::kubelet::is_ready;
use crate::resources::ResourceType;
use crate::store::{Object, Part, State, core};

pub const MANAGED_BY: &str = "endpointslice.kubernetes.io/managed-by";
pub const CONTROLLER: &str = "endpointslice-controller.k8s.io";
pub const SERVICE_NAME: &str = "kubernetes.io/service-name";
const HEADLESS: &str = "service.kubernetes.io/headless";
const MAX_ENDPOINTS: usize = 100;

fn slices_key() -> (String, String) {
    ("discovery.k8s.io".to_string(), "endpointslices".to_string())
}

/// Brings one Service's slices in line with its pods. Returns whether anything was written.
pub fn sync_service(state: &mut State, _rt: &ResourceType, svc: &Arc<Object>) -> bool {
    let Some(slice_type) = state.registry.by_key(&slices_key()).cloned() else {
        return false;
    };
    let selector = svc
        .value
        .pointer("/spec/selector")
        .and_then(Value::as_object)
        .filter(|s| !s.is_empty());
    let external = svc.value.pointer("/spec/type").and_then(Value::as_str) == Some("ExternalName");
    let Some(selector) = selector.filter(|_| !external) else {
        return false;
    };
    let ns = svc.namespace().to_string();
    let pods: Vec<Arc<Object>> = state
        .list(&core("pods"), Some(&ns))
        .into_iter()
        .filter(|p| selects(selector, &p.value))
        .collect();
    let nodes: BTreeMap<String, Option<String>> = state
        .list(&core("nodes"), None)
        .iter()
        .map(|n| {
            let zone = n
                .value
                .pointer("/metadata/labels/topology.kubernetes.io~1zone")
                .and_then(Value::as_str)
                .map(str::to_string);
            (n.name().to_string(), zone)
        })
        .collect();
    let desired = desired_slices(&svc.value, &pods, &nodes);
    let existing: Vec<Arc<Object>> = state
        .list(&slices_key(), Some(&ns))
        .into_iter()
        .filter(|s| {
            let labels = &s.value["metadata"]["labels"];
            labels[SERVICE_NAME] == json!(svc.name()) && labels[MANAGED_BY] == CONTROLLER
        })
        .collect();
    let labels = slice_labels(&svc.value);
    let owner = json!([{
        "apiVersion": "v1", "kind": "Service", "name": svc.name(), "uid": svc.uid(),
        "controller": true, "blockOwnerDeletion": true,
    }]);
    let mut unused: Vec<&Arc<Object>> = existing.iter().collect();
    let mut changed = false;
    for (ports, endpoints) in desired {
        let reuse = unused
            .iter()
            .position(|s| s.value.get("ports").unwrap_or(&Value::Null) == &ports);
        match reuse.map(|i| unused.remove(i)) {
            Some(slice) => {
                let mut next = slice.value.clone();
                next["metadata"]["labels"] = labels.clone();
                next["metadata"]["ownerReferences"] = owner.clone();
                next["addressType"] = json!("IPv4");
                next["endpoints"] = endpoints;
                next["ports"] = ports;
                if next != slice.value {
                    changed |= state
                        .update(&slice_type, &ns, slice.name(), next, Part::Main, false)
                        .is_ok();
                }
            }
            None => {
                let slice = json!({
                    "apiVersion": "discovery.k8s.io/v1",
                    "kind": "EndpointSlice",
                    "metadata": {
                        "generateName": format!("{}-", svc.name()),
                        "namespace": ns,
                        "labels": labels,
                        "ownerReferences": owner,
                    },
                    "addressType": "IPv4",
                    "endpoints": endpoints,
                    "ports": ports,
                });
                changed |= state.create(&slice_type, &ns, slice, false).is_ok();
            }
        }
    }
    for slice in unused {
        changed |= state.delete(&slice_type, &ns, slice.name(), false).is_ok();
    }
    changed
}

fn selects(selector: &Map<String, Value>, pod: &Value) -> bool {
    let labels = pod.pointer("/metadata/labels").and_then(Value::as_object);
    selector
        .iter()
        .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
}

/// The service's labels, less the two the controller owns, plus those.
fn slice_labels(svc: &Value) -> Value {
    let mut labels = svc
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    labels.remove(SERVICE_NAME);
    labels.remove(MANAGED_BY);
    labels.insert(MANAGED_BY.into(), json!(CONTROLLER));
    labels.insert(SERVICE_NAME.into(), svc["metadata"]["name"].clone());
    if svc.pointer("/spec/clusterIP").and_then(Value::as_str) == Some("None") {
        labels.insert(HEADLESS.into(), json!(""));
    }
    Value::Object(labels)
}

/// (ports, endpoints) of each slice the Service should have. Empty lists are `null`, as the
/// API server returns them.
pub fn desired_slices(
    svc: &Value,
    pods: &[Arc<Object>],
    nodes: &BTreeMap<String, Option<String>>,
) -> Vec<(Value, Value)> {
    let publish = svc
        .pointer("/spec/publishNotReadyAddresses")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let mut groups: BTreeMap<String, (Value, Vec<(String, Value)>)> = BTreeMap::new();
    for pod in pods {
        let Some(ip) = ipv4(&pod.value) else {
            continue;
        };
        let phase = pod.value.pointer("/status/phase").and_then(Value::as_str);
        if matches!(phase, Some("Succeeded" | "Failed")) {
            continue;
        }
        let ports = endpoint_ports(svc, &pod.value);
        let terminating = pod.value.pointer("/metadata/deletionTimestamp").is_some();
        let serving = publish || is_ready(pod);
        let mut endpoint = json!({
            "addresses": [ip],
            "conditions": {
                "ready": publish || (serving && !terminating),
                "serving": serving,
                "terminating": terminating,
            },
        });
        let spec = &pod.value["spec"];
        if spec["subdomain"] == svc["metadata"]["name"]
            && let Some(hostname) = spec["hostname"].as_str().filter(|h| !h.is_empty())
        {
            endpoint["hostname"] = json!(hostname);
        }
        endpoint["targetRef"] = json!({
            "kind": "Pod", "namespace": pod.namespace(), "name": pod.name(), "uid": pod.uid(),
        });
        if let Some(node) = spec["nodeName"].as_str() {
            endpoint["nodeName"] = json!(node);
            if let Some(Some(zone)) = nodes.get(node) {
                endpoint["zone"] = json!(zone);
            }
        }
        let key = ports.to_string();
        groups
            .entry(key)
            .or_insert_with(|| (ports, Vec::new()))
            .1
            .push((pod.name().to_string(), endpoint));
    }
    let mut out = Vec::new();
    for (_, (ports, mut endpoints)) in groups {
        endpoints.sort_by(|a, b| a.0.cmp(&b.0));
        let ports = null_if_empty(ports);
        for chunk in endpoints.chunks(MAX_ENDPOINTS) {
            let list: Vec<Value> = chunk.iter().map(|(_, e)| e.clone()).collect();
            out.push((ports.clone(), json!(list)));
        }
    }
    if out.is_empty() {
        out.push((Value::Null, Value::Null));
    }
    out
}

fn null_if_empty(list: Value) -> Value {
    match list {
        Value::Array(a) if a.is_empty() => Value::Null,
        other => other,
    }
}

fn ipv4(pod: &Value) -> Option<String> {
    let ips = pod
        .pointer("/status/podIPs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|p| p.get("ip").and_then(Value::as_str));
    pod.pointer("/status/podIP")
        .and_then(Value::as_str)
        .into_iter()
        .chain(ips)
        .find(|ip| ip.parse::<std::net::Ipv4Addr>().is_ok())
        .map(str::to_string)
}

/// The Service's ports as this pod serves them; a port whose `targetPort` the pod does not
/// have is left out, as the controller does.
fn endpoint_ports(svc: &Value, pod: &Value) -> Value {
    let ports = svc
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut out = Vec::new();
    for port in &ports {
        let protocol = port["protocol"].as_str().unwrap_or("TCP");
        let number = match &port["targetPort"] {
            Value::String(name) => named_port(pod, name, protocol),
            Value::Number(n) => n.as_i64(),
            _ => port["port"].as_i64(),
        };
        let Some(number) = number else {
            continue;
        };
        let mut entry = json!({
            "name": port["name"].as_str().unwrap_or(""),
            "protocol": protocol,
            "port": number,
        });
        if let Some(app) = port.get("appProtocol") {
            entry["appProtocol"] = app.clone();
        }
        out.push(entry);
    }
    Value::Array(out)
}

/// A named container port of the pod, in its containers or its sidecars (restartable init
/// containers).
fn named_port(pod: &Value, name: &str, protocol: &str) -> Option<i64> {
    let containers = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten();
    let sidecars = pod
        .pointer("/spec/initContainers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|c| c["restartPolicy"] == "Always");
    containers
        .chain(sidecars)
        .flat_map(|c| c["ports"].as_array().into_iter().flatten())
        .find(|p| p["name"] == name && p["protocol"].as_str().unwrap_or("TCP") == protocol)
        .and_then(|p| p["containerPort"].as_i64())
}
