//! The outermost inbound stage: detection and the accept loop.

use std::sync::Arc;

use tokio::sync::Semaphore;

use super::{Inbound, SRC_TLS};
use crate::connect::Upstream;
use crate::detect::DetectSettings;
use crate::http::Http;
use crate::metrics::Direction;
use crate::server::{Server, Unredirected};

impl<U: Upstream> Inbound<Arc<Http<U>>> {
    pub fn push_detect(self) -> Inbound<Arc<Server<U>>> {
        let c = self.proxy_config();
        let limits = &self.config.limits;
        let server = Server {
            direction: Direction::Inbound,
            unredirected: Unredirected::Forward(c.forward),
            detect: DetectSettings {
                timeout: c.detect_timeout,
                server_speaks_first: c.server_speaks_first,
                max_bytes: limits.max_header_bytes,
            },
            opaque_ports: c.opaque_ports.clone(),
            accept_options: c.accept,
            src_tls: SRC_TLS,
            http: self.stack.clone(),
            tcp_idle_timeout: limits.tcp_idle_timeout,
            header_read_timeout: limits.header_read_timeout,
            max_header_bytes: limits.max_header_bytes,
            metrics: self.metrics.clone(),
            connections: Arc::new(Semaphore::new(limits.max_connections)),
        };
        self.map(|_| Arc::new(server))
    }
}
