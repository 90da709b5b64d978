//! The parts of Services, EndpointSlices and Pods that answers depend on, extracted once per
//! event so the index keeps small values and can tell when an update changes nothing.

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::destination::names;
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::destination::ports::PortSet;

/// A Service by namespace and name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServiceRef {
    pub namespace: String,
    pub name: String,
}

/// What the index keeps of a Service.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ServiceInfo {
    pub cluster_ips: Vec<IpAddr>,
    pub ports: Vec<ServicePort>,
    pub publish_not_ready: bool,
    pub external_name: bool,
    /// `config.linkerd.io/opaque-ports` on the Service, if set (even to nothing).
    pub opaque_ports: Option<PortSet>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ServicePort {
    pub port: u16,
    pub name: String,
    pub target: TargetPort,
}

/// Where a service port sends traffic on its endpoints.
#[derive(Clone, Debug, PartialEq)]
pub enum TargetPort {
    Number(u16),
    /// A named container port; EndpointSlices resolve it under the service port's name.
    Named,
}

/// What the index keeps of an EndpointSlice.
#[derive(Clone, Debug, PartialEq)]
pub struct SliceInfo {
    pub service: ServiceRef,
    /// The slice's ports by (service port) name.
    pub ports: Vec<(String, u16)>,
    pub endpoints: Vec<SliceEndpoint>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct SliceEndpoint {
    pub addresses: Vec<IpAddr>,
    pub ready: Option<bool>,
    pub terminating: Option<bool>,
    pub hostname: Option<String>,
    /// The Pod named by `targetRef`, if it names one.
    pub pod: Option<String>,
    pub zone: Option<String>,
}

/// What the index keeps of a Pod.
#[derive(Clone, Debug, PartialEq)]
pub struct PodInfo {
    pub namespace: String,
    pub name: String,
    pub ips: Vec<IpAddr>,
    pub service_account: String,
    /// Per-address metric labels except `zone`: `pod`, the owner, `serviceaccount`, ...
    pub labels: BTreeMap<String, String>,
    /// Has the proxy container.
    pub meshed: bool,
    pub control_plane_ns: Option<String>,
    pub inbound_port: u16,
    /// The proxy's admin and control ports, never sent opaque transport.
    pub meta_ports: Vec<u16>,
    /// `config.linkerd.io/opaque-ports`, named ports resolved.
    pub opaque_ports: Option<PortSet>,
    pub skip_inbound_ports: PortSet,
}

impl ServiceInfo {
    pub fn from_service(svc: &Service) -> Option<(ServiceRef, ServiceInfo)> {
        let id = object_ref(&svc.metadata)?;
        let spec = svc.spec.clone().unwrap_or_default();
        let mut cluster_ips: Vec<IpAddr> = spec
            .cluster_ips
            .unwrap_or_default()
            .iter()
            .chain(spec.cluster_ip.iter())
            .filter_map(|ip| ip.parse().ok())
            .collect();
        cluster_ips.sort();
        cluster_ips.dedup();
        let ports = spec
            .ports
            .unwrap_or_default()
            .into_iter()
            .filter_map(|p| {
                let port = u16::try_from(p.port).ok()?;
                let target = match p.target_port {
                    Some(IntOrString::Int(n)) if n > 0 => {
                        TargetPort::Number(u16::try_from(n).ok()?)
                    }
                    Some(IntOrString::String(s)) if !s.is_empty() => match s.parse::<u16>() {
                        Ok(n) => TargetPort::Number(n),
                        Err(_) => TargetPort::Named,
                    },
                    _ => TargetPort::Number(port),
                };
                Some(ServicePort {
                    port,
                    name: p.name.unwrap_or_default(),
                    target,
                })
            })
            .collect();
        let opaque_ports = annotation(&svc.metadata, names::OPAQUE_PORTS_ANNOTATION)
            .map(|text| PortSet::parse_numeric(text).unwrap_or_default());
        Some((
            id,
            ServiceInfo {
                cluster_ips,
                ports,
                publish_not_ready: spec.publish_not_ready_addresses.unwrap_or(false),
                external_name: spec.type_.as_deref() == Some("ExternalName"),
                opaque_ports,
            },
        ))
    }
}

impl SliceInfo {
    pub fn from_slice(slice: &EndpointSlice) -> Option<(ServiceRef, SliceInfo)> {
        let id = object_ref(&slice.metadata)?;
        let service = ServiceRef {
            namespace: id.namespace.clone(),
            name: slice
                .metadata
                .labels
                .as_ref()?
                .get(names::SERVICE_NAME_LABEL)?
                .clone(),
        };
        let ports = slice
            .ports
            .iter()
            .flatten()
            .filter_map(|p| {
                let port = u16::try_from(p.port?).ok()?;
                Some((p.name.clone().unwrap_or_default(), port))
            })
            .collect();
        let endpoints = slice
            .endpoints
            .iter()
            .map(|e| {
                let conditions = e.conditions.clone().unwrap_or_default();
                SliceEndpoint {
                    addresses: e.addresses.iter().filter_map(|a| a.parse().ok()).collect(),
                    ready: conditions.ready,
                    terminating: conditions.terminating,
                    hostname: e.hostname.clone(),
                    pod: e
                        .target_ref
                        .as_ref()
                        .filter(|r| r.kind.as_deref() == Some("Pod"))
                        .and_then(|r| r.name.clone()),
                    zone: e.zone.clone(),
                }
            })
            .collect();
        Some((
            id,
            SliceInfo {
                service,
                ports,
                endpoints,
            },
        ))
    }
}

impl PodInfo {
    pub fn from_pod(pod: &Pod) -> Option<PodInfo> {
        let id = object_ref(&pod.metadata)?;
        let spec = pod.spec.clone().unwrap_or_default();
        let status = pod.status.clone().unwrap_or_default();
        let mut ips: Vec<IpAddr> = status
            .pod_ips
            .iter()
            .flatten()
            .filter_map(|ip| ip.ip.parse().ok())
            .chain(status.pod_ip.iter().filter_map(|ip| ip.parse().ok()))
            .collect();
        ips.sort();
        ips.dedup();
        let service_account = spec
            .service_account_name
            .clone()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "default".to_string());
        let pod_labels = pod.metadata.labels.clone().unwrap_or_default();
        let control_plane_ns = pod_labels.get(names::CONTROL_PLANE_NS_LABEL).cloned();

        let mut labels = BTreeMap::new();
        labels.insert("pod".to_string(), id.name.clone());
        labels.insert("serviceaccount".to_string(), service_account.clone());
        let hash = pod_labels.get(names::POD_TEMPLATE_HASH_LABEL);
        if let Some((kind, name)) = owner(pod, hash.map(String::as_str)) {
            labels.insert(kind, name);
        }
        if let Some(hash) = hash.filter(|h| !h.is_empty()) {
            labels.insert("pod_template_hash".to_string(), hash.clone());
        }
        if let Some(ns) = &control_plane_ns {
            labels.insert("control_plane_ns".to_string(), ns.clone());
        }

        let proxy = spec
            .containers
            .iter()
            .chain(spec.init_containers.iter().flatten())
            .find(|c| c.name == names::PROXY_CONTAINER);
        let env_port = |var: &str, default: u16| {
            proxy
                .and_then(|c| c.env.as_ref())
                .and_then(|env| env.iter().find(|e| e.name == var))
                .and_then(|e| e.value.as_deref())
                .and_then(|v| v.parse::<std::net::SocketAddr>().ok())
                .map_or(default, |a| a.port())
        };
        let named = |name: &str| {
            spec.containers
                .iter()
                .flat_map(|c| c.ports.iter().flatten())
                .find(|p| p.name.as_deref() == Some(name))
                .and_then(|p| u16::try_from(p.container_port).ok())
        };
        let opaque_ports = annotation(&pod.metadata, names::OPAQUE_PORTS_ANNOTATION)
            .map(|text| PortSet::parse(text, named).unwrap_or_default());
        let skip_inbound_ports = annotation(&pod.metadata, names::SKIP_INBOUND_PORTS_ANNOTATION)
            .map(|text| PortSet::parse(text, named).unwrap_or_default())
            .unwrap_or_default();
        Some(PodInfo {
            namespace: id.namespace,
            name: id.name,
            ips,
            service_account,
            labels,
            meshed: proxy.is_some(),
            control_plane_ns,
            inbound_port: env_port(
                names::INBOUND_LISTEN_ADDR_ENV,
                mesh_names::ports::PROXY_INBOUND,
            ),
            meta_ports: vec![
                env_port(names::ADMIN_LISTEN_ADDR_ENV, mesh_names::ports::PROXY_ADMIN),
                env_port(
                    names::CONTROL_LISTEN_ADDR_ENV,
                    mesh_names::ports::PROXY_CONTROL,
                ),
            ],
            opaque_ports,
            skip_inbound_ports,
        })
    }
}

/// The workload label Linkerd gives a pod's metrics: its controller's kind, lowercased, and name;
/// a Deployment's pods (owned by a ReplicaSet named `<deployment>-<pod-template-hash>`) are
/// labelled with the Deployment, as Linkerd resolves it.
fn owner(pod: &Pod, template_hash: Option<&str>) -> Option<(String, String)> {
    let refs = pod.metadata.owner_references.as_ref()?;
    let owner = refs
        .iter()
        .find(|r| r.controller == Some(true))
        .or(refs.first())?;
    if owner.kind == "ReplicaSet"
        && let Some(deployment) = template_hash
            .filter(|h| !h.is_empty())
            .and_then(|h| owner.name.strip_suffix(h))
            .and_then(|n| n.strip_suffix('-'))
    {
        return Some(("deployment".to_string(), deployment.to_string()));
    }
    Some((owner.kind.to_ascii_lowercase(), owner.name.clone()))
}

fn object_ref(
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
) -> Option<ServiceRef> {
    Some(ServiceRef {
        namespace: meta.namespace.clone()?,
        name: meta.name.clone()?,
    })
}

fn annotation<'a>(
    meta: &'a k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    key: &str,
) -> Option<&'a str> {
    meta.annotations.as_ref()?.get(key).map(String::as_str)
}
