//! The stages the inbound and outbound stacks share, built the same way on either side.
//!
//! A [`Stack`] is a builder: each `push_*` method wraps the stack built so far in the
//! next stage. [`Side`] holds what differs between the two directions: their config
//! section, `tls` labels and what becomes of a connection iptables did not redirect.
//! Stages only one side has (outbound discovery and balancing) live in that side's
//! module.
//!
//! Above the upstream (connect, and outbound's balance and discover) the stack forks: HTTP
//! and opaque TCP are siblings over one shared upstream, and detection holds both.
//!
//! ```text
//! push_detect(http, tcp)        accept, detect, hand each connection to one sibling
//!      /            \
//! push_http       push_tcp       siblings: neither knows the other
//!      \            /
//!        share()                 one upstream, also where detection's check connects
//!           |
//! push_connect (push_balance, push_discover)
//! ```
//!
//! ```text
//! let upstream = Inbound::new(..).push_connect().share();
//! let (http, tcp) = (upstream.clone().push_http(), upstream.clone().push_tcp());
//! let server = upstream.push_detect(http, tcp).into_inner();
//! ```
//!
//! Data flows one way, top to bottom. The connection the server-speaks-first check opens
//! is cached for its client connection inside the connect step
//! ([`crate::connect::with_preconnected`]), not passed down through the stages.

use std::marker::PhantomData;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::Semaphore;

use crate::balance::Balancer;
use crate::config::{Config, ProxyConfig};
use crate::connect::{Connect, ConnectError, Connection, Upstream};
use crate::detect::DetectSettings;
use crate::http::{Http, HttpSettings, Pool};
use crate::inbound::policy::Policies;
use crate::metrics::{Direction, Metrics, Tls};
use crate::outbound::Discover;
use crate::outbound::discover::Endpoint;
use crate::server::{Server, Unredirected};
use crate::target::Logical;
use crate::tcp::Tcp;
use crate::tls::MeshTls;

/// What a side does with mesh TLS, when the proxy has an identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MeshTlsRole {
    /// Inbound: terminates mesh TLS meant for this proxy's identity.
    Terminate,
    /// Outbound: opens mesh TLS to endpoints discovery gave an identity.
    Originate,
}

/// One direction of the proxy.
pub trait Side {
    const DIRECTION: Direction;
    const MESH_TLS: MeshTlsRole;
    /// The `tls` label of the plaintext connections the proxy accepts.
    const SRC_TLS: Tls;
    /// The `tls` label of the proxy's plaintext connections to where traffic goes.
    const DST_TLS: Tls;

    /// This side's section of the configuration.
    fn config(config: &Config) -> &ProxyConfig;

    /// What becomes of a connection that iptables did not redirect to this side.
    fn unredirected(config: &ProxyConfig) -> Unredirected;
}

/// A stack builder for side `D`; `S` is the stack built so far.
pub struct Stack<D, S> {
    pub(crate) config: Arc<Config>,
    pub(crate) metrics: Arc<Metrics>,
    own_listeners: Arc<[SocketAddr]>,
    /// Inbound: the ports' authorization policies, which the accept loop hands each
    /// connection.
    policies: Option<Arc<Policies>>,
    /// Mesh TLS, when the proxy has an identity.
    mesh_tls: Option<Arc<MeshTls>>,
    stack: S,
    side: PhantomData<D>,
}

impl<D: Side> Stack<D, ()> {
    pub fn new(
        config: Arc<Config>,
        metrics: Arc<Metrics>,
        own_listeners: Arc<[SocketAddr]>,
    ) -> Self {
        Stack {
            config,
            metrics,
            own_listeners,
            policies: None,
            mesh_tls: None,
            stack: (),
            side: PhantomData,
        }
    }

    /// Authorizes every accepted connection and request with `policies`.
    pub fn with_policies(mut self, policies: Arc<Policies>) -> Self {
        self.policies = Some(policies);
        self
    }

    /// Speaks mesh TLS as this side does ([`Side::MESH_TLS`]); without it, plaintext.
    pub fn with_mesh_tls(mut self, mesh_tls: Option<Arc<MeshTls>>) -> Self {
        self.mesh_tls = mesh_tls;
        self
    }

    /// The innermost stage: opens a TCP connection, with mesh TLS where the side
    /// originates it.
    pub fn push_connect(self) -> Stack<D, Connect> {
        let c = self.proxy_config();
        let connect = Connect::new(
            D::DIRECTION,
            c.connect_timeout,
            c.connect,
            D::DST_TLS,
            self.metrics.clone(),
            self.own_listeners.clone(),
        )
        .with_mesh_tls(self.mesh_tls_for(MeshTlsRole::Originate));
        self.map(|()| connect)
    }
}

impl<D: Side, S> Stack<D, S> {
    pub(crate) fn proxy_config(&self) -> &ProxyConfig {
        D::config(&self.config)
    }

    fn mesh_tls_for(&self, role: MeshTlsRole) -> Option<Arc<MeshTls>> {
        self.mesh_tls.clone().filter(|_| D::MESH_TLS == role)
    }

    pub(crate) fn map<T>(self, f: impl FnOnce(S) -> T) -> Stack<D, T> {
        Stack {
            config: self.config,
            metrics: self.metrics,
            own_listeners: self.own_listeners,
            policies: self.policies,
            mesh_tls: self.mesh_tls,
            stack: f(self.stack),
            side: PhantomData,
        }
    }

    pub fn into_inner(self) -> S {
        self.stack
    }
}

/// A shared stack is cloned to build the sibling stages over it.
impl<D, S: Clone> Clone for Stack<D, S> {
    fn clone(&self) -> Self {
        Stack {
            config: self.config.clone(),
            metrics: self.metrics.clone(),
            own_listeners: self.own_listeners.clone(),
            policies: self.policies.clone(),
            mesh_tls: self.mesh_tls.clone(),
            stack: self.stack.clone(),
            side: PhantomData,
        }
    }
}

impl<D: Side, U: Into<Upstreams>> Stack<D, U> {
    /// Shares the upstream built so far between the stages above it: HTTP, opaque TCP, and
    /// detection's server-speaks-first check.
    pub fn share(self) -> Stack<D, Arc<Upstreams>> {
        self.map(|u| Arc::new(u.into()))
    }
}

/// The one upstream type the stages above `share()` are built for. Inbound's fixed
/// endpoints and outbound's discovery are two cases of one type, not two type parameters:
/// instantiated for both, the HTTP, TCP and detection stages were compiled twice, about
/// 0.4 MB of the binary's machine code, which the proxy paid for in resident memory.
#[derive(Debug)]
pub enum Upstreams {
    Fixed(Connect),
    Discovered(Arc<Discover>),
}

impl From<Connect> for Upstreams {
    fn from(c: Connect) -> Self {
        Upstreams::Fixed(c)
    }
}

impl From<Arc<Discover>> for Upstreams {
    fn from(d: Arc<Discover>) -> Self {
        Upstreams::Discovered(d)
    }
}

impl Upstream for Upstreams {
    fn balancer(&self, target: &Logical, authority: Option<&str>) -> Arc<Balancer> {
        match self {
            Upstreams::Fixed(c) => c.balancer(target, authority),
            Upstreams::Discovered(d) => d.balancer(target, authority),
        }
    }

    fn tls(&self, endpoint: &Endpoint) -> Tls {
        match self {
            Upstreams::Fixed(c) => c.tls(endpoint),
            Upstreams::Discovered(d) => d.tls(endpoint),
        }
    }

    async fn connect(&self, endpoint: &Endpoint) -> Result<Connection, ConnectError> {
        match self {
            Upstreams::Fixed(c) => c.connect(endpoint).await,
            Upstreams::Discovered(d) => d.connect(endpoint).await,
        }
    }

    async fn connect_opaque(&self, endpoint: &Endpoint) -> Result<Connection, ConnectError> {
        match self {
            Upstreams::Fixed(c) => c.connect_opaque(endpoint).await,
            Upstreams::Discovered(d) => d.connect_opaque(endpoint).await,
        }
    }
}

impl<D: Side, U: Upstream> Stack<D, Arc<U>> {
    /// HTTP proxying over pooled connections from the stack below.
    pub fn push_http(self) -> Stack<D, Arc<Http<U>>> {
        let c = self.proxy_config();
        let pool = Pool::new(
            c.pool_idle_timeout,
            c.pool_max_idle_per_endpoint,
            self.config.h2_windows.clone(),
        );
        let settings = HttpSettings {
            direction: D::DIRECTION,
            limits: self.config.limits.clone(),
            h2_keepalive: c.h2_keepalive,
            h2_windows: self.config.h2_windows.clone(),
        };
        let metrics = self.metrics.clone();
        self.map(|upstream| Arc::new(Http::new(upstream, pool, metrics, settings)))
    }

    /// Opaque TCP forwarding, the sibling of `push_http`: for opaque ports, TLS,
    /// server-speaks-first protocols and anything else that is not HTTP.
    pub fn push_tcp(self) -> Stack<D, Tcp<U>> {
        let idle_timeout = self.config.limits.tcp_idle_timeout;
        self.map(|upstream| Tcp::new(upstream, idle_timeout))
    }

    /// The outermost stage: the accept loop and protocol detection, which hands each
    /// connection to `http` or `tcp`. The stack below (`self`) is what detection's
    /// server-speaks-first check connects through.
    pub fn push_detect(
        self,
        http: Stack<D, Arc<Http<U>>>,
        tcp: Stack<D, Tcp<U>>,
    ) -> Stack<D, Arc<Server<U>>> {
        let c = self.proxy_config();
        let limits = &self.config.limits;
        let server = Server {
            direction: D::DIRECTION,
            unredirected: D::unredirected(c),
            detect: DetectSettings {
                timeout: c.detect_timeout,
                server_speaks_first: c.server_speaks_first,
                max_bytes: limits.max_header_bytes,
            },
            opaque_ports: c.opaque_ports.clone(),
            accept_options: c.accept,
            src_tls: D::SRC_TLS,
            mesh_tls: self.mesh_tls_for(MeshTlsRole::Terminate),
            upstream: self.stack.clone(),
            http: http.into_inner(),
            tcp: tcp.into_inner(),
            header_read_timeout: limits.header_read_timeout,
            max_header_bytes: limits.max_header_bytes,
            metrics: self.metrics.clone(),
            connections: Arc::new(Semaphore::new(limits.max_connections)),
            policies: self.policies.clone(),
        };
        self.map(|_| Arc::new(server))
    }
}
