//! What the proxy forwards to: logical targets, and how a connection chooses one.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

/// Where a request or connection should go, before discovery and load balancing turn it
/// into an endpoint.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Logical {
    /// An IP and port: the original destination, or an IP literal in a request.
    Addr(SocketAddr),
    /// A host name and port, from an HTTP proxy-mode request.
    Name(Arc<str>, u16),
}

impl Logical {
    pub fn port(&self) -> u16 {
        match self {
            Logical::Addr(a) => a.port(),
            Logical::Name(_, p) => *p,
        }
    }

    /// Parses `host[:port]` (an HTTP authority), with `default_port` when there is none.
    pub fn from_authority(authority: &str, default_port: u16) -> Option<Logical> {
        let authority = authority.rsplit('@').next()?;
        if authority.is_empty() {
            return None;
        }
        if let Ok(addr) = authority.parse::<SocketAddr>() {
            return Some(Logical::Addr(addr));
        }
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, _)) if !h.ends_with(']') && h.contains(':') => (authority, default_port),
            Some((h, p)) => (h, p.parse::<u16>().ok()?),
            None => (authority, default_port),
        };
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = bare.parse::<std::net::IpAddr>() {
            return Some(Logical::Addr(SocketAddr::new(ip, port)));
        }
        let valid = !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_');
        valid.then(|| Logical::Name(host.to_ascii_lowercase().into(), port))
    }
}

impl fmt::Display for Logical {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Logical::Addr(a) => write!(f, "{a}"),
            Logical::Name(h, p) => write!(f, "{h}:{p}"),
        }
    }
}

/// Where an accepted connection goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConnTarget {
    /// Every byte goes to one destination: the original destination of a redirected
    /// connection, or the inbound forward address.
    Fixed(Logical),
    /// An explicit HTTP proxy connection: each request names its own destination.
    ProxyMode,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_authorities() {
        let addr = |s: &str| Logical::Addr(s.parse().unwrap());
        assert_eq!(
            Logical::from_authority("10.0.0.1:8080", 80),
            Some(addr("10.0.0.1:8080"))
        );
        assert_eq!(
            Logical::from_authority("10.0.0.1", 80),
            Some(addr("10.0.0.1:80"))
        );
        assert_eq!(
            Logical::from_authority("[::1]:9", 80),
            Some(addr("[::1]:9"))
        );
        assert_eq!(Logical::from_authority("[::1]", 80), Some(addr("[::1]:80")));
        assert_eq!(
            Logical::from_authority("Web.Example:81", 80),
            Some(Logical::Name("web.example".into(), 81))
        );
        assert_eq!(
            Logical::from_authority("user:pw@svc", 80),
            Some(Logical::Name("svc".into(), 80))
        );
        assert_eq!(Logical::from_authority("", 80), None);
        assert_eq!(Logical::from_authority("a b:80", 80), None);
        assert_eq!(Logical::from_authority("host:notaport", 80), None);
    }
}
