//! Linkerd's inbound policy API, `io.linkerd.proxy.inbound.InboundServerPolicies` (`GetPort`,
//! `WatchPort`), served by `mesh-controller destination` on the policy port (8090, the
//! `linkerd-policy` Service). A proxy asks, for each inbound port of its pod, how to handle
//! connections (protocol) and whom to let in (authorizations); answers follow `Server`,
//! `ServerAuthorization`, `AuthorizationPolicy`, `MeshTLSAuthentication` and
//! `NetworkAuthentication` resources, the pod's annotations and the cluster's default policy.
//!
//! Shaped like Linkerd's policy controller: [`index`] is pure (objects in, per-port answers
//! and watches out), [`grpc`] subscribes streams to it and [`proto`] writes Linkerd's messages.
//! The watchers are the destination component's (the Pod watch is shared with it).
//!
//! The workload a proxy names is `{"ns":"<namespace>","pod":"<pod>"}` or the older
//! `<namespace>:<pod>` ([`workload`]). An unknown pod is `NotFound`, a malformed request
//! `InvalidArgument`, as Linkerd answers.
//!
//! Limits: at most [`grpc::MAX_WATCHES`] (100 000) open `WatchPort` streams over all clients
//! (`ResourceExhausted` beyond), requests of at most [`MAX_REQUEST_BYTES`] (16 KiB) and workload
//! strings of at most [`workload::MAX_LEN`] (1 KiB); watches of closed streams are swept. Answers
//! give proxies Linkerd's 10 s protocol detection timeout ([`index::DETECT_TIMEOUT`]).
//!
//! Not served, unlike Linkerd: HTTPRoute and GRPCRoute policy (an `AuthorizationPolicy` that
//! targets a route grants nothing; every HTTP server gets Linkerd's default route), rate limits,
//! external workloads, and status updates on the resources. Where several `Server`s select one
//! port, the first by name applies (Linkerd's admission webhook refuses such `Server`s).

pub mod grpc;
pub mod index;
pub mod proto;
pub mod workload;

use std::sync::{Arc, Mutex};

use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use crate::lock;
use index::{Index, Kind};

/// The group of Linkerd's policy resources.
pub const GROUP: &str = "policy.linkerd.io";

/// The largest request message read: a `PortSpec` is a workload string and a port.
pub const MAX_REQUEST_BYTES: usize = 16 * 1024;

/// Starts one watcher per policy kind feeding `index`; each returned receiver resolves once its
/// kind has been listed. (Pods come from the destination component's Pod watcher.)
pub fn spawn_watchers(
    client: &kube::Client,
    index: &Arc<Mutex<Index>>,
    shutdown: &CancellationToken,
) -> Vec<oneshot::Receiver<()>> {
    Kind::ALL
        .into_iter()
        .map(|kind| {
            let (name, version, plural) = kind.resource();
            let resource = ApiResource::from_gvk_with_plural(
                &GroupVersionKind::gvk(GROUP, version, name),
                plural,
            );
            let (tx, rx) = oneshot::channel();
            let (apply, delete) = (index.clone(), index.clone());
            tokio::spawn(crate::watchers::feed(
                name,
                kube::Api::<DynamicObject>::all_with(client.clone(), &resource),
                tx,
                shutdown.clone(),
                move |obj: &DynamicObject| lock(&apply).apply(kind, obj),
                move |ns: &str, name: &str| lock(&delete).delete(kind, ns, name),
            ));
            rx
        })
        .collect()
}
