//! Reading the cluster: one concurrent round of API calls that fills a [`Snapshot`], which the
//! checks then judge without further I/O.

use futures::future::join_all;
use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Node, Pod, Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::serde::de::DeserializeOwned;
use kube::Client;
use kube::api::{Api, ListParams, PostParams};
use mesh_names::{labels, resources};

use super::access;

/// The result of one API call, with the error as text for the report.
pub type Fetch<T> = Result<T, String>;

/// Everything the checks look at.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// `(major, minor, gitVersion)` from `/version`.
    pub server_version: Option<(u32, u32, String)>,
    pub pre: Option<PreInstall>,
    pub control_plane: Option<ControlPlane>,
    pub data_plane: Option<DataPlane>,
}

#[derive(Debug, Clone)]
pub struct PreInstall {
    pub namespace: Fetch<Option<Namespace>>,
    /// Each SelfSubjectAccessReview asked, with whether it was allowed.
    pub access: Vec<(access::Access, Fetch<bool>)>,
    pub nodes: Fetch<Vec<Node>>,
}

#[derive(Debug, Clone)]
pub struct ControlPlane {
    pub namespace: Fetch<Option<Namespace>>,
    pub config: Fetch<Option<ConfigMap>>,
    pub trust_roots: Fetch<Option<ConfigMap>>,
    pub issuer: Fetch<Option<Secret>>,
    pub injector_tls: Fetch<Option<Secret>>,
    pub webhook: Fetch<Option<MutatingWebhookConfiguration>>,
    pub crds: Vec<(&'static str, Fetch<Option<CustomResourceDefinition>>)>,
    pub cluster_roles: Fetch<Vec<ClusterRole>>,
    pub cluster_role_bindings: Fetch<Vec<ClusterRoleBinding>>,
    pub service_accounts: Fetch<Vec<ServiceAccount>>,
    pub deployments: Fetch<Vec<Deployment>>,
    pub pods: Fetch<Vec<Pod>>,
}

#[derive(Debug, Clone)]
pub struct DataPlane {
    /// The namespace given with `-n`, if any, and whether it exists.
    pub namespace: Option<(String, Fetch<Option<Namespace>>)>,
    pub namespaces: Fetch<Vec<Namespace>>,
    pub pods: Fetch<Vec<Pod>>,
}

/// What to read.
#[derive(Debug, Clone)]
pub struct Scope {
    pub control_plane_namespace: String,
    pub pre: bool,
    pub proxy: bool,
    pub namespace: Option<String>,
}

pub use crate::client::{client, describe};

/// Reads what `scope` needs, concurrently. The `/version` call doubles as the API check: if it
/// fails, nothing else is read and its error comes back.
pub async fn snapshot(client: &Client, scope: &Scope) -> Result<Snapshot, kube::Error> {
    let info = client.apiserver_version().await?;
    let server_version = Some((
        leading_number(&info.major),
        leading_number(&info.minor),
        info.git_version.clone(),
    ));
    let pre = async {
        if scope.pre {
            Some(pre_install(client, scope).await)
        } else {
            None
        }
    };
    let control_plane = async {
        if scope.pre {
            None
        } else {
            Some(control_plane(client, &scope.control_plane_namespace).await)
        }
    };
    let data_plane = async {
        if scope.proxy && !scope.pre {
            Some(data_plane(client, scope.namespace.as_deref()).await)
        } else {
            None
        }
    };
    let (pre, control_plane, data_plane) = tokio::join!(pre, control_plane, data_plane);
    Ok(Snapshot {
        server_version,
        pre,
        control_plane,
        data_plane,
    })
}

fn leading_number(text: &str) -> u32 {
    let digits: String = text.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().unwrap_or(0)
}

async fn pre_install(client: &Client, scope: &Scope) -> PreInstall {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let reviews: Api<SelfSubjectAccessReview> = Api::all(client.clone());
    let asks = access::INSTALL_ACCESS.iter().map(|access| {
        let reviews = reviews.clone();
        let ns = scope.control_plane_namespace.clone();
        async move {
            let review = SelfSubjectAccessReview {
                spec: SelfSubjectAccessReviewSpec {
                    resource_attributes: Some(ResourceAttributes {
                        verb: Some(access.verb.to_string()),
                        group: Some(access.group.to_string()),
                        resource: Some(access.resource.to_string()),
                        namespace: access.namespaced.then_some(ns),
                        ..ResourceAttributes::default()
                    }),
                    ..SelfSubjectAccessReviewSpec::default()
                },
                ..SelfSubjectAccessReview::default()
            };
            let answer = reviews
                .create(&PostParams::default(), &review)
                .await
                .map(|r| r.status.is_some_and(|s| s.allowed))
                .map_err(describe);
            (*access, answer)
        }
    });
    let (namespace, access, nodes) = tokio::join!(
        get(&namespaces, &scope.control_plane_namespace),
        join_all(asks),
        list(Api::<Node>::all(client.clone()), ListParams::default()),
    );
    PreInstall {
        namespace,
        access,
        nodes,
    }
}

async fn control_plane(client: &Client, ns: &str) -> ControlPlane {
    let c = client;
    let configmaps: Api<ConfigMap> = Api::namespaced(c.clone(), ns);
    let secrets: Api<Secret> = Api::namespaced(c.clone(), ns);
    let crds: Api<CustomResourceDefinition> = Api::all(c.clone());
    let by_label = ListParams::default().labels(&format!("{}={ns}", labels::CONTROL_PLANE_NS));
    let crd_gets = resources::CRDS.iter().map(|name| {
        let crds = crds.clone();
        async move { (*name, get(&crds, name).await) }
    });
    let namespaces: Api<Namespace> = Api::all(c.clone());
    let webhooks: Api<MutatingWebhookConfiguration> = Api::all(c.clone());
    let (namespace, config, trust_roots, issuer, injector_tls, webhook) = tokio::join!(
        get(&namespaces, ns),
        get(&configmaps, resources::CONFIG),
        get(&configmaps, resources::TRUST_ROOTS),
        get(&secrets, resources::ISSUER_SECRET),
        get(&secrets, resources::INJECTOR_TLS_SECRET),
        get(&webhooks, resources::INJECTOR_WEBHOOK),
    );
    let (crds, cluster_roles, cluster_role_bindings, service_accounts, deployments, pods) = tokio::join!(
        join_all(crd_gets),
        list(Api::<ClusterRole>::all(c.clone()), by_label.clone()),
        list(Api::<ClusterRoleBinding>::all(c.clone()), by_label),
        list(
            Api::<ServiceAccount>::namespaced(c.clone(), ns),
            ListParams::default()
        ),
        list(
            Api::<Deployment>::namespaced(c.clone(), ns),
            ListParams::default()
        ),
        list(Api::<Pod>::namespaced(c.clone(), ns), ListParams::default()),
    );
    ControlPlane {
        namespace,
        config,
        trust_roots,
        issuer,
        injector_tls,
        webhook,
        crds,
        cluster_roles,
        cluster_role_bindings,
        service_accounts,
        deployments,
        pods,
    }
}

async fn data_plane(client: &Client, namespace: Option<&str>) -> DataPlane {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    match namespace {
        Some(ns) => {
            let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
            let (one, pods) = tokio::join!(get(&namespaces, ns), list(pods, ListParams::default()));
            let listed = match &one {
                Ok(found) => Ok(found.iter().cloned().collect()),
                Err(e) => Err(e.clone()),
            };
            DataPlane {
                namespace: Some((ns.to_string(), one)),
                namespaces: listed,
                pods,
            }
        }
        None => {
            let pods: Api<Pod> = Api::all(client.clone());
            let (namespaces, pods) = tokio::join!(
                list(namespaces, ListParams::default()),
                list(pods, ListParams::default())
            );
            DataPlane {
                namespace: None,
                namespaces,
                pods,
            }
        }
    }
}

/// Lists everything, a page at a time.
async fn list<K>(api: Api<K>, params: ListParams) -> Fetch<Vec<K>>
where
    K: Clone + DeserializeOwned + std::fmt::Debug,
{
    crate::client::list_all(&api, &params)
        .await
        .map_err(describe)
}

async fn get<K>(api: &Api<K>, name: &str) -> Fetch<Option<K>>
where
    K: Clone + DeserializeOwned + std::fmt::Debug,
{
    api.get_opt(name).await.map_err(describe)
}
