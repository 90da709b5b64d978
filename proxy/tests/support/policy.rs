//! A policy server (Linkerd's `InboundServerPolicies`, `WatchPort`) on 127.0.0.1 whose
//! answers a test changes while the proxy watches.
//!
//! Per port the test sets a `Server` (or nothing: the stream stays open and silent, as a
//! control plane that has not answered yet); every open stream of that port is sent each
//! new value whole, as Linkerd's policy controller does.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use linkerd2_proxy_api::inbound as api;
use linkerd2_proxy_api::inbound::inbound_server_policies_server::{
    InboundServerPolicies, InboundServerPoliciesServer,
};
use linkerd2_proxy_api::meta;
use tokio::sync::{mpsc, watch};
use tonic::codegen::tokio_stream::wrappers::UnboundedReceiverStream;
use tonic::{Request, Response, Status};

use super::server_thread::ServerThread;

#[derive(Default)]
struct State {
    ports: Mutex<HashMap<u32, watch::Sender<Option<api::Server>>>>,
    /// Every `WatchPort` call: `(workload, port)`.
    calls: Mutex<Vec<(String, u32)>>,
}

impl State {
    fn port(&self, port: u32) -> watch::Sender<Option<api::Server>> {
        let mut map = self.ports.lock().unwrap();
        map.entry(port)
            .or_insert_with(|| watch::channel(None).0)
            .clone()
    }
}

/// A running scripted policy server.
pub struct PolicyServer {
    pub addr: SocketAddr,
    state: Arc<State>,
    _thread: ServerThread,
}

impl PolicyServer {
    pub fn start() -> PolicyServer {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State::default());
        let shared = state.clone();
        let thread = ServerThread::spawn(move || async move {
            let l = tokio::net::TcpListener::from_std(listener).unwrap();
            let incoming = tonic::transport::server::TcpIncoming::from(l);
            let _ = tonic::transport::Server::builder()
                .add_service(InboundServerPoliciesServer::new(Scripted { state: shared }))
                .serve_with_incoming(incoming)
                .await;
        });
        PolicyServer {
            addr,
            state,
            _thread: thread,
        }
    }

    /// What `port`'s streams are sent from now on.
    pub fn set(&self, port: u16, server: api::Server) {
        self.state.port(port.into()).send_replace(Some(server));
    }

    /// Every `WatchPort` call so far: `(workload, port)`.
    pub fn calls(&self) -> Vec<(String, u32)> {
        self.state.calls.lock().unwrap().clone()
    }
}

/// A `Server` named `name` (labels as Linkerd's controller writes them) that detects the
/// protocol and has `authorizations`.
pub fn server(name: &str, authorizations: Vec<api::Authz>) -> api::Server {
    api::Server {
        protocol: Some(api::ProxyProtocol {
            kind: Some(api::proxy_protocol::Kind::Detect(
                api::proxy_protocol::Detect {
                    timeout: Some(prost_types::Duration {
                        seconds: 10,
                        nanos: 0,
                    }),
                    http_routes: vec![],
                    http_local_rate_limit: None,
                },
            )),
        }),
        server_ips: vec![],
        authorizations,
        labels: [
            ("group", "policy.linkerd.io"),
            ("kind", "server"),
            ("name", name),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
    }
}

/// An authorization of every unauthenticated client from `cidr` (`IP/LEN`), named `name`.
pub fn unauthenticated(name: &str, cidr: &str) -> api::Authz {
    let (ip, len) = cidr.split_once('/').unwrap();
    let ip: std::net::IpAddr = ip.parse().unwrap();
    api::Authz {
        networks: vec![api::Network {
            net: Some((ip, len.parse::<u8>().unwrap()).into()),
            except: vec![],
        }],
        authentication: Some(api::Authn {
            permit: Some(api::authn::Permit::Unauthenticated(
                api::authn::PermitUnauthenticated {},
            )),
        }),
        labels: Default::default(),
        metadata: Some(meta::Metadata {
            kind: Some(meta::metadata::Kind::Resource(meta::Resource {
                group: "policy.linkerd.io".into(),
                kind: "authorizationpolicy".into(),
                name: name.into(),
                ..Default::default()
            })),
        }),
    }
}

struct Scripted {
    state: Arc<State>,
}

#[tonic::async_trait]
impl InboundServerPolicies for Scripted {
    type WatchPortStream = UnboundedReceiverStream<Result<api::Server, Status>>;

    async fn get_port(
        &self,
        _request: Request<api::PortSpec>,
    ) -> Result<Response<api::Server>, Status> {
        Err(Status::unimplemented("only WatchPort is scripted"))
    }

    async fn watch_port(
        &self,
        request: Request<api::PortSpec>,
    ) -> Result<Response<Self::WatchPortStream>, Status> {
        let spec = request.into_inner();
        self.state
            .calls
            .lock()
            .unwrap()
            .push((spec.workload.clone(), spec.port));
        let mut rx = self.state.port(spec.port).subscribe();
        let (tx, stream) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            loop {
                let now = rx.borrow_and_update().clone();
                if let Some(server) = now
                    && tx.send(Ok(server)).is_err()
                {
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

/// `server` with HTTP routes: each `(name, exact path, authorizations)`.
pub fn with_routes(
    mut server: api::Server,
    routes: Vec<(&str, &str, Vec<api::Authz>)>,
) -> api::Server {
    use linkerd2_proxy_api::http_route as r;
    let http_routes = routes
        .into_iter()
        .map(|(name, path, authorizations)| api::HttpRoute {
            metadata: Some(meta::Metadata {
                kind: Some(meta::metadata::Kind::Resource(meta::Resource {
                    group: "gateway.networking.k8s.io".into(),
                    kind: "HTTPRoute".into(),
                    name: name.into(),
                    ..Default::default()
                })),
            }),
            hosts: vec![],
            authorizations,
            rules: vec![api::http_route::Rule {
                matches: vec![r::HttpRouteMatch {
                    path: Some(r::PathMatch {
                        kind: Some(r::path_match::Kind::Exact(path.into())),
                    }),
                    ..Default::default()
                }],
                filters: vec![],
            }],
        })
        .collect();
    if let Some(api::ProxyProtocol {
        kind: Some(api::proxy_protocol::Kind::Detect(d)),
    }) = &mut server.protocol
    {
        d.http_routes = http_routes;
    }
    server
}
