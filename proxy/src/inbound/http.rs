//! The inbound HTTP stage.

use std::sync::Arc;

use super::{Inbound, SRC_TLS};
use crate::connect::Upstream;
use crate::http::{Http, HttpSettings, Pool};
use crate::metrics::Direction;

impl<U: Upstream> Inbound<U> {
    /// Proxies HTTP to the application. Inbound HTTP metrics carry the client connection's
    /// `tls` label, as Linkerd's do.
    pub fn push_http(self) -> Inbound<Arc<Http<U>>> {
        let c = self.proxy_config();
        let pool = Pool::new(
            c.pool_idle_timeout,
            c.pool_max_idle_per_endpoint,
            self.config.h2_windows.clone(),
        );
        let settings = HttpSettings {
            direction: Direction::Inbound,
            tls: SRC_TLS,
            limits: self.config.limits.clone(),
            h2_keepalive: c.h2_keepalive,
            h2_windows: self.config.h2_windows.clone(),
        };
        let metrics = self.metrics.clone();
        self.map(|upstream| Arc::new(Http::new(Arc::new(upstream), pool, metrics, settings)))
    }
}
