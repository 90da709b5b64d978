//! The `io.linkerd.proxy.destination.Destination` service: each call subscribes to the index and
//! turns the watched answer into the stream of messages the proxy expects. No answer is computed
//! here.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use futures::Stream;
use linkerd2_proxy_api::destination as pb;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use super::index::{Endpoints, EndpointsRx, Index, LookupError, ProfileRx, diff};

type Labels = [(&'static str, &'static str); 1];
const GET: Labels = [("rpc", "Get")];
const GET_PROFILE: Labels = [("rpc", "GetProfile")];

/// The service's metrics.
#[derive(Clone, Default)]
pub struct Metrics {
    streams_open: Family<Labels, Gauge>,
    updates_sent: Family<Labels, Counter>,
}

impl Metrics {
    pub fn register(registry: &mut Registry) -> Metrics {
        let metrics = Metrics::default();
        registry.register(
            "destination_streams_open",
            "Get and GetProfile streams currently open",
            metrics.streams_open.clone(),
        );
        registry.register(
            "destination_updates_sent",
            "Messages sent on Get and GetProfile streams",
            metrics.updates_sent.clone(),
        );
        metrics
    }
}

/// The gRPC service over a shared index.
#[derive(Clone)]
pub struct Destination {
    index: Arc<Mutex<Index>>,
    shutdown: CancellationToken,
    metrics: Metrics,
}

impl Destination {
    pub fn new(index: Arc<Mutex<Index>>, shutdown: CancellationToken, metrics: Metrics) -> Self {
        Destination {
            index,
            shutdown,
            metrics,
        }
    }

    fn index(&self) -> std::sync::MutexGuard<'_, Index> {
        match self.index.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

#[tonic::async_trait]
impl pb::destination_server::Destination for Destination {
    type GetStream = BoxStream<pb::Update>;
    type GetProfileStream = BoxStream<pb::DestinationProfile>;

    async fn get(
        &self,
        request: Request<pb::GetDestination>,
    ) -> Result<Response<Self::GetStream>, Status> {
        let dest = request.into_inner();
        tracing::debug!(path = %dest.path, "Get");
        let rx = self
            .index()
            .subscribe_endpoints(&dest.path)
            .map_err(status)?;
        let state = GetState {
            rx,
            last: None,
            pending: VecDeque::new(),
            shutdown: self.shutdown.clone(),
            sent: self.metrics.updates_sent.get_or_create(&GET).clone(),
            _open: OpenStream::new(&self.metrics, GET),
        };
        Ok(Response::new(Box::pin(get_stream(state))))
    }

    async fn get_profile(
        &self,
        request: Request<pb::GetDestination>,
    ) -> Result<Response<Self::GetProfileStream>, Status> {
        let dest = request.into_inner();
        tracing::debug!(path = %dest.path, "GetProfile");
        let rx = self
            .index()
            .subscribe_profile(&dest.path, &dest.context_token)
            .map_err(status)?;
        let state = ProfileState {
            rx,
            last: None,
            shutdown: self.shutdown.clone(),
            sent: self
                .metrics
                .updates_sent
                .get_or_create(&GET_PROFILE)
                .clone(),
            _open: OpenStream::new(&self.metrics, GET_PROFILE),
        };
        Ok(Response::new(Box::pin(profile_stream(state))))
    }
}

fn status(err: LookupError) -> Status {
    match err {
        LookupError::InvalidArgument(msg) => Status::invalid_argument(msg),
        LookupError::NotFound(msg) => Status::not_found(msg),
    }
}

/// Counts a stream as open while it lives.
struct OpenStream(Gauge);

impl OpenStream {
    fn new(metrics: &Metrics, labels: Labels) -> Self {
        let gauge = metrics.streams_open.get_or_create(&labels).clone();
        gauge.inc();
        OpenStream(gauge)
    }
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        self.0.dec();
    }
}

struct GetState {
    rx: EndpointsRx,
    /// What the client has been sent, to diff the next state against.
    last: Option<Arc<Endpoints>>,
    /// At most one diff's updates (no more than three messages).
    pending: VecDeque<pb::Update>,
    shutdown: CancellationToken,
    sent: Counter,
    _open: OpenStream,
}

/// Sends the current endpoints, then the difference to each new state. States that arrive while
/// the client is slow are coalesced by the watch: only the latest is diffed.
fn get_stream(state: GetState) -> impl Stream<Item = Result<pb::Update, Status>> + Send {
    futures::stream::unfold(state, |mut s| async move {
        loop {
            if let Some(update) = s.pending.pop_front() {
                s.sent.inc();
                return Some((Ok(update), s));
            }
            if s.last.is_some() {
                tokio::select! {
                    _ = s.shutdown.cancelled() => return None,
                    changed = s.rx.changed() => changed.ok()?,
                }
            }
            let next = s.rx.borrow_and_update().clone();
            s.pending.extend(diff(s.last.as_deref(), &next));
            s.last = Some(next);
        }
    })
}

struct ProfileState {
    rx: ProfileRx,
    last: Option<Arc<pb::DestinationProfile>>,
    shutdown: CancellationToken,
    sent: Counter,
    _open: OpenStream,
}

/// Sends the current profile, then each one that differs from the last sent.
fn profile_stream(
    state: ProfileState,
) -> impl Stream<Item = Result<pb::DestinationProfile, Status>> + Send {
    futures::stream::unfold(state, |mut s| async move {
        loop {
            if s.last.is_some() {
                tokio::select! {
                    _ = s.shutdown.cancelled() => return None,
                    changed = s.rx.changed() => changed.ok()?,
                }
            }
            let next = s.rx.borrow_and_update().clone();
            if s.last.as_deref() != Some(&*next) {
                s.last = Some(next.clone());
                s.sent.inc();
                return Some((Ok((*next).clone()), s));
            }
        }
    })
}
