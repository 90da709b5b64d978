//! A Destination server whose answers the test writes, call by call.
//!
//! It runs on a runtime and thread of its own, so [`Server::kill`] drops every connection
//! at once, as a crashed control plane would.

use std::net::SocketAddr;
use std::time::Duration;

use linkerd2_proxy_api::destination::destination_server::{Destination, DestinationServer};
use linkerd2_proxy_api::destination::{DestinationProfile, GetDestination, Update};
use tokio::sync::{mpsc, oneshot};
use tonic::codegen::tokio_stream::wrappers::UnboundedReceiverStream;
use tonic::{Request, Response, Status};

pub type Updates = mpsc::UnboundedSender<Result<Update, Status>>;
pub type Profiles = mpsc::UnboundedSender<Result<DestinationProfile, Status>>;

/// A stream the proxy opened; the test answers through the sender.
pub enum Call {
    Get(GetDestination, Updates),
    Profile(GetDestination, Profiles),
}

pub struct Server {
    pub addr: SocketAddr,
    calls: mpsc::UnboundedReceiver<Call>,
    /// Calls seen but not yet asked for; their streams stay open.
    stash: Vec<Call>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

const WAIT: Duration = Duration::from_secs(10);

impl Server {
    /// Serves on `addr` (port 0 for any).
    pub fn start(addr: SocketAddr) -> Server {
        let listener = std::net::TcpListener::bind(addr).expect("bind the test server");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("local addr");
        let (calls_tx, calls) = mpsc::unbounded_channel();
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                let incoming = tonic::transport::server::TcpIncoming::from(listener);
                let service = DestinationServer::new(Scripted { calls: calls_tx });
                let serve = tonic::transport::Server::builder()
                    .add_service(service)
                    .serve_with_incoming(incoming);
                tokio::select! {
                    _ = serve => {}
                    _ = stopped => {}
                }
            });
            // Dropping the runtime drops every connection task with it.
        });
        Server {
            addr,
            calls,
            stash: Vec::new(),
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Stops serving and drops every connection and stream.
    pub fn kill(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            thread.join().expect("server thread");
        }
    }

    /// The next `Get` call for `path`.
    pub async fn get(&mut self, path: &str) -> (GetDestination, Updates) {
        let found = self
            .call(|c| matches!(c, Call::Get(req, _) if req.path == path))
            .await;
        match found {
            Call::Get(req, tx) => (req, tx),
            Call::Profile(..) => unreachable!(),
        }
    }

    /// The next `GetProfile` call for `path`.
    pub async fn profile(&mut self, path: &str) -> Profiles {
        let found = self
            .call(|c| matches!(c, Call::Profile(req, _) if req.path == path))
            .await;
        match found {
            Call::Profile(_, tx) => tx,
            Call::Get(..) => unreachable!(),
        }
    }

    async fn call(&mut self, wanted: impl Fn(&Call) -> bool) -> Call {
        if let Some(i) = self.stash.iter().position(&wanted) {
            return self.stash.remove(i);
        }
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let call = tokio::time::timeout_at(deadline, self.calls.recv())
                .await
                .expect("the proxy made the expected call in time")
                .expect("server running");
            if wanted(&call) {
                return call;
            }
            self.stash.push(call);
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown();
    }
}

struct Scripted {
    calls: mpsc::UnboundedSender<Call>,
}

#[tonic::async_trait]
impl Destination for Scripted {
    type GetStream = UnboundedReceiverStream<Result<Update, Status>>;
    type GetProfileStream = UnboundedReceiverStream<Result<DestinationProfile, Status>>;

    async fn get(
        &self,
        request: Request<GetDestination>,
    ) -> Result<Response<Self::GetStream>, Status> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.calls
            .send(Call::Get(request.into_inner(), tx))
            .map_err(|_| Status::unavailable("test over"))?;
        Ok(Response::new(UnboundedReceiverStream::new(rx)))
    }

    async fn get_profile(
        &self,
        request: Request<GetDestination>,
    ) -> Result<Response<Self::GetProfileStream>, Status> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.calls
            .send(Call::Profile(request.into_inner(), tx))
            .map_err(|_| Status::unavailable("test over"))?;
        Ok(Response::new(UnboundedReceiverStream::new(rx)))
    }
}
