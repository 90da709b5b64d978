//! The outbound HTTP stage.

use std::sync::Arc;

use super::{DST_TLS, Outbound};
use crate::connect::Upstream;
use crate::http::{Http, HttpSettings, Pool};
use crate::metrics::Direction;

impl<U: Upstream> Outbound<U> {
    /// Proxies HTTP over pooled connections from the stack below. Outbound HTTP metrics
    /// carry the upstream connection's `tls` label, as Linkerd's do.
    pub fn push_http(self) -> Outbound<Arc<Http<U>>> {
        let c = self.proxy_config();
        let pool = Pool::new(
            c.pool_idle_timeout,
            c.pool_max_idle_per_endpoint,
            self.config.h2_windows.clone(),
        );
        let settings = HttpSettings {
            direction: Direction::Outbound,
            tls: DST_TLS,
            limits: self.config.limits.clone(),
            h2_keepalive: c.h2_keepalive,
            h2_windows: self.config.h2_windows.clone(),
        };
        let metrics = self.metrics.clone();
        self.map(|upstream| Arc::new(Http::new(Arc::new(upstream), pool, metrics, settings)))
    }
}
