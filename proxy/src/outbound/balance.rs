//! Choosing one endpoint of a target's endpoint set.
//!
//! Today an endpoint set comes from DNS or is a single original destination. Endpoints are
//! tried round-robin, moving on when one refuses the connection. Latency-aware balancing
//! (peak EWMA, as Linkerd does) belongs here once discovery provides real sets.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use super::Outbound;
use crate::connect::{Connect, ConnectError, Connection};

#[derive(Debug)]
pub struct Balance<C> {
    connect: C,
    next: AtomicUsize,
}

impl Outbound<Connect> {
    pub fn push_balance(self) -> Outbound<Balance<Connect>> {
        self.map(|connect| Balance {
            connect,
            next: AtomicUsize::new(0),
        })
    }
}

impl Balance<Connect> {
    /// Connects to one of `endpoints`, trying the others when one fails.
    pub async fn connect(&self, endpoints: &[SocketAddr]) -> Result<Connection, ConnectError> {
        let start = match endpoints.len() {
            0 | 1 => 0,
            n => self.next.fetch_add(1, Relaxed) % n,
        };
        let mut last = None;
        for i in 0..endpoints.len() {
            let addr = endpoints[(start + i) % endpoints.len()];
            match self.connect.connect_addr(addr).await {
                Ok(c) => return Ok(c),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| ConnectError::Resolve {
            name: "endpoint set".into(),
            reason: "no endpoints".into(),
        }))
    }
}
