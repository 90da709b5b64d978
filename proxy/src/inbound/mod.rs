//! The inbound stack: connections from other pods to this pod's application.
//!
//! ```text
//! push_connect   TCP to the application (mesh TLS was terminated in push_detect's stage)
//! share          the upstream, shared by the stages above
//! push_http      HTTP proxying with pooled connections to the application
//! push_tcp       opaque TCP forwarding, the sibling of push_http
//! push_detect    the accept loop, mesh TLS termination (`crate::tls`) and protocol
//!                detection, handing each connection to push_http's or push_tcp's stage
//! ```
//!
//! A redirected connection goes to its original destination port on this pod. One that
//! was not redirected goes to `MESH_PROXY_INBOUND_FORWARD_ADDR`, if set, so the proxy can
//! front an application without iptables.
//!
//! The stages are [`Stack`]'s, built with this side's [`Side`] settings.

pub mod policy;

use crate::config::{Config, ProxyConfig};
use crate::metrics::{Direction, NoTlsReason, Tls};
use crate::server::Unredirected;
use crate::stack::{MeshTlsRole, Side, Stack};

/// The inbound side.
#[derive(Debug)]
pub enum In {}

/// The inbound builder; `S` is the stack built so far.
pub type Inbound<S> = Stack<In, S>;

impl Side for In {
    const DIRECTION: Direction = Direction::Inbound;
    const MESH_TLS: MeshTlsRole = MeshTlsRole::Terminate;
    /// Clients that do not start mesh TLS for this proxy's identity.
    const SRC_TLS: Tls = Tls::NoIdentity(NoTlsReason::NoTlsFromRemote);
    /// The proxy's connections to its own application.
    const DST_TLS: Tls = Tls::NoIdentity(NoTlsReason::Loopback);

    fn config(config: &Config) -> &ProxyConfig {
        &config.inbound
    }

    fn unredirected(config: &ProxyConfig) -> Unredirected {
        Unredirected::Forward(config.forward)
    }
}
