//! `mesh tap`: live requests as the proxies see them.
//!
//! Each meshed pod's proxy streams one JSON line per finished request from its admin
//! endpoint `GET /tap`, reached through the Kubernetes API server's pod proxy. The stream
//! carries metadata only (method, authority, path, status, latency, bytes, direction, TLS), is
//! filtered and rate-limited by the proxy, and is off unless the proxy was started with
//! `MESH_PROXY_TAP_ENABLED=true`, which the injector sets for pods that ask for tap
//! (`config.linkerd.io/enable-tap`, `mesh inject --enable-tap`, the `proxy.enableTap` value).

pub mod event;

use std::process::ExitCode;
use std::time::Duration;

use anyhow::bail;
use futures::{AsyncBufReadExt, StreamExt};
use tokio::sync::mpsc;

use super::GlobalArgs;
use crate::cmd::stat::{Kind, parse_one, running_meshed_pods};
use crate::metrics::scrape::pod_proxy_path;
use event::{Event, Tapped};
use mesh_names::annotations::ENABLE_TAP;
use mesh_names::env::TAP_ENABLED;

/// Watch live requests to and from a resource's pods
///
/// Prints Linkerd-style `req`, `rsp` and `end` lines for each request the pods' proxies
/// finish, until Ctrl-C. The stream carries request metadata only, never headers or bodies.
///
/// Tap is off in a proxy unless turned on, because nothing checks who reads it yet: for a
/// workload with `mesh inject --enable-tap`, for a namespace with the annotation
/// config.linkerd.io/enable-tap=true (then restart its pods), for every pod with the install
/// value proxy.enableTap=true, and for a proxy run by hand with MESH_PROXY_TAP_ENABLED=true.
///
/// Examples:
///   mesh tap deploy/web -n emojivoto
///   mesh tap deploy/web --path /api --method POST -o wide
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// The resource, TYPE/NAME
    #[arg(value_name = "TYPE/NAME")]
    resource: String,
    #[command(flatten)]
    filter: Filter,
    /// Output format: Linkerd's lines, the lines with the pod, or one JSON object per request
    #[arg(short, long, value_enum, default_value_t = Format::Lines)]
    output: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    Lines,
    Wide,
    Json,
}

/// What to tap, shared with `mesh top`.
#[derive(Debug, Clone, clap::Args)]
pub struct Filter {
    /// Namespace of the resource (default: the kubeconfig context's, else default)
    #[arg(short, long, value_name = "NS")]
    pub namespace: Option<String>,
    /// Only requests with this HTTP method
    #[arg(long, value_name = "METHOD")]
    pub method: Option<String>,
    /// Only requests whose path starts with this
    #[arg(long, value_name = "PREFIX")]
    pub path: Option<String>,
    /// Only requests to this authority
    #[arg(long, value_name = "AUTHORITY")]
    pub authority: Option<String>,
    /// The most requests per second each proxy reports
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub max_rps: u32,
}

pub fn run(args: Args, global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let runtime = crate::cmd::runtime()?;
    runtime.block_on(async {
        let (mut events, _pods) = start(&args.resource, &args.filter, global).await?;
        loop {
            let tapped = tokio::select! {
                next = events.recv() => match next {
                    Some(tapped) => tapped,
                    None => bail!("every tap stream ended"),
                },
                _ = tokio::signal::ctrl_c() => return Ok(ExitCode::SUCCESS),
            };
            let text = match args.output {
                Format::Lines => event::lines(&tapped, false),
                Format::Wide => event::lines(&tapped, true),
                Format::Json => json_line(&tapped),
            };
            // Line by line, so a pipe sees each request as it happens.
            crate::output::stdout(|out| std::io::Write::write_all(out, text.as_bytes()))?;
        }
    })
}

/// One request as a JSON line, as `-o json` prints it (and the dashboard streams it).
pub fn json_line(tapped: &Tapped) -> String {
    let e = &tapped.event;
    let mut line = serde_json::json!({
        "pod": tapped.pod,
        "id": e.id,
        "direction": e.direction,
        "tls": e.tls,
        "src": e.src,
        "dst": e.dst,
        "method": e.method,
        "authority": e.authority,
        "path": e.path,
        "status": e.status,
        "grpc_status": e.grpc_status,
        "error": e.error,
        "latency_us": e.latency_us,
        "duration_us": e.duration_us,
        "response_bytes": e.response_bytes,
    })
    .to_string();
    line.push('\n');
    line
}

/// Opens a tap stream to every running meshed pod of `resource` and merges them. Streams
/// that cannot be opened are reported on stderr; if none opens, that is the error.
pub async fn start(
    resource: &str,
    filter: &Filter,
    global: &GlobalArgs,
) -> anyhow::Result<(mpsc::Receiver<Tapped>, Vec<String>)> {
    let (kind, name) = parse_one(resource).map_err(|e| anyhow::anyhow!("TYPE/NAME: {e}"))?;
    if matches!(kind, Kind::Authority | Kind::Namespace) {
        bail!("TYPE/NAME: {kind} has no pods of its own; name a workload, service or pod");
    }
    // A tap stream may be quiet for a long time: no read timeout.
    let (client, _) = crate::client::client(global, Duration::from_secs(24 * 3600)).await?;
    let namespace = filter
        .namespace
        .clone()
        .unwrap_or_else(|| client.default_namespace().to_string());
    let pods = running_meshed_pods(&client, namespace.clone(), kind, &name).await?;
    let query = query(filter);
    let (tx, rx) = mpsc::channel(1024);
    let (opened_tx, mut opened_rx) = mpsc::channel(pods.len());
    let names: Vec<String> = pods.iter().map(|p| p.name.clone()).collect();
    for (pod_index, pod) in pods.iter().enumerate() {
        let path = pod_proxy_path(
            &pod.namespace,
            &pod.name,
            pod.admin_port,
            &format!("/tap{query}"),
        );
        let client = client.clone();
        let tx = tx.clone();
        let opened = opened_tx.clone();
        let pod_name = pod.name.clone();
        tokio::spawn(async move {
            let request = match http::Request::get(path).body(Vec::new()) {
                Ok(r) => r,
                Err(e) => {
                    let _ = opened.send(Err(format!("{pod_name}: {e}"))).await;
                    return;
                }
            };
            let body = match client.request_stream(request).await {
                Ok(body) => {
                    let _ = opened.send(Ok(())).await;
                    body
                }
                Err(e) => {
                    let why = crate::client::describe(e);
                    let _ = opened.send(Err(format!("{pod_name}: {why}"))).await;
                    return;
                }
            };
            let mut lines = body.lines();
            while let Some(Ok(line)) = lines.next().await {
                if line.trim().is_empty() {
                    continue;
                }
                let event = match serde_json::from_str::<Event>(&line) {
                    Ok(event) => event,
                    Err(e) => {
                        eprintln!(
                            "{pod_name}: ignoring a tap line that is not an event ({e}): {line}"
                        );
                        continue;
                    }
                };
                let tapped = Tapped {
                    pod_index,
                    pod: pod_name.clone(),
                    event,
                };
                if tx.send(tapped).await.is_err() {
                    return;
                }
            }
            eprintln!("the tap stream of {pod_name} ended");
        });
    }
    drop(opened_tx);
    let mut failures = Vec::new();
    let mut opened = 0;
    // One answer per pod; the streams themselves go on.
    for _ in 0..pods.len() {
        let Some(result) = opened_rx.recv().await else {
            break;
        };
        match result {
            Ok(()) => opened += 1,
            Err(why) => failures.push(why),
        }
    }
    for why in &failures {
        eprintln!("cannot tap {why}");
    }
    if opened == 0 {
        bail!(
            "no tap stream could be opened\n{}",
            tap_off_hint(kind, &name, &namespace)
        );
    }
    Ok((rx, names))
}

/// How to turn tap on, for when no proxy would stream: with the command for the resource asked
/// about where applying its new pod template replaces its pods.
fn tap_off_hint(kind: Kind, name: &str, namespace: &str) -> String {
    let resource = format!("{}/{name}", kind.canonical());
    let pipeline = format!(
        "kubectl get {resource} -n {namespace} -o yaml | mesh inject --enable-tap - | kubectl apply -f -"
    );
    let workload = match kind {
        Kind::Deployment | Kind::StatefulSet | Kind::DaemonSet => {
            format!("for {resource} (its pods restart): {pipeline}")
        }
        Kind::CronJob => format!("for {resource} (from its next job): {pipeline}"),
        _ => format!(
            "for a workload: mesh inject --enable-tap on its manifest (or the annotation \
             {ENABLE_TAP}=true on its pod template), then apply it and replace its pods"
        ),
    };
    [
        "tap is off in a proxy unless turned on, because nothing checks who reads it yet; to turn it on:"
            .to_owned(),
        format!("  {workload}"),
        format!(
            "  for the namespace: kubectl annotate namespace {namespace} {ENABLE_TAP}=true, then restart its pods"
        ),
        "  for every pod: the install value proxy.enableTap=true".to_owned(),
        format!("  for a proxy run by hand: {TAP_ENABLED}=true"),
    ]
    .join("\n")
}

/// `?method=…&path=…&authority=…&max_rps=…`, percent-encoded.
fn query(filter: &Filter) -> String {
    let mut pairs = vec![("max_rps", filter.max_rps.to_string())];
    for (key, value) in [
        ("method", &filter.method),
        ("path", &filter.path),
        ("authority", &filter.authority),
    ] {
        if let Some(value) = value {
            pairs.push((key, value.clone()));
        }
    }
    let encoded: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", percent_encode(v)))
        .collect();
    format!("?{}", encoded.join("&"))
}

fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~/".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests;
