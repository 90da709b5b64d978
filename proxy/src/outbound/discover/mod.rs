//! Discovery: what a logical target resolves to, as a stream of answers.
//!
//! A source of answers implements [`Resolve`]: for a logical target it hands out a
//! `watch` receiver that always holds the latest [`Destination`], so a balancer reads the
//! current endpoint set without waiting and sees every change. Sources:
//!
//! - the control plane's `Destination` service (`Get`, `GetProfile`; [`destination`]), when
//!   `LINKERD2_PROXY_DESTINATION_SVC_ADDR` is set;
//! - a Linkerd 1 dtab over a file namer (`MESH_PROXY_DTAB`, `MESH_PROXY_FS_NAMER_DIR`);
//! - the system resolver for names in HTTP proxy mode ([`dns`]);
//! - nothing, for an address no source knows: the original destination is its own
//!   endpoint.
//!
//! A source keeps a target's stream alive while a receiver exists; when the last receiver
//! is dropped (the balancer went idle and was evicted) the source may stop watching it.

pub mod destination;
pub mod dns;
pub mod namer;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::watch;

use super::profile::Profile;
use crate::target::Logical;

pub use crate::metrics::DstLabels;

/// One endpoint of a concrete backend.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub addr: SocketAddr,
    /// The TLS identity the endpoint must present (for mesh TLS), from the control plane
    /// or a namer line's `tls=`.
    pub identity: Option<Arc<str>>,
    /// The endpoint is a meshed proxy that accepts HTTP/2 for HTTP/1 requests (Linkerd's
    /// `ProtocolHint::H2`, the `l5d-orig-proto` upgrade).
    pub h2_hint: bool,
    /// The endpoint's proxy's inbound port, for opaque traffic carrying Linkerd's transport
    /// header (`ProtocolHint.opaque_transport`); used only with an identity.
    pub opaque_transport: Option<u16>,
    /// The endpoint's `dst_*` metric labels: its set's labels and its own.
    pub labels: DstLabels,
}

impl Endpoint {
    /// An endpoint nothing is known about but its address.
    pub fn bare(addr: SocketAddr) -> Endpoint {
        Endpoint {
            addr,
            identity: None,
            h2_hint: false,
            opaque_transport: None,
            labels: Arc::new([]),
        }
    }
}

/// One concrete backend: an endpoint set and its share of the logical target's traffic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Backend {
    /// The concrete name (a dtab's bound name, the control plane's authority).
    pub name: Arc<str>,
    /// Its share: requests go to backends in proportion to their weights.
    pub weight: u32,
    pub endpoints: Arc<[Endpoint]>,
}

/// What a source knows of a logical target at one moment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Resolution {
    /// No answer yet. A balancer waits a short while for the first one, then treats the
    /// target as unknown.
    #[default]
    Pending,
    /// The source does not know the target (the control plane said so, or was never
    /// reachable): traffic goes to the original destination, or fails for a bare name.
    Unknown,
    /// One backend, or several with weights (a traffic split). A backend with no
    /// endpoints fails fast with 503.
    Backends(Arc<[Backend]>),
}

/// A source's whole answer for a logical target.
#[derive(Clone, Debug, Default)]
pub struct Destination {
    pub resolution: Resolution,
    /// The target's service profile (routes, retries, timeouts), when it has one.
    pub profile: Option<Arc<Profile>>,
}

impl Destination {
    pub fn unknown() -> Destination {
        Destination {
            resolution: Resolution::Unknown,
            profile: None,
        }
    }

    /// One backend named `name` with these endpoints.
    pub fn endpoints(name: &str, endpoints: Vec<Endpoint>) -> Destination {
        Destination {
            resolution: Resolution::Backends(Arc::new([Backend {
                name: name.into(),
                weight: 1,
                endpoints: endpoints.into(),
            }])),
            profile: None,
        }
    }
}

/// A source of answers.
pub trait Resolve: Send + Sync + 'static {
    /// Starts, or joins, discovery of `target`. `None`: this source does not handle such
    /// targets (the next source is asked). The receiver holds the latest answer; a source
    /// that loses its upstream keeps the last answer it sent.
    fn resolve(&self, target: &Logical) -> Option<watch::Receiver<Arc<Destination>>>;
}
