//! `mesh edges`.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::bail;

use super::GlobalArgs;
use super::stat::{Kind, Scope, edges};
use crate::metrics::Scraper;

/// Show which workloads send traffic to which workloads
///
/// Reads the outbound metrics of every meshed pod of TYPE (deploy, sts, ds, rs, rc, job,
/// cronjob, po) through the API server's pod proxy, as `mesh stat` does, and lists an edge for
/// each destination a workload's proxies have sent requests or bytes to since they started.
///
/// As in Linkerd's `viz edges`, DST is the destination's workload of the same TYPE, named by the
/// `dst_*` labels the proxies take from the control plane's discovery (deploy/web → books).
/// Where no label names one (a destination outside discovery, or the file namer, which gives
/// only dst_service), DST is the Service the request's authority (`web.ns.svc…:80`, `web.ns`,
/// `web`) or cluster IP names, shown as svc/NAME.
///
/// SECURED is √ where the source's proxy sent the traffic over mTLS (`tls="true"` on its
/// outbound metrics), else × with the proxy's `no_tls_reason` in -o wide's MSG. -o wide's
/// SERVER_ID is the identity the source's proxy verified, shortened to SA.NS as Linkerd shows
/// it (-o json has it whole). CLIENT_ID is the identity the destination's proxies verified
/// for the source (the `client_id` of their inbound metrics whose service account and
/// namespace are a source pod's), - where they saw none or could not be read.
/// Traffic of one pair both with and without mTLS shows as two edges.
///
/// Examples:
///   mesh edges deploy -n emojivoto
///   mesh edges po -A -o json
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// The kind of the source workloads
    #[arg(value_name = "TYPE")]
    kind: String,
    /// Namespace of the source workloads (default: the kubeconfig context's, else default)
    #[arg(short, long, value_name = "NS", conflicts_with = "all_namespaces")]
    namespace: Option<String>,
    /// Every namespace
    #[arg(short = 'A', long)]
    all_namespaces: bool,
    /// Output format
    #[arg(short, long, value_enum, default_value_t = Format::Table)]
    output: Format,
    /// Give up on a proxy that has not answered in this long
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = mesh_names::parse_duration)]
    scrape_timeout: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    Table,
    Wide,
    Json,
}

pub fn run(args: Args, global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let (kind, _) = super::stat::parse_one(&format!("{}/x", args.kind))
        .map_err(|e| anyhow::anyhow!("TYPE: {e}"))?;
    if matches!(kind, Kind::Authority | Kind::Namespace | Kind::Service) {
        bail!("TYPE: {kind} has no pods of its own to read; name a workload kind or po");
    }
    let runtime = crate::cmd::runtime()?;
    let (edges, unread) = runtime.block_on(async {
        let (client, _) = crate::client::client(global, args.scrape_timeout).await?;
        let scope = if args.all_namespaces {
            Scope::All
        } else {
            Scope::Namespace(
                args.namespace
                    .clone()
                    .unwrap_or_else(|| client.default_namespace().to_string()),
            )
        };
        let scraper = Scraper::new(Some(client.clone()), args.scrape_timeout, 16)?;
        edges::edges(&client, &scraper, &scope, kind).await
    })?;
    let text = match args.output {
        Format::Json => {
            let rows: Vec<_> = edges.iter().map(edges::Edge::to_json).collect();
            format!("{}\n", serde_json::to_string_pretty(&rows)?)
        }
        Format::Table | Format::Wide => table(&edges, args.output == Format::Wide),
    };
    crate::output::stdout(|out| out.write_all(text.as_bytes()))?;
    if edges.is_empty() && args.output != Format::Json {
        eprintln!("No edges found.");
    }
    if !unread.is_empty() {
        eprintln!(
            "could not read {} pods; their edges are missing:",
            unread.len()
        );
        for (pod, why) in &unread {
            eprintln!("  {pod}: {why}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn table(edges: &[edges::Edge], wide: bool) -> String {
    let mut header = vec!["SRC", "DST", "SRC_NS", "DST_NS", "SECURED"];
    if wide {
        header.extend(["CLIENT_ID", "SERVER_ID", "MSG"]);
    }
    let rows: Vec<Vec<String>> = edges
        .iter()
        .map(|e| {
            let mut row = vec![
                e.src.clone(),
                if e.dst_kind == Kind::Service {
                    format!("svc/{}", e.dst)
                } else {
                    e.dst.clone()
                },
                e.src_namespace.clone(),
                e.dst_namespace.clone(),
                if e.secured { "√" } else { "×" }.to_string(),
            ];
            if wide {
                row.push(or_dash(short_id(&e.client_id)));
                row.push(or_dash(short_id(&e.server_id)));
                row.push(or_dash(&e.no_tls_reason));
            }
            row
        })
        .collect();
    crate::output::columns(&header, &rows)
}

/// An identity as Linkerd's `viz edges` shows it: its first two labels, the service account and
/// namespace (`web.emojivoto` for `web.emojivoto.serviceaccount.identity.linkerd.cluster.local`).
fn short_id(id: &str) -> &str {
    match id.match_indices('.').nth(1) {
        Some((end, _)) => &id[..end],
        None => id,
    }
}

fn or_dash(text: &str) -> String {
    if text.is_empty() { "-" } else { text }.to_string()
}
