//! Opaque TCP forwarding: for opaque ports, TLS passthrough, server-speaks-first protocols
//! and anything that is not HTTP.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::connect::{Connection, Upstream, errno_name};
use crate::io::MeteredIo;
use crate::target::Logical;

/// Forwards a client connection to `target` byte for byte, over an endpoint its balancer
/// picks.
///
/// `upstream` is a connection opened during detection, used if it leads to that endpoint; `server_first` holds bytes
/// the server already sent on it. Either direction's shutdown is passed on, and a
/// connection with no traffic for `idle_timeout` is closed.
pub async fn forward<U: Upstream>(
    stack: &U,
    client: MeteredIo<TcpStream>,
    target: &Logical,
    upstream: Option<Connection>,
    server_first: Bytes,
    idle_timeout: Duration,
) {
    let balancer = stack.balancer(target, None);
    let mut picked = match balancer.pick().await {
        Ok(p) => p,
        Err(error) => {
            tracing::debug!(%error, %target, "opaque connection failed: no endpoint");
            return;
        }
    };
    let conn = match upstream {
        Some(c) if c.peer == picked.addr() => c,
        _ => {
            let started = std::time::Instant::now();
            match stack.connect(picked.endpoint()).await {
                Ok(c) => {
                    picked.connected(started.elapsed());
                    c
                }
                Err(error) => {
                    picked.failed();
                    match crate::throttle::TCP_CONNECT.admit() {
                        Some(skipped) => tracing::warn!(
                            %error,
                            %target,
                            skipped,
                            "opaque connection failed: cannot reach the upstream"
                        ),
                        None => tracing::debug!(%error, %target, "opaque connection failed"),
                    }
                    return;
                }
            }
        }
    };
    drop(picked);
    let activity = Arc::new(AtomicU64::new(0));
    let mut client = client.with_activity(activity.clone());
    let mut server = conn.io.with_activity(activity.clone());
    if !server_first.is_empty()
        && let Err(error) = client.write_all(&server_first).await
    {
        tracing::debug!(%error, "writing the server's greeting to the client failed");
        return;
    }
    tokio::select! {
        res = tokio::io::copy_bidirectional(&mut client, &mut server) => {
            if let Err(error) = res {
                tracing::debug!(%error, %target, "opaque connection ended with an error");
                let errno = errno_name(&error);
                if !errno.is_empty() {
                    client.set_close_errno(errno);
                }
            }
        }
        () = idle(&activity, idle_timeout) => {
            tracing::debug!(%target, ?idle_timeout, "closing idle opaque connection");
        }
    }
}

/// Resolves once `activity` has not changed for a whole `timeout`.
async fn idle(activity: &AtomicU64, timeout: Duration) {
    let mut last = activity.load(Relaxed);
    loop {
        tokio::time::sleep(timeout).await;
        let now = activity.load(Relaxed);
        if now == last {
            return;
        }
        last = now;
    }
}
