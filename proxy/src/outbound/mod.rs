//! The outbound stack: connections from the application to other services.
//!
//! Built from the endpoint outward, one method per stage:
//!
//! ```text
//! push_connect   TCP to one endpoint (mesh TLS will wrap it here)
//! push_balance   choose an endpoint of a target's set
//! push_discover  logical target -> endpoint set (DNS today; the destination service later)
//! push_http      HTTP proxying with pooled upstream connections
//! push_detect    protocol detection, opaque forwarding, the accept loop
//! ```
//!
//! Without discovery a redirected connection goes to its original destination, and a
//! connection made straight to the outbound port is an HTTP proxy client.

mod balance;
mod detect;
mod discover;
mod http;

use std::net::SocketAddr;
use std::sync::Arc;

pub use balance::Balance;
pub use discover::Discover;

use crate::config::{Config, ProxyConfig};
use crate::connect::Connect;
use crate::metrics::{Direction, Metrics, NoTlsReason, Tls};

/// The outbound builder; `S` is the stack built so far.
pub struct Outbound<S> {
    config: Arc<Config>,
    metrics: Arc<Metrics>,
    own_listeners: Arc<[SocketAddr]>,
    stack: S,
}

/// Outbound connections to endpoints are plaintext until mesh TLS: discovery provides no
/// identity.
pub const DST_TLS: Tls = Tls::NoIdentity(NoTlsReason::NotProvidedByServiceDiscovery);
/// The application's connections to its own proxy.
pub const SRC_TLS: Tls = Tls::NoIdentity(NoTlsReason::Loopback);

impl Outbound<()> {
    pub fn new(
        config: Arc<Config>,
        metrics: Arc<Metrics>,
        own_listeners: Arc<[SocketAddr]>,
    ) -> Self {
        Outbound {
            config,
            metrics,
            own_listeners,
            stack: (),
        }
    }

    /// The innermost stage: opens a TCP connection to one endpoint.
    pub fn push_connect(self) -> Outbound<Connect> {
        let c = self.proxy_config();
        let connect = Connect::new(
            Direction::Outbound,
            c.connect_timeout,
            c.connect,
            DST_TLS,
            self.metrics.clone(),
            self.own_listeners.clone(),
        );
        self.map(|()| connect)
    }
}

impl<S> Outbound<S> {
    fn proxy_config(&self) -> &ProxyConfig {
        &self.config.outbound
    }

    fn map<T>(self, f: impl FnOnce(S) -> T) -> Outbound<T> {
        Outbound {
            config: self.config,
            metrics: self.metrics,
            own_listeners: self.own_listeners,
            stack: f(self.stack),
        }
    }

    pub fn into_inner(self) -> S {
        self.stack
    }
}
