//! Linkerd's inbound policy API, `io.linkerd.proxy.inbound.InboundServerPolicies` (`GetPort`,
//! `WatchPort`), served by `mesh-controller destination` on the policy port (8090, the
//! `linkerd-policy` Service). A proxy asks, for each inbound port of its pod, how to handle
//! connections (protocol) and whom to let in (authorizations); answers follow `Server`,
//! `ServerAuthorization`, `AuthorizationPolicy`, `MeshTLSAuthentication` and
//! `NetworkAuthentication` resources, `HTTPRoute`s and `GRPCRoute`s attached to `Server`s, the
//! pod's annotations and the cluster's default policy.
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
//! Routes: `policy.linkerd.io` `HTTPRoute`s (watched at `v1beta3`, the version `mesh install`
//! renders as storage) and, when their CRDs are installed when the component starts, Gateway
//! API `HTTPRoute`s and `GRPCRoute`s, whose `parentRefs` name a `Server` of their namespace.
//! As in Linkerd: a `Server` with routes gets them instead of the default route, so requests
//! no route matches get 404; the probe route goes too, so probes need a route and a policy of
//! their own; an `AuthorizationPolicy` that targets a route admits clients on that route only,
//! while the server's authorizations apply to every route (the proxy adds them); a parent
//! reference with a `port` or `sectionName`, or to another namespace, makes the route
//! unreadable; HTTP servers get HTTPRoutes, `gRPC` servers GRPCRoutes.
//!
//! Where this differs from Linkerd: no route status is written, and every readable route that
//! names a `Server` is served (Linkerd serves a route once its status controller has accepted
//! it, which it does when the parent `Server` exists, so the two agree but for the status).
//! Route filters are not sent (the proxy applies none). A Gateway API CRD installed after the
//! component started is read only after a restart (Linkerd's controller also checks once).
//!
//! Not served, unlike Linkerd: rate limits, external workloads, and status updates on the
//! resources. Where several `Server`s select one port, the first by name applies (Linkerd's
//! admission webhook refuses such `Server`s).

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

/// Starts one watcher per kind feeding `index`; each returned receiver resolves once its kind
/// has been listed. (Pods come from the destination component's Pod watcher.) A Gateway API
/// route kind whose CRD is not installed is not watched, as Linkerd does: the API server says
/// which of its versions it serves when the component starts.
pub async fn spawn_watchers(
    client: &kube::Client,
    index: &Arc<Mutex<Index>>,
    shutdown: &CancellationToken,
) -> Result<Vec<oneshot::Receiver<()>>, kube::Error> {
    let mut synced = Vec::new();
    for kind in Kind::ALL {
        let (name, _, plural) = kind.resource();
        let version = if kind.is_optional() {
            match served_version(client, kind).await? {
                Some(version) => version,
                None => {
                    tracing::info!(
                        group = kind.group(),
                        kind = name,
                        "CRD not installed; its routes are not served"
                    );
                    continue;
                }
            }
        } else {
            kind.resource().1
        };
        let resource = ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk(kind.group(), version, name),
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
        synced.push(rx);
    }
    Ok(synced)
}

/// The first of `kind`'s versions the API server serves it at, if any.
async fn served_version(
    client: &kube::Client,
    kind: Kind,
) -> Result<Option<&'static str>, kube::Error> {
    let (_, _, plural) = kind.resource();
    for &version in kind.versions() {
        match client
            .list_api_group_resources(&format!("{}/{version}", kind.group()))
            .await
        {
            Ok(list) if list.resources.iter().any(|r| r.name == plural) => {
                return Ok(Some(version));
            }
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.is_not_found() => {}
            Err(err) => return Err(err),
        }
    }
    Ok(None)
}
