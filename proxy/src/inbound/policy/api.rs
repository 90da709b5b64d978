//! The control plane's `io.linkerd.proxy.inbound.InboundServerPolicies/WatchPort`: one
//! stream per watched port, reconnected with jittered backoff, each answer turned into a
//! [`ServerPolicy`].
//!
//! The stream of a port keeps its last good answer while the control plane is away; before
//! the first answer the port has the default policy, as in Linkerd. An answer that cannot
//! be read (no protocol, an authorization without networks or authentication, an invalid
//! regular expression: see `convert`) is logged and ignored: the port keeps what it had.

use std::sync::Arc;
use std::time::Duration;

use linkerd2_proxy_api::inbound::PortSpec;
use linkerd2_proxy_api::inbound::inbound_server_policies_client::InboundServerPoliciesClient;
use tokio::sync::watch;
use tonic::transport::Channel;

use super::ServerPolicy;
use super::convert::convert;
use crate::backoff::Backoff;
use crate::config::PolicyControl;
use crate::control::{self, AddrError, Event, Transport};
use crate::tls::MeshTls;

/// Reconnection timers. [`Timing::default`] is what the proxy runs with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    /// The first delay after a failure (100 ms), doubling up to `backoff_max` (10 s);
    /// each delay is jittered down by up to half.
    pub backoff_min: Duration,
    pub backoff_max: Duration,
}

impl Default for Timing {
    fn default() -> Timing {
        Timing {
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(10),
        }
    }
}

/// A client of the policy service, shared by every port's stream.
#[derive(Clone, Debug)]
pub(super) struct PolicyClient {
    client: InboundServerPoliciesClient<Channel>,
    workload: Arc<str>,
    timing: Timing,
}

impl PolicyClient {
    /// Connects lazily, on the first stream, and again (the name looked up again)
    /// whenever the connection is lost; over mesh TLS when `mesh_tls` (the proxy's, if it
    /// has an identity) and the service's name allow ([`Transport`]).
    pub(super) fn new(
        config: &PolicyControl,
        mesh_tls: Option<&Arc<MeshTls>>,
        timing: Timing,
    ) -> Result<PolicyClient, AddrError> {
        const SERVICE: &str = "policy";
        let transport = Transport::new(SERVICE, &config.addr, config.identity.as_deref(), mesh_tls);
        let channel = control::watch_channel(SERVICE, &config.addr, transport)?;
        let client = InboundServerPoliciesClient::new(channel)
            .max_decoding_message_size(control::MAX_MESSAGE_BYTES);
        Ok(PolicyClient {
            client,
            workload: config.workload.as_str().into(),
            timing,
        })
    }

    /// Publishes `port`'s policy into `tx` until every receiver is gone.
    pub(super) async fn watch(self, port: u16, tx: watch::Sender<Arc<ServerPolicy>>) {
        tokio::select! {
            () = tx.closed() => tracing::debug!(port, "inbound port no longer used; policy watch stopped"),
            () = self.stream(port, &tx) => {}
        }
    }

    async fn stream(&self, port: u16, tx: &watch::Sender<Arc<ServerPolicy>>) {
        let backoff = Backoff::new(self.timing.backoff_min, self.timing.backoff_max);
        let open = || {
            let mut client = self.client.clone();
            let spec = PortSpec {
                workload: self.workload.to_string(),
                port: port.into(),
            };
            async move { client.watch_port(spec).await }
        };
        control::watch(backoff, open, |event| match event {
            Event::Message(server, _) => match convert(server) {
                Ok(policy) => publish(tx, policy),
                Err(error) => tracing::warn!(
                    port,
                    %error,
                    "ignoring an inbound policy the proxy cannot read"
                ),
            },
            Event::Ended(Some(status)) => {
                tracing::info!(port, %status, "inbound policy lookup failed; retrying")
            }
            Event::Ended(None) => {
                tracing::debug!(port, "inbound policy stream ended; reconnecting")
            }
        })
        .await;
    }
}

fn publish(tx: &watch::Sender<Arc<ServerPolicy>>, policy: ServerPolicy) {
    tx.send_if_modified(|current| {
        if **current == policy {
            return false;
        }
        *current = Arc::new(policy);
        true
    });
}
