//! `mesh version`.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, anyhow};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::ListParams;
use serde_json::json;

use super::GlobalArgs;
use super::check::facts;

/// Print the client, control plane and (with --proxy) data plane versions
///
/// The client version is this CLI's. The server version is the one the control plane in the
/// cluster runs, read from its ready pods (the mesh-controller image tag); "unavailable" when
/// none runs. With --proxy, the versions of the proxies of every meshed pod (in one namespace
/// with -n), and how many pods run each.
///
/// Exits 2 when the cluster cannot be read; --client never reads it.
///
/// Examples:
///
///     mesh version
///     mesh version --proxy -n emojivoto
///     mesh version --client --short
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// Print only the version numbers, one per line
    #[arg(long)]
    short: bool,
    /// Print only the client version, without reading the cluster
    #[arg(long, conflicts_with = "proxy")]
    client: bool,
    /// Also print the versions of the meshed pods' proxies
    #[arg(long)]
    proxy: bool,
    /// With --proxy, only the pods of this namespace
    #[arg(short, long, value_name = "NS", requires = "proxy")]
    namespace: Option<String>,
    /// Output format
    #[arg(short, long, value_enum, default_value_t = Format::Text)]
    output: Format,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Format {
    Text,
    Json,
}

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// How long the API server has for each list.
const TIMEOUT: Duration = Duration::from_secs(10);

/// What the cluster says.
struct Cluster {
    /// The control plane's version, or why none could be read from its pods.
    server: Result<String, String>,
    /// Proxy version → meshed pods running it; `None` without --proxy.
    proxies: Option<BTreeMap<String, usize>>,
}

pub fn run(args: Args, global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let render = |cluster: Option<&Cluster>| match args.output {
        Format::Json => json_output(cluster),
        Format::Text => text_output(cluster, args.short),
    };
    if args.client {
        let text = render(None);
        crate::output::stdout(|out| out.write_all(text.as_bytes()))?;
        return Ok(ExitCode::SUCCESS);
    }
    match read(global, args.proxy, args.namespace.as_deref()) {
        Ok(cluster) => {
            let text = render(Some(&cluster));
            crate::output::stdout(|out| out.write_all(text.as_bytes()))?;
            Ok(ExitCode::SUCCESS)
        }
        // As kubectl: the client's version still, then why the cluster's is missing.
        Err(e) => {
            let text = render(None);
            crate::output::stdout(|out| out.write_all(text.as_bytes()))?;
            Err(e.context("cannot read the versions in the cluster"))
        }
    }
}

fn read(global: &GlobalArgs, proxy: bool, namespace: Option<&str>) -> anyhow::Result<Cluster> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    runtime.block_on(async {
        let (client, url) = crate::client::client(global, TIMEOUT).await?;
        let at = |e: kube::Error| anyhow!("{} (at {url})", crate::client::describe(e));
        let ns = &global.control_plane_namespace;
        let control_plane: Api<Pod> = Api::namespaced(client.clone(), ns);
        let pods = crate::client::list_all(&control_plane, &ListParams::default())
            .await
            .map_err(at)?;
        let server = facts::control_plane_version(&pods, ns);
        let proxies = if proxy {
            let api: Api<Pod> = match namespace {
                Some(ns) => Api::namespaced(client, ns),
                None => Api::all(client),
            };
            let pods = crate::client::list_all(&api, &ListParams::default())
                .await
                .map_err(at)?;
            Some(proxy_versions(&pods))
        } else {
            None
        };
        Ok(Cluster { server, proxies })
    })
}

/// Counts the meshed pods that still run by the version of their proxy.
fn proxy_versions(pods: &[Pod]) -> BTreeMap<String, usize> {
    let mut versions = BTreeMap::new();
    for pod in pods {
        if facts::finished(pod) || facts::proxy(pod).is_none() {
            continue;
        }
        let version = facts::proxy_version(pod).unwrap_or_else(|| "unknown".to_string());
        *versions.entry(version).or_insert(0) += 1;
    }
    versions
}

fn text_output(cluster: Option<&Cluster>, short: bool) -> String {
    let mut out = if short {
        format!("{VERSION}\n")
    } else {
        format!("Client version: {VERSION}\n")
    };
    let Some(cluster) = cluster else {
        return out;
    };
    let server = cluster.server.as_deref().unwrap_or("unavailable");
    if short {
        out.push_str(&format!("{server}\n"));
    } else {
        out.push_str(&format!("Server version: {server}\n"));
    }
    if let Some(proxies) = &cluster.proxies {
        if !short {
            out.push_str("Proxy versions:\n");
        }
        if proxies.is_empty() && !short {
            out.push_str("\tunavailable (no meshed pod)\n");
        }
        for (version, pods) in proxies {
            if short {
                out.push_str(&format!("{version}\n"));
            } else {
                let noun = if *pods == 1 { "pod" } else { "pods" };
                out.push_str(&format!("\t{version} ({pods} {noun})\n"));
            }
        }
    }
    out
}

fn json_output(cluster: Option<&Cluster>) -> String {
    let mut out = json!({ "clientVersion": VERSION });
    if let Some(cluster) = cluster {
        match &cluster.server {
            Ok(version) => out["serverVersion"] = json!(version),
            Err(why) => {
                out["serverVersion"] = json!(null);
                out["serverUnavailable"] = json!(why);
            }
        }
        if let Some(proxies) = &cluster.proxies {
            out["proxyVersions"] = proxies
                .iter()
                .map(|(version, pods)| json!({ "version": version, "pods": pods }))
                .collect();
        }
    }
    format!("{out:#}\n")
}
