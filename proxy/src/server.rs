//! Accepting connections and handing each to HTTP or opaque forwarding.
//!
//! Both directions run this engine; their builders decide the target mode, the labels and
//! the upstream stack it forwards through. Detection picks one of two sibling stages,
//! [`Http`] or [`Tcp`], and neither knows the other. An upstream connection the
//! server-speaks-first check opened is not handed to either: it is cached for this client
//! connection in the connect step ([`with_preconnected`]), where whichever stage serves the
//! connection finds it when it connects.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use crate::config::{OpaquePorts, SocketOptions};
use crate::connect::{Upstream, with_preconnected};
use crate::detect::{DetectSettings, Detected, Detection, Protocol, detect};
use crate::drain::Drain;
use crate::http::{Client, Http, raw_error_response, validate};
use crate::inbound::policy::{ConnPolicy, Policies};
use crate::io::{MeteredIo, ProxyIo, original_dst, sockopt};
use crate::metrics::{Direction, Metrics, Peer, TcpKey, Tls};
use crate::target::{ConnTarget, Logical};
use crate::tcp::Tcp;
use crate::tls::{Accepted, ClientTls, MeshTls, TlsError, TransportHeader};

/// How a direction finds the target of a connection that iptables did not redirect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unredirected {
    /// Outbound: the connection is an explicit HTTP proxy client.
    HttpProxy,
    /// Inbound: forward to this address, or close the connection when there is none.
    Forward(Option<SocketAddr>),
}

/// The start of an HTTP/1 connection: the bytes detection read, and when the first
/// request head is due.
struct FirstHead {
    bytes: BytesMut,
    deadline: tokio::time::Instant,
}

/// A listening direction: everything a connection needs after `accept`.
#[derive(Debug)]
pub struct Server<U> {
    pub(crate) direction: Direction,
    pub(crate) unredirected: Unredirected,
    pub(crate) detect: DetectSettings,
    pub(crate) opaque_ports: OpaquePorts,
    pub(crate) accept_options: SocketOptions,
    pub(crate) src_tls: Tls,
    /// Inbound with an identity: terminates mesh TLS for it.
    pub(crate) mesh_tls: Option<Arc<MeshTls>>,
    /// The stack below both stages, for the server-speaks-first check's connection.
    pub(crate) upstream: Arc<U>,
    pub(crate) http: Arc<Http<U>>,
    pub(crate) tcp: Tcp<U>,
    pub(crate) header_read_timeout: Duration,
    pub(crate) max_header_bytes: usize,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) connections: Arc<Semaphore>,
    /// Inbound: every port's authorization policy. Outbound has none.
    pub(crate) policies: Option<Arc<Policies>>,
}

impl<U: Upstream> Server<U> {
    /// Accepts connections until the drain starts.
    pub async fn serve(self: Arc<Self>, listener: TcpListener, drain: Drain) {
        loop {
            let accepted = tokio::select! {
                res = listener.accept() => res,
                () = drain.signaled() => break,
            };
            let (sock, client) = match accepted {
                Ok(a) => a,
                Err(error) => {
                    // Out of file descriptors, most likely; back off instead of spinning.
                    tracing::warn!(%error, direction = self.direction.as_str(), "accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            };
            let Ok(permit) = self.connections.clone().try_acquire_owned() else {
                tracing::debug!(%client, "connection limit reached; closing the new connection");
                continue;
            };
            let server = self.clone();
            let drain = drain.clone();
            tokio::spawn(async move {
                server.handle(sock, client, drain).await;
                drop(permit);
            });
        }
        tracing::debug!(direction = self.direction.as_str(), "stopped accepting");
    }

    async fn handle(&self, sock: TcpStream, client: SocketAddr, drain: Drain) {
        // The first request head is due this long after the connection opened, detection
        // included: a client dribbling it gets no second allowance after detection ends.
        let head_deadline = tokio::time::Instant::now() + self.header_read_timeout;
        sockopt::apply(&sock, self.accept_options);
        let target = self.target(&sock);
        // Without a target, only mesh TLS carrying a transport header has somewhere to go.
        if target.is_none() && self.mesh_tls.is_none() {
            return not_redirected(client);
        }
        // The pod's address as the client reached it: the original destination's (or the
        // forward address's), else the one the client dialled (looked up only then).
        let label_target = match &target {
            Some(ConnTarget::Fixed(Logical::Addr(a))) => *a,
            _ => sock
                .local_addr()
                .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0))),
        };
        let Some(mut accepted) = self.accept_tls(sock, client).await else {
            return;
        };
        if let Some(header) = accepted.header.take() {
            // The header names the port; the address is the pod's.
            return self
                .serve_header(accepted, header, client, label_target.ip())
                .await;
        }
        let Some(target) = target else {
            return not_redirected(client);
        };
        tracing::debug!(%client, ?target, client_tls = ?accepted.client, "accepted");
        let tls_label = accepted.client.label(self.src_tls.clone());
        let metrics = self.metrics.tcp(TcpKey {
            direction: self.direction,
            peer: Peer::Src,
            target: label_target,
            tls: tls_label.clone(),
        });
        // Whether the client has sent anything yet: one that has not when the drain starts
        // has no request to lose, and is closed instead of holding the drain until the
        // detect timeout.
        let sent = Arc::new(AtomicU64::new(0));
        if !accepted.prefix.is_empty() || accepted.client != ClientTls::Plain {
            sent.fetch_add(1, Relaxed);
        }
        // What the client proved decides what the port's policy lets it do.
        let policy = self
            .policies
            .as_ref()
            .map(|p| p.connection(client, label_target, accepted.client));
        let silent = accepted.silent;
        let mut io = MeteredIo::new(accepted.stream, metrics.open())
            .with_prefix(accepted.prefix.clone())
            .with_activity(sent.clone());
        io.count_read(accepted.prefix.len());

        let fixed = match &target {
            ConnTarget::Fixed(t) => Some(t),
            ConnTarget::ProxyMode => None,
        };
        if let Some(t) = fixed
            && (self.opaque_ports.0.contains(t.port())
                || policy.as_ref().is_some_and(ConnPolicy::is_opaque))
        {
            self.tcp.forward(io, t, policy).await;
            return;
        }

        // A client the port's policy would not let through as opaque TCP makes the proxy
        // open no connection to the application on its behalf.
        let preconnect = fixed
            .filter(|_| policy.as_ref().is_none_or(ConnPolicy::tcp_permitted))
            .map(|t| || self.upstream.preconnect(t));
        let detected = {
            // The mesh TLS check already waited out a silent client's first-bytes window.
            let mut settings = self.detect;
            if silent && let Some(w) = &mut settings.server_speaks_first.0 {
                *w = Duration::ZERO;
            }
            let detection = detect(&mut io, settings, preconnect);
            tokio::pin!(detection);
            tokio::select! {
                biased;
                d = &mut detection => d,
                () = drain.signaled() => {
                    if sent.load(Relaxed) == 0 {
                        tracing::debug!(%client, "closing a connection that sent nothing before the drain");
                        return;
                    }
                    detection.await
                }
            }
        };
        let io = io.without_activity();
        let Detection {
            detected,
            client_bytes,
            upstream,
        } = match detected {
            Ok(d) => d,
            Err(error) => {
                tracing::debug!(%error, %client, "connection failed during protocol detection");
                return;
            }
        };
        // A greeting the server sent is read again from its connection, by the stage that
        // takes it: always opaque TCP, which reads through the prefix (the HTTP/1 client's
        // readiness-based reads would not).
        let preconnected = match (&detected, upstream) {
            (Detected::ServerFirst(greeting), Some(mut conn)) => {
                conn.io = conn.io.with_prefix(greeting.clone());
                Some(conn)
            }
            (_, conn) => conn,
        };
        let first = FirstHead {
            bytes: client_bytes,
            deadline: head_deadline,
        };
        let client = Client {
            addr: client,
            tls: tls_label,
            policy,
        };
        let dispatch = self.dispatch(io, client, target, detected, first, drain);
        with_preconnected(preconnected, dispatch).await;
    }

    /// Hands a detected connection to the HTTP or the opaque TCP stage.
    async fn dispatch(
        &self,
        io: ProxyIo,
        client: Client,
        target: ConnTarget,
        detected: Detected,
        first: FirstHead,
        drain: Drain,
    ) {
        let fixed = match &target {
            ConnTarget::Fixed(t) => Some(t.clone()),
            ConnTarget::ProxyMode => None,
        };
        match (detected, fixed) {
            (Detected::Eof, _) => {}
            (Detected::Protocol(Protocol::Http1), _) => {
                self.serve_http1(io, client, first, target, drain).await;
            }
            (Detected::Protocol(Protocol::Http2), _) => {
                let io = io.with_prefix(first.bytes.freeze());
                self.http.clone().serve_h2(io, client, target, drain).await;
            }
            (Detected::ServerFirst(_), Some(t)) => {
                tracing::debug!(target = %t, "server spoke first; forwarding as opaque TCP");
                let io = io.with_prefix(first.bytes.freeze());
                self.tcp.forward(io, &t, client.policy).await;
            }
            (detected, Some(t)) => {
                tracing::debug!(target = %t, ?detected, "forwarding as opaque TCP");
                let io = io.with_prefix(first.bytes.freeze());
                self.tcp.forward(io, &t, client.policy).await;
            }
            (detected, None) => {
                tracing::debug!(
                    client = %client.addr,
                    ?detected,
                    "not HTTP on the outbound proxy port, and no original destination; closing"
                );
            }
        }
    }

    /// Reads and checks the first request head, then hands the connection to HTTP/1.
    async fn serve_http1(
        &self,
        mut io: ProxyIo,
        client: Client,
        first: FirstHead,
        target: ConnTarget,
        drain: Drain,
    ) {
        let FirstHead {
            mut bytes,
            deadline,
        } = first;
        let head = validate::read_first_head(
            &mut io,
            &mut bytes,
            self.max_header_bytes,
            (deadline, self.header_read_timeout),
        )
        .await;
        if let Err(error) = head {
            tracing::debug!(%error, "rejected the first request");
            if error != validate::HeadError::Closed {
                let response = raw_error_response(error.status(), &error.to_string());
                let _ = io.write_all(&response).await;
                let _ = io.shutdown().await;
            }
            return;
        }
        self.http
            .clone()
            .serve_h1(io, bytes, client, target, drain)
            .await;
    }

    /// Forwards a connection that sent the transport header, as opaque TCP, to the
    /// header's port on `ip`, under that port's policy. Like linkerd2-proxy's inbound
    /// (which is no gateway), it refuses a client without a certificate, a header naming
    /// a target (`name`, for gateways) and one announcing a session protocol.
    async fn serve_header(
        &self,
        accepted: Accepted,
        header: TransportHeader,
        client: SocketAddr,
        ip: std::net::IpAddr,
    ) {
        let refused = if !matches!(accepted.client, ClientTls::Authenticated(_)) {
            Some("the client presented no certificate")
        } else if header.name.is_some() {
            Some("it names a gateway target, and this proxy is not a gateway")
        } else if header.protocol.is_some() {
            Some("it announces a session protocol, which only gateways take")
        } else {
            None
        };
        if let Some(reason) = refused {
            self.metrics.transport_header_refused();
            tracing::debug!(%client, ?header, "transport header refused: {reason}; closing");
            return;
        }
        let target = SocketAddr::new(ip, header.port);
        tracing::debug!(%client, %target, "transport header; forwarding as opaque TCP");
        let tls_label = accepted.client.label(self.src_tls.clone());
        let metrics = self.metrics.tcp(TcpKey {
            direction: self.direction,
            peer: Peer::Src,
            target,
            tls: tls_label,
        });
        let policy = self
            .policies
            .as_ref()
            .map(|p| p.connection(client, target, accepted.client));
        let io =
            MeteredIo::new(accepted.stream, metrics.open()).with_prefix(accepted.prefix.clone());
        io.count_read(accepted.prefix.len());
        self.tcp.forward(io, &Logical::Addr(target), policy).await;
    }

    /// Terminates mesh TLS meant for this proxy (inbound, with an identity); any other
    /// connection is returned as it is, with the bytes looked at. `None`: a failed handshake,
    /// and the connection is closed.
    async fn accept_tls(&self, sock: TcpStream, client: SocketAddr) -> Option<Accepted> {
        let Some(tls) = &self.mesh_tls else {
            return Some(Accepted::plain(sock, bytes::Bytes::new()));
        };
        let deadline = tokio::time::Instant::now() + self.detect.timeout.0;
        // Boxed: the handshake's state would otherwise enlarge every connection's task.
        match Box::pin(tls.accept(sock, deadline)).await {
            Ok(a) => Some(a),
            Err(TlsError::Header(error)) => {
                self.metrics.transport_header_refused();
                tracing::debug!(%error, %client, "bad transport header; closing the connection");
                None
            }
            Err(error) => {
                tracing::debug!(%error, %client, "mesh TLS failed; closing the connection");
                None
            }
        }
    }

    fn target(&self, sock: &TcpStream) -> Option<ConnTarget> {
        if let Some(orig) = original_dst(sock) {
            return Some(ConnTarget::Fixed(Logical::Addr(orig)));
        }
        match self.unredirected {
            Unredirected::HttpProxy => Some(ConnTarget::ProxyMode),
            Unredirected::Forward(Some(addr)) => Some(ConnTarget::Fixed(Logical::Addr(addr))),
            Unredirected::Forward(None) => None,
        }
    }
}

fn not_redirected(client: SocketAddr) {
    tracing::debug!(
        %client,
        "inbound connection was not redirected and MESH_PROXY_INBOUND_FORWARD_ADDR is unset; closing"
    );
}
