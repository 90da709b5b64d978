//! The `io.linkerd.proxy.destination.Destination` service: each call subscribes to the index and
//! turns the watched answer into the stream of messages the proxy expects. No answer is computed
//! here.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use futures::Stream;
use linkerd2_proxy_api::destination as pb;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use super::index::{Endpoints, EndpointsRx, Index, LookupError, ProfileRx, diff};
use crate::streams::{BoxStream, OpenStream, Rpc, StreamMetrics, changed};

const GET: Rpc = [("rpc", "Get")];
const GET_PROFILE: Rpc = [("rpc", "GetProfile")];

/// Registers the service's metrics.
pub fn register_metrics(registry: &mut Registry) -> StreamMetrics {
    StreamMetrics::register(
        registry,
        "destination",
        "Get and GetProfile streams currently open",
        "Messages sent on Get and GetProfile streams",
    )
}

/// The gRPC service over a shared index.
#[derive(Clone)]
pub struct Destination {
    index: Arc<Mutex<Index>>,
    shutdown: CancellationToken,
    metrics: StreamMetrics,
}

impl Destination {
    pub fn new(
        index: Arc<Mutex<Index>>,
        shutdown: CancellationToken,
        metrics: StreamMetrics,
    ) -> Self {
        Destination {
            index,
            shutdown,
            metrics,
        }
    }
}

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
        let rx = crate::lock(&self.index)
            .subscribe_endpoints(&dest.path)
            .map_err(status)?;
        let state = GetState {
            rx,
            last: None,
            pending: VecDeque::new(),
            shutdown: self.shutdown.clone(),
            sent: self.metrics.sent(&GET),
            _open: self.metrics.open(&GET),
        };
        Ok(Response::new(Box::pin(get_stream(state))))
    }

    async fn get_profile(
        &self,
        request: Request<pb::GetDestination>,
    ) -> Result<Response<Self::GetProfileStream>, Status> {
        let dest = request.into_inner();
        tracing::debug!(path = %dest.path, "GetProfile");
        let rx = crate::lock(&self.index)
            .subscribe_profile(&dest.path, &dest.context_token)
            .map_err(status)?;
        let state = ProfileState {
            rx,
            last: None,
            shutdown: self.shutdown.clone(),
            sent: self.metrics.sent(&GET_PROFILE),
            _open: self.metrics.open(&GET_PROFILE),
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
                changed(&mut s.rx, &s.shutdown).await?;
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
                changed(&mut s.rx, &s.shutdown).await?;
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
