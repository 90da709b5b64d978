//! `mesh edges`: who talks to whom, and over mesh TLS or not, read from the proxies' outbound
//! metrics like `stat`.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;

use k8s_openapi::api::core::v1::Service;
use kube::api::ListParams;
use mesh_names::metrics as m;

use super::cluster::{PodInfo, Scope, inventory, list};
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
    /// The client identity the destination's proxies verified (`client_id` on their inbound
    /// metrics) for this source, when secured and read; see [`client_ids`].
    pub client_id: String,
    /// The server identity the client's proxy verified (`server_id`), when secured.
    pub server_id: String,
    /// Why the traffic is not mesh TLS (`no_tls_reason`), when not secured.
    pub no_tls_reason: String,
}

impl Edge {
    /// The edge as `mesh edges -o json` and the dashboard give it.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "src": self.src, "src_namespace": self.src_namespace,
            "dst": self.dst, "dst_namespace": self.dst_namespace,
            "dst_kind": self.dst_kind.canonical(),
            "secured": self.secured,
            "client_id": self.client_id, "server_id": self.server_id,
            "no_tls_reason": self.no_tls_reason,
        })
    }
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
    let mut accounts = HashMap::new();
    for workload in &inventory.workloads {
        let pods = inventory.pods_of(workload);
        accounts.insert(
            (workload.namespace.clone(), workload.name.clone()),
            pods.iter()
                .map(|&i| inventory.pods[i].service_account.clone())
                .collect::<BTreeSet<_>>(),
        );
        let view = View {
            direction: Direction::Outbound,
            group: GroupBy::Edge {
                kind,
                namespace: workload.namespace.clone(),
            },
            only: None,
            service_ips: service_ips.clone(),
        };
        let targets: Vec<ScrapeTarget> = pods
            .into_iter()
            .map(|i| &inventory.pods[i])
            .filter(|p| p.readable())
            .map(PodInfo::admin_target)
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
                        secured: key.tls == m::TLS_TRUE,
                        client_id: String::new(),
                        server_id: key.server_id.to_string(),
                        no_tls_reason: key.no_tls_reason.to_string(),
                    });
                }
            }
        }
    }
    let mut edges: Vec<Edge> = edges.into_iter().collect();
    client_ids(client, scraper, &mut edges, &accounts, &mut unread).await?;
    Ok((edges, unread))
}

/// Fills each secured edge's `client_id` from its destination's side, as Linkerd's `viz edges`
/// does: the `client_id` the destination's proxies verified on inbound mTLS traffic (their
/// `request_total` and `tcp_open_total`) whose service account and namespace are one of the
/// source's pods'. Empty when the destination's proxies could not be read or saw no such client.
async fn client_ids(
    client: &kube::Client,
    scraper: &Scraper,
    edges: &mut [Edge],
    accounts: &HashMap<(String, String), BTreeSet<String>>,
    unread: &mut Vec<(String, String)>,
) -> anyhow::Result<()> {
    let destinations: BTreeSet<(String, Kind, String)> = edges
        .iter()
        .filter(|e| e.secured)
        .map(|e| (e.dst_namespace.clone(), e.dst_kind, e.dst.clone()))
        .collect();
    let mut seen: HashMap<(String, Kind, String), BTreeSet<String>> = HashMap::new();
    for (namespace, kind, name) in destinations {
        let target = Target {
            kind,
            names: vec![name.clone()],
        };
        let scope = Scope::Namespace(namespace.clone());
        let inventory = inventory(client, &scope, &[target], None).await?;
        let targets: Vec<ScrapeTarget> = inventory
            .workloads
            .iter()
            .flat_map(|w| inventory.pods_of(w))
            .map(|i| &inventory.pods[i])
            .filter(|p| p.readable())
            .map(PodInfo::admin_target)
            .collect();
        let pages = scraper.all(&targets, "/metrics", inbound_clients).await;
        let ids = seen.entry((namespace, kind, name)).or_default();
        for (target, page) in targets.iter().zip(pages) {
            match page.value {
                Ok(found) => ids.extend(found),
                Err(why) => {
                    let pod = target.to_string();
                    if !unread.iter().any(|(p, _)| *p == pod) {
                        unread.push((pod, why));
                    }
                }
            }
        }
    }
    for edge in edges.iter_mut().filter(|e| e.secured) {
        let key = (edge.dst_namespace.clone(), edge.dst_kind, edge.dst.clone());
        let (Some(ids), Some(sas)) = (
            seen.get(&key),
            accounts.get(&(edge.src_namespace.clone(), edge.src.clone())),
        ) else {
            continue;
        };
        let ours = |id: &&String| {
            mesh_names::identity::workload_parts(id)
                .is_some_and(|(sa, ns)| ns == edge.src_namespace && sas.contains(sa))
        };
        if let Some(id) = ids.iter().find(ours) {
            edge.client_id.clone_from(id);
        }
    }
    Ok(())
}

/// The client identities a proxy's inbound side verified: `client_id` on its inbound mTLS
/// series that counted something.
fn inbound_clients(text: &str) -> Result<BTreeSet<String>, String> {
    let page = crate::metrics::parse(text).map_err(|e| format!("invalid metrics: {e}"))?;
    let mut ids = BTreeSet::new();
    for family in &page.families {
        if family.name != m::REQUEST_TOTAL && family.name != m::TCP_OPEN_TOTAL {
            continue;
        }
        for s in &family.samples {
            if s.value > 0.0
                && s.label(m::DIRECTION) == Some(m::INBOUND)
                && s.label(m::TLS) == Some(m::TLS_TRUE)
                && let Some(id) = s.label(m::CLIENT_ID).filter(|id| !id.is_empty())
            {
                ids.insert(id.to_string());
            }
        }
    }
    Ok(ids)
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
