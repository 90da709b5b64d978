//! `mesh diagnostics proxy-metrics TYPE/NAME`: every pod's raw `/metrics`, one after another.

use std::fmt::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::bail;

use crate::cmd::GlobalArgs;
use crate::cmd::stat::{Kind, parse_one, running_meshed_pods};
use crate::metrics::{Scraper, Target as ScrapeTarget, obfuscate};

/// Fetch the raw metrics of a resource's proxies
///
/// Reads `/metrics` from the proxy of every meshed pod of TYPE/NAME through the Kubernetes API
/// server's pod proxy and prints each under a `# POD name (i of n)` header; a pod that cannot be
/// read gets a `# ERROR` line instead. Types: deploy, sts, ds, rs, rc, job, cronjob, po, svc.
///
/// Examples:
///   mesh diagnostics proxy-metrics -n emojivoto deploy/web
///   mesh diagnostics proxy-metrics po/web-5f8d9c7b6-x2x9q --obfuscate
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// The resource, TYPE/NAME
    #[arg(value_name = "TYPE/NAME")]
    resource: String,
    /// Namespace of the resource (default: the kubeconfig context's, else default)
    #[arg(short, long, value_name = "NS")]
    namespace: Option<String>,
    /// Replace the values of labels that name hosts, services and identities (authority,
    /// target_addr, dst_service, dst_namespace, client_id, server_id) with short hashes
    #[arg(long)]
    obfuscate: bool,
    /// Give up on a proxy that has not answered in this long
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = mesh_names::parse_duration)]
    scrape_timeout: Duration,
}

/// How many proxies are read at once.
const CONCURRENCY: usize = 16;

pub fn run(args: Args, global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let (kind, name) = parse_one(&args.resource).map_err(|e| anyhow::anyhow!("TYPE/NAME: {e}"))?;
    if matches!(kind, Kind::Authority | Kind::Namespace) {
        bail!("TYPE/NAME: {kind} has no pods of its own; name a workload, service or pod");
    }
    let runtime = crate::cmd::runtime()?;
    let text = runtime.block_on(async {
        let (client, _) = crate::client::client(global, args.scrape_timeout).await?;
        let namespace = args
            .namespace
            .clone()
            .unwrap_or_else(|| client.default_namespace().to_string());
        let pods = running_meshed_pods(&client, namespace, kind, &name).await?;
        let targets: Vec<ScrapeTarget> = pods
            .iter()
            .map(|p| ScrapeTarget::Pod {
                namespace: p.namespace.clone(),
                name: p.name.clone(),
                port: p.admin_port,
            })
            .collect();
        let scraper = Scraper::new(Some(client), args.scrape_timeout, CONCURRENCY)?;
        let hide = args.obfuscate;
        let pages = scraper
            .all(&targets, "/metrics", move |text| {
                if hide {
                    obfuscate(text).map_err(|e| format!("cannot obfuscate the metrics: {e}"))
                } else {
                    Ok(text.to_string())
                }
            })
            .await;
        let mut out = String::new();
        for (i, (pod, page)) in pods.iter().zip(pages).enumerate() {
            let _ = write!(
                out,
                "#\n# POD {} ({} of {})\n#\n",
                pod.name,
                i + 1,
                pods.len()
            );
            match page.value {
                Ok(text) => {
                    out.push_str(&text);
                    if !text.is_empty() && !text.ends_with('\n') {
                        out.push('\n');
                    }
                }
                Err(e) => {
                    let _ = writeln!(out, "# ERROR {}", e.replace('\n', " "));
                }
            }
        }
        anyhow::Ok(out)
    })?;
    crate::output::stdout(|out| std::io::Write::write_all(out, text.as_bytes()))?;
    Ok(ExitCode::SUCCESS)
}
