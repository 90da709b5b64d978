//! What `install` and `upgrade` read from the cluster: whether a control plane is there, and the
//! values and certificates it was installed with.

use std::time::Duration;

use anyhow::{Context as _, anyhow};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::Api;

use mesh_names::identity::{ISSUER_CRT_FILE, ISSUER_KEY_FILE};
use mesh_names::resources::{
    CONFIG, CONFIG_VALUES_KEY, ISSUER_SECRET, TRUST_ROOTS, TRUST_ROOTS_KEY,
};

use crate::cmd::GlobalArgs;
use crate::exit::Failed;

/// How long one request to the API server may take.
const TIMEOUT: Duration = Duration::from_secs(10);

/// What an installed control plane was rendered from.
#[derive(Debug)]
pub struct Installed {
    /// Where the values came from, for error messages: `ConfigMap linkerd/linkerd-config`.
    pub values_source: String,
    /// The effective values as `mesh install` wrote them.
    pub values: String,
    pub trust_anchors: (String, String),
    pub issuer_crt: (String, String),
    pub issuer_key: (String, String),
}

/// Fails when a control plane is installed in the control-plane namespace, as Linkerd's
/// `install` does: rendering a second one would replace its trust anchor and issuer, and every
/// meshed pod would keep trusting the old ones. Without any kubeconfig there is no cluster to
/// look at, and manifests are rendered offline, quietly (a GitOps render's stderr stays clean).
pub fn refuse_if_installed(global: &GlobalArgs) -> anyhow::Result<()> {
    if crate::client::nothing_configured(global) {
        return Ok(());
    }
    let ns = &global.control_plane_namespace;
    let found = block_on(async {
        let (client, url) = crate::client::client(global, TIMEOUT).await?;
        let configs: Api<ConfigMap> = Api::namespaced(client, ns);
        configs
            .get_opt(CONFIG)
            .await
            .map(|found| found.is_some())
            .map_err(|e| anyhow!("{} (at {url})", crate::client::describe(e)))
    })
    .context(
        "cannot check the cluster for an existing control plane \
         (--ignore-cluster renders without checking)",
    )?;
    if found {
        return Err(Failed(format!(
            "mesh is already installed in namespace {ns} (ConfigMap {ns}/{CONFIG} exists). \
             Run `mesh upgrade | kubectl apply -f -` to change it: it keeps the trust anchor, \
             the issuer and the values. --ignore-cluster renders a new install anyway, with new \
             certificates that every meshed pod would have to be restarted to trust"
        ))
        .into());
    }
    Ok(())
}

/// Reads the values and the identity certificates of the control plane in the control-plane
/// namespace.
pub fn installed(global: &GlobalArgs) -> anyhow::Result<Installed> {
    let ns = global.control_plane_namespace.clone();
    block_on(async move {
        let (client, url) = crate::client::client(global, TIMEOUT).await?;
        let at = |e: kube::Error| anyhow!("{} (at {url})", crate::client::describe(e));
        let configs: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
        let secrets: Api<Secret> = Api::namespaced(client, &ns);
        let Some(config) = configs.get_opt(CONFIG).await.map_err(at)? else {
            return Err(Failed(format!(
                "no control plane in namespace {ns}: ConfigMap {ns}/{CONFIG} does not exist \
                 (install one with `mesh install`, or name its namespace with -L)"
            ))
            .into());
        };
        let config_name = format!("ConfigMap {ns}/{CONFIG}");
        let values = config_text(config, CONFIG_VALUES_KEY, &config_name)?;
        let roots_name = format!("ConfigMap {ns}/{TRUST_ROOTS}");
        let roots = configs
            .get_opt(TRUST_ROOTS)
            .await
            .map_err(at)?
            .ok_or_else(|| Failed(format!("{roots_name} does not exist")))?;
        let anchors = config_text(roots, TRUST_ROOTS_KEY, &roots_name)?;
        let issuer_name = format!("Secret {ns}/{ISSUER_SECRET}");
        let issuer = secrets
            .get_opt(ISSUER_SECRET)
            .await
            .map_err(at)?
            .ok_or_else(|| Failed(format!("{issuer_name} does not exist")))?;
        let crt = secret_text(&issuer, ISSUER_CRT_FILE, &issuer_name)?;
        let key = secret_text(&issuer, ISSUER_KEY_FILE, &issuer_name)?;
        Ok(Installed {
            values,
            values_source: config_name,
            trust_anchors: (format!("{roots_name} key {TRUST_ROOTS_KEY}"), anchors),
            issuer_crt: (format!("{issuer_name} key {ISSUER_CRT_FILE}"), crt),
            issuer_key: (format!("{issuer_name} key {ISSUER_KEY_FILE}"), key),
        })
    })
}

fn config_text(map: ConfigMap, key: &str, name: &str) -> anyhow::Result<String> {
    map.data
        .and_then(|mut d| d.remove(key))
        .ok_or_else(|| Failed(format!("{name} has no key {key}")).into())
}

fn secret_text(secret: &Secret, key: &str, name: &str) -> anyhow::Result<String> {
    if let Some(bytes) = secret.data.as_ref().and_then(|d| d.get(key)) {
        return String::from_utf8(bytes.0.clone())
            .map_err(|_| Failed(format!("{name} key {key} is not text")).into());
    }
    // stringData is write-only in a real API server, but a fake or a dry run may return it.
    if let Some(text) = secret.string_data.as_ref().and_then(|d| d.get(key)) {
        return Ok(text.clone());
    }
    Err(Failed(format!("{name} has no key {key}")).into())
}

fn block_on<T>(future: impl std::future::Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    runtime.block_on(future)
}
