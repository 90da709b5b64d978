//! One pod port's answer, from the index's objects: the `Server` that selects the port and the
//! authorizations that apply to it, or the default policy. Linkerd's rules:
//!
//! - a `Server` selects a port by number, or by the name of a TCP container port (a name may
//!   stand for ports of several containers); of several `Server`s that select one port, the
//!   first by name wins (Linkerd's admission webhook refuses such conflicts; this one is only
//!   deterministic);
//! - a `Server`'s authorizations: the `ServerAuthorization`s that name or select it, the
//!   `AuthorizationPolicy`s that target it or its namespace and whose authentications all exist,
//!   and what its `accessPolicy` grants;
//! - the routes whose `parentRefs` name the `Server` (see [`super::routes`]), each with the
//!   `AuthorizationPolicy`s that target it; the server's own authorizations are sent once, at
//!   the server, and the proxy applies them to every route as well (Linkerd's proxy does the
//!   same). With routes, the default and probe routes are not sent, so a request no route
//!   matches gets 404 and probes need a route of their own, as in Linkerd;
//! - a port no `Server` selects gets the pod's `config.linkerd.io/default-inbound-policy`, else
//!   the cluster's, made authenticated-only on ports the pod requires identity on, and is opaque
//!   if the pod's opaque ports (else the cluster's default ones) include it.

use super::answer::{
    Authentication, Authorization, AuthzRef, DETECT_TIMEOUT, IdentityMatch, InboundRoute,
    InboundServer, Protocol, ServerRef, default_authorization, require_identity,
};
use super::net::NetworkMatch;
use super::resources::{AuthnRef, AuthzPolicy, PolicyPod, PortRef, Server, Target};
use super::routes::{Route, RouteRef};
use super::{Index, Namespace};

/// Why an `AuthorizationPolicy` grants nothing (it names authentications that do not exist, or
/// several of one sort).
#[derive(Debug, thiserror::Error)]
enum Unusable {
    #[error("{kind} {namespace}/{name} does not exist")]
    Missing {
        kind: &'static str,
        namespace: String,
        name: String,
    },
    #[error("more than one {0} is required")]
    Several(&'static str),
}

impl Index {
    pub(super) fn inbound_server(&self, ns: &str, pod: &PolicyPod, port: u16) -> InboundServer {
        let probe_paths = pod.probes.get(&port).cloned().unwrap_or_default();
        let namespace = self.namespaces.get(ns);
        let selected = namespace.and_then(|n| {
            n.servers
                .iter()
                .find(|(_, server)| selects(server, pod, port))
        });
        if let Some((name, server)) = selected {
            let (authorizations, routes) = namespace
                .map(|n| {
                    (
                        self.authorizations(ns, n, name, server),
                        self.routes(ns, n, name),
                    )
                })
                .unwrap_or_default();
            return InboundServer {
                reference: ServerRef::Server(name.clone()),
                protocol: server.protocol,
                authorizations,
                probe_paths,
                routes,
            };
        }
        let mut policy = pod.default_policy.unwrap_or(self.config.default_policy);
        if pod.require_identity_ports.contains(port) {
            policy = require_identity(policy);
        }
        let opaque = pod
            .opaque_ports
            .as_ref()
            .unwrap_or(&self.config.default_opaque_ports)
            .contains(port);
        InboundServer {
            reference: ServerRef::Default(policy),
            protocol: if opaque {
                Protocol::Opaque
            } else {
                Protocol::Detect(DETECT_TIMEOUT)
            },
            authorizations: default_authorization(policy, &self.config.cluster_networks)
                .into_iter()
                .collect(),
            probe_paths,
            routes: Vec::new(),
        }
    }

    /// The routes attached to the Server `name`, oldest first, then by kind and name.
    fn routes(&self, ns: &str, namespace: &Namespace, name: &str) -> Vec<InboundRoute> {
        let mut routes: Vec<(&Route, InboundRoute)> = namespace
            .routes
            .iter()
            .filter(|(_, route)| route.parents.contains(name))
            .map(|(reference, route)| {
                let inbound = InboundRoute {
                    reference: reference.clone(),
                    spec: route.spec.clone(),
                    authorizations: self.route_authorizations(ns, namespace, reference),
                };
                (route, inbound)
            })
            .collect();
        // Stable: routes of one age stay in the map's order (kind, then name).
        routes.sort_by(|(a, _), (b, _)| match (&a.created, &b.created) {
            (Some(a), Some(b)) => a.cmp(b),
            (a, b) => b.is_some().cmp(&a.is_some()),
        });
        routes.into_iter().map(|(_, inbound)| inbound).collect()
    }

    fn route_authorizations(
        &self,
        ns: &str,
        namespace: &Namespace,
        route: &RouteRef,
    ) -> Vec<Authorization> {
        let mut authzs = Vec::new();
        for (ap_name, policy) in &namespace.policies {
            if policy.target != Target::Route(route.clone()) {
                continue;
            }
            match self.policy_authorization(ns, ap_name, policy) {
                Ok(authz) => authzs.push(authz),
                Err(err) => {
                    tracing::debug!(namespace = %ns, authorizationpolicy = %ap_name, %err, "policy grants nothing");
                }
            }
        }
        authzs.sort_by(|a, b| a.reference.cmp(&b.reference));
        authzs
    }

    fn authorizations(
        &self,
        ns: &str,
        namespace: &Namespace,
        name: &str,
        server: &Server,
    ) -> Vec<Authorization> {
        let mut authzs = Vec::new();
        for (saz_name, saz) in &namespace.server_authzs {
            if saz.server.selects(name, &server.labels) {
                let networks = if saz.networks.is_empty() {
                    self.cluster_networks()
                } else {
                    saz.networks.clone()
                };
                authzs.push(Authorization {
                    reference: AuthzRef::ServerAuthorization(saz_name.clone()),
                    networks,
                    authentication: saz.authentication.clone(),
                });
            }
        }
        for (ap_name, policy) in &namespace.policies {
            let applies = match &policy.target {
                Target::Server(target) => target == name,
                Target::Namespace => true,
                // Route policies go to their route, not to the whole server.
                Target::Route(_) => false,
            };
            if !applies {
                continue;
            }
            match self.policy_authorization(ns, ap_name, policy) {
                Ok(authz) => authzs.push(authz),
                Err(err) => {
                    tracing::debug!(namespace = %ns, authorizationpolicy = %ap_name, %err, "policy grants nothing");
                }
            }
        }
        if let Some(access) = server.access_policy {
            authzs.extend(default_authorization(access, &self.config.cluster_networks));
        }
        authzs.sort_by(|a, b| a.reference.cmp(&b.reference));
        authzs
    }

    /// A client must satisfy every required authentication: at most one identity requirement
    /// (a MeshTLSAuthentication or a ServiceAccount) and at most one NetworkAuthentication. None
    /// of a sort: any identity or none, from any network.
    fn policy_authorization(
        &self,
        ns: &str,
        name: &str,
        policy: &AuthzPolicy,
    ) -> Result<Authorization, Unusable> {
        let mut identities: Option<Vec<IdentityMatch>> = None;
        let mut networks: Option<Vec<NetworkMatch>> = None;
        for authn in &policy.authentications {
            match authn {
                AuthnRef::MeshTls { namespace, name } => {
                    let ns = namespace.as_deref().unwrap_or(ns);
                    let found = self
                        .namespaces
                        .get(ns)
                        .and_then(|n| n.mesh_tls.get(name))
                        .ok_or_else(|| missing("MeshTLSAuthentication", ns, name))?;
                    replace_once(&mut identities, found.clone(), "identity")?;
                }
                AuthnRef::ServiceAccount { namespace, name } => {
                    let id = mesh_names::identity::workload(
                        name,
                        namespace.as_deref().unwrap_or(ns),
                        &self.config.identity.control_plane_ns,
                        &self.config.identity.trust_domain,
                    );
                    replace_once(&mut identities, vec![IdentityMatch::Exact(id)], "identity")?;
                }
                AuthnRef::Network { namespace, name } => {
                    let ns = namespace.as_deref().unwrap_or(ns);
                    let found = self
                        .namespaces
                        .get(ns)
                        .and_then(|n| n.networks.get(name))
                        .ok_or_else(|| missing("NetworkAuthentication", ns, name))?;
                    replace_once(&mut networks, found.clone(), "NetworkAuthentication")?;
                }
            }
        }
        Ok(Authorization {
            reference: AuthzRef::AuthorizationPolicy(name.to_string()),
            networks: networks.unwrap_or_else(NetworkMatch::everywhere),
            authentication: identities
                .map(Authentication::TlsAuthenticated)
                .unwrap_or(Authentication::Unauthenticated),
        })
    }

    fn cluster_networks(&self) -> Vec<NetworkMatch> {
        self.config
            .cluster_networks
            .iter()
            .copied()
            .map(NetworkMatch::from)
            .collect()
    }
}

fn selects(server: &Server, pod: &PolicyPod, port: u16) -> bool {
    let Some(selector) = &server.pod_selector else {
        return false;
    };
    let port_matches = match &server.port {
        PortRef::Number(n) => *n == port,
        PortRef::Name(name) => pod.port_names.get(name).is_some_and(|p| p.contains(&port)),
    };
    port_matches && selector.matches(&pod.labels)
}

fn missing(kind: &'static str, ns: &str, name: &str) -> Unusable {
    Unusable::Missing {
        kind,
        namespace: ns.to_string(),
        name: name.to_string(),
    }
}

fn replace_once<T>(slot: &mut Option<T>, value: T, what: &'static str) -> Result<(), Unusable> {
    if slot.is_some() {
        return Err(Unusable::Several(what));
    }
    *slot = Some(value);
    Ok(())
}
