//! `mesh edges`: who talks to whom, and over mesh TLS or not, read from the proxies' outbound
//! metrics like `stat`.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;

use k8s_openapi::api::core::v1::Service;
use kube::api::ListParams;

use super::cluster::{Scope, inventory, list};
use super::resource::{Kind, Target};
use super::sample::{self, Direction, EdgeKey, GroupBy, View};
use crate::metrics::{Scraper, Target as ScrapeTarget};

/// One edge: a workload's proxy sent traffic to a workload of the same kind (named by the
/// endpoint's `dst_*` labels), or, where no label names one, to a Service, with or without mesh
/// TLS. Traffic of one pair both with and without it, or to several server identities, is one
/// edge for each, as Linkerd's `viz edges` lists them.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Edge {
    pub src_namespace: String,
    pub src: String,
    pub dst_namespace: String,
    pub dst: String,
    /// The destination's kind: the sources' kind, or `Service` as the fallback.
    pub dst_kind: Kind,
    /// Whether the client's proxy sent this traffic over mesh TLS (`tls="true"`).
    pub secured: bool,
    /// The server identity the client's proxy verified (`server_id`), when secured.
    pub server_id: String,
    /// Why the traffic is not mesh TLS (`no_tls_reason`), when not secured.
    pub no_tls_reason: String,
}

/// Every edge from the meshed workloads of `kind` in `scope`, and the pods that could not be
/// read with why. An edge goes to the destination's workload of `kind` when the outbound metrics
/// carry its `dst_<kind>` label (as Linkerd's `viz edges`), else to the Service the request's
/// authority or cluster IP names.
pub async fn edges(
    client: &kube::Client,
    scraper: &Scraper,
    scope: &Scope,
    kind: Kind,
) -> anyhow::Result<(Vec<Edge>, Vec<(String, String)>)> {
    let target = Target {
        kind,
        names: Vec::new(),
    };
    let inventory = inventory(client, scope, &[target], None).await?;
    let service_ips = service_ips(client, scope).await?;
    let mut edges = BTreeSet::new();
    let mut unread = Vec::new();
    for workload in &inventory.workloads {
        let view = View {
            direction: Direction::Outbound,
            group: GroupBy::Edge {
                kind,
                namespace: workload.namespace.clone(),
            },
            only: None,
            service_ips: service_ips.clone(),
        };
        let targets: Vec<ScrapeTarget> = inventory
            .pods_of(workload)
            .into_iter()
            .map(|i| &inventory.pods[i])
            .filter(|p| p.live && p.meshed && p.running)
            .map(|p| ScrapeTarget::Pod {
                namespace: p.namespace.clone(),
                name: p.name.clone(),
                port: p.admin_port,
            })
            .collect();
        let pages = scraper
            .all(&targets, "/metrics", move |text| {
                let page =
                    crate::metrics::parse(text).map_err(|e| format!("invalid metrics: {e}"))?;
                Ok(sample::reduce(&page, &view))
            })
            .await;
        for (target, page) in targets.iter().zip(pages) {
            let sample = match page.value {
                Ok(sample) => sample,
                Err(why) => {
                    unread.push((target.to_string(), why));
                    continue;
                }
            };
            for (key, counters) in sample.groups {
                let seen = counters.success
                    + counters.failure
                    + counters.read_bytes
                    + counters.write_bytes
                    + counters.tcp_open;
                let Some(key) = EdgeKey::parse(&key) else {
                    continue;
                };
                let dst_kind = if key.short == kind.short() {
                    kind
                } else {
                    Kind::Service
                };
                if seen > 0.0 {
                    edges.insert(Edge {
                        src_namespace: workload.namespace.clone(),
                        src: workload.name.clone(),
                        dst_namespace: key.namespace.to_string(),
                        dst: key.name.to_string(),
                        dst_kind,
                        secured: key.tls == mesh_names::metrics::TLS_TRUE,
                        server_id: key.server_id.to_string(),
                        no_tls_reason: key.no_tls_reason.to_string(),
                    });
                }
            }
        }
    }
    Ok((edges.into_iter().collect(), unread))
}

/// Services by cluster IP in `scope`: mesh-proxy labels traffic sent to a cluster IP with the IP,
/// not the Service's name.
pub(crate) async fn service_ips(
    client: &kube::Client,
    scope: &Scope,
) -> anyhow::Result<HashMap<IpAddr, (String, String)>> {
    let services: Vec<Service> = list(client, scope, &ListParams::default())
        .await
        .map_err(|e| anyhow::anyhow!("cannot list services: {}", crate::client::describe(e)))?;
    let mut ips = HashMap::new();
    for service in services {
        let (Some(ns), Some(name)) = (service.metadata.namespace, service.metadata.name) else {
            continue;
        };
        let spec = service.spec.unwrap_or_default();
        let listed = spec.cluster_ips.unwrap_or_default();
        for ip in spec.cluster_ip.into_iter().chain(listed) {
            if let Ok(ip) = ip.parse() {
                ips.insert(ip, (ns.clone(), name.clone()));
            }
        }
    }
    Ok(ips)
}
