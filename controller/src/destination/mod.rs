//! `mesh-controller destination`: Linkerd's `io.linkerd.proxy.destination.Destination` service
//! (`Get` and `GetProfile`), which tells proxies where a service's endpoints are, how to talk to
//! them (HTTP/2 upgrade, opaque transport, the identity to expect) and the service's routes.
//!
//! Shaped like Linkerd's policy controller: [`index`] is pure and turns Services, EndpointSlices,
//! Pods and ServiceProfiles into answers and per-target watch channels; [`watchers`] runs one
//! shared kube-runtime watcher per kind to feed it; [`grpc`] subscribes streams to it.
//!
//! Not served here: Linkerd's policy API (`--cluster-networks` and `--default-inbound-policy` are
//! validated and accepted for it), multicluster and federated services, external workloads,
//! topology-aware filtering and `dst_overrides` from TrafficSplits (a ServiceProfile's own
//! `dstOverrides` are served). A `Get` on an IP is answered for a Service's cluster IP (its
//! endpoints) and a pod IP (that pod), as earlier Linkerd releases did; Linkerd today refuses IP
//! lookups in `Get`, and other IPs are refused with its message.

pub mod grpc;
pub mod index;
pub mod names;
pub mod ports;
mod watchers;

use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use anyhow::{Context as _, anyhow};
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::args::DestinationArgs;
use crate::runtime::{Component, Context, Failure};
use index::{Config, Index, ServiceRef};
use ports::PortSet;

/// How many streams one client connection may hold open.
const MAX_STREAMS_PER_CONNECTION: u32 = 10_000;

/// The inbound policies Linkerd accepts for `--default-inbound-policy`.
const INBOUND_POLICIES: &[&str] = &[
    "all-unauthenticated",
    "all-authenticated",
    "cluster-unauthenticated",
    "cluster-authenticated",
    "deny",
    "audit",
];

impl Component for DestinationArgs {
    const NAME: &'static str = "destination";
    const ADMIN_PORT: u16 = mesh_names::ports::DESTINATION_ADMIN;

    async fn run(self, ctx: Context) -> Result<(), Failure> {
        let config = self.config(&ctx.common.control_plane_namespace)?;
        let client = ctx.kube_client().await?;
        let index = Arc::new(Mutex::new(Index::new(config)));
        let metrics = grpc::Metrics::register(&mut ctx.metrics.registry());

        let listener = TcpListener::bind(self.addr)
            .await
            .with_context(|| format!("cannot listen on --addr {}", self.addr))
            .map_err(Failure::Config)?;
        let bound = listener.local_addr().map_err(Failure::runtime)?;
        tracing::info!(addr = %bound, server = "grpc", "listening");

        let lookups = index.clone();
        ctx.lookups
            .set(Arc::new(move |authority| lookup(&lookups, authority)));
        let synced = spawn_watchers(&client, &index, &ctx);
        let service = grpc::Destination::new(index.clone(), ctx.shutdown.clone(), metrics);
        let shutdown = ctx.shutdown.clone();
        let server = tokio::spawn(
            tonic::transport::Server::builder()
                // A proxy holds one Get and one GetProfile stream per target on one connection;
                // h2's default of 200 streams would stall larger meshes.
                .max_concurrent_streams(Some(MAX_STREAMS_PER_CONNECTION))
                .add_service(
                    linkerd2_proxy_api::destination::destination_server::DestinationServer::new(
                        service,
                    ),
                )
                .serve_with_incoming_shutdown(
                    tonic::transport::server::TcpIncoming::from(listener),
                    async move { shutdown.cancelled().await },
                ),
        );

        tokio::select! {
            _ = ctx.shutdown.cancelled() => {}
            all = futures::future::join_all(synced) => {
                if all.iter().all(Result::is_ok) {
                    tracing::info!("watches synced");
                    ctx.ready.set(true);
                }
            }
        }
        // Serve until SIGTERM, then let streams end (they watch the same token) and connections
        // close, within the grace period.
        let mut server = server;
        tokio::select! {
            _ = ctx.shutdown.cancelled() => {}
            result = &mut server => return served(result),
        }
        ctx.ready.set(false);
        match tokio::time::timeout(ctx.grace, &mut server).await {
            Ok(result) => served(result),
            Err(_) => {
                tracing::warn!("connections still open after the grace period; exiting anyway");
                server.abort();
                Ok(())
            }
        }
    }
}

/// What a `Get` for `authority` starts with, as JSON for `mesh diagnostics endpoints`: the
/// endpoints with their pod, namespace and service, from the same index the streams read.
fn lookup(index: &Mutex<Index>, authority: &str) -> Result<String, (u16, String)> {
    let rx = {
        let mut index = match index.lock() {
            Ok(index) => index,
            Err(poisoned) => poisoned.into_inner(),
        };
        index.subscribe_endpoints(authority).map_err(|e| match e {
            index::LookupError::NotFound(m) => (404, m),
            index::LookupError::InvalidArgument(m) => (400, m),
        })?
    };
    let current = rx.borrow().clone();
    let endpoints: Vec<serde_json::Value> = current
        .addrs
        .iter()
        .map(|(addr, weighted)| {
            let label = |name: &str| {
                weighted
                    .metric_labels
                    .get(name)
                    .or_else(|| current.labels.get(name))
                    .cloned()
                    .unwrap_or_default()
            };
            serde_json::json!({
                "namespace": label("namespace"),
                "ip": addr.ip().to_string(),
                "port": addr.port(),
                "pod": label("pod"),
                "service": label("service"),
            })
        })
        .collect();
    let answer = serde_json::json!({
        "authority": authority,
        "exists": current.exists,
        "endpoints": endpoints,
    });
    Ok(answer.to_string())
}

fn served(
    result: Result<Result<(), tonic::transport::Error>, tokio::task::JoinError>,
) -> Result<(), Failure> {
    match result {
        Ok(Ok(())) => Ok(()),
        Ok(Err(err)) => Err(Failure::Runtime(anyhow!(err).context("grpc server failed"))),
        Err(err) => Err(Failure::Runtime(
            anyhow!(err).context("grpc server panicked"),
        )),
    }
}

impl DestinationArgs {
    /// The index's configuration; every bad flag is a configuration failure naming the flag.
    fn config(&self, control_plane_ns: &str) -> Result<Config, Failure> {
        let default_opaque_ports = PortSet::parse_numeric(&self.default_opaque_ports)
            .context("--default-opaque-ports")
            .map_err(Failure::Config)?;
        for cidr in self
            .cluster_networks
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            if !valid_cidr(cidr) {
                return Err(Failure::Config(anyhow!(
                    "--cluster-networks: invalid network {cidr:?}"
                )));
            }
        }
        if !INBOUND_POLICIES.contains(&self.default_inbound_policy.as_str()) {
            return Err(Failure::Config(anyhow!(
                "--default-inbound-policy: unknown policy {:?}; expected one of {}",
                self.default_inbound_policy,
                INBOUND_POLICIES.join(", ")
            )));
        }
        Ok(Config {
            cluster_domain: self.cluster_domain.trim_end_matches('.').to_string(),
            trust_domain: self.identity_trust_domain.trim_end_matches('.').to_string(),
            control_plane_ns: control_plane_ns.to_string(),
            default_opaque_ports,
        })
    }
}

fn valid_cidr(text: &str) -> bool {
    let Some((ip, prefix)) = text.split_once('/') else {
        return false;
    };
    match (ip.parse::<IpAddr>(), prefix.parse::<u8>()) {
        (Ok(IpAddr::V4(_)), Ok(p)) => p <= 32,
        (Ok(IpAddr::V6(_)), Ok(p)) => p <= 128,
        _ => false,
    }
}

/// Starts the four watchers; each receiver resolves once its kind has been listed.
fn spawn_watchers(
    client: &kube::Client,
    index: &Arc<Mutex<Index>>,
    ctx: &Context,
) -> Vec<oneshot::Receiver<()>> {
    let mut synced = Vec::new();
    let mut channel = || {
        let (tx, rx) = oneshot::channel();
        synced.push(rx);
        tx
    };
    tokio::spawn(watchers::feed(
        "Service",
        kube::Api::<Service>::all(client.clone()),
        index.clone(),
        channel(),
        ctx.shutdown.clone(),
        |index, svc| index.apply_service(svc),
        |index, id| index.delete_service(id),
    ));
    tokio::spawn(watchers::feed(
        "EndpointSlice",
        kube::Api::<EndpointSlice>::all(client.clone()),
        index.clone(),
        channel(),
        ctx.shutdown.clone(),
        |index, slice| index.apply_slice(slice),
        |index, id| index.delete_slice(id),
    ));
    tokio::spawn(watchers::feed(
        "Pod",
        kube::Api::<Pod>::all(client.clone()),
        index.clone(),
        channel(),
        ctx.shutdown.clone(),
        |index, pod| index.apply_pod(pod),
        |index, id| index.delete_pod(id),
    ));
    let resource = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("linkerd.io", "v1alpha2", "ServiceProfile"),
        "serviceprofiles",
    );
    tokio::spawn(watchers::feed(
        "ServiceProfile",
        kube::Api::<DynamicObject>::all_with(client.clone(), &resource),
        index.clone(),
        channel(),
        ctx.shutdown.clone(),
        apply_profile,
        |index, id| index.delete_profile(id),
    ));
    synced
}

fn apply_profile(index: &mut Index, obj: &DynamicObject) {
    let (Some(namespace), Some(name)) = (&obj.metadata.namespace, &obj.metadata.name) else {
        return;
    };
    index.apply_profile(
        ServiceRef {
            namespace: namespace.clone(),
            name: name.clone(),
        },
        obj.data.get("spec"),
    );
}
