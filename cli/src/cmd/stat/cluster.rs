//! Reading the cluster: the resources asked for, every pod they could select, and which pods
//! each resource selects through its own selector.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{Namespace, Pod, ReplicationController, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::serde::de::DeserializeOwned;
use kube::api::{Api, ListParams};
use kube::{Client, Resource, ResourceExt};
use mesh_names::containers;

use super::resource::{Kind, Target};
use crate::client::describe;

/// The proxy's admin port when its container does not name one.
pub const DEFAULT_ADMIN_PORT: u16 = mesh_names::ports::PROXY_ADMIN;

/// Which namespaces to look in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    Namespace(String),
    All,
}

/// A resource that selects pods.
#[derive(Debug, Clone)]
pub struct Workload {
    pub kind: Kind,
    pub namespace: String,
    pub name: String,
    selector: PodSelector,
}

#[derive(Debug, Clone)]
enum PodSelector {
    /// A workload's `spec.selector`.
    Labels(LabelSelector),
    /// A Service's or ReplicationController's `spec.selector`; empty selects nothing.
    Map(BTreeMap<String, String>),
    /// A CronJob: the pods of the Jobs it owns.
    Jobs(Vec<String>),
    /// A Namespace: every pod in it.
    Namespace,
    /// A Pod: itself.
    Itself,
}

/// What `mesh stat` needs to know about a pod.
#[derive(Debug, Clone)]
pub struct PodInfo {
    pub namespace: String,
    pub name: String,
    /// `status.reason` if set, else `status.phase`.
    pub status: String,
    /// Not finished (Succeeded or Failed) and not being deleted.
    pub live: bool,
    /// In phase Running, so its proxy can answer.
    pub running: bool,
    /// Has a `linkerd-proxy` container (or native sidecar).
    pub meshed: bool,
    pub admin_port: u16,
    /// `spec.serviceAccountName` (`default` when unset): the first part of the pod's mesh
    /// identity.
    pub service_account: String,
    labels: BTreeMap<String, String>,
    owner_jobs: Vec<String>,
}

impl PodInfo {
    /// Whether its proxy can be read now: live, meshed and running.
    pub fn readable(&self) -> bool {
        self.live && self.meshed && self.running
    }

    /// Its proxy's admin server, to read through the API server's pod proxy.
    pub fn admin_target(&self) -> crate::metrics::Target {
        crate::metrics::Target::Pod {
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            port: self.admin_port,
        }
    }
}

/// The resources asked for and the pods they may select.
#[derive(Debug, Default)]
pub struct Inventory {
    pub workloads: Vec<Workload>,
    pub pods: Vec<PodInfo>,
}

impl Inventory {
    /// Indices into `pods` of the pods `workload` selects.
    pub fn pods_of(&self, workload: &Workload) -> Vec<usize> {
        self.pods
            .iter()
            .enumerate()
            .filter(|(_, pod)| selects(workload, pod))
            .map(|(i, _)| i)
            .collect()
    }
}

fn selects(workload: &Workload, pod: &PodInfo) -> bool {
    if let PodSelector::Namespace = workload.selector {
        return pod.namespace == workload.name;
    }
    if pod.namespace != workload.namespace {
        return false;
    }
    match &workload.selector {
        PodSelector::Labels(selector) => label_selector_matches(selector, &pod.labels),
        PodSelector::Map(map) => {
            !map.is_empty() && map.iter().all(|(k, v)| pod.labels.get(k) == Some(v))
        }
        PodSelector::Jobs(jobs) => pod.owner_jobs.iter().any(|j| jobs.contains(j)),
        PodSelector::Itself => pod.name == workload.name,
        PodSelector::Namespace => false,
    }
}

/// Kubernetes' label selector semantics: every `matchLabels` pair and every expression holds.
pub fn label_selector_matches(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let by_labels = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    let by_expressions = selector.match_expressions.iter().flatten().all(|e| {
        let value = labels.get(&e.key);
        let values = e.values.as_deref().unwrap_or_default();
        match e.operator.as_str() {
            "In" => value.is_some_and(|v| values.contains(v)),
            "NotIn" => value.is_none_or(|v| !values.contains(v)),
            "Exists" => value.is_some(),
            "DoesNotExist" => value.is_none(),
            _ => false,
        }
    });
    by_labels && by_expressions
}

/// The running meshed pods of one `kind/name` in `namespace`, sorted by name: what
/// `mesh diagnostics proxy-metrics` and `mesh tap` talk to. An error when there are none.
pub async fn running_meshed_pods(
    client: &Client,
    namespace: String,
    kind: Kind,
    name: &str,
) -> anyhow::Result<Vec<PodInfo>> {
    let target = Target {
        kind,
        names: vec![name.to_owned()],
    };
    let found = inventory(client, &Scope::Namespace(namespace), &[target], None).await?;
    let mut pods: Vec<PodInfo> = found
        .workloads
        .iter()
        .flat_map(|w| found.pods_of(w))
        .map(|i| &found.pods[i])
        .filter(|p| p.live && p.meshed && p.running)
        .cloned()
        .collect();
    pods.sort_by(|a, b| a.name.cmp(&b.name));
    pods.dedup_by(|a, b| a.name == b.name);
    if pods.is_empty() {
        anyhow::bail!("{kind}/{name} has no running meshed pods");
    }
    Ok(pods)
}

/// Lists the targets' resources in `scope` (filtered by `selector` and by name) and the pods
/// they can select. A name that matches nothing is an error.
pub async fn inventory(
    client: &Client,
    scope: &Scope,
    targets: &[Target],
    selector: Option<&str>,
) -> anyhow::Result<Inventory> {
    let pod_scope = if targets.iter().any(|t| t.kind == Kind::Namespace) {
        Scope::All
    } else {
        scope.clone()
    };
    let mut params = ListParams::default();
    if let Some(selector) = selector {
        params = params.labels(selector);
    }
    let needs_jobs = targets.iter().any(|t| t.kind == Kind::CronJob);
    let pods = async {
        list::<Pod>(client, &pod_scope, &ListParams::default())
            .await
            .map_err(|e| anyhow::anyhow!("cannot list pods: {}", describe(e)))
    };
    let jobs = async {
        if needs_jobs {
            list::<Job>(client, scope, &ListParams::default())
                .await
                .map_err(|e| anyhow::anyhow!("cannot list jobs: {}", describe(e)))
        } else {
            Ok(Vec::new())
        }
    };
    let workloads = futures::future::join_all(
        targets
            .iter()
            .map(|target| workloads(client, scope, target, &params)),
    );
    let (pods, jobs, workloads) = tokio::join!(pods, jobs, workloads);
    let jobs = jobs?;
    let pods = pods?.iter().map(pod_info).collect();
    let mut all = Vec::new();
    for (target, found) in targets.iter().zip(workloads) {
        let mut found = found?;
        for workload in &mut found {
            if workload.kind == Kind::CronJob {
                workload.selector = PodSelector::Jobs(jobs_of(&jobs, workload));
            }
        }
        for name in &target.names {
            if !found.iter().any(|w| &w.name == name) {
                let place = match scope {
                    Scope::Namespace(ns) if target.kind != Kind::Namespace => {
                        format!(" in namespace {ns:?}")
                    }
                    _ => String::new(),
                };
                anyhow::bail!("{} {name:?} not found{place}", target.kind);
            }
        }
        all.extend(found);
    }
    Ok(Inventory {
        workloads: all,
        pods,
    })
}

fn jobs_of(jobs: &[Job], cronjob: &Workload) -> Vec<String> {
    jobs.iter()
        .filter(|job| job.namespace().as_deref() == Some(cronjob.namespace.as_str()))
        .filter(|job| {
            job.owner_references()
                .iter()
                .any(|o| o.kind == "CronJob" && o.name == cronjob.name)
        })
        .map(|job| job.name_any())
        .collect()
}

async fn workloads(
    client: &Client,
    scope: &Scope,
    target: &Target,
    params: &ListParams,
) -> anyhow::Result<Vec<Workload>> {
    let kind = target.kind;
    let fail = |e: kube::Error| anyhow::anyhow!("cannot list {kind}s: {}", describe(e));
    let mut found: Vec<Workload> = match kind {
        Kind::Deployment => typed::<Deployment>(client, scope, params, kind).await,
        Kind::StatefulSet => typed::<StatefulSet>(client, scope, params, kind).await,
        Kind::DaemonSet => typed::<DaemonSet>(client, scope, params, kind).await,
        Kind::ReplicaSet => typed::<ReplicaSet>(client, scope, params, kind).await,
        Kind::Job => typed::<Job>(client, scope, params, kind).await,
        Kind::ReplicationController => {
            typed::<ReplicationController>(client, scope, params, kind).await
        }
        Kind::Service => typed::<Service>(client, scope, params, kind).await,
        Kind::CronJob => typed::<CronJob>(client, scope, params, kind).await,
        Kind::Pod => typed::<Pod>(client, scope, params, kind).await,
        Kind::Namespace => crate::client::list_all(&Api::<Namespace>::all(client.clone()), params)
            .await
            .map(|all| {
                all.into_iter()
                    .map(|ns| Workload {
                        kind,
                        namespace: ns.name_any(),
                        name: ns.name_any(),
                        selector: PodSelector::Namespace,
                    })
                    .collect()
            }),
        Kind::Authority => anyhow::bail!("authorities are not Kubernetes resources; use --proxy"),
    }
    .map_err(fail)?;
    if !target.names.is_empty() {
        found.retain(|w| target.names.contains(&w.name));
    }
    Ok(found)
}

/// A kind of resource whose pods `mesh stat` finds through the resource's own selector.
trait SelectsPods:
    Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
    + ResourceExt
    + Clone
    + DeserializeOwned
    + std::fmt::Debug
{
    fn pod_selector(&self) -> PodSelector;
}

fn labels(selector: Option<&LabelSelector>) -> PodSelector {
    PodSelector::Labels(selector.cloned().unwrap_or_default())
}

/// Workloads whose `spec.selector` is a required label selector.
macro_rules! selects_by_spec_selector {
    ($($kind:ty),+) => {$(
        impl SelectsPods for $kind {
            fn pod_selector(&self) -> PodSelector {
                labels(self.spec.as_ref().map(|s| &s.selector))
            }
        }
    )+};
}

selects_by_spec_selector!(Deployment, StatefulSet, DaemonSet, ReplicaSet);

impl SelectsPods for Job {
    fn pod_selector(&self) -> PodSelector {
        labels(self.spec.as_ref().and_then(|s| s.selector.as_ref()))
    }
}

/// Kinds whose `spec.selector` is a plain label map.
macro_rules! selects_by_label_map {
    ($($kind:ty),+) => {$(
        impl SelectsPods for $kind {
            fn pod_selector(&self) -> PodSelector {
                PodSelector::Map(
                    self.spec
                        .as_ref()
                        .and_then(|s| s.selector.clone())
                        .unwrap_or_default(),
                )
            }
        }
    )+};
}

selects_by_label_map!(ReplicationController, Service);

impl SelectsPods for CronJob {
    /// Filled in once the Jobs are known.
    fn pod_selector(&self) -> PodSelector {
        PodSelector::Jobs(Vec::new())
    }
}

impl SelectsPods for Pod {
    fn pod_selector(&self) -> PodSelector {
        PodSelector::Itself
    }
}

/// Lists every `K` in `scope` as workloads with their pod selectors.
async fn typed<K: SelectsPods>(
    client: &Client,
    scope: &Scope,
    params: &ListParams,
    kind: Kind,
) -> Result<Vec<Workload>, kube::Error> {
    let items: Vec<K> = list(client, scope, params).await?;
    Ok(items
        .iter()
        .map(|item| Workload {
            kind,
            namespace: item.namespace().unwrap_or_default(),
            name: item.name_any(),
            selector: item.pod_selector(),
        })
        .collect())
}

fn pod_info(pod: &Pod) -> PodInfo {
    let status = pod.status.as_ref();
    let phase = status
        .and_then(|s| s.phase.clone())
        .unwrap_or_else(|| "Unknown".to_string());
    let shown = status
        .and_then(|s| s.reason.clone())
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| phase.clone());
    let finished = phase == "Succeeded" || phase == "Failed";
    let spec = pod.spec.as_ref();
    let proxy = spec.and_then(|spec| {
        spec.containers
            .iter()
            .chain(spec.init_containers.iter().flatten())
            .find(|c| c.name == containers::PROXY)
    });
    let admin_port = proxy
        .and_then(|c| c.ports.as_ref())
        .and_then(|ports| {
            ports
                .iter()
                .find(|p| p.name.as_deref() == Some(containers::ADMIN_PORT))
                .and_then(|p| u16::try_from(p.container_port).ok())
        })
        .unwrap_or(DEFAULT_ADMIN_PORT);
    PodInfo {
        namespace: pod.namespace().unwrap_or_default(),
        name: pod.name_any(),
        status: shown,
        live: !finished && pod.metadata.deletion_timestamp.is_none(),
        running: phase == "Running",
        meshed: proxy.is_some(),
        admin_port,
        service_account: spec
            .and_then(|s| s.service_account_name.clone())
            .filter(|sa| !sa.is_empty())
            .unwrap_or_else(|| "default".to_string()),
        labels: pod.labels().clone(),
        owner_jobs: pod
            .owner_references()
            .iter()
            .filter(|o| o.kind == "Job")
            .map(|o| o.name.clone())
            .collect(),
    }
}

/// Lists everything of a namespaced kind in `scope`, a page at a time.
pub async fn list<K>(
    client: &Client,
    scope: &Scope,
    params: &ListParams,
) -> Result<Vec<K>, kube::Error>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
    <K as Resource>::DynamicType: Default,
{
    let api: Api<K> = match scope {
        Scope::Namespace(ns) => Api::namespaced(client.clone(), ns),
        Scope::All => Api::all(client.clone()),
    };
    crate::client::list_all(&api, params).await
}
