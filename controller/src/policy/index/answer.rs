//! The answer to a `WatchPort` as plain types: how the proxy treats one inbound port of one pod
//! and whom it lets in. [`crate::policy::proto`] turns it into Linkerd's message.

use std::collections::BTreeSet;
use std::time::Duration;

use mesh_names::policy::DefaultInboundPolicy;

use super::net::{Net, NetworkMatch};
use super::routes::{RouteRef, RouteSpec};

/// How long a proxy may take to detect the protocol of a connection before it handles the
/// connection as opaque TCP, as Linkerd's policy controller tells proxies.
pub const DETECT_TIMEOUT: Duration = Duration::from_secs(10);

/// One inbound port's policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InboundServer {
    /// The `Server` that selects the port, or the default policy that applies instead.
    pub reference: ServerRef,
    pub protocol: Protocol,
    /// Who may connect, sorted by reference. None: nobody.
    pub authorizations: Vec<Authorization>,
    /// The paths the pod's HTTP probes GET on this port: the kubelet reaches them whatever the
    /// policy, as Linkerd authorizes probes, unless the `Server` has routes of its own.
    pub probe_paths: BTreeSet<String>,
    /// The routes attached to the `Server`, oldest first (then by kind and name). None: the
    /// default routes.
    pub routes: Vec<InboundRoute>,
}

/// A route resource attached to the port's `Server`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InboundRoute {
    pub reference: RouteRef,
    pub spec: RouteSpec,
    /// The `AuthorizationPolicy`s that target the route, sorted by reference. The proxy admits
    /// a request on the route if one of these or one of the server's authorizations does.
    pub authorizations: Vec<Authorization>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServerRef {
    Default(DefaultInboundPolicy),
    /// A `Server` by name, in the pod's namespace.
    Server(String),
}

/// How the proxy handles connections to the port (a `Server`'s `proxyProtocol`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// Detect HTTP within the timeout, else opaque.
    Detect(Duration),
    Http1,
    Http2,
    Grpc,
    Opaque,
    /// TLS the application terminates itself.
    Tls,
}

/// A class of clients the port admits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Authorization {
    pub reference: AuthzRef,
    /// Client addresses it applies to. Empty admits nobody (the proxy ignores such an
    /// authorization): a `cluster-*` policy with no cluster networks configured.
    pub networks: Vec<NetworkMatch>,
    pub authentication: Authentication,
}

/// Where an authorization comes from; the order is the order authorizations are sent in.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum AuthzRef {
    Default(DefaultInboundPolicy),
    ServerAuthorization(String),
    AuthorizationPolicy(String),
}

/// What a client must prove.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Authentication {
    /// Nothing: plaintext or TLS, any identity or none.
    Unauthenticated,
    /// A TLS connection terminated by the proxy, with or without a client identity.
    TlsUnauthenticated,
    /// Mutual TLS with a client identity that one of these matches.
    TlsAuthenticated(Vec<IdentityMatch>),
}

/// Matches a client's mesh identity.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum IdentityMatch {
    Exact(String),
    /// The labels a name must end with; none matches every identity.
    Suffix(Vec<String>),
}

impl IdentityMatch {
    /// `*` (every identity), `*.example.org` (names under it), or an exact name, as Linkerd's
    /// resources write them.
    pub fn parse(text: &str) -> IdentityMatch {
        if text == "*" {
            return IdentityMatch::Suffix(Vec::new());
        }
        match text.strip_prefix("*.") {
            Some(suffix) => IdentityMatch::Suffix(suffix.split('.').map(str::to_string).collect()),
            None => IdentityMatch::Exact(text.to_string()),
        }
    }
}

/// The policy on a port that requires identity
/// (`config.linkerd.io/proxy-require-identity-inbound-ports`): an allowing policy admits
/// authenticated clients only; `deny` and `audit` stay, as in Linkerd's policy controller. The
/// proxy's default for such a port (`LINKERD2_PROXY_INBOUND_PORTS_REQUIRE_IDENTITY`) follows the
/// same rule, so its policy does not change when this answer arrives.
pub fn require_identity(policy: DefaultInboundPolicy) -> DefaultInboundPolicy {
    match policy {
        DefaultInboundPolicy::AllUnauthenticated => DefaultInboundPolicy::AllAuthenticated,
        DefaultInboundPolicy::ClusterUnauthenticated => DefaultInboundPolicy::ClusterAuthenticated,
        other => other,
    }
}

/// The one authorization a default policy (or a `Server`'s `accessPolicy`) grants, none for
/// `deny`. `cluster-*` admit the cluster's networks; `*-authenticated` any mesh identity.
pub fn default_authorization(
    policy: DefaultInboundPolicy,
    cluster_networks: &[Net],
) -> Option<Authorization> {
    let (cluster_only, authenticated) = match policy {
        DefaultInboundPolicy::AllUnauthenticated | DefaultInboundPolicy::Audit => (false, false),
        DefaultInboundPolicy::AllAuthenticated => (false, true),
        DefaultInboundPolicy::ClusterUnauthenticated => (true, false),
        DefaultInboundPolicy::ClusterAuthenticated => (true, true),
        DefaultInboundPolicy::Deny => return None,
    };
    let networks = if cluster_only {
        cluster_networks
            .iter()
            .copied()
            .map(NetworkMatch::from)
            .collect()
    } else {
        NetworkMatch::everywhere()
    };
    let authentication = if authenticated {
        Authentication::TlsAuthenticated(vec![IdentityMatch::Suffix(Vec::new())])
    } else {
        Authentication::Unauthenticated
    };
    Some(Authorization {
        reference: AuthzRef::Default(policy),
        networks,
        authentication,
    })
}
