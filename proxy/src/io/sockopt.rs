//! Socket options applied to every accepted and opened connection.

use socket2::{SockRef, TcpKeepalive};
use tokio::net::TcpStream;

use crate::config::SocketOptions;

/// Sets TCP_NODELAY (the proxy writes whole messages; Nagle would only add latency) and
/// the configured keepalive and user timeout. Failures are logged, not fatal: the
/// connection still works without them.
pub fn apply(sock: &TcpStream, opts: SocketOptions) {
    if let Err(error) = sock.set_nodelay(true) {
        tracing::debug!(%error, "could not set TCP_NODELAY");
    }
    let sock = SockRef::from(sock);
    if let Some(idle) = opts.keepalive {
        let ka = TcpKeepalive::new().with_time(idle);
        if let Err(error) = sock.set_tcp_keepalive(&ka) {
            tracing::debug!(%error, "could not set SO_KEEPALIVE");
        }
    }
    if let Some(timeout) = opts.user_timeout
        && let Err(error) = sock.set_tcp_user_timeout(Some(timeout))
    {
        tracing::debug!(%error, "could not set TCP_USER_TIMEOUT");
    }
}
