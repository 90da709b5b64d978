//! `mesh identity`: the certificate each selected pod's proxy presents.

mod cert;
mod handshake;
mod pod;
#[cfg(test)]
mod tests;

use std::process::ExitCode;
use std::time::Duration;

use futures::StreamExt as _;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::Api;
use kube::api::ListParams;
use mesh_names::resources;
use serde_json::json;

use super::GlobalArgs;
use crate::exit::Failed;
use cert::{CertInfo, Trust};

/// Show the certificate each selected pod's proxy holds
///
/// For each pod, mesh opens a port-forward through the API server to the proxy's inbound port
/// (the linkerd-proxy container's port of that name, else 4143) and starts a TLS 1.3 handshake
/// whose server name (SNI) is the pod's identity name: the proxy's
/// LINKERD2_PROXY_IDENTITY_LOCAL_NAME with the pod's service account and namespace filled in.
/// It prints the certificate the proxy presents, as Linkerd's `linkerd identity` does: subject,
/// subject alternative names, issuer, serial, validity (RFC 3339, UTC) and key algorithm.
///
/// mesh sends no client certificate, and it accepts whatever chain the proxy presents (it only
/// checks that the proxy holds the certificate's key): it shows certificates, it does not vouch
/// for them. Trusted then says whether the chain is signed up to a trust anchor of the
/// control plane's linkerd-identity-trust-roots ConfigMap (in -L's namespace) and valid now,
/// or "unknown" when that ConfigMap cannot be read.
///
/// Pods are named, selected with -l, or else every pod of the namespace. A pod that is not
/// meshed, not running, or whose proxy does not complete the handshake is named on stderr with
/// the cause; the others are still shown, and mesh exits 1.
///
/// Examples:
///   mesh identity web-5d69c8f5c-7xk2v -n emojivoto
///   mesh identity -l app=web -n emojivoto -o json
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// Pods to show (default: every pod -l selects, else every pod of the namespace)
    #[arg(value_name = "POD", conflicts_with = "selector")]
    pods: Vec<String>,
    /// Namespace of the pods (default: the kubeconfig context's, else default)
    #[arg(short, long, value_name = "NS")]
    namespace: Option<String>,
    /// Label selector of the pods, such as app=web
    #[arg(short = 'l', long = "selector", value_name = "SELECTOR")]
    selector: Option<String>,
    /// Output format
    #[arg(short, long, value_enum, default_value_t = Format::Text)]
    output: Format,
    /// Give up on a pod whose proxy has not completed the handshake in this long
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = mesh_names::parse_duration)]
    timeout: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    Text,
    Json,
}

/// How many pods are asked at once.
const CONCURRENCY: usize = 8;

/// One pod's answer.
struct Shown {
    pod: String,
    namespace: String,
    identity: String,
    cert: CertInfo,
    trust: Trust,
}

pub fn run(args: Args, global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let runtime = crate::cmd::runtime()?;
    let (results, total) = runtime.block_on(gather(&args, global))?;
    let mut shown = Vec::new();
    let mut failed = 0usize;
    for (index, (name, result)) in results.into_iter().enumerate() {
        match result {
            Ok(s) => shown.push((index, s)),
            Err(why) => {
                failed += 1;
                eprintln!("pod {name} ({} of {total}): {why}", index + 1);
            }
        }
    }
    let text = match args.output {
        Format::Text => text(&shown, total, &global.control_plane_namespace),
        Format::Json => json(&shown)?,
    };
    crate::output::stdout(|out| out.write_all(text.as_bytes()))?;
    if failed > 0 {
        return Err(Failed(format!(
            "could not show the certificate of {failed} of {total} pods"
        ))
        .into());
    }
    Ok(ExitCode::SUCCESS)
}

type PodResult = (String, Result<Shown, String>);

/// Selects the pods and asks each one's proxy. Returns the answers in the pods' order and how
/// many pods were selected.
async fn gather(args: &Args, global: &GlobalArgs) -> anyhow::Result<(Vec<PodResult>, usize)> {
    let (client, _) = crate::client::client(global, args.timeout).await?;
    let ns = args
        .namespace
        .clone()
        .unwrap_or_else(|| client.default_namespace().to_string());
    let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let selected: Vec<(String, Result<Pod, String>)> = if args.pods.is_empty() {
        let mut params = ListParams::default();
        if let Some(selector) = &args.selector {
            params = params.labels(selector);
        }
        let pods = crate::client::list_all(&api, &params).await.map_err(|e| {
            anyhow::anyhow!(
                "cannot list pods in namespace {ns}: {}",
                crate::client::describe(e)
            )
        })?;
        if pods.is_empty() {
            let which = match &args.selector {
                Some(selector) => format!(" matching {selector}"),
                None => String::new(),
            };
            return Err(Failed(format!("no pods found in namespace {ns}{which}")).into());
        }
        pods.into_iter()
            .map(|p| (p.metadata.name.clone().unwrap_or_default(), Ok(p)))
            .collect()
    } else {
        let mut out = Vec::new();
        for name in &args.pods {
            let pod = match api.get_opt(name).await {
                Ok(Some(pod)) => Ok(pod),
                Ok(None) => Err(format!("not found in namespace {ns}")),
                Err(e) => Err(crate::client::describe(e)),
            };
            out.push((name.clone(), pod));
        }
        out
    };
    let anchors = anchors(&client, &global.control_plane_namespace).await;
    let total = selected.len();
    let results = futures::stream::iter(selected)
        .map(|(name, pod)| {
            let api = api.clone();
            let anchors = &anchors;
            let ns = ns.clone();
            async move {
                let shown = match pod {
                    Ok(pod) => show(&api, &pod, &ns, anchors, args.timeout).await,
                    Err(why) => Err(why),
                };
                (name, shown)
            }
        })
        .buffered(CONCURRENCY)
        .collect()
        .await;
    Ok((results, total))
}

async fn show(
    api: &Api<Pod>,
    pod: &Pod,
    ns: &str,
    anchors: &Result<Vec<Vec<u8>>, String>,
    timeout: Duration,
) -> Result<Shown, String> {
    let name = pod.metadata.name.clone().unwrap_or_default();
    let target = pod::proxy_target(pod).map_err(|e| e.to_string())?;
    let chain = handshake::fetch(api, &name, target.port, &target.identity, timeout).await?;
    let leaf = chain.first().ok_or("the proxy presented no certificate")?;
    let cert = cert::describe(leaf)?;
    let trust = match anchors {
        Ok(anchors) => {
            let now = k8s_openapi::jiff::Timestamp::now().as_second();
            cert::trust(&chain, anchors, now)
        }
        Err(why) => Trust::Unknown(why.clone()),
    };
    Ok(Shown {
        pod: name,
        namespace: ns.to_string(),
        identity: target.identity,
        cert,
        trust,
    })
}

/// The trust anchors (DER) from the control plane's ConfigMap, or why they cannot be had.
async fn anchors(client: &kube::Client, control_plane_ns: &str) -> Result<Vec<Vec<u8>>, String> {
    let where_ = format!("ConfigMap {control_plane_ns}/{}", resources::TRUST_ROOTS);
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), control_plane_ns);
    let map = api
        .get_opt(resources::TRUST_ROOTS)
        .await
        .map_err(|e| format!("cannot read {where_}: {}", crate::client::describe(e)))?
        .ok_or_else(|| format!("{where_} not found"))?;
    let text = map
        .data
        .as_ref()
        .and_then(|d| d.get(resources::TRUST_ROOTS_KEY))
        .ok_or_else(|| format!("{where_} has no {}", resources::TRUST_ROOTS_KEY))?;
    cert::bundle(text).map_err(|e| format!("{where_}: {}: {e}", resources::TRUST_ROOTS_KEY))
}

fn trust_text(trust: &Trust, control_plane_ns: &str) -> String {
    match trust {
        Trust::Trusted => format!(
            "yes, signed by a trust anchor in {control_plane_ns}/{}",
            resources::TRUST_ROOTS
        ),
        Trust::Untrusted(why) => format!("no: {why}"),
        Trust::Unknown(why) => format!("unknown: {why}"),
    }
}

fn text(shown: &[(usize, Shown)], total: usize, control_plane_ns: &str) -> String {
    let mut out = String::new();
    for (n, (index, s)) in shown.iter().enumerate() {
        if n > 0 {
            out.push('\n');
        }
        let c = &s.cert;
        out.push_str(&format!("POD {} ({} of {total})\n\n", s.pod, index + 1));
        let sans = if c.subject_alt_names.is_empty() {
            "-".to_string()
        } else {
            c.subject_alt_names.join(", ")
        };
        let rows = [
            ("Identity", s.identity.clone()),
            ("Subject", c.subject.clone()),
            ("Subject Alternative Names", sans),
            ("Issuer", c.issuer.clone()),
            ("Serial", c.serial.clone()),
            ("Not Before", c.not_before.clone()),
            ("Not After", c.not_after.clone()),
            ("Public Key Algorithm", c.public_key_algorithm.clone()),
            ("Trusted", trust_text(&s.trust, control_plane_ns)),
        ];
        for (key, value) in rows {
            out.push_str(&format!("{:<27}{value}\n", format!("{key}:")));
        }
    }
    out
}

fn json(shown: &[(usize, Shown)]) -> anyhow::Result<String> {
    let rows: Vec<_> = shown
        .iter()
        .map(|(_, s)| {
            let (trusted, reason) = match &s.trust {
                Trust::Trusted => (json!(true), String::new()),
                Trust::Untrusted(why) => (json!(false), why.clone()),
                Trust::Unknown(why) => (serde_json::Value::Null, why.clone()),
            };
            let c = &s.cert;
            json!({
                "pod": s.pod,
                "namespace": s.namespace,
                "identity": s.identity,
                "subject": c.subject,
                "subject_alt_names": c.subject_alt_names,
                "issuer": c.issuer,
                "serial": c.serial,
                "not_before": c.not_before,
                "not_after": c.not_after,
                "public_key_algorithm": c.public_key_algorithm,
                "trusted": trusted,
                "trust_reason": reason,
                "pem": c.pem,
            })
        })
        .collect();
    Ok(format!("{}\n", serde_json::to_string_pretty(&rows)?))
}
