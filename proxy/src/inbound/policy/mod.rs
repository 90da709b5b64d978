//! Inbound authorization policy: which clients may use which port of this pod, as
//! Linkerd's inbound server policies decide it.
//!
//! Every port has a [`ServerPolicy`]: a list of [`Authorization`]s (client networks and
//! the authentication they need) and, for HTTP, routes that add authorizations of their
//! own. A policy comes from `LINKERD2_PROXY_INBOUND_DEFAULT_POLICY` (a
//! [`DefaultInboundPolicy`](mesh_names::policy::DefaultInboundPolicy), admitting what
//! [`server_policy`] says), or, with a control plane, from Linkerd's `InboundServerPolicies/WatchPort` stream for
//! that port ([`convert`] reads its answers), which replaces the default once it answers.
//!
//! The accept loop hands each connection one [`ConnPolicy`]: the client's address, the
//! port it reached, its [`ClientTls`], and a live view of that port's policy. The opaque
//! TCP stage checks it once per connection; the HTTP stage once per request, so a policy
//! change applies to the next request on a connection that is already open.

mod api;
mod check;
mod convert;
mod defaults;
mod routes;
mod store;
#[cfg(test)]
mod tests;

use std::collections::BTreeSet;
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

pub use api::Timing;
pub use check::{ConnPolicy, HttpDenied, TcpDenied};
pub use convert::{InvalidPolicy, MAX_ITEMS, convert};
pub use defaults::{require_identity, server_policy};
pub use routes::{HostMatch, PathMatch, RequestMatch, Route, Rule, ValueMatch};
pub use store::{MAX_WATCHED_PORTS, Policies, PortPolicy};

/// How a client reached the inbound proxy, which the TLS stage gives policy.
pub use crate::tls::ClientTls;

/// What Linkerd's metrics say of a policy object: `group`, `kind` and `name`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Meta {
    pub group: Box<str>,
    pub kind: Box<str>,
    pub name: Box<str>,
}

impl Meta {
    /// A built-in object: kind `default`, no group.
    pub fn default_named(name: &str) -> Meta {
        Meta {
            group: "".into(),
            kind: "default".into(),
            name: name.into(),
        }
    }

    /// Whether this is Linkerd's `audit` authorization, whose every use is logged.
    pub fn is_audit(&self) -> bool {
        &*self.kind == "default" && &*self.name == "audit"
    }

    /// A resource, e.g. `policy.linkerd.io`, `server`, `web-http`.
    pub fn resource(group: &str, kind: &str, name: &str) -> Meta {
        Meta {
            group: group.into(),
            kind: kind.into(),
            name: name.into(),
        }
    }
}

impl fmt::Display for Meta {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.group.is_empty() {
            write!(f, "{}:{}", self.kind, self.name)
        } else {
            write!(f, "{}.{}:{}", self.kind, self.group, self.name)
        }
    }
}

/// How a port's connections are handled, as the policy says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// Detect the protocol (the default).
    Detect,
    /// Known HTTP/1, HTTP/2 or gRPC: detection still runs (it is how the proxy tells the
    /// versions apart), and requests are authorized per route.
    Http,
    /// Opaque TCP: forwarded without detection, authorized per connection.
    Opaque,
    /// TLS the proxy does not terminate: opaque, authorized per connection.
    Tls,
}

/// One port's policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerPolicy {
    /// The `srv_*` labels: a `Server` resource, or a default such as `all-unauthenticated`.
    pub meta: Arc<Meta>,
    pub protocol: Protocol,
    /// Who may connect: checked per connection for opaque TCP, and the authorizations of
    /// the default route when there are no `http_routes`.
    pub authorizations: Arc<[Authorization]>,
    /// HTTP routes with their own authorizations (each includes the server's). Empty: one
    /// route matching every request, named `default`, with `authorizations`.
    pub http_routes: Arc<[Route]>,
}

/// One way to be allowed in: from one of `networks`, with `authentication`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Authorization {
    pub networks: Vec<Network>,
    pub authentication: Authentication,
    /// The `authz_*` labels.
    pub meta: Arc<Meta>,
}

/// What a client must prove.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Authentication {
    /// Nothing: plaintext clients too.
    Unauthenticated,
    /// Mesh TLS, with or without a client certificate.
    TlsUnauthenticated,
    /// Mesh TLS with a client identity that is one of `identities` or ends with one of
    /// `suffixes`.
    TlsAuthenticated {
        identities: BTreeSet<String>,
        suffixes: Vec<Suffix>,
    },
}

/// An identity suffix, as Linkerd's `IdentitySuffix`: the parts `["ns", "serviceaccount"]`
/// match names ending with `.ns.serviceaccount`; no parts match every identity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Suffix {
    /// Empty, or a dot followed by the parts joined with dots.
    ends_with: String,
}

impl Suffix {
    pub fn new<S: AsRef<str>>(parts: &[S]) -> Suffix {
        let mut ends_with = String::new();
        for p in parts {
            ends_with.push('.');
            ends_with.push_str(p.as_ref());
        }
        Suffix { ends_with }
    }

    /// Every identity.
    pub fn all() -> Suffix {
        Suffix {
            ends_with: String::new(),
        }
    }

    pub fn contains(&self, identity: &str) -> bool {
        identity.ends_with(&self.ends_with)
    }
}

/// Client addresses: `net`, less the networks in `except`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Network {
    pub net: IpNet,
    pub except: Vec<IpNet>,
}

impl Network {
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.net.contains(ip) && !self.except.iter().any(|e| e.contains(ip))
    }
}

impl From<IpNet> for Network {
    fn from(net: IpNet) -> Network {
        Network {
            net,
            except: Vec::new(),
        }
    }
}

/// An IP network: an address and a prefix length (at most 32 or 128).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    /// `None` when `prefix` is longer than the address.
    pub fn new(addr: IpAddr, prefix: u8) -> Option<IpNet> {
        let max = if addr.is_ipv4() { 32 } else { 128 };
        (prefix <= max).then_some(IpNet { addr, prefix })
    }

    /// Every IPv4 address, and every IPv6 address.
    pub fn all() -> [IpNet; 2] {
        [
            IpNet {
                addr: IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
                prefix: 0,
            },
            IpNet {
                addr: IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
                prefix: 0,
            },
        ]
    }

    /// Whether `ip` is in the network. An IPv4 address mapped into IPv6 (a dual-stack
    /// listener's view of an IPv4 client) counts as the IPv4 address.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl Authorization {
    /// Whether a client at `client` whose connection is `tls` is allowed by this
    /// authorization, as Linkerd decides: its address is in one of the networks, and its
    /// connection proves what the authentication asks.
    pub fn permits(&self, client: IpAddr, tls: &ClientTls) -> bool {
        if !self.networks.iter().any(|n| n.contains(client)) {
            return false;
        }
        match (&self.authentication, tls) {
            (Authentication::Unauthenticated, _) => true,
            (
                Authentication::TlsUnauthenticated,
                ClientTls::Unauthenticated | ClientTls::Authenticated(_),
            ) => true,
            (
                Authentication::TlsAuthenticated {
                    identities,
                    suffixes,
                },
                ClientTls::Authenticated(id),
            ) => identities.contains(id) || suffixes.iter().any(|s| s.contains(id)),
            _ => false,
        }
    }
}

/// The first of `authorizations` that permits the client, if any.
pub fn first_permit<'a>(
    authorizations: &'a [Authorization],
    client: IpAddr,
    tls: &ClientTls,
) -> Option<&'a Authorization> {
    authorizations.iter().find(|a| a.permits(client, tls))
}
