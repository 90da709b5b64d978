//! What the controller's streaming gRPC services (destination, inbound policy) share: the metrics
//! of their open streams and sent messages by RPC, the guard that counts a stream as open while
//! it lives, and the wait for a watched answer's next change, which ends at shutdown.

use std::pin::Pin;

use futures::Stream;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tonic::Status;

/// A response stream of a server-streaming RPC.
pub type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// The `rpc` label: the method's name, e.g. `[("rpc", "Get")]`.
pub type Rpc = [(&'static str, &'static str); 1];

/// `<service>_streams_open` and `<service>_updates_sent`, by RPC.
#[derive(Clone, Default)]
pub struct StreamMetrics {
    streams_open: Family<Rpc, Gauge>,
    updates_sent: Family<Rpc, Counter>,
}

impl StreamMetrics {
    /// Registers the service's two families; `open_help` and `sent_help` say which RPCs count.
    pub fn register(
        registry: &mut Registry,
        service: &str,
        open_help: &str,
        sent_help: &str,
    ) -> StreamMetrics {
        let metrics = StreamMetrics::default();
        registry.register(
            format!("{service}_streams_open"),
            open_help,
            metrics.streams_open.clone(),
        );
        registry.register(
            format!("{service}_updates_sent"),
            sent_help,
            metrics.updates_sent.clone(),
        );
        metrics
    }

    /// Counts a stream of `rpc` as open until the guard is dropped.
    pub fn open(&self, rpc: &Rpc) -> OpenStream {
        let gauge = self.streams_open.get_or_create(rpc).clone();
        gauge.inc();
        OpenStream(gauge)
    }

    /// The counter of messages sent by `rpc`.
    pub fn sent(&self, rpc: &Rpc) -> Counter {
        self.updates_sent.get_or_create(rpc).clone()
    }
}

/// Counts a stream as open while it lives.
pub struct OpenStream(Gauge);

impl Drop for OpenStream {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Waits until `rx` holds a value not yet seen. `None` once shutdown begins (streams end so that
/// connections can drain) or the index dropped the watch.
pub async fn changed<T>(rx: &mut watch::Receiver<T>, shutdown: &CancellationToken) -> Option<()> {
    tokio::select! {
        _ = shutdown.cancelled() => None,
        changed = rx.changed() => changed.ok(),
    }
}

#[cfg(test)]
mod tests;
