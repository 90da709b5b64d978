//! The outbound stack: connections from the application to other services.
//!
//! Built from the endpoint outward, one method per stage:
//!
//! ```text
//! push_connect   TCP to one endpoint, mesh TLS when it has an identity
//! push_balance   how a target's balancer picks an endpoint per request (`crate::balance`)
//! push_discover  logical target -> its balancer, fed by discovery's sources (`discover`)
//! share          the upstream so far, shared by the stages above
//! push_http      HTTP proxying; per-endpoint pools of upstream connections
//! push_tcp       opaque TCP forwarding, the sibling of push_http
//! push_detect    the accept loop and protocol detection, handing each connection to
//!                push_http's or push_tcp's stage
//! ```
//!
//! A redirected connection's logical target is its original destination, or, when a
//! source resolves names, the `Host` of each request (falling back to the original
//! destination for names no source knows). A connection made straight to the outbound
//! port is an HTTP proxy client: each request names its target.
//!
//! `push_connect`, `share`, `push_http`, `push_tcp` and `push_detect` are [`Stack`]'s,
//! shared with the inbound side; `push_balance` and `push_discover` are outbound's own.

mod balance;
pub mod discover;
pub mod profile;

pub use balance::{Balance, Discover};

use crate::config::{Config, ProxyConfig};
use crate::metrics::{Direction, NoTlsReason, Tls};
use crate::server::Unredirected;
use crate::stack::{MeshTlsRole, Side, Stack};

/// The outbound side.
#[derive(Debug)]
pub enum Out {}

/// The outbound builder; `S` is the stack built so far.
pub type Outbound<S> = Stack<Out, S>;

impl Side for Out {
    const DIRECTION: Direction = Direction::Outbound;
    const MESH_TLS: MeshTlsRole = MeshTlsRole::Originate;
    /// The application's connections to its own proxy.
    const SRC_TLS: Tls = Tls::NoIdentity(NoTlsReason::Loopback);
    /// Plaintext connections to endpoints: discovery gave no identity, or the proxy has none
    /// of its own. (Linkerd's label for the latter is `tls="disabled"`; its identity can no
    /// longer be turned off, mesh-proxy's can, and keeps its earlier label.)
    const DST_TLS: Tls = Tls::NoIdentity(NoTlsReason::NotProvidedByServiceDiscovery);

    fn config(config: &Config) -> &ProxyConfig {
        &config.outbound
    }

    /// A connection made straight to the outbound port is an HTTP proxy client.
    fn unredirected(_: &ProxyConfig) -> Unredirected {
        Unredirected::HttpProxy
    }
}
