//! The pure policy index: Pods and the `policy.linkerd.io` resources in, per-port answers and
//! their watch channels out. It does no I/O; the watchers feed it and the gRPC server subscribes
//! to it, as in Linkerd's policy controller.
//!
//! Every open `WatchPort` stream holds a `watch::Receiver` of its pod port's whole answer. A
//! change recomputes the answers of the watched ports it can touch (a pod's own ports; a
//! namespace's ports for its Servers, authorizations and policies; every watched port for an
//! authentication, which policies in any namespace may name) and sends only those that changed.

mod answer;
pub mod net;
mod resources;
pub mod routes;
mod selector;
mod server;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;
use kube::api::DynamicObject;
use mesh_names::policy::DefaultInboundPolicy;
use tokio::sync::watch;

pub use answer::{
    Authentication, Authorization, AuthzRef, DETECT_TIMEOUT, IdentityMatch, InboundRoute,
    InboundServer, Protocol, ServerRef,
};
pub use net::{Net, NetworkMatch};
pub use resources::IdentityDomain;

use crate::destination::ports::PortSet;
use resources::{AuthzPolicy, Invalid, PolicyPod, Server, ServerAuthz};
use routes::{Route, RouteKind, RouteRef};

/// What the answers depend on besides the objects.
#[derive(Clone, Debug)]
pub struct Config {
    /// `--cluster-networks`: whom `cluster-*` policies admit, and the networks of a
    /// `ServerAuthorization` that names none.
    pub cluster_networks: Vec<Net>,
    /// `--default-inbound-policy`, for pods that do not set their own.
    pub default_policy: DefaultInboundPolicy,
    /// `--default-opaque-ports`, for pods without `config.linkerd.io/opaque-ports`.
    pub default_opaque_ports: PortSet,
    pub identity: IdentityDomain,
}

/// The kinds the index reads: the `policy.linkerd.io` resources, and the Gateway API routes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Server,
    ServerAuthorization,
    AuthorizationPolicy,
    MeshTlsAuthentication,
    NetworkAuthentication,
    /// `policy.linkerd.io` `HTTPRoute`.
    HttpRoute,
    /// `gateway.networking.k8s.io` `HTTPRoute`, if its CRD is installed.
    GatewayHttpRoute,
    /// `gateway.networking.k8s.io` `GRPCRoute`, if its CRD is installed.
    GatewayGrpcRoute,
}

impl Kind {
    pub const ALL: [Kind; 8] = [
        Kind::Server,
        Kind::ServerAuthorization,
        Kind::AuthorizationPolicy,
        Kind::MeshTlsAuthentication,
        Kind::NetworkAuthentication,
        Kind::HttpRoute,
        Kind::GatewayHttpRoute,
        Kind::GatewayGrpcRoute,
    ];

    pub fn group(self) -> &'static str {
        match self.route() {
            Some(route) => route.group(),
            None => crate::policy::GROUP,
        }
    }

    /// The route kind, for the kinds that are routes.
    pub fn route(self) -> Option<RouteKind> {
        match self {
            Kind::HttpRoute => Some(RouteKind::PolicyHttp),
            Kind::GatewayHttpRoute => Some(RouteKind::GatewayHttp),
            Kind::GatewayGrpcRoute => Some(RouteKind::GatewayGrpc),
            _ => None,
        }
    }

    /// The versions an optional kind may be served at, preferred first: the Gateway API's CRDs
    /// come from elsewhere, at one of several releases. (The CRDs `mesh install` renders are
    /// watched at their storage version, [`Kind::resource`]'s; the API server serves objects
    /// created at other versions at it.)
    pub fn versions(self) -> &'static [&'static str] {
        match self {
            Kind::GatewayHttpRoute => &["v1", "v1beta1"],
            Kind::GatewayGrpcRoute => &["v1", "v1alpha2"],
            _ => &[],
        }
    }

    /// Whether the kind's CRD may be missing: then it is not watched.
    pub fn is_optional(self) -> bool {
        matches!(self, Kind::GatewayHttpRoute | Kind::GatewayGrpcRoute)
    }

    /// The kind, the preferred version and the plural.
    pub fn resource(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Kind::HttpRoute => ("HTTPRoute", "v1beta3", "httproutes"),
            Kind::GatewayHttpRoute => ("HTTPRoute", "v1", "httproutes"),
            Kind::GatewayGrpcRoute => ("GRPCRoute", "v1", "grpcroutes"),
            Kind::Server => ("Server", "v1beta3", "servers"),
            Kind::ServerAuthorization => ("ServerAuthorization", "v1beta1", "serverauthorizations"),
            Kind::AuthorizationPolicy => {
                ("AuthorizationPolicy", "v1alpha1", "authorizationpolicies")
            }
            Kind::MeshTlsAuthentication => (
                "MeshTLSAuthentication",
                "v1alpha1",
                "meshtlsauthentications",
            ),
            Kind::NetworkAuthentication => (
                "NetworkAuthentication",
                "v1alpha1",
                "networkauthentications",
            ),
        }
    }

    /// Authentications may be named by policies of any namespace.
    fn is_authentication(self) -> bool {
        matches!(
            self,
            Kind::MeshTlsAuthentication | Kind::NetworkAuthentication
        )
    }
}

/// A lookup the server refuses.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    /// The pod is not (or no longer) known.
    #[error("unknown server: pod {namespace}/{pod} not found")]
    NotFound { namespace: String, pod: String },
}

pub type ServerRx = watch::Receiver<Arc<InboundServer>>;
type PortWatches = BTreeMap<u16, watch::Sender<Arc<InboundServer>>>;

/// The policy resources of one namespace, by name (so that conflicts resolve by name).
#[derive(Default)]
struct Namespace {
    servers: BTreeMap<String, Server>,
    server_authzs: BTreeMap<String, ServerAuthz>,
    policies: BTreeMap<String, AuthzPolicy>,
    mesh_tls: BTreeMap<String, Vec<IdentityMatch>>,
    networks: BTreeMap<String, Vec<NetworkMatch>>,
    routes: BTreeMap<RouteRef, Route>,
}

impl Namespace {
    fn is_empty(&self) -> bool {
        self.servers.is_empty()
            && self.server_authzs.is_empty()
            && self.policies.is_empty()
            && self.mesh_tls.is_empty()
            && self.networks.is_empty()
            && self.routes.is_empty()
    }
}

/// The index. Callers hold it behind a lock; every method is quick and never blocks.
pub struct Index {
    config: Config,
    /// Pods by namespace, then name.
    pods: HashMap<String, HashMap<String, PolicyPod>>,
    namespaces: HashMap<String, Namespace>,
    /// Open WatchPort streams by namespace, pod and port.
    watches: HashMap<String, HashMap<String, PortWatches>>,
    /// How many watches there were after the last sweep of closed ones.
    watches_after_sweep: usize,
}

impl Index {
    pub fn new(config: Config) -> Index {
        Index {
            config,
            pods: HashMap::new(),
            namespaces: HashMap::new(),
            watches: HashMap::new(),
            watches_after_sweep: 0,
        }
    }

    // === Objects in ===

    pub fn apply_pod(&mut self, pod: &Pod) {
        let Some((ns, name, info)) = PolicyPod::from_pod(pod) else {
            return;
        };
        let pods = self.pods.entry(ns.clone()).or_default();
        if pods.get(&name) == Some(&info) {
            return;
        }
        pods.insert(name.clone(), info);
        self.refresh_pod(&ns, &name);
    }

    pub fn delete_pod(&mut self, ns: &str, name: &str) {
        if let Some(pods) = self.pods.get_mut(ns) {
            pods.remove(name);
            if pods.is_empty() {
                self.pods.remove(ns);
            }
        }
        // Its streams end: the proxy asks again and learns the pod is gone.
        if let Some(pods) = self.watches.get_mut(ns) {
            pods.remove(name);
            if pods.is_empty() {
                self.watches.remove(ns);
            }
        }
    }

    /// A new or changed object of `kind`. One that cannot be read counts as absent, so that a
    /// broken policy never admits more than before.
    pub fn apply(&mut self, kind: Kind, obj: &DynamicObject) {
        let (Some(ns), Some(name)) = (&obj.metadata.namespace, &obj.metadata.name) else {
            return;
        };
        let ids = &self.config.identity;
        let entry = self.namespaces.entry(ns.clone()).or_default();
        let warn = |err: &Invalid| {
            tracing::warn!(kind = kind.resource().0, namespace = %ns, %name, %err, "ignoring invalid resource");
        };
        let changed = match kind {
            Kind::Server => set(&mut entry.servers, name, Server::from_object(obj), warn),
            Kind::ServerAuthorization => set(
                &mut entry.server_authzs,
                name,
                ServerAuthz::from_object(obj, ids),
                warn,
            ),
            Kind::AuthorizationPolicy => set(
                &mut entry.policies,
                name,
                AuthzPolicy::from_object(obj),
                warn,
            ),
            Kind::MeshTlsAuthentication => set(
                &mut entry.mesh_tls,
                name,
                resources::mesh_tls_authentication(obj, ids),
                warn,
            ),
            Kind::NetworkAuthentication => set(
                &mut entry.networks,
                name,
                resources::network_authentication(obj),
                warn,
            ),
            Kind::HttpRoute | Kind::GatewayHttpRoute | Kind::GatewayGrpcRoute => {
                let Some(route) = kind.route() else {
                    return;
                };
                let reference = RouteRef {
                    kind: route,
                    name: name.clone(),
                };
                set(
                    &mut entry.routes,
                    &reference,
                    Route::from_object(route, obj),
                    warn,
                )
            }
        };
        if self.namespaces.get(ns).is_some_and(Namespace::is_empty) {
            self.namespaces.remove(ns);
        }
        if changed {
            self.refresh_after(kind, ns);
        }
    }

    pub fn delete(&mut self, kind: Kind, ns: &str, name: &str) {
        let Some(entry) = self.namespaces.get_mut(ns) else {
            return;
        };
        let removed = match kind {
            Kind::Server => entry.servers.remove(name).is_some(),
            Kind::ServerAuthorization => entry.server_authzs.remove(name).is_some(),
            Kind::AuthorizationPolicy => entry.policies.remove(name).is_some(),
            Kind::MeshTlsAuthentication => entry.mesh_tls.remove(name).is_some(),
            Kind::NetworkAuthentication => entry.networks.remove(name).is_some(),
            Kind::HttpRoute | Kind::GatewayHttpRoute | Kind::GatewayGrpcRoute => {
                kind.route().is_some_and(|route| {
                    let reference = RouteRef {
                        kind: route,
                        name: name.to_string(),
                    };
                    entry.routes.remove(&reference).is_some()
                })
            }
        };
        if entry.is_empty() {
            self.namespaces.remove(ns);
        }
        if removed {
            self.refresh_after(kind, ns);
        }
    }

    // === Lookups ===

    /// The current answer for a pod's port (`GetPort`).
    pub fn get_port(&self, ns: &str, pod: &str, port: u16) -> Result<InboundServer, LookupError> {
        let info = self.pod(ns, pod)?;
        Ok(self.inbound_server(ns, info, port))
    }

    /// A watch of the answer for a pod's port (`WatchPort`). It closes when the pod is deleted.
    pub fn watch_port(&mut self, ns: &str, pod: &str, port: u16) -> Result<ServerRx, LookupError> {
        self.maybe_sweep();
        let info = self.pod(ns, pod)?;
        if let Some(tx) = self
            .watches
            .get(ns)
            .and_then(|p| p.get(pod))
            .and_then(|w| w.get(&port))
        {
            return Ok(tx.subscribe());
        }
        let (tx, rx) = watch::channel(Arc::new(self.inbound_server(ns, info, port)));
        self.watches
            .entry(ns.to_string())
            .or_default()
            .entry(pod.to_string())
            .or_default()
            .insert(port, tx);
        Ok(rx)
    }

    /// How many pod ports have watches (open, or closed since the last sweep).
    pub fn watch_count(&self) -> usize {
        self.watches
            .values()
            .flat_map(HashMap::values)
            .map(BTreeMap::len)
            .sum()
    }

    fn pod(&self, ns: &str, pod: &str) -> Result<&PolicyPod, LookupError> {
        self.pods
            .get(ns)
            .and_then(|pods| pods.get(pod))
            .ok_or_else(|| LookupError::NotFound {
                namespace: ns.to_string(),
                pod: pod.to_string(),
            })
    }

    // === Recomputing ===

    fn refresh_after(&self, kind: Kind, ns: &str) {
        if kind.is_authentication() {
            for ns in self.watches.keys() {
                self.refresh_namespace(ns);
            }
        } else {
            self.refresh_namespace(ns);
        }
    }

    fn refresh_namespace(&self, ns: &str) {
        for pod in self.watches.get(ns).into_iter().flat_map(HashMap::keys) {
            self.refresh_pod(ns, pod);
        }
    }

    fn refresh_pod(&self, ns: &str, pod: &str) {
        let (Ok(info), Some(watches)) = (
            self.pod(ns, pod),
            self.watches.get(ns).and_then(|p| p.get(pod)),
        ) else {
            return;
        };
        for (&port, tx) in watches {
            if tx.receiver_count() > 0 {
                let next = self.inbound_server(ns, info, port);
                tx.send_if_modified(|current| {
                    if **current == next {
                        false
                    } else {
                        *current = Arc::new(next);
                        true
                    }
                });
            }
        }
    }

    /// Drops the watches no stream holds any more, once their number has doubled since the last
    /// sweep, so that streams opened and closed on ever new ports cannot grow the index.
    fn maybe_sweep(&mut self) {
        if self.watch_count() < 2 * self.watches_after_sweep + 64 {
            return;
        }
        for pods in self.watches.values_mut() {
            for ports in pods.values_mut() {
                ports.retain(|_, tx| tx.receiver_count() > 0);
            }
            pods.retain(|_, ports| !ports.is_empty());
        }
        self.watches.retain(|_, pods| !pods.is_empty());
        self.watches_after_sweep = self.watch_count();
    }
}

/// Stores `value` under `name` (or removes the entry if it is invalid); true if that changed
/// anything.
fn set<K: Ord + Clone, T: PartialEq>(
    map: &mut BTreeMap<K, T>,
    name: &K,
    value: Result<T, Invalid>,
    warn: impl Fn(&Invalid),
) -> bool {
    match value {
        Ok(value) => {
            if map.get(name) == Some(&value) {
                return false;
            }
            map.insert(name.clone(), value);
            true
        }
        Err(err) => {
            warn(&err);
            map.remove(name).is_some()
        }
    }
}
