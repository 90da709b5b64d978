//! What one refresh reads and shows: the rows, and the proxies whose metrics make them.

use std::collections::HashSet;

use anyhow::bail;

use super::cluster::{Inventory, PodInfo, Scope, inventory};
use super::render::Row;
use super::resource::{Kind, Target};
use super::{Config, Samples, Source};
use crate::metrics::Target as ScrapeTarget;

/// What one refresh reads and shows.
#[derive(Debug, Default)]
pub struct Plan {
    pub rows: Vec<RowPlan>,
    /// Every proxy to read, once each.
    pub targets: Vec<ScrapeTarget>,
    /// Resources left out because none of their pods is meshed (without --unmeshed), by kind,
    /// as Linkerd leaves them out.
    pub hidden_unmeshed: Vec<(Kind, usize)>,
}

#[derive(Debug)]
pub struct RowPlan {
    pub row: Row,
    /// The proxies and group keys whose traffic makes the row.
    pub sources: Vec<(ScrapeTarget, String)>,
}

/// `--proxy`: one row per authority, or per destination resource of the kind asked for, seen in
/// the latest scrape.
pub fn proxy_rows(targets: &[ScrapeTarget], current: &Samples, config: &Config) -> Plan {
    let (kind, names) = match &config.source {
        Source::Proxies { kind, names, .. } => (*kind, names.as_slice()),
        Source::Cluster { .. } => (Kind::Authority, &[][..]),
    };
    let mut keys: Vec<&String> = current
        .values()
        .filter_map(|s| s.value.as_ref().ok())
        .flat_map(|s| s.groups.keys())
        .filter(|key| names.is_empty() || names.contains(&row_name(kind, key).1))
        .collect();
    keys.sort();
    keys.dedup();
    let rows = keys
        .into_iter()
        .map(|key| {
            let (namespace, name) = row_name(kind, key);
            RowPlan {
                row: Row {
                    kind,
                    namespace,
                    name,
                    meshed: None,
                    // A proxy's metrics do not say what phase the destination pod is in.
                    status: (kind == Kind::Pod).then(|| "-".to_string()),
                    stats: None,
                },
                sources: targets.iter().map(|t| (t.clone(), key.clone())).collect(),
            }
        })
        .collect();
    Plan {
        rows,
        targets: targets.to_vec(),
        hidden_unmeshed: Vec::new(),
    }
}

/// The namespace and name of a `--proxy` row from its group key: an authority as it is, a
/// destination's `namespace/name` split.
fn row_name(kind: Kind, key: &str) -> (String, String) {
    match key.split_once('/') {
        Some((ns, name)) if kind != Kind::Authority => (ns.to_string(), name.to_string()),
        _ => (String::new(), key.to_string()),
    }
}

/// Reads the cluster (or takes the --proxy list) and decides the rows and the proxies.
pub async fn plan(client: Option<&kube::Client>, config: &Config) -> anyhow::Result<Plan> {
    let (client, namespace, all_namespaces, targets, selector, from) =
        match (&config.source, client) {
            (Source::Proxies { addrs, .. }, _) => {
                return Ok(Plan {
                    rows: Vec::new(),
                    targets: addrs.iter().cloned().map(ScrapeTarget::Direct).collect(),
                    hidden_unmeshed: Vec::new(),
                });
            }
            (
                Source::Cluster {
                    namespace,
                    all_namespaces,
                    targets,
                    selector,
                    from,
                },
                Some(client),
            ) => (client, namespace, *all_namespaces, targets, selector, from),
            (Source::Cluster { .. }, None) => bail!("no Kubernetes client"),
        };
    let ns = namespace.clone().unwrap_or_else(|| "default".to_string());
    let scope = if all_namespaces {
        Scope::All
    } else {
        Scope::Namespace(ns.clone())
    };
    let inventory_fut = inventory(client, &scope, targets, selector.as_deref());
    let from_fut = async {
        match from {
            Some((kind, name, from_ns)) => {
                let from_scope = Scope::Namespace(from_ns.clone().unwrap_or_else(|| ns.clone()));
                let target = Target {
                    kind: *kind,
                    names: vec![name.clone()],
                };
                Some(inventory(client, &from_scope, &[target], None).await).transpose()
            }
            None => Ok(None),
        }
    };
    let (inventory, from) = tokio::join!(inventory_fut, from_fut);
    let inventory = inventory?;
    let from = from?;
    let from_targets: Option<Vec<ScrapeTarget>> = from.as_ref().map(|from: &Inventory| {
        let mut pods: Vec<usize> = from
            .workloads
            .iter()
            .flat_map(|w| from.pods_of(w))
            .collect();
        pods.sort_unstable();
        pods.dedup();
        pods.iter()
            .map(|&i| &from.pods[i])
            .filter(|p| p.readable())
            .map(PodInfo::admin_target)
            .collect()
    });
    let mut rows = Vec::new();
    let mut targets: Vec<ScrapeTarget> = Vec::new();
    let mut hidden_unmeshed: Vec<(Kind, usize)> = Vec::new();
    for workload in &inventory.workloads {
        let pods: Vec<&PodInfo> = inventory
            .pods_of(workload)
            .into_iter()
            .map(|i| &inventory.pods[i])
            .filter(|p| p.live)
            .collect();
        let meshed = pods.iter().filter(|p| p.meshed).count();
        if workload.kind == Kind::Pod && pods.is_empty() {
            // Linkerd hides pods that have completed.
            continue;
        }
        if meshed == 0 && !config.unmeshed {
            match hidden_unmeshed
                .iter_mut()
                .find(|(k, _)| *k == workload.kind)
            {
                Some((_, n)) => *n += 1,
                None => hidden_unmeshed.push((workload.kind, 1)),
            }
            continue;
        }
        let sources: Vec<(ScrapeTarget, String)> = match &from_targets {
            Some(from_targets) => {
                let key = format!("{}/{}", workload.namespace, workload.name);
                from_targets
                    .iter()
                    .map(|t| (t.clone(), key.clone()))
                    .collect()
            }
            None => pods
                .iter()
                .filter(|p| p.readable())
                .map(|p| (p.admin_target(), String::new()))
                .collect(),
        };
        targets.extend(sources.iter().map(|(t, _)| t.clone()));
        rows.push(RowPlan {
            row: Row {
                kind: workload.kind,
                namespace: workload.namespace.clone(),
                name: workload.name.clone(),
                meshed: Some((meshed, pods.len())),
                status: (workload.kind == Kind::Pod)
                    .then(|| pods.first().map(|p| p.status.clone()).unwrap_or_default()),
                stats: None,
            },
            sources,
        });
    }
    if let Some(from_targets) = from_targets {
        targets = from_targets;
    }
    let mut seen = HashSet::new();
    targets.retain(|t| seen.insert(t.clone()));
    Ok(Plan {
        rows,
        targets,
        hidden_unmeshed,
    })
}
