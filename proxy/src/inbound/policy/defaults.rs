//! What the default policies of `LINKERD2_PROXY_INBOUND_DEFAULT_POLICY` admit, as Linkerd
//! defines them. The names and their parsing are [`DefaultInboundPolicy`]'s, shared with the
//! injector and the controller; what each admits is the proxy's own.

use std::sync::Arc;

use mesh_names::policy::DefaultInboundPolicy;

use super::{Authentication, Authorization, IpNet, Meta, Network, Protocol, ServerPolicy, Suffix};

/// The policy of a port in `LINKERD2_PROXY_INBOUND_PORTS_REQUIRE_IDENTITY`: the same
/// networks, but only clients with a mesh TLS identity. `deny` and `audit` stay as they
/// are, as Linkerd's policy controller answers for such a port, so the proxy's answer
/// before the controller's is the controller's.
pub fn require_identity(policy: DefaultInboundPolicy) -> DefaultInboundPolicy {
    match policy {
        DefaultInboundPolicy::AllUnauthenticated => DefaultInboundPolicy::AllAuthenticated,
        DefaultInboundPolicy::ClusterUnauthenticated => DefaultInboundPolicy::ClusterAuthenticated,
        other => other,
    }
}

/// The port policy `policy` stands for. `cluster` is
/// `LINKERD2_PROXY_POLICY_CLUSTER_NETWORKS`.
pub fn server_policy(policy: DefaultInboundPolicy, cluster: &[IpNet]) -> ServerPolicy {
    let meta = Arc::new(Meta::default_named(policy.as_str()));
    let all: Vec<Network> = IpNet::all().into_iter().map(Network::from).collect();
    let cluster: Vec<Network> = cluster.iter().copied().map(Network::from).collect();
    let authenticated = || Authentication::TlsAuthenticated {
        identities: Default::default(),
        suffixes: vec![Suffix::all()],
    };
    let authorization = match policy {
        DefaultInboundPolicy::AllUnauthenticated | DefaultInboundPolicy::Audit => {
            Some((all, Authentication::Unauthenticated))
        }
        DefaultInboundPolicy::AllAuthenticated => Some((all, authenticated())),
        DefaultInboundPolicy::ClusterUnauthenticated => {
            Some((cluster, Authentication::Unauthenticated))
        }
        DefaultInboundPolicy::ClusterAuthenticated => Some((cluster, authenticated())),
        DefaultInboundPolicy::Deny => None,
    };
    let authorizations: Arc<[Authorization]> = match authorization {
        Some((networks, authentication)) => Arc::new([Authorization {
            networks,
            authentication,
            meta: meta.clone(),
        }]),
        None => Arc::new([]),
    };
    ServerPolicy {
        meta,
        protocol: Protocol::Detect,
        authorizations,
        http_routes: Arc::new([]),
    }
}
