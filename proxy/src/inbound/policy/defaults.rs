//! The default policies of `LINKERD2_PROXY_INBOUND_DEFAULT_POLICY`, as Linkerd defines
//! them.

use std::str::FromStr;
use std::sync::Arc;

use super::{Authentication, Authorization, IpNet, Meta, Network, Protocol, ServerPolicy, Suffix};

/// A default policy: what a port allows before, or without, the control plane's word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DefaultPolicy {
    /// Every client (Linkerd's default).
    AllUnauthenticated,
    /// Clients with a mesh TLS identity, from anywhere.
    AllAuthenticated,
    /// Every client from the cluster networks.
    ClusterUnauthenticated,
    /// Clients with a mesh TLS identity, from the cluster networks.
    ClusterAuthenticated,
    /// Nobody.
    Deny,
    /// Every client, allowed requests and connections logged (Linkerd's `audit`: for
    /// trying a policy out before enforcing it).
    Audit,
}

impl DefaultPolicy {
    /// The accepted values, for error messages.
    pub const VALUES: &'static str = "all-unauthenticated, all-authenticated, cluster-unauthenticated, cluster-authenticated, deny, audit";

    pub fn as_str(self) -> &'static str {
        match self {
            DefaultPolicy::AllUnauthenticated => "all-unauthenticated",
            DefaultPolicy::AllAuthenticated => "all-authenticated",
            DefaultPolicy::ClusterUnauthenticated => "cluster-unauthenticated",
            DefaultPolicy::ClusterAuthenticated => "cluster-authenticated",
            DefaultPolicy::Deny => "deny",
            DefaultPolicy::Audit => "audit",
        }
    }

    /// The policy of a port in `LINKERD2_PROXY_INBOUND_PORTS_REQUIRE_IDENTITY`: the same
    /// networks, but only clients with a mesh TLS identity. `deny` stays `deny`; an
    /// operator who asked for identity on a port gets it under `audit` too.
    pub fn require_identity(self) -> DefaultPolicy {
        match self {
            DefaultPolicy::AllUnauthenticated | DefaultPolicy::Audit => {
                DefaultPolicy::AllAuthenticated
            }
            DefaultPolicy::ClusterUnauthenticated => DefaultPolicy::ClusterAuthenticated,
            other => other,
        }
    }

    /// The port policy this default stands for. `cluster` is
    /// `LINKERD2_PROXY_POLICY_CLUSTER_NETWORKS`.
    pub fn server_policy(self, cluster: &[IpNet]) -> ServerPolicy {
        let meta = Arc::new(Meta::default_named(self.as_str()));
        let all: Vec<Network> = IpNet::all().into_iter().map(Network::from).collect();
        let cluster: Vec<Network> = cluster.iter().copied().map(Network::from).collect();
        let authenticated = || Authentication::TlsAuthenticated {
            identities: Default::default(),
            suffixes: vec![Suffix::all()],
        };
        let authorization = match self {
            DefaultPolicy::AllUnauthenticated | DefaultPolicy::Audit => {
                Some((all, Authentication::Unauthenticated))
            }
            DefaultPolicy::AllAuthenticated => Some((all, authenticated())),
            DefaultPolicy::ClusterUnauthenticated => {
                Some((cluster, Authentication::Unauthenticated))
            }
            DefaultPolicy::ClusterAuthenticated => Some((cluster, authenticated())),
            DefaultPolicy::Deny => None,
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
}

impl FromStr for DefaultPolicy {
    type Err = ();

    fn from_str(s: &str) -> Result<DefaultPolicy, ()> {
        Ok(match s.trim() {
            "all-unauthenticated" => DefaultPolicy::AllUnauthenticated,
            "all-authenticated" => DefaultPolicy::AllAuthenticated,
            "cluster-unauthenticated" => DefaultPolicy::ClusterUnauthenticated,
            "cluster-authenticated" => DefaultPolicy::ClusterAuthenticated,
            "deny" => DefaultPolicy::Deny,
            "audit" => DefaultPolicy::Audit,
            _ => return Err(()),
        })
    }
}
