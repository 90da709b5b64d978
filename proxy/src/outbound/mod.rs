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
//!
//! `push_connect`, `push_http` and `push_detect` are [`Stack`]'s, shared with the inbound
//! side; `push_balance` and `push_discover` are outbound's own.

mod balance;
pub mod discover;
pub mod profile;

pub use balance::Balance;
pub use discover::Discover;

use crate::config::{Config, ProxyConfig};
use crate::metrics::{Direction, NoTlsReason, Tls};
use crate::server::Unredirected;
use crate::stack::{Side, Stack};

/// The outbound side.
#[derive(Debug)]
pub enum Out {}

/// The outbound builder; `S` is the stack built so far.
pub type Outbound<S> = Stack<Out, S>;

impl Side for Out {
    const DIRECTION: Direction = Direction::Outbound;
    /// The application's connections to its own proxy.
    const SRC_TLS: Tls = Tls::NoIdentity(NoTlsReason::Loopback);
    /// Outbound connections to endpoints are plaintext until mesh TLS: discovery provides
    /// no identity.
    const DST_TLS: Tls = Tls::NoIdentity(NoTlsReason::NotProvidedByServiceDiscovery);
    const HTTP_TLS: Tls = Self::DST_TLS;

    fn config(config: &Config) -> &ProxyConfig {
        &config.outbound
    }

    /// A connection made straight to the outbound port is an HTTP proxy client.
    fn unredirected(_: &ProxyConfig) -> Unredirected {
        Unredirected::HttpProxy
    }
}
