//! The answers: a service's endpoints for a port, a pod's single endpoint, a service's or an
//! address's profile; and the updates that move a stream from one answer to the next.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};

use crate::destination::names::ENDPOINT_WEIGHT;
use linkerd2_proxy_api::destination as pb;

use super::objects::{PodInfo, ServiceRef, TargetPort};
use super::{Config, Index, profile, tcp_address};

/// The current endpoints of one target.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Endpoints {
    /// False when the Service does not exist (any more).
    pub exists: bool,
    /// Set-level metric labels: `namespace` and `service`.
    pub labels: HashMap<String, String>,
    pub addrs: BTreeMap<SocketAddr, pb::WeightedAddr>,
}

/// The updates that take a client from `prev` (nothing yet: `None`) to `next`. Additions come
/// before removals so a changing set never looks empty in between.
pub fn diff(prev: Option<&Endpoints>, next: &Endpoints) -> Vec<pb::Update> {
    use pb::update::Update;
    let no_endpoints = |exists| Update::NoEndpoints(pb::NoEndpoints { exists });
    let mut updates = Vec::new();
    if !next.exists {
        if prev.is_none_or(|p| p.exists) {
            updates.push(no_endpoints(false));
        }
    } else if next.addrs.is_empty() {
        match prev {
            Some(p) if p.exists && !p.addrs.is_empty() => {
                updates.push(Update::Remove(pb::AddrSet {
                    addrs: p.addrs.keys().map(|a| tcp_address(*a)).collect(),
                }))
            }
            Some(p) if p.exists => {}
            _ => updates.push(no_endpoints(true)),
        }
    } else {
        let empty = BTreeMap::new();
        let before = prev.filter(|p| p.exists).map_or(&empty, |p| &p.addrs);
        let labels_changed = prev.is_none_or(|p| p.labels != next.labels);
        let added: Vec<pb::WeightedAddr> = next
            .addrs
            .iter()
            .filter(|(addr, wa)| labels_changed || before.get(*addr) != Some(*wa))
            .map(|(_, wa)| wa.clone())
            .collect();
        if !added.is_empty() {
            updates.push(Update::Add(pb::WeightedAddrSet {
                addrs: added,
                metric_labels: next.labels.clone(),
            }));
        }
        let removed: Vec<_> = before
            .keys()
            .filter(|a| !next.addrs.contains_key(*a))
            .map(|a| tcp_address(*a))
            .collect();
        if !removed.is_empty() {
            updates.push(Update::Remove(pb::AddrSet { addrs: removed }));
        }
    }
    updates
        .into_iter()
        .map(|u| pb::Update { update: Some(u) })
        .collect()
}

impl Index {
    /// A service's ready endpoints for `port` (a service port, resolved to its target port),
    /// only the one whose hostname is `instance` if given.
    pub(super) fn service_endpoints(
        &self,
        service: &ServiceRef,
        port: u16,
        instance: Option<&str>,
    ) -> Endpoints {
        let Some(svc) = self.services.get(service) else {
            return Endpoints::default();
        };
        let mut out = Endpoints {
            exists: true,
            labels: HashMap::from([
                ("namespace".to_string(), service.namespace.clone()),
                ("service".to_string(), service.name.clone()),
            ]),
            addrs: BTreeMap::new(),
        };
        // A port the service does not list targets the same port, as in Linkerd.
        let target = svc
            .ports
            .iter()
            .find(|p| p.port == port)
            .map_or(Target::Number(port), |p| match p.target {
                TargetPort::Number(n) => Target::Number(n),
                TargetPort::Named => Target::Named(&p.name),
            });
        for slice in self
            .slices
            .get(service)
            .into_iter()
            .flat_map(|s| s.values())
        {
            let slice_port = match target {
                Target::Number(n) => n,
                Target::Named(name) => match slice.ports.iter().find(|(n, _)| n == name) {
                    Some((_, p)) => *p,
                    None => continue,
                },
            };
            for ep in &slice.endpoints {
                // Terminating endpoints are never served; not-ready ones only when the service
                // publishes them (the EndpointSlice controller then marks them ready anyway).
                let served = if ep.terminating == Some(true) {
                    ep.ready == Some(true)
                } else {
                    ep.ready != Some(false) || svc.publish_not_ready
                };
                if !served {
                    continue;
                }
                if instance.is_some_and(|i| ep.hostname.as_deref() != Some(i)) {
                    continue;
                }
                // An endpoint naming a pod not seen yet is left out until the pod is, as
                // Linkerd does: its identity and protocol are not known.
                let pod = match &ep.pod {
                    Some(name) => match self.pods.get(&ServiceRef {
                        namespace: service.namespace.clone(),
                        name: name.clone(),
                    }) {
                        Some(pod) => Some(pod.as_ref()),
                        None => continue,
                    },
                    None => None,
                };
                for ip in &ep.addresses {
                    let addr = SocketAddr::new(*ip, slice_port);
                    let wa = weighted_addr(&self.config, addr, pod, ep.zone.as_deref());
                    out.addrs.insert(addr, wa);
                }
            }
        }
        out
    }

    /// A pod's own address, for a `Get` on a pod IP.
    pub(super) fn pod_endpoints(&self, ip: IpAddr, port: u16) -> Endpoints {
        let Some(pod) = self.by_pod_ip.get(&ip).and_then(|id| self.pods.get(id)) else {
            return Endpoints::default();
        };
        let addr = SocketAddr::new(ip, port);
        Endpoints {
            exists: true,
            labels: HashMap::from([("namespace".to_string(), pod.namespace.clone())]),
            addrs: BTreeMap::from([(addr, weighted_addr(&self.config, addr, Some(pod), None))]),
        }
    }

    /// A service's profile: the ServiceProfile in the client's namespace, else in the service's,
    /// else the default; opaque when the service's (or the default) opaque ports list `port`.
    pub(super) fn service_profile(
        &self,
        service: &ServiceRef,
        port: u16,
        context_ns: Option<&str>,
    ) -> pb::DestinationProfile {
        let fqn = format!(
            "{}.{}.svc.{}",
            service.name, service.namespace, self.config.cluster_domain
        );
        let lookup = |ns: &str| {
            self.profiles.get(&ServiceRef {
                namespace: ns.to_string(),
                name: fqn.clone(),
            })
        };
        let found = context_ns
            .and_then(lookup)
            .or_else(|| lookup(&service.namespace));
        let mut out = match found {
            Some(Some(spec)) => match profile::translate(spec, fqn.clone()) {
                Ok(p) => p,
                Err(err) => {
                    tracing::debug!(%fqn, %err, "invalid ServiceProfile; serving the default");
                    profile::default_profile(fqn)
                }
            },
            _ => profile::default_profile(fqn),
        };
        out.opaque_protocol = self.opaque_for_service(service, port);
        out
    }

    /// The profile of an address that is no service's: the pod behind it as `endpoint`, if any.
    pub(super) fn ip_profile(&self, ip: IpAddr, port: u16) -> pb::DestinationProfile {
        let pod = self.by_pod_ip.get(&ip).and_then(|id| self.pods.get(id));
        let addr = SocketAddr::new(ip, port);
        let opaque = match pod.and_then(|p| p.opaque_ports.as_ref()) {
            Some(ports) => ports.contains(port),
            None => self.config.default_opaque_ports.contains(port),
        };
        pb::DestinationProfile {
            opaque_protocol: opaque,
            retry_budget: Some(profile::default_retry_budget()),
            endpoint: Some(weighted_addr(
                &self.config,
                addr,
                pod.map(|p| p.as_ref()),
                None,
            )),
            ..Default::default()
        }
    }
}

#[derive(Clone, Copy)]
enum Target<'a> {
    Number(u16),
    Named(&'a str),
}

/// One endpoint as Linkerd describes it: metric labels; for a meshed pod (with the proxy
/// container) on a port its proxy intercepts, the HTTP/2 hint (opaque instead, with the proxy's
/// inbound port for opaque transport, on opaque ports) and the identity its certificate has.
pub fn weighted_addr(
    config: &Config,
    addr: SocketAddr,
    pod: Option<&PodInfo>,
    zone: Option<&str>,
) -> pb::WeightedAddr {
    let mut wa = pb::WeightedAddr {
        addr: Some(tcp_address(addr)),
        weight: ENDPOINT_WEIGHT,
        ..Default::default()
    };
    let Some(pod) = pod else {
        return wa;
    };
    wa.metric_labels = pod
        .labels
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    wa.metric_labels
        .insert("zone".to_string(), zone.unwrap_or_default().to_string());
    let port = addr.port();
    if !pod.meshed || pod.skip_inbound_ports.contains(port) {
        return wa;
    }
    let opaque = match &pod.opaque_ports {
        Some(ports) => ports.contains(port),
        None => config.default_opaque_ports.contains(port),
    };
    let mut hint = pb::ProtocolHint::default();
    if opaque {
        hint.protocol = Some(pb::protocol_hint::Protocol::Opaque(
            pb::protocol_hint::Opaque {},
        ));
        if !pod.meta_ports.contains(&port) {
            hint.opaque_transport = Some(pb::protocol_hint::OpaqueTransport {
                inbound_port: u32::from(pod.inbound_port),
            });
        }
    } else {
        hint.protocol = Some(pb::protocol_hint::Protocol::H2(pb::protocol_hint::H2 {}));
    }
    wa.protocol_hint = Some(hint);
    // A pod of another control plane cannot prove an identity from ours.
    if pod
        .control_plane_ns
        .as_deref()
        .is_none_or(|ns| ns == config.control_plane_ns)
    {
        let name = mesh_names::identity::workload(
            &pod.service_account,
            &pod.namespace,
            &config.control_plane_ns,
            &config.trust_domain,
        );
        let id = pb::tls_identity::DnsLikeIdentity { name };
        wa.tls_identity = Some(pb::TlsIdentity {
            strategy: Some(pb::tls_identity::Strategy::DnsLikeIdentity(id.clone())),
            server_name: Some(id),
        });
    }
    wa
}
