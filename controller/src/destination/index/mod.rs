//! The pure index: Services, EndpointSlices, Pods and ServiceProfiles in, answers and per-target
//! watch channels out. It does no I/O; the watchers feed it and the gRPC server subscribes to it,
//! as in Linkerd's policy controller.
//!
//! Every open stream holds a `watch::Receiver` of its target's whole current answer. An event
//! recomputes the answers of the targets it touches and sends only those that changed, so a slow
//! client never queues updates: it reads the latest state when it is ready.

mod endpoints;
mod objects;
pub mod profile;
mod target;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use linkerd2_proxy_api::destination as pb;
use tokio::sync::watch;

pub use endpoints::{Endpoints, diff};
pub use objects::{PodInfo, ServiceInfo, ServiceRef, SliceInfo};
pub use target::{Authority, LookupError, context_namespace};

use crate::destination::ports::PortSet;
use profile::ProfileSpec;

/// What the answers depend on besides the objects.
#[derive(Clone, Debug)]
pub struct Config {
    pub cluster_domain: String,
    pub trust_domain: String,
    pub control_plane_ns: String,
    pub default_opaque_ports: PortSet,
}

pub type EndpointsRx = watch::Receiver<Arc<Endpoints>>;
pub type ProfileRx = watch::Receiver<Arc<pb::DestinationProfile>>;

type Watches<T> = HashMap<(u16, Option<String>), watch::Sender<Arc<T>>>;

/// The index. Callers hold it behind a lock; every method is quick and never blocks.
pub struct Index {
    config: Config,
    services: HashMap<ServiceRef, ServiceInfo>,
    by_cluster_ip: HashMap<IpAddr, ServiceRef>,
    /// Slices by service, then by slice name.
    slices: HashMap<ServiceRef, BTreeMap<String, SliceInfo>>,
    /// The service each slice (by namespace and name) belongs to.
    slice_service: HashMap<ServiceRef, ServiceRef>,
    pods: HashMap<ServiceRef, Arc<PodInfo>>,
    by_pod_ip: HashMap<IpAddr, ServiceRef>,
    /// Which services' slices name a pod, and how many times, so a pod change refreshes them.
    pod_services: HashMap<ServiceRef, HashMap<String, u32>>,
    /// ServiceProfiles by namespace and name; `None` when one cannot be read.
    profiles: HashMap<ServiceRef, Option<ProfileSpec>>,
    /// Get streams by service, then port and instance (hostname).
    endpoint_watches: HashMap<ServiceRef, Watches<Endpoints>>,
    /// Get streams on a pod IP.
    ip_endpoint_watches: BTreeMap<(IpAddr, u16), watch::Sender<Arc<Endpoints>>>,
    /// GetProfile streams by service, then port and the client's namespace.
    profile_watches: HashMap<ServiceRef, Watches<pb::DestinationProfile>>,
    /// GetProfile streams on an IP that is not a service's.
    ip_profile_watches: BTreeMap<(IpAddr, u16), watch::Sender<Arc<pb::DestinationProfile>>>,
    /// How many watches there were after the last sweep of closed ones.
    watches_after_sweep: usize,
}

impl Index {
    pub fn new(config: Config) -> Index {
        Index {
            config,
            services: HashMap::new(),
            by_cluster_ip: HashMap::new(),
            slices: HashMap::new(),
            slice_service: HashMap::new(),
            pods: HashMap::new(),
            by_pod_ip: HashMap::new(),
            pod_services: HashMap::new(),
            profiles: HashMap::new(),
            endpoint_watches: HashMap::new(),
            ip_endpoint_watches: BTreeMap::new(),
            profile_watches: HashMap::new(),
            ip_profile_watches: BTreeMap::new(),
            watches_after_sweep: 0,
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    // === Objects in ===

    pub fn apply_service(&mut self, svc: &k8s_openapi::api::core::v1::Service) {
        let Some((id, info)) = ServiceInfo::from_service(svc) else {
            return;
        };
        if self.services.get(&id) == Some(&info) {
            return;
        }
        self.remove_cluster_ips(&id);
        for ip in &info.cluster_ips {
            self.by_cluster_ip.insert(*ip, id.clone());
        }
        self.services.insert(id.clone(), info);
        self.refresh_service(&id);
    }

    pub fn delete_service(&mut self, id: &ServiceRef) {
        self.remove_cluster_ips(id);
        if self.services.remove(id).is_some() {
            self.refresh_service(id);
        }
    }

    pub fn apply_slice(&mut self, slice: &k8s_openapi::api::discovery::v1::EndpointSlice) {
        let Some((id, info)) = SliceInfo::from_slice(slice) else {
            return;
        };
        let service = info.service.clone();
        let old = self.remove_slice_entry(&id);
        if let Some((old_service, old)) = &old
            && *old_service == service
            && *old == info
        {
            self.insert_slice_entry(id, info);
            return;
        }
        self.insert_slice_entry(id, info);
        if let Some((old_service, _)) = old.filter(|(s, _)| *s != service) {
            self.refresh_service(&old_service);
        }
        self.refresh_service(&service);
    }

    pub fn delete_slice(&mut self, id: &ServiceRef) {
        if let Some((service, _)) = self.remove_slice_entry(id) {
            self.refresh_service(&service);
        }
    }

    pub fn apply_pod(&mut self, pod: &k8s_openapi::api::core::v1::Pod) {
        let Some(info) = PodInfo::from_pod(pod) else {
            return;
        };
        let id = ServiceRef {
            namespace: info.namespace.clone(),
            name: info.name.clone(),
        };
        if self.pods.get(&id).map(|p| p.as_ref()) == Some(&info) {
            return;
        }
        let mut ips: Vec<IpAddr> = info.ips.clone();
        if let Some(old) = self.pods.get(&id) {
            ips.extend(old.ips.iter().copied());
        }
        self.remove_pod_ips(&id);
        for ip in &info.ips {
            self.by_pod_ip.insert(*ip, id.clone());
        }
        self.pods.insert(id.clone(), Arc::new(info));
        self.refresh_pod(&id, &ips);
    }

    pub fn delete_pod(&mut self, id: &ServiceRef) {
        let ips = self.pods.get(id).map(|p| p.ips.clone()).unwrap_or_default();
        self.remove_pod_ips(id);
        if self.pods.remove(id).is_some() {
            self.refresh_pod(id, &ips);
        }
    }

    /// A ServiceProfile's `spec` (as JSON); one that cannot be read is served as the default.
    pub fn apply_profile(&mut self, id: ServiceRef, spec: Option<&serde_json::Value>) {
        let parsed = match spec.map(|s| serde_json::from_value::<ProfileSpec>(s.clone())) {
            None => Some(ProfileSpec::default()),
            Some(Ok(spec)) => Some(spec),
            Some(Err(err)) => {
                tracing::warn!(namespace = %id.namespace, name = %id.name, %err, "cannot read ServiceProfile; serving the default profile");
                None
            }
        };
        if self.profiles.get(&id) == Some(&parsed) {
            return;
        }
        let service = target::service_name(&id.name, &self.config.cluster_domain);
        self.profiles.insert(id, parsed);
        if let Some((service, _)) = service {
            self.refresh_profiles(&service);
        }
    }

    pub fn delete_profile(&mut self, id: &ServiceRef) {
        if self.profiles.remove(id).is_some()
            && let Some((service, _)) = target::service_name(&id.name, &self.config.cluster_domain)
        {
            self.refresh_profiles(&service);
        }
    }

    // === Subscriptions ===

    /// The endpoints of a `Get` path, as a watch of their current state.
    pub fn subscribe_endpoints(&mut self, path: &str) -> Result<EndpointsRx, LookupError> {
        self.maybe_sweep();
        let (service, instance, port) = match target::parse(path, &self.config.cluster_domain)? {
            Authority::Ip(ip, port) => match self.by_cluster_ip.get(&ip) {
                Some(service) => (service.clone(), None, port),
                None if self.by_pod_ip.contains_key(&ip) => {
                    let rx = match self.ip_endpoint_watches.get(&(ip, port)) {
                        Some(tx) => tx.subscribe(),
                        None => {
                            let (tx, rx) = watch::channel(Arc::new(self.pod_endpoints(ip, port)));
                            self.ip_endpoint_watches.insert((ip, port), tx);
                            rx
                        }
                    };
                    return Ok(rx);
                }
                None => {
                    return Err(LookupError::InvalidArgument(format!(
                        "IP queries not supported by Get API: host={ip}"
                    )));
                }
            },
            Authority::Name {
                service,
                instance,
                port,
            } => (service, instance, port),
        };
        match self.services.get(&service) {
            None => {
                return Err(LookupError::NotFound(format!(
                    "Service {}.{} not found",
                    service.name, service.namespace
                )));
            }
            Some(svc) if svc.external_name => {
                return Err(LookupError::InvalidArgument(format!(
                    "Invalid authority: {path}"
                )));
            }
            Some(_) => {}
        }
        let key = (port, instance);
        if let Some(tx) = self
            .endpoint_watches
            .get(&service)
            .and_then(|w| w.get(&key))
        {
            return Ok(tx.subscribe());
        }
        let current = self.service_endpoints(&service, key.0, key.1.as_deref());
        let (tx, rx) = watch::channel(Arc::new(current));
        self.endpoint_watches
            .entry(service)
            .or_default()
            .insert(key, tx);
        Ok(rx)
    }

    /// The profile of a `GetProfile` path, as a watch of its current state.
    pub fn subscribe_profile(
        &mut self,
        path: &str,
        context_token: &str,
    ) -> Result<ProfileRx, LookupError> {
        self.maybe_sweep();
        let (service, port) = match target::parse(path, &self.config.cluster_domain)? {
            Authority::Ip(ip, port) => match self.by_cluster_ip.get(&ip) {
                Some(service) => (service.clone(), port),
                None => {
                    let rx = match self.ip_profile_watches.get(&(ip, port)) {
                        Some(tx) => tx.subscribe(),
                        None => {
                            let (tx, rx) = watch::channel(Arc::new(self.ip_profile(ip, port)));
                            self.ip_profile_watches.insert((ip, port), tx);
                            rx
                        }
                    };
                    return Ok(rx);
                }
            },
            // A pod's DNS name (`<hostname>.<svc>.<ns>.svc…`, as a StatefulSet's pods have) is
            // served its service's profile for the same port and client, so a port the
            // service marks opaque is opaque by either name.
            Authority::Name { service, port, .. } => (service, port),
        };
        self.subscribe_profile_for(service, port, context_namespace(context_token))
    }

    fn subscribe_profile_for(
        &mut self,
        service: ServiceRef,
        port: u16,
        context_ns: Option<String>,
    ) -> Result<ProfileRx, LookupError> {
        let key = (port, context_ns);
        if let Some(tx) = self.profile_watches.get(&service).and_then(|w| w.get(&key)) {
            return Ok(tx.subscribe());
        }
        let current = self.service_profile(&service, key.0, key.1.as_deref());
        let (tx, rx) = watch::channel(Arc::new(current));
        self.profile_watches
            .entry(service)
            .or_default()
            .insert(key, tx);
        Ok(rx)
    }

    /// How many targets have open streams.
    pub fn watch_count(&self) -> usize {
        self.endpoint_watches
            .values()
            .map(HashMap::len)
            .sum::<usize>()
            + self
                .profile_watches
                .values()
                .map(HashMap::len)
                .sum::<usize>()
            + self.ip_endpoint_watches.len()
            + self.ip_profile_watches.len()
    }

    // === Recomputing ===

    fn refresh_service(&mut self, service: &ServiceRef) {
        if let Some(watches) = self.endpoint_watches.get(service) {
            for ((port, instance), tx) in watches {
                if tx.receiver_count() > 0 {
                    let next = self.service_endpoints(service, *port, instance.as_deref());
                    publish(tx, next);
                }
            }
        }
        self.refresh_profiles(service);
    }

    fn refresh_profiles(&mut self, service: &ServiceRef) {
        if let Some(watches) = self.profile_watches.get(service) {
            for ((port, ns), tx) in watches {
                if tx.receiver_count() > 0 {
                    publish(tx, self.service_profile(service, *port, ns.as_deref()));
                }
            }
        }
    }

    fn refresh_pod(&mut self, pod: &ServiceRef, ips: &[IpAddr]) {
        let services: Vec<String> = self
            .pod_services
            .get(pod)
            .map(|s| s.keys().cloned().collect())
            .unwrap_or_default();
        for name in services {
            self.refresh_service(&ServiceRef {
                namespace: pod.namespace.clone(),
                name,
            });
        }
        let ips: HashSet<IpAddr> = ips.iter().copied().collect();
        for ip in ips {
            let range = (ip, 0)..=(ip, u16::MAX);
            for (&(ip, port), tx) in self.ip_endpoint_watches.range(range.clone()) {
                publish(tx, self.pod_endpoints(ip, port));
            }
            for (&(ip, port), tx) in self.ip_profile_watches.range(range) {
                publish(tx, self.ip_profile(ip, port));
            }
        }
    }

    /// Drops the watches no stream holds any more, once their number has doubled since the last
    /// sweep, so lookups of names that come and go cannot grow the index without bound.
    fn maybe_sweep(&mut self) {
        let count = self.watch_count();
        if count < 2 * self.watches_after_sweep + 64 {
            return;
        }
        for watches in self.endpoint_watches.values_mut() {
            watches.retain(|_, tx| tx.receiver_count() > 0);
        }
        self.endpoint_watches.retain(|_, w| !w.is_empty());
        for watches in self.profile_watches.values_mut() {
            watches.retain(|_, tx| tx.receiver_count() > 0);
        }
        self.profile_watches.retain(|_, w| !w.is_empty());
        self.ip_endpoint_watches
            .retain(|_, tx| tx.receiver_count() > 0);
        self.ip_profile_watches
            .retain(|_, tx| tx.receiver_count() > 0);
        self.watches_after_sweep = self.watch_count();
    }

    // === Bookkeeping ===

    fn remove_cluster_ips(&mut self, id: &ServiceRef) {
        if let Some(old) = self.services.get(id) {
            for ip in &old.cluster_ips {
                if self.by_cluster_ip.get(ip) == Some(id) {
                    self.by_cluster_ip.remove(ip);
                }
            }
        }
    }

    fn remove_pod_ips(&mut self, id: &ServiceRef) {
        if let Some(old) = self.pods.get(id) {
            for ip in &old.ips {
                if self.by_pod_ip.get(ip) == Some(id) {
                    self.by_pod_ip.remove(ip);
                }
            }
        }
    }

    fn remove_slice_entry(&mut self, id: &ServiceRef) -> Option<(ServiceRef, SliceInfo)> {
        let service = self.slice_service.remove(id)?;
        let slices = self.slices.get_mut(&service)?;
        let old = slices.remove(&id.name)?;
        if slices.is_empty() {
            self.slices.remove(&service);
        }
        for pod in old.endpoints.iter().filter_map(|e| e.pod.as_ref()) {
            let key = ServiceRef {
                namespace: service.namespace.clone(),
                name: pod.clone(),
            };
            if let Some(counts) = self.pod_services.get_mut(&key) {
                if let Some(n) = counts.get_mut(&service.name) {
                    *n -= 1;
                    if *n == 0 {
                        counts.remove(&service.name);
                    }
                }
                if counts.is_empty() {
                    self.pod_services.remove(&key);
                }
            }
        }
        Some((service, old))
    }

    fn insert_slice_entry(&mut self, id: ServiceRef, info: SliceInfo) {
        let service = info.service.clone();
        for pod in info.endpoints.iter().filter_map(|e| e.pod.as_ref()) {
            let key = ServiceRef {
                namespace: service.namespace.clone(),
                name: pod.clone(),
            };
            *self
                .pod_services
                .entry(key)
                .or_default()
                .entry(service.name.clone())
                .or_default() += 1;
        }
        self.slice_service.insert(id.clone(), service.clone());
        self.slices
            .entry(service)
            .or_default()
            .insert(id.name, info);
    }

    fn opaque_for_service(&self, service: &ServiceRef, port: u16) -> bool {
        match self
            .services
            .get(service)
            .and_then(|s| s.opaque_ports.as_ref())
        {
            Some(ports) => ports.contains(port),
            None => self.config.default_opaque_ports.contains(port),
        }
    }
}

/// Sends `next` if it differs from what the watch holds.
fn publish<T: PartialEq>(tx: &watch::Sender<Arc<T>>, next: T) {
    tx.send_if_modified(|current| {
        if **current == next {
            false
        } else {
            *current = Arc::new(next);
            true
        }
    });
}

/// An address as the proxy API writes it.
pub fn tcp_address(addr: SocketAddr) -> linkerd2_proxy_api::net::TcpAddress {
    addr.into()
}
