//! The Kubernetes client every cluster-facing command builds from the global flags.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

use crate::cmd::GlobalArgs;

/// Builds a client from `--kubeconfig`, `--context`, `$KUBECONFIG`, `~/.kube/config` or the
/// in-cluster service account, in that order. Returns the client and the server's URL.
pub async fn client(global: &GlobalArgs, timeout: Duration) -> anyhow::Result<(Client, String)> {
    let options = KubeConfigOptions {
        context: global.context.clone(),
        ..KubeConfigOptions::default()
    };
    let mut config = match &global.kubeconfig {
        Some(path) => from_file(path, &options).await?,
        None => match std::env::var_os("KUBECONFIG").filter(|v| !v.is_empty()) {
            Some(paths) => {
                if let Some(why) = none_exists(&paths) {
                    bail!(why);
                }
                let kubeconfig = Kubeconfig::from_env()
                    .with_context(|| {
                        format!("cannot read $KUBECONFIG ({})", paths.to_string_lossy())
                    })?
                    .context("$KUBECONFIG names no kubeconfig file")?;
                Config::from_custom_kubeconfig(kubeconfig, &options)
                    .await
                    .context("cannot use the kubeconfig in $KUBECONFIG")?
            }
            None if global.context.is_some() => Config::from_kubeconfig(&options)
                .await
                .context("cannot load ~/.kube/config")?,
            None => {
                if let Some(why) = nothing_to_infer() {
                    bail!(why);
                }
                Config::infer()
                    .await
                    .context("cannot load ~/.kube/config or the in-cluster service account")?
            }
        },
    };
    // Commands retry on their own terms; kube's default retry of 503s with a long backoff would
    // make an unhealthy API look like a hang.
    config.default_retry = false;
    config.connect_timeout = Some(timeout);
    config.read_timeout = Some(timeout);
    let url = config.cluster_url.to_string();
    let client = Client::try_from(config).context("cannot build a Kubernetes client")?;
    Ok((client, url.trim_end_matches('/').to_string()))
}

/// Why `$KUBECONFIG` names no usable file, when none of its files exists. kubectl does not fall
/// back to ~/.kube/config when `$KUBECONFIG` is set, and neither do we.
fn none_exists(paths: &std::ffi::OsStr) -> Option<String> {
    let files: Vec<PathBuf> = std::env::split_paths(paths)
        .filter(|p| !p.as_os_str().is_empty())
        .collect();
    if files.is_empty() || files.iter().any(|f| f.exists()) {
        return None;
    }
    let named: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    let missing = if files.len() == 1 {
        "which does not exist"
    } else {
        "none of which exists"
    };
    Some(format!(
        "no kubeconfig: --kubeconfig is not given and $KUBECONFIG names {}, {missing} \
         (with $KUBECONFIG set, ~/.kube/config and the in-cluster service account are not tried)",
        named.join(", ")
    ))
}

/// Whether no cluster is configured at all: no `$KUBECONFIG`, no ~/.kube/config and not in a
/// cluster, and neither `--kubeconfig` nor `--context` given.
pub fn nothing_configured(global: &GlobalArgs) -> bool {
    global.kubeconfig.is_none()
        && global.context.is_none()
        && std::env::var_os("KUBECONFIG").is_none_or(|v| v.is_empty())
        && nothing_to_infer().is_some()
}

/// Why [`Config::infer`] is bound to fail, said once: kube's own error names every path it
/// tried in each layer of its chain.
fn nothing_to_infer() -> Option<String> {
    let home = std::env::var_os("HOME").map(|h| Path::new(&h).join(".kube").join("config"));
    if home.as_deref().is_some_and(Path::exists) {
        return None;
    }
    if std::env::var_os("KUBERNETES_SERVICE_HOST").is_some() {
        return None;
    }
    let home = match home {
        Some(path) => format!("{} does not exist", path.display()),
        None => "~/.kube/config cannot be found ($HOME is not set)".to_string(),
    };
    Some(format!(
        "no kubeconfig: --kubeconfig and $KUBECONFIG are not set, {home}, and mesh is not running \
         in a cluster ($KUBERNETES_SERVICE_HOST is not set)"
    ))
}

async fn from_file(path: &Path, options: &KubeConfigOptions) -> anyhow::Result<Config> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read kubeconfig {}", path.display()))?;
    let kubeconfig = Kubeconfig::from_yaml(&text)
        .with_context(|| format!("cannot parse kubeconfig {}", path.display()))?;
    Config::from_custom_kubeconfig(kubeconfig, options)
        .await
        .with_context(|| format!("cannot use kubeconfig {}", path.display()))
}

/// An API error as one readable line.
pub fn describe(err: kube::Error) -> String {
    match err {
        kube::Error::Api(status) => {
            if status.message.is_empty() {
                format!("the API answered {} {}", status.code, status.reason)
            } else {
                status.message.clone()
            }
        }
        other => error_chain(&other),
    }
}

/// Page size for every list, as kubectl uses.
const PAGE: u32 = 500;

/// Lists every object `params` selects, a page at a time, as `kubectl get` does.
pub async fn list_all<K>(
    api: &kube::Api<K>,
    params: &kube::api::ListParams,
) -> Result<Vec<K>, kube::Error>
where
    K: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let mut items = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut page_params = params.clone().limit(PAGE);
        if let Some(token) = &token {
            page_params = page_params.continue_token(token);
        }
        let page = api.list(&page_params).await?;
        items.extend(page.items);
        token = page.metadata.continue_.filter(|t| !t.is_empty());
        if token.is_none() {
            return Ok(items);
        }
    }
}

/// An error and its causes on one line, each cause once.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text = format!("{text}: {cause_text}");
        }
        source = cause.source();
    }
    text
}
