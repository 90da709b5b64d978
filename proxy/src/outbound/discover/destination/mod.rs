//! The control plane's `Destination` service as a source of answers (Linkerd's gRPC API).
//!
//! [`ControlPlane::new`] makes the client from [`DestinationConfig`]; it implements
//! [`Resolve`]. For each watched target it keeps one `Get` stream (the endpoints) and one
//! `GetProfile` stream (routes, retries, a traffic split), shared by every receiver and
//! stopped when the last one is dropped. A traffic split's backends are each watched with
//! a `Get` stream of their own.
//!
//! Which targets it answers: names under `LINKERD2_PROXY_DESTINATION_PROFILE_SUFFIXES`
//! (`svc.cluster.local.`), asked as `<name>:<port>`, and addresses in
//! `LINKERD2_PROXY_DESTINATION_PROFILE_NETWORKS` (every address when unset), asked as
//! `<ip>:<port>`. Other names get `None`: the next source is asked.
//!
//! When the control plane fails, the last answer stays; streams reconnect with jittered
//! exponential backoff ([`Timing`]). A target never answered within
//! [`Timing::answer_timeout`], or whose lookup failed to connect, is
//! [`Resolution::Unknown`], so its traffic goes to the original destination instead of
//! waiting. The connection to the control plane is HTTP/2, over mesh TLS when the proxy has
//! an identity and `LINKERD2_PROXY_DESTINATION_SVC_NAME` is set, unless the address is on
//! loopback ([`control::Transport`]).

mod endpoints;
mod profile;
mod stream;
mod target;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use linkerd2_proxy_api::destination::destination_client::DestinationClient;
use tokio::sync::watch;
use tonic::transport::Channel;

pub use profile::{MAX_OVERRIDES, MAX_ROUTES};

use super::{Destination, Resolution, Resolve};
use crate::config::{DestinationConfig, Networks, Suffixes};
use crate::control::{self, AddrError, Transport};
use crate::target::Logical;
use crate::tls::MeshTls;

/// Endpoints kept per set; further adds are ignored.
pub const MAX_ENDPOINTS: usize = 10_000;
/// Targets watched at once; past this a target is answered `Unknown` without asking.
pub const MAX_TARGETS: usize = 10_000;

/// Timers of the client. [`Timing::default`] is what the proxy runs with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    /// A target with no answer after this long is `Unknown` (3 s).
    pub answer_timeout: Duration,
    /// The first reconnection delay (100 ms); each failure doubles it, up to
    /// `backoff_max` (10 s). Each delay is jittered down by up to half.
    pub backoff_min: Duration,
    pub backoff_max: Duration,
}

impl Default for Timing {
    fn default() -> Timing {
        Timing {
            answer_timeout: Duration::from_secs(3),
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(10),
        }
    }
}

/// The control plane's Destination service as a [`Resolve`] source.
#[derive(Debug)]
pub struct ControlPlane {
    shared: Arc<Shared>,
    suffixes: Suffixes,
    networks: Networks,
    targets: Mutex<HashMap<Logical, watch::Sender<Arc<Destination>>>>,
}

/// What every stream of the client needs.
#[derive(Debug)]
struct Shared {
    client: DestinationClient<Channel>,
    context: String,
    timing: Timing,
}

impl ControlPlane {
    /// A client of the Destination service at `config.addr`, with [`Timing::default`];
    /// `mesh_tls` is the proxy's, if it has an identity. Call it within the Tokio runtime:
    /// the connection is made lazily, on the first lookup, and made again (the name looked
    /// up again) whenever it is lost.
    pub fn new(
        config: &DestinationConfig,
        mesh_tls: Option<&Arc<MeshTls>>,
    ) -> Result<Arc<ControlPlane>, AddrError> {
        ControlPlane::with_timing(config, mesh_tls, Timing::default())
    }

    /// [`ControlPlane::new`] with other timers (tests use short ones).
    pub fn with_timing(
        config: &DestinationConfig,
        mesh_tls: Option<&Arc<MeshTls>>,
        timing: Timing,
    ) -> Result<Arc<ControlPlane>, AddrError> {
        const SERVICE: &str = "destination";
        let transport = Transport::new(SERVICE, &config.addr, config.identity.as_deref(), mesh_tls);
        let channel = control::watch_channel(SERVICE, &config.addr, transport)?;
        let client =
            DestinationClient::new(channel).max_decoding_message_size(control::MAX_MESSAGE_BYTES);
        Ok(Arc::new(ControlPlane {
            shared: Arc::new(Shared {
                client,
                context: config.context.clone(),
                timing,
            }),
            suffixes: config.profile_suffixes.clone(),
            networks: config.profile_networks.clone(),
            targets: Mutex::new(HashMap::new()),
        }))
    }

    /// The path the control plane is asked about, or `None` if it is not asked.
    fn path(&self, target: &Logical) -> Option<String> {
        match target {
            Logical::Name(host, port) if self.suffixes.contains(host) => {
                Some(format!("{}:{port}", host.trim_end_matches('.')))
            }
            Logical::Name(..) => None,
            Logical::Addr(addr) if self.networks.contains(addr.ip()) => Some(addr.to_string()),
            Logical::Addr(_) => None,
        }
    }
}

impl Resolve for ControlPlane {
    fn resolve(&self, target: &Logical) -> Option<watch::Receiver<Arc<Destination>>> {
        let path = self.path(target)?;
        let mut targets = self.targets.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(tx) = targets.get(target)
            && !tx.is_closed()
        {
            return Some(tx.subscribe());
        }
        targets.retain(|_, tx| !tx.is_closed());
        if targets.len() >= MAX_TARGETS {
            tracing::warn!(
                max = MAX_TARGETS,
                %target,
                "too many targets watched; answered as unknown"
            );
            let (_, rx) = watch::channel(Arc::new(Destination::unknown()));
            return Some(rx);
        }
        let (tx, rx) = watch::channel(Arc::new(Destination::default()));
        targets.insert(target.clone(), tx.clone());
        tokio::spawn(target::watch(self.shared.clone(), path, tx));
        Some(rx)
    }
}

/// Publishes `next` unless it says what the current answer says.
fn publish(tx: &watch::Sender<Arc<Destination>>, next: Destination) {
    tx.send_if_modified(|current| {
        let same_profile = match (&current.profile, &next.profile) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        };
        if same_profile && current.resolution == next.resolution {
            return false;
        }
        *current = Arc::new(next);
        true
    });
}

/// Whether `resolution` says anything yet.
fn answered(resolution: &Resolution) -> bool {
    !matches!(resolution, Resolution::Pending)
}
