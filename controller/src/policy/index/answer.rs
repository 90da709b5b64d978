//! The answer to a `WatchPort` as plain types: how the proxy treats one inbound port of one pod
//! and whom it lets in. [`crate::policy::proto`] turns it into Linkerd's message.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use super::net::{Net, NetworkMatch};

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
    /// policy, as Linkerd authorizes probes.
    pub probe_paths: BTreeSet<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServerRef {
    Default(DefaultPolicy),
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
    Default(DefaultPolicy),
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

/// What applies to a port no `Server` selects, and what a `Server`'s `accessPolicy` adds: the
/// values of `--default-inbound-policy` and `config.linkerd.io/default-inbound-policy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DefaultPolicy {
    AllUnauthenticated,
    AllAuthenticated,
    ClusterUnauthenticated,
    ClusterAuthenticated,
    Deny,
    /// Admits everyone; the proxy records what a `deny` would have refused.
    Audit,
}

/// A default policy name that is not one of Linkerd's.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown policy {0:?}; expected one of {names}", names = DefaultPolicy::NAMES.join(", "))]
pub struct UnknownPolicy(pub String);

impl DefaultPolicy {
    pub const NAMES: [&'static str; 6] = [
        "all-unauthenticated",
        "all-authenticated",
        "cluster-unauthenticated",
        "cluster-authenticated",
        "deny",
        "audit",
    ];
    const ALL: [DefaultPolicy; 6] = [
        DefaultPolicy::AllUnauthenticated,
        DefaultPolicy::AllAuthenticated,
        DefaultPolicy::ClusterUnauthenticated,
        DefaultPolicy::ClusterAuthenticated,
        DefaultPolicy::Deny,
        DefaultPolicy::Audit,
    ];

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

    /// The policy on a port that requires identity
    /// (`config.linkerd.io/proxy-require-identity-inbound-ports`): an allowing policy admits
    /// authenticated clients only.
    pub fn authenticated(self) -> DefaultPolicy {
        match self {
            DefaultPolicy::AllUnauthenticated => DefaultPolicy::AllAuthenticated,
            DefaultPolicy::ClusterUnauthenticated => DefaultPolicy::ClusterAuthenticated,
            other => other,
        }
    }

    /// The one authorization the policy grants (none for `deny`). `cluster-*` admit the
    /// cluster's networks; `*-authenticated` any mesh identity.
    pub fn authorization(self, cluster_networks: &[Net]) -> Option<Authorization> {
        let (cluster_only, authenticated) = match self {
            DefaultPolicy::AllUnauthenticated | DefaultPolicy::Audit => (false, false),
            DefaultPolicy::AllAuthenticated => (false, true),
            DefaultPolicy::ClusterUnauthenticated => (true, false),
            DefaultPolicy::ClusterAuthenticated => (true, true),
            DefaultPolicy::Deny => return None,
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
            reference: AuthzRef::Default(self),
            networks,
            authentication,
        })
    }
}

impl FromStr for DefaultPolicy {
    type Err = UnknownPolicy;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        DefaultPolicy::ALL
            .into_iter()
            .find(|p| p.as_str() == text)
            .ok_or_else(|| UnknownPolicy(text.to_string()))
    }
}

impl fmt::Display for DefaultPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
