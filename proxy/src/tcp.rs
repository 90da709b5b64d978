//! Opaque TCP forwarding: for opaque ports, TLS passthrough, server-speaks-first protocols
//! and anything that is not HTTP.
//!
//! [`Tcp`] is the sibling of the HTTP stage: detection hands a connection to one or the
//! other, and both pick endpoints and connect through the same `Upstream`. A greeting a
//! server sent during detection travels with the upstream connection it was read from
//! (see [`crate::connect::with_preconnected`]): it reaches the client only if that very
//! connection is the one forwarded to.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use crate::connect::{Upstream, errno_name};
use crate::inbound::policy::ConnPolicy;
use crate::io::ProxyIo;
use crate::target::Logical;

/// The opaque TCP stage of one direction's stack, over its `Upstream`.
#[derive(Debug)]
pub struct Tcp<U> {
    upstream: Arc<U>,
    idle_timeout: Duration,
}

impl<U: Upstream> Tcp<U> {
    /// A connection with no traffic either way for `idle_timeout` is closed.
    pub fn new(upstream: Arc<U>, idle_timeout: Duration) -> Self {
        Tcp {
            upstream,
            idle_timeout,
        }
    }

    /// Forwards a client connection to `target` byte for byte, over an endpoint its
    /// balancer picks. Either direction's shutdown is passed on.
    ///
    /// Inbound, `policy` decides first: a client it does not authorize is closed before
    /// anything is forwarded, and a forwarded connection that a policy change no longer
    /// authorizes is closed then.
    pub async fn forward(&self, client: ProxyIo, target: &Logical, policy: Option<ConnPolicy>) {
        if let Some(p) = &policy
            && let Err(denied) = p.check_tcp()
        {
            let client = p.client();
            match crate::throttle::POLICY_DENY.admit() {
                Some(skipped) => tracing::info!(
                    %client, %target, %denied, skipped, "connection refused by policy"
                ),
                None => tracing::debug!(%client, %target, %denied, "connection refused by policy"),
            }
            return;
        }
        let balancer = self.upstream.balancer(target, None);
        let mut picked = match balancer.pick().await {
            Ok(p) => p,
            Err(error) => {
                tracing::debug!(%error, %target, "opaque connection failed: no endpoint");
                return;
            }
        };
        let started = std::time::Instant::now();
        let conn = match self.upstream.connect_opaque(picked.endpoint()).await {
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
        };
        drop(picked);
        let splice = splice(client, conn.io, target, self.idle_timeout);
        match policy {
            None => splice.await,
            Some(policy) => {
                tokio::select! {
                    () = splice => {}
                    () = revoked(policy) => {
                        tracing::info!(%target, "connection closed: the policy no longer authorizes it");
                    }
                }
            }
        }
    }
}

/// Copies both ways until both sides are done, or until neither has sent anything for
/// `idle_timeout`.
async fn splice(client: ProxyIo, server: ProxyIo, target: &Logical, idle_timeout: Duration) {
    let activity = Arc::new(AtomicU64::new(0));
    let mut client = client.with_activity(activity.clone());
    let mut server = server.with_activity(activity.clone());
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

/// Resolves when a change of the port's policy no longer authorizes the connection.
async fn revoked(mut policy: ConnPolicy) {
    loop {
        policy.changed().await;
        if !policy.recheck_tcp() {
            return;
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
