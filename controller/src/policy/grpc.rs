//! The `io.linkerd.proxy.inbound.InboundServerPolicies` service: `GetPort` answers from the
//! index, `WatchPort` subscribes to it and sends the whole `Server` again whenever its answer
//! changes. A slow client gets the latest answer, never a queue.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use futures::Stream;
use linkerd2_proxy_api::inbound as pb;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use super::index::{Index, LookupError, ServerRx};
use super::proto;
use super::workload::{Workload, WorkloadError};
use crate::lock;
use crate::streams::{BoxStream, OpenStream, Rpc, StreamMetrics, changed};

/// How many `WatchPort` streams may be open at once, over all clients. A proxy watches each
/// inbound port it serves, a handful per pod, so this covers tens of thousands of pods while
/// bounding what clients can make the index hold.
pub const MAX_WATCHES: usize = 100_000;

const GET_PORT: Rpc = [("rpc", "GetPort")];
const WATCH_PORT: Rpc = [("rpc", "WatchPort")];

/// Registers the service's metrics.
pub fn register_metrics(registry: &mut Registry) -> StreamMetrics {
    StreamMetrics::register(
        registry,
        "policy",
        "WatchPort streams currently open",
        "Server messages sent by GetPort and on WatchPort streams",
    )
}

/// The gRPC service over a shared index.
#[derive(Clone)]
pub struct InboundPolicies {
    index: Arc<Mutex<Index>>,
    shutdown: CancellationToken,
    metrics: StreamMetrics,
    open: Arc<AtomicUsize>,
    max_watches: usize,
}

impl InboundPolicies {
    pub fn new(
        index: Arc<Mutex<Index>>,
        shutdown: CancellationToken,
        metrics: StreamMetrics,
    ) -> Self {
        InboundPolicies {
            index,
            shutdown,
            metrics,
            open: Arc::new(AtomicUsize::new(0)),
            max_watches: MAX_WATCHES,
        }
    }

    /// The same service with another limit on open streams (tests).
    pub fn with_max_watches(mut self, max: usize) -> Self {
        self.max_watches = max;
        self
    }
}

/// The pod and port a `PortSpec` asks about, or the status Linkerd answers a bad one with.
fn target(spec: &pb::PortSpec) -> Result<(Workload, u16), Status> {
    let workload = Workload::parse(&spec.workload).map_err(|e| match e {
        WorkloadError::Invalid(_) => Status::invalid_argument(e.to_string()),
        WorkloadError::External(_) => Status::not_found(e.to_string()),
    })?;
    let port = u16::try_from(spec.port)
        .ok()
        .filter(|&p| p != 0)
        .ok_or_else(|| Status::invalid_argument(format!("Invalid port: {}", spec.port)))?;
    Ok((workload, port))
}

fn status(err: LookupError) -> Status {
    match err {
        LookupError::NotFound { .. } => Status::not_found(err.to_string()),
    }
}

#[tonic::async_trait]
impl pb::inbound_server_policies_server::InboundServerPolicies for InboundPolicies {
    async fn get_port(
        &self,
        request: Request<pb::PortSpec>,
    ) -> Result<Response<pb::Server>, Status> {
        let (workload, port) = target(request.get_ref())?;
        tracing::debug!(namespace = %workload.namespace, pod = %workload.pod, port, "GetPort");
        let server = lock(&self.index)
            .get_port(&workload.namespace, &workload.pod, port)
            .map_err(status)?;
        self.metrics.sent(&GET_PORT).inc();
        Ok(Response::new(proto::server(&server)))
    }

    type WatchPortStream = BoxStream<pb::Server>;

    async fn watch_port(
        &self,
        request: Request<pb::PortSpec>,
    ) -> Result<Response<Self::WatchPortStream>, Status> {
        let (workload, port) = target(request.get_ref())?;
        tracing::debug!(namespace = %workload.namespace, pod = %workload.pod, port, "WatchPort");
        let slot = WatchSlot::take(&self.open, self.max_watches).ok_or_else(|| {
            Status::resource_exhausted(format!(
                "too many WatchPort streams are open (at most {})",
                self.max_watches
            ))
        })?;
        let rx = lock(&self.index)
            .watch_port(&workload.namespace, &workload.pod, port)
            .map_err(status)?;
        let state = WatchState {
            rx,
            first: true,
            shutdown: self.shutdown.clone(),
            sent: self.metrics.sent(&WATCH_PORT),
            _slot: slot,
            _open: self.metrics.open(&WATCH_PORT),
        };
        Ok(Response::new(Box::pin(watch_stream(state))))
    }
}

/// One of the [`MAX_WATCHES`] stream slots, given back when the stream ends.
struct WatchSlot(Arc<AtomicUsize>);

impl WatchSlot {
    fn take(open: &Arc<AtomicUsize>, max: usize) -> Option<WatchSlot> {
        open.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
            (n < max).then_some(n + 1)
        })
        .ok()?;
        Some(WatchSlot(open.clone()))
    }
}

impl Drop for WatchSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

struct WatchState {
    rx: ServerRx,
    first: bool,
    shutdown: CancellationToken,
    sent: Counter,
    _slot: WatchSlot,
    _open: OpenStream,
}

/// Sends the current answer, then each new one. Ends when the server drains or the pod is
/// deleted (its watch closes).
fn watch_stream(state: WatchState) -> impl Stream<Item = Result<pb::Server, Status>> + Send {
    futures::stream::unfold(state, |mut s| async move {
        if !s.first {
            changed(&mut s.rx, &s.shutdown).await?;
        }
        s.first = false;
        let next = s.rx.borrow_and_update().clone();
        s.sent.inc();
        Some((Ok(proto::server(&next)), s))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use pb::inbound_server_policies_server::InboundServerPolicies as _;

    #[tokio::test]
    async fn open_streams_are_bounded() {
        use crate::policy::index::{Config, IdentityDomain};
        use mesh_names::policy::DefaultInboundPolicy;
        let mut index = Index::new(Config {
            cluster_networks: Vec::new(),
            default_policy: DefaultInboundPolicy::Deny,
            default_opaque_ports: Default::default(),
            identity: IdentityDomain {
                control_plane_ns: "linkerd".into(),
                trust_domain: "cluster.local".into(),
            },
        });
        index.apply_pod(
            &serde_json::from_value(serde_json::json!({
                "metadata": {"name": "web-1", "namespace": "shop"},
                "spec": {"containers": []},
            }))
            .unwrap(),
        );
        let service = InboundPolicies::new(
            Arc::new(Mutex::new(index)),
            CancellationToken::new(),
            StreamMetrics::default(),
        )
        .with_max_watches(2);
        let watch = |port| {
            service.watch_port(Request::new(pb::PortSpec {
                workload: "shop:web-1".into(),
                port,
            }))
        };
        let first = watch(1).await.unwrap();
        let _second = watch(2).await.unwrap();
        let refused = watch(3).await.err().unwrap();
        assert_eq!(refused.code(), tonic::Code::ResourceExhausted);
        drop(first);
        // Refused lookups give their slot back.
        for _ in 0..3 {
            let unknown = service.watch_port(Request::new(pb::PortSpec {
                workload: "shop:nope".into(),
                port: 1,
            }));
            assert_eq!(unknown.await.err().unwrap().code(), tonic::Code::NotFound);
        }
        let _third = watch(3).await.unwrap();
        assert!(watch(4).await.is_err(), "two streams are open again");
    }
}
