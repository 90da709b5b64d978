//! The original destination of a connection that iptables redirected to the proxy.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use nix::sys::socket::{getsockopt, sockopt};
use tokio::net::TcpStream;

/// Where the client meant to connect, when iptables `REDIRECT` sent the connection here.
///
/// Returns `None` when the connection was not redirected: either conntrack has no entry
/// (`SO_ORIGINAL_DST` fails) or the original destination is this socket itself.
pub fn original_dst(sock: &TcpStream) -> Option<SocketAddr> {
    let local = sock.local_addr().ok()?;
    let orig = lookup(sock, local).ok()?;
    (orig != local && !same_mapped(orig, local)).then_some(orig)
}

fn lookup(sock: &TcpStream, local: SocketAddr) -> io::Result<SocketAddr> {
    let v4 = |sock: &TcpStream| -> io::Result<SocketAddr> {
        let sin = getsockopt(sock, sockopt::OriginalDst)?;
        let ip = Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
        Ok(SocketAddrV4::new(ip, u16::from_be(sin.sin_port)).into())
    };
    match local {
        SocketAddr::V4(_) => v4(sock),
        SocketAddr::V6(l) if l.ip().to_ipv4_mapped().is_some() => v4(sock),
        SocketAddr::V6(_) => {
            let sin6 = getsockopt(sock, sockopt::Ip6tOriginalDst)?;
            let ip = Ipv6Addr::from(sin6.sin6_addr.s6_addr);
            Ok(SocketAddrV6::new(ip, u16::from_be(sin6.sin6_port), 0, sin6.sin6_scope_id).into())
        }
    }
}

/// A dual-stack socket reports IPv4 peers as IPv4-mapped IPv6 addresses.
fn same_mapped(orig: SocketAddr, local: SocketAddr) -> bool {
    let canon = |a: SocketAddr| match a {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(v4.into(), v6.port()),
            None => a,
        },
        a => a,
    };
    canon(orig) == canon(local)
}
