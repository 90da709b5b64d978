//! Every port's policy: the default, or what the control plane says for the port.
//!
//! Without a control plane each port has the default policy (or its require-identity
//! form) and it never changes. With one, the first connection to a port starts a
//! `WatchPort` stream for it (the ports of `LINKERD2_PROXY_INBOUND_PORTS` at start-up);
//! the port has the default policy until the control plane first answers, then each
//! answer replaces it. At most [`MAX_WATCHED_PORTS`] streams run; a port nobody has
//! connected to for [`IDLE_WATCH`] is dropped to make room, and past that a port keeps
//! the default.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::api::PolicyClient;
use super::{ClientTls, ConnPolicy, ServerPolicy, require_identity, server_policy};
use crate::config::{PolicyConfig, PortSet};
use crate::metrics::Metrics;
use crate::tls::MeshTls;

/// Ports watched at once.
pub const MAX_WATCHED_PORTS: usize = 128;
/// How long a watched port nobody connects to is kept (Linkerd's inbound discovery idle
/// timeout).
pub const IDLE_WATCH: Duration = Duration::from_secs(90);

/// A live view of one port's policy.
#[derive(Clone, Debug)]
pub struct PortPolicy {
    rx: watch::Receiver<Arc<ServerPolicy>>,
}

impl PortPolicy {
    /// A policy that never changes.
    pub fn fixed(policy: Arc<ServerPolicy>) -> PortPolicy {
        let (_, rx) = watch::channel(policy);
        PortPolicy { rx }
    }

    /// A policy that changes when the test sends a new one.
    #[cfg(test)]
    pub(super) fn channel(
        policy: Arc<ServerPolicy>,
    ) -> (watch::Sender<Arc<ServerPolicy>>, PortPolicy) {
        let (tx, rx) = watch::channel(policy);
        (tx, PortPolicy { rx })
    }

    /// The policy as it is now.
    pub fn current(&self) -> Arc<ServerPolicy> {
        self.rx.borrow().clone()
    }

    /// Whether the policy changed since [`PortPolicy::update`] or [`PortPolicy::changed`]
    /// last returned it (or since this view was made). Takes no lock. A policy's source
    /// ends only when nobody watches the port any more, so a closed one has not changed.
    pub fn has_changed(&self) -> bool {
        self.rx.has_changed().unwrap_or(false)
    }

    /// The policy as it is now, marked seen.
    pub fn update(&mut self) -> Arc<ServerPolicy> {
        self.rx.borrow_and_update().clone()
    }

    /// The next policy, when it changes; never, for a fixed one.
    pub async fn changed(&mut self) -> Arc<ServerPolicy> {
        if self.rx.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
        self.update()
    }
}

/// The policies of the inbound side's ports.
#[derive(Debug)]
pub struct Policies {
    default: PortPolicy,
    require_identity: PortPolicy,
    require_identity_ports: PortSet,
    control: Option<PolicyClient>,
    watched: Mutex<HashMap<u16, Watched>>,
    metrics: Arc<Metrics>,
}

#[derive(Debug)]
struct Watched {
    rx: watch::Receiver<Arc<ServerPolicy>>,
    last_used: Instant,
    /// Listed in `LINKERD2_PROXY_INBOUND_PORTS`: never dropped.
    permanent: bool,
}

impl Policies {
    /// The policies `config` describes. Call it within the Tokio runtime: with a control
    /// plane, the ports of `LINKERD2_PROXY_INBOUND_PORTS` are watched at once.
    /// `mesh_tls` is the proxy's, if it has an identity (for the policy service's
    /// connection).
    pub fn new(
        config: &PolicyConfig,
        metrics: Arc<Metrics>,
        mesh_tls: Option<&Arc<MeshTls>>,
    ) -> Result<Arc<Policies>, crate::control::AddrError> {
        Policies::with_timing(config, metrics, mesh_tls, super::Timing::default())
    }

    /// [`Policies::new`] with other control-plane timers (tests use short ones).
    pub fn with_timing(
        config: &PolicyConfig,
        metrics: Arc<Metrics>,
        mesh_tls: Option<&Arc<MeshTls>>,
        timing: super::Timing,
    ) -> Result<Arc<Policies>, crate::control::AddrError> {
        let default = config.default;
        let cluster = &config.cluster_networks;
        let control = match &config.control {
            Some(c) => Some(PolicyClient::new(c, mesh_tls, timing)?),
            None => None,
        };
        let policies = Arc::new(Policies {
            default: PortPolicy::fixed(Arc::new(server_policy(default, cluster))),
            require_identity: PortPolicy::fixed(Arc::new(server_policy(
                require_identity(default),
                cluster,
            ))),
            require_identity_ports: config.require_identity.clone(),
            control,
            watched: Mutex::new(HashMap::new()),
            metrics,
        });
        if policies.control.is_some() {
            for range in config.inbound_ports.ranges() {
                for port in range.clone().take(MAX_WATCHED_PORTS) {
                    policies.watch(port, true);
                }
            }
        }
        Ok(policies)
    }

    /// The live policy of `port`.
    pub fn port(&self, port: u16) -> PortPolicy {
        if self.control.is_none() {
            return self.default_for(port).clone();
        }
        self.watch(port, false)
    }

    /// What the inbound side hands the stage serving a connection from `client` to
    /// `target`.
    pub fn connection(&self, client: SocketAddr, target: SocketAddr, tls: ClientTls) -> ConnPolicy {
        let port = self.port(target.port());
        ConnPolicy::new(client, target, tls, port, self.metrics.clone())
    }

    fn default_for(&self, port: u16) -> &PortPolicy {
        if self.require_identity_ports.contains(port) {
            &self.require_identity
        } else {
            &self.default
        }
    }

    fn watch(&self, port: u16, permanent: bool) -> PortPolicy {
        let Some(control) = &self.control else {
            return self.default_for(port).clone();
        };
        let now = Instant::now();
        let mut watched = self.watched.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(w) = watched.get_mut(&port) {
            w.last_used = now;
            return PortPolicy { rx: w.rx.clone() };
        }
        if watched.len() >= MAX_WATCHED_PORTS {
            watched.retain(|_, w| w.permanent || now.duration_since(w.last_used) < IDLE_WATCH);
        }
        if watched.len() >= MAX_WATCHED_PORTS {
            tracing::debug!(
                port,
                max = MAX_WATCHED_PORTS,
                "too many inbound ports watched; the default policy applies"
            );
            return self.default_for(port).clone();
        }
        let initial = self.default_for(port).current();
        let (tx, rx) = watch::channel(initial);
        tokio::spawn(control.clone().watch(port, tx));
        watched.insert(
            port,
            Watched {
                rx: rx.clone(),
                last_used: now,
                permanent,
            },
        );
        PortPolicy { rx }
    }
}
