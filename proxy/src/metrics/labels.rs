//! Label sets, in Linkerd's names and order.

use std::fmt::Write;
use std::net::SocketAddr;
use std::sync::Arc;

/// Which side of the pod a connection belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Direction {
    Inbound,
    Outbound,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
        }
    }
}

/// Whether a connection was accepted from a client (`src`) or opened to a server (`dst`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Peer {
    Src,
    Dst,
}

impl Peer {
    pub fn as_str(self) -> &'static str {
        match self {
            Peer::Src => "src",
            Peer::Dst => "dst",
        }
    }
}

/// The `tls` label, and with it `client_id`, `server_id` or `no_tls_reason`, as Linkerd
/// writes them.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Tls {
    /// Plaintext: `tls="no_identity",no_tls_reason="…"`.
    NoIdentity(NoTlsReason),
    /// Accepted with mesh TLS: `tls="true",client_id="…"`, empty when the client presented
    /// no certificate.
    Accepted { client_id: Option<Arc<str>> },
    /// Opened with mesh TLS: `tls="true",server_id="…"`.
    Connected { server_id: Arc<str> },
}

/// Why a connection is not mesh TLS, as Linkerd's `no_tls_reason` label says it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NoTlsReason {
    /// An inbound client did not start mesh TLS (Linkerd's `NoClientHello`).
    NoTlsFromRemote,
    /// The connection is between the application and its own proxy.
    Loopback,
    /// Outbound, and discovery supplied no identity for the endpoint (or the proxy has no
    /// identity of its own to speak mesh TLS with).
    NotProvidedByServiceDiscovery,
}

impl NoTlsReason {
    pub fn as_str(self) -> &'static str {
        match self {
            NoTlsReason::NoTlsFromRemote => "no_tls_from_remote",
            NoTlsReason::Loopback => "loopback",
            NoTlsReason::NotProvidedByServiceDiscovery => "not_provided_by_service_discovery",
        }
    }
}

impl Tls {
    /// Whether the connection is mesh TLS: tap's `tls` field says `true`, else
    /// `no_identity`.
    pub fn is_established(&self) -> bool {
        !matches!(self, Tls::NoIdentity(_))
    }

    fn write(&self, out: &mut String) {
        match self {
            Tls::NoIdentity(reason) => {
                out.push_str(",tls=\"no_identity\",no_tls_reason=\"");
                out.push_str(reason.as_str());
                out.push('"');
            }
            Tls::Accepted { client_id } => {
                out.push_str(",tls=\"true\",client_id=\"");
                escape_into(out, client_id.as_deref().unwrap_or(""));
                out.push('"');
            }
            Tls::Connected { server_id } => {
                out.push_str(",tls=\"true\",server_id=\"");
                escape_into(out, server_id);
                out.push('"');
            }
        }
    }
}

/// Labels of the transport metrics.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TcpKey {
    pub direction: Direction,
    pub peer: Peer,
    pub target: SocketAddr,
    pub tls: Tls,
}

impl TcpKey {
    pub(crate) fn write(&self, out: &mut String) {
        out.push_str("direction=\"");
        out.push_str(self.direction.as_str());
        out.push_str("\",peer=\"");
        out.push_str(self.peer.as_str());
        out.push('"');
        write_target(out, self.target);
        self.tls.write(out);
    }
}

impl super::family::FoldKey for TcpKey {
    fn folded(&self) -> Self {
        TcpKey {
            target: UNSPECIFIED,
            ..self.clone()
        }
    }
}

/// Labels of the HTTP metrics.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HttpKey {
    pub direction: Direction,
    /// The request's `:authority` or `Host`, as the client sent it.
    pub authority: Box<str>,
    pub target: SocketAddr,
    pub tls: Tls,
    /// The endpoint's `dst_*` labels from discovery (outbound), written after `tls`.
    pub dst: DstLabels,
}

/// `dst_*` metric labels, each name with its `dst_` prefix, sorted by name.
pub type DstLabels = std::sync::Arc<[(std::sync::Arc<str>, std::sync::Arc<str>)]>;

impl HttpKey {
    pub(crate) fn write(&self, out: &mut String) {
        out.push_str("direction=\"");
        out.push_str(self.direction.as_str());
        out.push_str("\",authority=\"");
        escape_into(out, &self.authority);
        out.push('"');
        write_target(out, self.target);
        self.tls.write(out);
        for (name, value) in self.dst.iter() {
            out.push(',');
            out.push_str(name);
            out.push_str("=\"");
            escape_into(out, value);
            out.push('"');
        }
    }
}

impl super::family::FoldKey for HttpKey {
    fn folded(&self) -> Self {
        HttpKey {
            authority: "".into(),
            target: UNSPECIFIED,
            dst: std::sync::Arc::new([]),
            ..self.clone()
        }
    }
}

/// The target of folded keys; written as empty labels.
const UNSPECIFIED: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), 0);

/// How a label set is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fold {
    /// As it is.
    Series,
    /// As an overflow series: the labels peers control are empty, and `overflow="true"`
    /// follows.
    Overflow,
}

impl TcpKey {
    pub(crate) fn labels(&self, fold: Fold) -> String {
        let mut out = String::new();
        match fold {
            Fold::Series => self.write(&mut out),
            Fold::Overflow => {
                out.push_str("direction=\"");
                out.push_str(self.direction.as_str());
                out.push_str("\",peer=\"");
                out.push_str(self.peer.as_str());
                out.push('"');
                out.push_str(EMPTY_TARGET);
                self.tls.write(&mut out);
                out.push_str(OVERFLOW);
            }
        }
        out
    }
}

impl HttpKey {
    pub(crate) fn labels(&self, fold: Fold) -> String {
        let mut out = String::new();
        match fold {
            Fold::Series => self.write(&mut out),
            Fold::Overflow => {
                out.push_str("direction=\"");
                out.push_str(self.direction.as_str());
                out.push_str("\",authority=\"\"");
                out.push_str(EMPTY_TARGET);
                self.tls.write(&mut out);
                out.push_str(OVERFLOW);
            }
        }
        out
    }
}

const EMPTY_TARGET: &str = ",target_addr=\"\",target_ip=\"\",target_port=\"\"";

/// The label that marks an overflow series (see `family`).
const OVERFLOW: &str = ",overflow=\"true\"";

fn write_target(out: &mut String, target: SocketAddr) {
    let _ = write!(
        out,
        ",target_addr=\"{target}\",target_ip=\"{}\",target_port=\"{}\"",
        target.ip(),
        target.port()
    );
}

/// Escapes a label value as the Prometheus text format requires.
pub(crate) fn escape_into(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}
