//! The Kubernetes client, built once per process.

use std::path::Path;

use anyhow::Context as _;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

/// A client from `kubeconfig`, else `$KUBECONFIG`, `~/.kube/config` or the in-cluster service
/// account (kube's inference order).
pub async fn client(kubeconfig: Option<&Path>) -> anyhow::Result<Client> {
    let config = match kubeconfig {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read kubeconfig {}", path.display()))?;
            let kubeconfig = Kubeconfig::from_yaml(&text)
                .with_context(|| format!("cannot parse kubeconfig {}", path.display()))?;
            Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                .await
                .with_context(|| format!("cannot use kubeconfig {}", path.display()))?
        }
        None => Config::infer()
            .await
            .context("no kubeconfig ($KUBECONFIG, ~/.kube/config) and not running in a cluster")?,
    };
    Client::try_from(config).context("cannot build a Kubernetes client")
}
