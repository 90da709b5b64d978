//! `mesh-controller destination`: Linkerd's `io.linkerd.proxy.destination.Destination` service
//! (`Get` and `GetProfile`), which tells proxies where a service's endpoints are, how to talk to
//! them (HTTP/2 upgrade, opaque transport, the identity to expect) and the service's routes.
//!
//! Shaped like Linkerd's policy controller: [`index`] is pure and turns Services, EndpointSlices,
//! Pods and ServiceProfiles into answers and per-target watch channels; `crate::watchers` runs one
//! shared kube-runtime watcher per kind to feed it; [`grpc`] subscribes streams to it.
//!
//! The same process serves Linkerd's inbound policy API on `--policy-addr` ([`crate::policy`]),
//! from its own index; the Pod watch feeds both.
//!
//! Not served here: multicluster and federated services, external workloads,
//! topology-aware filtering and `dst_overrides` from TrafficSplits (a ServiceProfile's own
//! `dstOverrides` are served). A `Get` on an IP is answered for a Service's cluster IP (its
//! endpoints) and a pod IP (that pod), as earlier Linkerd releases did; Linkerd today refuses IP
//! lookups in `Get`, and other IPs are refused with its message.

pub mod grpc;
pub mod index;
pub mod names;
pub mod ports;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use anyhow::{Context as _, anyhow};
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use linkerd2_proxy_api::destination::destination_server::DestinationServer;
use linkerd2_proxy_api::inbound::inbound_server_policies_server::InboundServerPoliciesServer;

use crate::args::DestinationArgs;
use crate::runtime::{Component, Context, Failure};
use crate::{lock, policy};
use index::{Config, Index, ServiceRef};
use mesh_names::policy::DefaultInboundPolicy;
use policy::index::{IdentityDomain, Net};
use ports::PortSet;

/// How many streams one client connection may hold open.
const MAX_STREAMS_PER_CONNECTION: u32 = 10_000;

type Served = tokio::task::JoinHandle<Result<(), tonic::transport::Error>>;

impl Component for DestinationArgs {
    const NAME: &'static str = "destination";
    const ADMIN_PORT: u16 = mesh_names::ports::DESTINATION_ADMIN;

    async fn run(self, ctx: Context) -> Result<(), Failure> {
        let (config, policy_config) = self.config(&ctx.common.control_plane_namespace)?;
        let client = ctx.kube_client().await?;
        let index = Arc::new(Mutex::new(Index::new(config)));
        let policies = Arc::new(Mutex::new(policy::index::Index::new(policy_config)));
        let metrics = grpc::register_metrics(&mut ctx.metrics.registry());
        let policy_metrics = policy::grpc::register_metrics(&mut ctx.metrics.registry());

        let listener = bind(self.addr, "--addr", "grpc").await?;
        let policy_listener = bind(self.policy_addr, "--policy-addr", "policy").await?;

        let lookups = index.clone();
        ctx.lookups
            .set(Arc::new(move |authority| lookup(&lookups, authority)));
        let mut synced = spawn_watchers(&client, &index, &policies, &ctx);
        synced.extend(
            policy::spawn_watchers(&client, &policies, &ctx.shutdown)
                .await
                .context("cannot discover the Gateway API's routes")
                .map_err(Failure::runtime)?,
        );

        let service = grpc::Destination::new(index.clone(), ctx.shutdown.clone(), metrics);
        let destination = serve(
            listener,
            &ctx,
            tonic::service::Routes::new(DestinationServer::new(service)),
        );
        let service =
            policy::grpc::InboundPolicies::new(policies, ctx.shutdown.clone(), policy_metrics);
        let policy_server = serve(
            policy_listener,
            &ctx,
            tonic::service::Routes::new(
                InboundServerPoliciesServer::new(service)
                    .max_decoding_message_size(policy::MAX_REQUEST_BYTES),
            ),
        );
        let mut servers = std::pin::pin!(futures::future::try_join(
            served(destination, "destination"),
            served(policy_server, "policy"),
        ));

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
        tokio::select! {
            _ = ctx.shutdown.cancelled() => {}
            result = servers.as_mut() => return result.map(|_| ()),
        }
        ctx.ready.set(false);
        match tokio::time::timeout(ctx.grace, servers.as_mut()).await {
            Ok(result) => result.map(|_| ()),
            Err(_) => {
                tracing::warn!("connections still open after the grace period; exiting anyway");
                Ok(())
            }
        }
    }
}

async fn bind(addr: SocketAddr, flag: &str, server: &str) -> Result<TcpListener, Failure> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {flag} {addr}"))
        .map_err(Failure::Config)?;
    let bound = listener.local_addr().map_err(Failure::runtime)?;
    tracing::info!(addr = %bound, server, "listening");
    Ok(listener)
}

/// Serves gRPC services until shutdown.
fn serve(listener: TcpListener, ctx: &Context, routes: tonic::service::Routes) -> Served {
    let shutdown = ctx.shutdown.clone();
    tokio::spawn(
        tonic::transport::Server::builder()
            // A proxy holds one Get and one GetProfile stream per target, and one WatchPort
            // per inbound port, on one connection; h2's default of 200 streams would stall
            // larger meshes.
            .max_concurrent_streams(Some(MAX_STREAMS_PER_CONNECTION))
            .add_routes(routes)
            .serve_with_incoming_shutdown(
                tonic::transport::server::TcpIncoming::from(listener),
                async move { shutdown.cancelled().await },
            ),
    )
}

/// What a `Get` for `authority` starts with, as JSON for `mesh diagnostics endpoints`: the
/// endpoints with their pod, namespace and service, from the same index the streams read.
fn lookup(index: &Mutex<Index>, authority: &str) -> Result<String, (u16, String)> {
    let rx = lock(index)
        .subscribe_endpoints(authority)
        .map_err(|e| match e {
            index::LookupError::NotFound(m) => (404, m),
            index::LookupError::InvalidArgument(m) => (400, m),
        })?;
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

/// The outcome of one server task; aborts it if the future is dropped (after the grace period).
async fn served(server: Served, name: &'static str) -> Result<(), Failure> {
    struct AbortOnDrop(tokio::task::AbortHandle);
    impl Drop for AbortOnDrop {
        fn drop(&mut self) {
            self.0.abort();
        }
    }
    let _abort = AbortOnDrop(server.abort_handle());
    match server.await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(err)) => Err(Failure::Runtime(
            anyhow!(err).context(format!("{name} grpc server failed")),
        )),
        Err(err) => Err(Failure::Runtime(
            anyhow!(err).context(format!("{name} grpc server panicked")),
        )),
    }
}

impl DestinationArgs {
    /// The indexes' configuration; every bad flag is a configuration failure naming the flag.
    fn config(&self, control_plane_ns: &str) -> Result<(Config, policy::index::Config), Failure> {
        let default_opaque_ports = PortSet::parse_numeric(&self.default_opaque_ports)
            .context("--default-opaque-ports")
            .map_err(Failure::Config)?;
        let cluster_networks = Net::parse_list(&self.cluster_networks)
            .context("--cluster-networks")
            .map_err(Failure::Config)?;
        let default_policy: DefaultInboundPolicy = self
            .default_inbound_policy
            .parse()
            .context("--default-inbound-policy")
            .map_err(Failure::Config)?;
        let trust_domain = self.identity_trust_domain.trim_end_matches('.').to_string();
        let policy = policy::index::Config {
            cluster_networks,
            default_policy,
            default_opaque_ports: default_opaque_ports.clone(),
            identity: IdentityDomain {
                control_plane_ns: control_plane_ns.to_string(),
                trust_domain: trust_domain.clone(),
            },
        };
        let destination = Config {
            cluster_domain: self.cluster_domain.trim_end_matches('.').to_string(),
            trust_domain,
            control_plane_ns: control_plane_ns.to_string(),
            default_opaque_ports,
        };
        Ok((destination, policy))
    }
}

/// Starts the destination's four watchers (Pods feed the policy index too); each receiver
/// resolves once its kind has been listed.
fn spawn_watchers(
    client: &kube::Client,
    index: &Arc<Mutex<Index>>,
    policies: &Arc<Mutex<policy::index::Index>>,
    ctx: &Context,
) -> Vec<oneshot::Receiver<()>> {
    let mut synced = Vec::new();
    let mut channel = || {
        let (tx, rx) = oneshot::channel();
        synced.push(rx);
        tx
    };
    let (apply, delete) = (index.clone(), index.clone());
    tokio::spawn(crate::watchers::feed(
        "Service",
        kube::Api::<Service>::all(client.clone()),
        channel(),
        ctx.shutdown.clone(),
        move |svc: &Service| lock(&apply).apply_service(svc),
        move |ns: &str, name: &str| lock(&delete).delete_service(&object_ref(ns, name)),
    ));
    let (apply, delete) = (index.clone(), index.clone());
    tokio::spawn(crate::watchers::feed(
        "EndpointSlice",
        kube::Api::<EndpointSlice>::all(client.clone()),
        channel(),
        ctx.shutdown.clone(),
        move |slice: &EndpointSlice| lock(&apply).apply_slice(slice),
        move |ns: &str, name: &str| lock(&delete).delete_slice(&object_ref(ns, name)),
    ));
    let (apply, delete) = (index.clone(), index.clone());
    let (apply_policy, delete_policy) = (policies.clone(), policies.clone());
    tokio::spawn(crate::watchers::feed(
        "Pod",
        kube::Api::<Pod>::all(client.clone()),
        channel(),
        ctx.shutdown.clone(),
        move |pod: &Pod| {
            lock(&apply).apply_pod(pod);
            lock(&apply_policy).apply_pod(pod);
        },
        move |ns: &str, name: &str| {
            lock(&delete).delete_pod(&object_ref(ns, name));
            lock(&delete_policy).delete_pod(ns, name);
        },
    ));
    let resource = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("linkerd.io", "v1alpha2", "ServiceProfile"),
        "serviceprofiles",
    );
    let (apply, delete) = (index.clone(), index.clone());
    tokio::spawn(crate::watchers::feed(
        "ServiceProfile",
        kube::Api::<DynamicObject>::all_with(client.clone(), &resource),
        channel(),
        ctx.shutdown.clone(),
        move |obj: &DynamicObject| apply_profile(&mut lock(&apply), obj),
        move |ns: &str, name: &str| lock(&delete).delete_profile(&object_ref(ns, name)),
    ));
    synced
}

fn object_ref(namespace: &str, name: &str) -> ServiceRef {
    ServiceRef {
        namespace: namespace.to_string(),
        name: name.to_string(),
    }
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
