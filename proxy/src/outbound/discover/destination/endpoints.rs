//! One `Get` stream's updates folded into an endpoint set.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;

use linkerd2_proxy_api::destination as api;
use linkerd2_proxy_api::destination::update::Update as Kind;

use super::MAX_ENDPOINTS;
use crate::outbound::discover::{DstLabels, Endpoint};

/// What one `Get` stream has said so far.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) enum Answer {
    /// Nothing yet.
    #[default]
    Pending,
    /// The control plane does not know the name (`NoEndpoints{exists: false}`, or the
    /// lookup was refused), or could not be reached before it ever answered.
    Unknown,
    /// The current endpoints; empty when the service exists but has none.
    Endpoints(Arc<[Endpoint]>),
}

/// The endpoints a stream has added and not removed, by address.
#[derive(Debug, Default)]
pub(super) struct EndpointSet {
    endpoints: BTreeMap<SocketAddr, Endpoint>,
    exists: bool,
    /// Adds dropped because the set was full, so the log says it once per stream.
    dropped: usize,
}

impl EndpointSet {
    /// Forgets everything: a new stream starts with the whole current set.
    pub(super) fn clear(&mut self) {
        self.endpoints.clear();
        self.exists = false;
    }

    /// Applies one update.
    pub(super) fn apply(&mut self, update: api::Update) {
        match update.update {
            Some(Kind::Add(set)) => {
                self.exists = true;
                for addr in &set.addrs {
                    let Some(endpoint) = endpoint(addr, &set.metric_labels) else {
                        tracing::debug!(?addr, "endpoint without a valid address ignored");
                        continue;
                    };
                    if self.endpoints.len() >= MAX_ENDPOINTS
                        && !self.endpoints.contains_key(&endpoint.addr)
                    {
                        if self.dropped == 0 {
                            tracing::warn!(
                                max = MAX_ENDPOINTS,
                                "endpoint set is full; further endpoints are ignored"
                            );
                        }
                        self.dropped += 1;
                        continue;
                    }
                    self.endpoints.insert(endpoint.addr, endpoint);
                }
            }
            Some(Kind::Remove(set)) => {
                self.exists = true;
                for addr in set.addrs {
                    if let Some(addr) = socket_addr(addr) {
                        self.endpoints.remove(&addr);
                    }
                }
            }
            Some(Kind::NoEndpoints(no)) => {
                self.endpoints.clear();
                self.exists = no.exists;
            }
            None => {}
        }
    }

    pub(super) fn answer(&self) -> Answer {
        if self.exists {
            Answer::Endpoints(self.endpoints.values().cloned().collect())
        } else {
            Answer::Unknown
        }
    }
}

/// One address of a set, with the set's labels. `None` when the address is not one.
pub(super) fn endpoint(
    addr: &api::WeightedAddr,
    set_labels: &HashMap<String, String>,
) -> Option<Endpoint> {
    let sock = socket_addr(addr.addr?)?;
    let identity = addr
        .tls_identity
        .as_ref()
        .and_then(|id| match &id.strategy {
            Some(api::tls_identity::Strategy::DnsLikeIdentity(dns)) if !dns.name.is_empty() => {
                Some(Arc::<str>::from(dns.name.as_str()))
            }
            _ => None,
        });
    let h2_hint = matches!(
        addr.protocol_hint.as_ref().and_then(|h| h.protocol),
        Some(api::protocol_hint::Protocol::H2(_))
    );
    // Port 0 or one past u16 is no port: the hint is ignored.
    let opaque_transport = addr
        .protocol_hint
        .as_ref()
        .and_then(|h| h.opaque_transport.as_ref())
        .and_then(|o| u16::try_from(o.inbound_port).ok())
        .filter(|p| *p != 0);
    Some(Endpoint {
        addr: sock,
        identity,
        h2_hint,
        opaque_transport,
        labels: dst_labels(set_labels, &addr.metric_labels),
    })
}

/// The set's labels and the address's (which win), each name prefixed with `dst_`, sorted.
fn dst_labels(set: &HashMap<String, String>, own: &HashMap<String, String>) -> DstLabels {
    let mut labels: BTreeMap<&str, &str> = BTreeMap::new();
    for (k, v) in set.iter().chain(own) {
        labels.insert(k, v);
    }
    labels
        .into_iter()
        .map(|(k, v)| (Arc::from(format!("dst_{k}")), Arc::from(v)))
        .collect()
}

fn socket_addr(addr: linkerd2_proxy_api::net::TcpAddress) -> Option<SocketAddr> {
    let port = u16::try_from(addr.port).ok().filter(|p| *p != 0)?;
    let sock = SocketAddr::try_from(addr).ok()?;
    Some(SocketAddr::new(sock.ip(), port))
}
