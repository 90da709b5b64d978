//! The inbound stack: connections from other pods to this pod's application.
//!
//! ```text
//! push_connect   TCP to the application (mesh TLS will be terminated before this)
//! push_http      HTTP proxying with pooled connections to the application
//! push_detect    protocol detection, opaque forwarding, the accept loop
//! ```
//!
//! A redirected connection goes to its original destination port on this pod. One that
//! was not redirected goes to `MESH_PROXY_INBOUND_FORWARD_ADDR`, if set, so the proxy can
//! front an application without iptables.

mod detect;
mod http;

use std::net::SocketAddr;
use std::sync::Arc;

use crate::config::{Config, ProxyConfig};
use crate::connect::Connect;
use crate::metrics::{Direction, Metrics, NoTlsReason, Tls};

/// The inbound builder; `S` is the stack built so far.
pub struct Inbound<S> {
    config: Arc<Config>,
    metrics: Arc<Metrics>,
    own_listeners: Arc<[SocketAddr]>,
    stack: S,
}

/// Clients reach the inbound proxy without mesh TLS until identity lands.
pub const SRC_TLS: Tls = Tls::NoIdentity(NoTlsReason::NoTlsFromRemote);
/// The proxy's connections to its own application.
pub const DST_TLS: Tls = Tls::NoIdentity(NoTlsReason::Loopback);

impl Inbound<()> {
    pub fn new(
        config: Arc<Config>,
        metrics: Arc<Metrics>,
        own_listeners: Arc<[SocketAddr]>,
    ) -> Self {
        Inbound {
            config,
            metrics,
            own_listeners,
            stack: (),
        }
    }

    /// The innermost stage: opens a TCP connection to the application.
    pub fn push_connect(self) -> Inbound<Connect> {
        let c = self.proxy_config();
        let connect = Connect::new(
            Direction::Inbound,
            c.connect_timeout,
            c.connect,
            DST_TLS,
            self.metrics.clone(),
            self.own_listeners.clone(),
        );
        self.map(|()| connect)
    }
}

impl<S> Inbound<S> {
    fn proxy_config(&self) -> &ProxyConfig {
        &self.config.inbound
    }

    fn map<T>(self, f: impl FnOnce(S) -> T) -> Inbound<T> {
        Inbound {
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
