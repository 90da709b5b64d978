//! Linkerd's default inbound policies: what a port allows when no policy resource covers it. The
//! same names are `mesh inject --default-inbound-policy`, the
//! `config.linkerd.io/default-inbound-policy` annotation, the controller's
//! `--default-inbound-policy`, the proxy's `LINKERD2_PROXY_INBOUND_DEFAULT_POLICY` and the
//! `srv_name`/`authz_name` metric labels. What each policy authorizes is each side's own: the
//! controller sends it as an `Authorization`, the proxy applies it before the controller answers.

use std::fmt;
use std::str::FromStr;

/// Linkerd's default cluster networks (its `clusterNetworks` install value): the pod and service
/// networks that the `cluster-*` policies admit when nothing else names them.
pub const DEFAULT_CLUSTER_NETWORKS: &str =
    "10.0.0.0/8,100.64.0.0/10,172.16.0.0/12,192.168.0.0/16,fd00::/8";

/// A default inbound policy, by Linkerd's name.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DefaultInboundPolicy {
    /// Every client (Linkerd's default).
    #[default]
    AllUnauthenticated,
    /// Clients with a mesh TLS identity, from anywhere.
    AllAuthenticated,
    /// Every client from the cluster networks.
    ClusterUnauthenticated,
    /// Clients with a mesh TLS identity, from the cluster networks.
    ClusterAuthenticated,
    /// Nobody.
    Deny,
    /// Every client; the proxy records what `deny` would have refused (for trying a policy out
    /// before enforcing it).
    Audit,
}

impl DefaultInboundPolicy {
    /// Every policy, in the order Linkerd's docs list them.
    pub const ALL: [DefaultInboundPolicy; 6] = [
        DefaultInboundPolicy::AllUnauthenticated,
        DefaultInboundPolicy::AllAuthenticated,
        DefaultInboundPolicy::ClusterUnauthenticated,
        DefaultInboundPolicy::ClusterAuthenticated,
        DefaultInboundPolicy::Deny,
        DefaultInboundPolicy::Audit,
    ];

    /// The names of [`Self::ALL`], for validating and listing accepted values.
    pub const NAMES: [&'static str; 6] = {
        let mut names = [""; 6];
        let mut i = 0;
        while i < names.len() {
            names[i] = DefaultInboundPolicy::ALL[i].as_str();
            i += 1;
        }
        names
    };

    pub const fn as_str(self) -> &'static str {
        match self {
            DefaultInboundPolicy::AllUnauthenticated => "all-unauthenticated",
            DefaultInboundPolicy::AllAuthenticated => "all-authenticated",
            DefaultInboundPolicy::ClusterUnauthenticated => "cluster-unauthenticated",
            DefaultInboundPolicy::ClusterAuthenticated => "cluster-authenticated",
            DefaultInboundPolicy::Deny => "deny",
            DefaultInboundPolicy::Audit => "audit",
        }
    }
}

impl fmt::Display for DefaultInboundPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not one of Linkerd's default inbound policies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownPolicy(pub String);

impl fmt::Display for UnknownPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown policy {:?}; expected one of {}",
            self.0,
            DefaultInboundPolicy::NAMES.join(", ")
        )
    }
}

impl std::error::Error for UnknownPolicy {}

impl FromStr for DefaultInboundPolicy {
    type Err = UnknownPolicy;

    /// Exactly one of the names, as Linkerd reads them (no trimming, no case folding).
    fn from_str(text: &str) -> Result<Self, UnknownPolicy> {
        DefaultInboundPolicy::ALL
            .into_iter()
            .find(|p| p.as_str() == text)
            .ok_or_else(|| UnknownPolicy(text.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::DefaultInboundPolicy;

    #[test]
    fn names_are_linkerds_and_round_trip() {
        assert_eq!(
            DefaultInboundPolicy::NAMES,
            [
                "all-unauthenticated",
                "all-authenticated",
                "cluster-unauthenticated",
                "cluster-authenticated",
                "deny",
                "audit",
            ]
        );
        for policy in DefaultInboundPolicy::ALL {
            assert_eq!(policy.as_str().parse(), Ok(policy));
            assert_eq!(policy.to_string(), policy.as_str());
        }
        for bad in ["allow", "Deny", " deny", ""] {
            let err = bad.parse::<DefaultInboundPolicy>().unwrap_err();
            assert!(
                err.to_string()
                    .ends_with("expected one of all-unauthenticated, all-authenticated, cluster-unauthenticated, cluster-authenticated, deny, audit"),
                "{err}"
            );
        }
    }
}
