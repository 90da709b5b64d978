//! Turning a logical target into its endpoints.
//!
//! An IP target is its own endpoint; a name (from an HTTP proxy-mode request) is resolved
//! with the system resolver. The destination service (Linkerd's `Destination.Get`) will
//! plug in here and feed `Balance` with endpoint sets and their identities.

use std::net::SocketAddr;

use super::{Balance, Outbound};
use crate::connect::{Connect, ConnectError, Connection, Upstream, resolve};
use crate::target::Logical;

#[derive(Debug)]
pub struct Discover<B> {
    balance: B,
}

impl Outbound<Balance<Connect>> {
    pub fn push_discover(self) -> Outbound<Discover<Balance<Connect>>> {
        self.map(|balance| Discover { balance })
    }
}

impl Upstream for Discover<Balance<Connect>> {
    async fn connect(&self, target: &Logical) -> Result<Connection, ConnectError> {
        match target {
            Logical::Addr(addr) => self.balance.connect(&[*addr]).await,
            Logical::Name(host, port) => {
                let endpoints: Vec<SocketAddr> = resolve(host, *port).await?;
                self.balance.connect(&endpoints).await
            }
        }
    }
}
