//! What `profile` takes from the cluster when not told: the namespace of the kubeconfig's
//! context, and the cluster domain of the installed control plane, which Linkerd's `profile`
//! reads from the `linkerd-config` values unless told `--ignore-cluster` (a cluster not on
//! `cluster.local` needs profiles named for its own domain, or proxies never find them).

use std::time::Duration;

use anyhow::{Context as _, anyhow};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;

use mesh_names::resources::{CONFIG, CONFIG_VALUES_KEY};

use crate::cmd::GlobalArgs;

/// How long the one request to the API server may take.
const TIMEOUT: Duration = Duration::from_secs(10);

/// The `clusterDomain` of the control plane's values, or `None` when they do not set one.
pub fn cluster_domain(global: &GlobalArgs) -> anyhow::Result<Option<String>> {
    let ns = global.control_plane_namespace.clone();
    let hint = "--cluster-domain or --ignore-cluster render without the cluster";
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    let config = runtime
        .block_on(async {
            let (client, url) = crate::client::client(global, TIMEOUT).await?;
            let configs: Api<ConfigMap> = Api::namespaced(client, &ns);
            configs
                .get_opt(CONFIG)
                .await
                .map_err(|e| anyhow!("{} (at {url})", crate::client::describe(e)))
        })
        .with_context(|| format!("cannot read the cluster domain from the cluster; {hint}"))?;
    let Some(config) = config else {
        anyhow::bail!(
            "mesh is not installed in namespace {ns} (no ConfigMap {ns}/{CONFIG}) to read the \
             cluster domain from; {hint}"
        );
    };
    let values = config
        .data
        .as_ref()
        .and_then(|d| d.get(CONFIG_VALUES_KEY))
        .map(String::as_str)
        .unwrap_or_default();
    let docs = mesh_inject::yaml::to_json_documents(values)
        .map_err(|e| anyhow!("ConfigMap {ns}/{CONFIG}: {CONFIG_VALUES_KEY}: {e}"))?;
    Ok(docs
        .first()
        .and_then(|v| v.get("clusterDomain"))
        .and_then(serde_json::Value::as_str)
        .filter(|d| !d.is_empty())
        .map(str::to_string))
}

/// The namespace of the kubeconfig's context (`--context`, else the current one), read from the
/// file alone as kubectl does; `None` without a kubeconfig or a namespace in the context.
pub fn context_namespace(global: &GlobalArgs) -> Option<String> {
    if crate::client::nothing_configured(global) {
        return None;
    }
    let config = match &global.kubeconfig {
        Some(path) => kube::config::Kubeconfig::read_from(path),
        None => kube::config::Kubeconfig::read(),
    }
    .ok()?;
    let name = global
        .context
        .as_ref()
        .or(config.current_context.as_ref())?;
    config
        .contexts
        .iter()
        .find(|c| &c.name == name)?
        .context
        .as_ref()?
        .namespace
        .clone()
        .filter(|ns| !ns.is_empty())
}
