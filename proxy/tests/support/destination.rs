//! A Destination server (Linkerd's gRPC API, `Get` and `GetProfile`) on 127.0.0.1 whose
//! answers a test changes while the proxy watches.
//!
//! The test states what the control plane knows, per authority (the `path` the proxy
//! asks: `web.ns.svc.cluster.local:8080`); every open stream is sent the difference as
//! Linkerd's destination service would: the whole set first, then `Add` and `Remove`
//! updates, `NoEndpoints` for a service with none (`exists: true`) or none at all
//! (`exists: false`). An authority the test never set is unknown. Profiles are sent whole
//! on every change; an authority without one gets an empty profile.
//!
//! The server runs on a thread and runtime of its own, so [`Destination::kill`] drops every
//! connection at once, as a crashed control plane would.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use linkerd2_proxy_api::destination as api;

/// The endpoint label that marks a meshed endpoint (protocol hint H2) instead of labelling
/// it.
pub const MESHED: &str = "__meshed";
/// The endpoint label whose value is the endpoint's TLS identity (`tls_identity`).
pub const IDENTITY: &str = "__identity";
/// The endpoint label whose value is the inbound port of an opaque-transport hint.
pub const OPAQUE_TRANSPORT: &str = "__opaque_transport";
use linkerd2_proxy_api::destination::destination_server::{self, DestinationServer};
use linkerd2_proxy_api::destination::update::Update as Kind;
use tokio::sync::{mpsc, watch};
use tonic::codegen::tokio_stream::wrappers::UnboundedReceiverStream;
use tonic::{Request, Response, Status};

use super::server_thread::ServerThread;

pub use api::DestinationProfile;

/// Labels as `(name, value)` pairs.
pub type Labels<'a> = &'a [(&'a str, &'a str)];

/// What the control plane knows of one authority's endpoints.
#[derive(Clone, Debug, Default, PartialEq)]
enum Service {
    #[default]
    Unknown,
    Known {
        /// The set's metric labels.
        labels: BTreeMap<String, String>,
        /// Each endpoint's own metric labels.
        endpoints: BTreeMap<SocketAddr, BTreeMap<String, String>>,
    },
}

#[derive(Default)]
struct State {
    services: Mutex<HashMap<String, watch::Sender<Service>>>,
    profiles: Mutex<HashMap<String, watch::Sender<Option<DestinationProfile>>>>,
    /// Every call, in order: `("get" | "profile", path, context_token)`.
    calls: Mutex<Vec<(&'static str, String, String)>>,
}

impl State {
    fn service(&self, path: &str) -> watch::Sender<Service> {
        let mut map = self.services.lock().unwrap();
        map.entry(path.to_string())
            .or_insert_with(|| watch::channel(Service::Unknown).0)
            .clone()
    }

    fn profile(&self, path: &str) -> watch::Sender<Option<DestinationProfile>> {
        let mut map = self.profiles.lock().unwrap();
        map.entry(path.to_string())
            .or_insert_with(|| watch::channel(None).0)
            .clone()
    }
}

enum Listen {
    Tcp(std::net::TcpListener),
    Unix(std::os::unix::net::UnixListener),
}

/// A running scripted control plane.
pub struct Destination {
    pub addr: SocketAddr,
    state: Arc<State>,
    thread: ServerThread,
}

impl Destination {
    /// Serves on an ephemeral port of 127.0.0.1.
    pub fn start() -> Destination {
        Destination::start_on("127.0.0.1:0".parse().unwrap())
    }

    /// Serves on `addr` (again on the port of one that was killed, say).
    pub fn start_on(addr: SocketAddr) -> Destination {
        let listener = std::net::TcpListener::bind(addr).expect("bind the destination server");
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        Destination::spawn(addr, Listen::Tcp(listener))
    }

    /// Serves on a Unix socket at `path`, for a proxy in another network namespace to
    /// reach through a forwarder; `addr` is unspecified.
    pub fn start_unix(path: &std::path::Path) -> Destination {
        let listener =
            std::os::unix::net::UnixListener::bind(path).expect("bind the destination socket");
        listener.set_nonblocking(true).unwrap();
        Destination::spawn("0.0.0.0:0".parse().unwrap(), Listen::Unix(listener))
    }

    fn spawn(addr: SocketAddr, listener: Listen) -> Destination {
        let state = Arc::new(State::default());
        let shared = state.clone();
        let thread = ServerThread::spawn(move || async move {
            let server = tonic::transport::Server::builder()
                .add_service(DestinationServer::new(Scripted { state: shared }));
            let _ = match listener {
                Listen::Tcp(l) => {
                    let l = tokio::net::TcpListener::from_std(l).unwrap();
                    let incoming = tonic::transport::server::TcpIncoming::from(l);
                    server.serve_with_incoming(incoming).await
                }
                Listen::Unix(l) => {
                    let l = tokio::net::UnixListener::from_std(l).unwrap();
                    let incoming = futures::stream::unfold(l, |l| async move {
                        let accepted = l.accept().await.map(|(s, _)| s);
                        Some((accepted, l))
                    });
                    server.serve_with_incoming(incoming).await
                }
            };
        });
        Destination {
            addr,
            state,
            thread,
        }
    }

    /// The proxy's environment for this control plane.
    pub fn env(&self) -> String {
        self.addr.to_string()
    }

    /// Stops serving and drops every connection and stream.
    pub fn kill(mut self) {
        self.thread.stop();
    }

    /// `authority` has exactly these endpoints, without labels.
    pub fn set(&self, authority: &str, endpoints: &[SocketAddr]) {
        let with: Vec<(SocketAddr, Labels)> = endpoints.iter().map(|a| (*a, &[][..])).collect();
        self.set_labeled(authority, &[], &with);
    }

    /// `authority` has exactly these endpoints; `set_labels` are the set's metric labels,
    /// each endpoint has its own.
    pub fn set_labeled(
        &self,
        authority: &str,
        set_labels: Labels,
        endpoints: &[(SocketAddr, Labels)],
    ) {
        let service = Service::Known {
            labels: map(set_labels),
            endpoints: endpoints.iter().map(|(a, l)| (*a, map(l))).collect(),
        };
        self.state.service(authority).send_replace(service);
    }

    /// Adds one endpoint to `authority` (which becomes known if it was not).
    pub fn add(&self, authority: &str, endpoint: SocketAddr) {
        self.state.service(authority).send_modify(|s| {
            if let Service::Unknown = s {
                *s = Service::Known {
                    labels: BTreeMap::new(),
                    endpoints: BTreeMap::new(),
                };
            }
            if let Service::Known { endpoints, .. } = s {
                endpoints.insert(endpoint, BTreeMap::new());
            }
        });
    }

    /// Removes one endpoint of `authority`.
    pub fn remove(&self, authority: &str, endpoint: SocketAddr) {
        self.state.service(authority).send_modify(|s| {
            if let Service::Known { endpoints, .. } = s {
                endpoints.remove(&endpoint);
            }
        });
    }

    /// The control plane no longer knows `authority` (`NoEndpoints { exists: false }`).
    pub fn forget(&self, authority: &str) {
        self.state.service(authority).send_replace(Service::Unknown);
    }

    /// `authority`'s service profile.
    pub fn profile(&self, authority: &str, profile: DestinationProfile) {
        self.state.profile(authority).send_replace(Some(profile));
    }

    /// The paths of the `Get` calls so far, in order.
    pub fn gets(&self) -> Vec<String> {
        self.calls("get")
    }

    /// The paths of the `GetProfile` calls so far, in order.
    pub fn profile_gets(&self) -> Vec<String> {
        self.calls("profile")
    }

    /// The context tokens of every call so far.
    pub fn context_tokens(&self) -> Vec<String> {
        let calls = self.state.calls.lock().unwrap();
        calls.iter().map(|(_, _, t)| t.clone()).collect()
    }

    fn calls(&self, kind: &str) -> Vec<String> {
        let calls = self.state.calls.lock().unwrap();
        calls
            .iter()
            .filter(|(k, _, _)| *k == kind)
            .map(|(_, p, _)| p.clone())
            .collect()
    }
}

/// A profile route named `name` (its `route` metric label) for paths matching `regex`.
pub fn route(name: &str, regex: &str) -> api::Route {
    api::Route {
        condition: Some(api::RequestMatch {
            r#match: Some(api::request_match::Match::Path(api::PathMatch {
                regex: regex.into(),
            })),
        }),
        metrics_labels: [("route".to_string(), name.to_string())].into(),
        ..Default::default()
    }
}

/// A profile with these routes and Linkerd's default retry budget.
pub fn profile(routes: Vec<api::Route>) -> DestinationProfile {
    DestinationProfile {
        routes,
        ..Default::default()
    }
}

/// A retry budget.
pub fn budget(retry_ratio: f32, min_retries_per_second: u32, ttl: Duration) -> api::RetryBudget {
    api::RetryBudget {
        retry_ratio,
        min_retries_per_second,
        ttl: Some(proto_duration(ttl)),
    }
}

/// A traffic split: `(authority, weight)`.
pub fn split(backends: &[(&str, u32)]) -> Vec<api::WeightedDst> {
    backends
        .iter()
        .map(|(authority, weight)| api::WeightedDst {
            authority: authority.to_string(),
            weight: *weight,
            ..Default::default()
        })
        .collect()
}

pub fn proto_duration(d: Duration) -> prost_types::Duration {
    prost_types::Duration {
        seconds: d.as_secs() as i64,
        nanos: d.subsec_nanos() as i32,
    }
}

fn map(labels: Labels) -> BTreeMap<String, String> {
    labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The updates that take a stream that has seen `sent` to `now`.
fn diff(sent: Option<&Service>, now: &Service) -> Vec<api::Update> {
    let no_endpoints = |exists| api::Update {
        update: Some(Kind::NoEndpoints(api::NoEndpoints { exists })),
    };
    let Service::Known { labels, endpoints } = now else {
        return match sent {
            Some(Service::Unknown) => vec![],
            _ => vec![no_endpoints(false)],
        };
    };
    let (old_labels, old) = match sent {
        Some(Service::Known { labels, endpoints }) => (Some(labels), Some(endpoints)),
        _ => (None, None),
    };
    let mut updates = Vec::new();
    if let Some(old) = old {
        let gone: Vec<_> = old
            .keys()
            .filter(|a| !endpoints.contains_key(a))
            .map(|a| (*a).into())
            .collect();
        if !gone.is_empty() {
            updates.push(api::Update {
                update: Some(Kind::Remove(api::AddrSet { addrs: gone })),
            });
        }
    }
    let relabelled = old_labels != Some(labels);
    let added: Vec<api::WeightedAddr> = endpoints
        .iter()
        .filter(|(a, l)| relabelled || old.and_then(|o| o.get(a)) != Some(*l))
        .map(|(a, l)| api::WeightedAddr {
            addr: Some((*a).into()),
            weight: 10_000,
            // A label `MESHED` marks an endpoint whose proxy takes HTTP/2 for HTTP/1
            // requests, `OPAQUE_TRANSPORT` gives the opaque-transport hint, `IDENTITY` the
            // endpoint's identity: none is a metric label.
            protocol_hint: (l.contains_key(MESHED) || l.contains_key(OPAQUE_TRANSPORT)).then(
                || api::ProtocolHint {
                    protocol: l
                        .contains_key(MESHED)
                        .then_some(api::protocol_hint::Protocol::H2(api::protocol_hint::H2 {})),
                    opaque_transport: l.get(OPAQUE_TRANSPORT).map(|p| {
                        api::protocol_hint::OpaqueTransport {
                            inbound_port: p.parse().unwrap(),
                        }
                    }),
                },
            ),
            tls_identity: l.get(IDENTITY).map(|name| api::TlsIdentity {
                strategy: Some(api::tls_identity::Strategy::DnsLikeIdentity(
                    api::tls_identity::DnsLikeIdentity { name: name.clone() },
                )),
                server_name: None,
            }),
            metric_labels: l
                .clone()
                .into_iter()
                .filter(|(k, _)| !k.starts_with("__"))
                .collect(),
            ..Default::default()
        })
        .collect();
    if !added.is_empty() {
        updates.push(api::Update {
            update: Some(Kind::Add(api::WeightedAddrSet {
                addrs: added,
                metric_labels: labels.clone().into_iter().collect(),
            })),
        });
    }
    if endpoints.is_empty() && old.is_none_or(|o| !o.is_empty()) {
        updates.push(no_endpoints(true));
    }
    updates
}

struct Scripted {
    state: Arc<State>,
}

type Stream<T> = UnboundedReceiverStream<Result<T, Status>>;

#[tonic::async_trait]
impl destination_server::Destination for Scripted {
    type GetStream = Stream<api::Update>;
    type GetProfileStream = Stream<DestinationProfile>;

    async fn get(
        &self,
        request: Request<api::GetDestination>,
    ) -> Result<Response<Self::GetStream>, Status> {
        let req = request.into_inner();
        self.state
            .calls
            .lock()
            .unwrap()
            .push(("get", req.path.clone(), req.context_token));
        let mut rx = self.state.service(&req.path).subscribe();
        let (tx, stream) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut sent: Option<Service> = None;
            loop {
                let now = rx.borrow_and_update().clone();
                for update in diff(sent.as_ref(), &now) {
                    if tx.send(Ok(update)).is_err() {
                        return;
                    }
                }
                sent = Some(now);
                tokio::select! {
                    changed = rx.changed() => if changed.is_err() { return },
                    () = tx.closed() => return,
                }
            }
        });
        Ok(Response::new(UnboundedReceiverStream::new(stream)))
    }

    async fn get_profile(
        &self,
        request: Request<api::GetDestination>,
    ) -> Result<Response<Self::GetProfileStream>, Status> {
        let req = request.into_inner();
        self.state
            .calls
            .lock()
            .unwrap()
            .push(("profile", req.path.clone(), req.context_token));
        let mut rx = self.state.profile(&req.path).subscribe();
        let (tx, stream) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            loop {
                let now = rx.borrow_and_update().clone().unwrap_or_default();
                if tx.send(Ok(now)).is_err() {
                    return;
                }
                tokio::select! {
                    changed = rx.changed() => if changed.is_err() { return },
                    () = tx.closed() => return,
                }
            }
        });
        Ok(Response::new(UnboundedReceiverStream::new(stream)))
    }
}
