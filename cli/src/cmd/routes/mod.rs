//! `mesh routes`: ServiceProfile route metrics per route, read from the proxies as `stat` reads
//! them (same scraping, two reads a window apart, same rates and quantiles).

mod table;

use std::collections::HashMap;
use std::io::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::bail;

use super::GlobalArgs;
use super::stat::{Kind, Scope, compute, parse_one, running_meshed_pods, sample_for};
use crate::metrics::{Scraped, Scraper, Target};

/// Show per-route traffic stats of ServiceProfile routes, read from the proxies
///
/// For each route of a ServiceProfile that the proxies of RESOURCE matched requests to, the
/// success rate, requests per second and latency percentiles the clients saw, as Linkerd's
/// `viz routes` shows them. Requests to a profiled Service that matched no route are the
/// [DEFAULT] row: the proxies' outbound HTTP responses to that authority less the routes'.
///
/// mesh reads each meshed pod's `/metrics` through the API server's pod proxy, twice, one
/// --time-window apart, as `mesh stat` does. mesh-proxy counts routes on the client side
/// (outbound), so the routes shown are those of the Services RESOURCE calls; --to keeps one
/// Service. With retries, -o wide shows both what the clients got (EFFECTIVE, after retries) and
/// every attempt (ACTUAL).
///
/// Examples:
///   mesh routes deploy/web -n emojivoto
///   mesh routes deploy/web -n emojivoto --to svc/books -o wide
///   mesh routes po/web-5d9f-x -n emojivoto -o json
///   mesh routes --proxy 127.0.0.1:4191
///   mesh routes --proxy 127.0.0.1:4191 --to svc/books -t 30s
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// The workload whose proxies are read: TYPE/NAME (deploy, sts, ds, rs, rc, job, cronjob, po)
    #[arg(value_name = "TYPE/NAME", required_unless_present = "proxy")]
    resource: Option<String>,
    /// Namespace of the resource (default: the kubeconfig context's, else default)
    #[arg(short, long, value_name = "NS")]
    namespace: Option<String>,
    /// Only the routes of this Service, svc/NAME
    #[arg(long, value_name = "svc/NAME")]
    to: Option<String>,
    /// Namespace of the --to Service (default: --namespace)
    #[arg(long, value_name = "NS", requires = "to")]
    to_namespace: Option<String>,
    /// The sampling window, e.g. 10s or 1m
    #[arg(short = 't', long, value_name = "DURATION", default_value = "10s", value_parser = window)]
    time_window: Duration,
    /// Output format
    #[arg(short, long, value_enum, default_value_t = Format::Table)]
    output: Format,
    /// Read these proxy admin endpoints directly instead of a cluster's pods
    #[arg(long, value_name = "HOST:PORT", conflicts_with_all = ["resource", "namespace"])]
    proxy: Vec<String>,
    /// Give up on a proxy that has not answered in this long
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = mesh_names::parse_duration)]
    scrape_timeout: Duration,
    /// Timeout of each Kubernetes API request
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = mesh_names::parse_duration)]
    api_timeout: Duration,
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Wide,
    Json,
}

fn window(text: &str) -> Result<Duration, String> {
    match mesh_names::parse_duration(text) {
        Ok(Duration::ZERO) => Err("the sampling window must be longer than 0s".to_owned()),
        Ok(window) => Ok(window),
        Err(e) => Err(e.to_string()),
    }
}

pub fn run(args: Args, global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let workload = match &args.resource {
        Some(text) => {
            let (kind, name) = parse_one(text).map_err(|e| anyhow::anyhow!("TYPE/NAME: {e}"))?;
            if matches!(kind, Kind::Authority | Kind::Namespace | Kind::Service) {
                bail!("TYPE/NAME: {kind} has no pods of its own to read; name a workload or pod");
            }
            Some((kind, name))
        }
        None => None,
    };
    let to = match &args.to {
        Some(text) => match parse_one(text).map_err(|e| anyhow::anyhow!("--to: {e}"))? {
            (Kind::Service, name) => Some(name),
            (kind, _) => bail!(
                "--to: route metrics name the Service (authority) a request went to, not a {kind}; use svc/NAME"
            ),
        },
        None => None,
    };
    let runtime = crate::cmd::runtime()?;
    runtime.block_on(routes(args, workload, to, global))
}

async fn routes(
    args: Args,
    workload: Option<(Kind, String)>,
    to: Option<String>,
    global: &GlobalArgs,
) -> anyhow::Result<ExitCode> {
    let mut service_ips = HashMap::new();
    let (client, targets, to_ns) = match workload {
        None => {
            let targets: Vec<Target> = args.proxy.iter().cloned().map(Target::Direct).collect();
            (None, targets, args.to_namespace.clone().unwrap_or_default())
        }
        Some((kind, name)) => {
            let (client, _) = crate::client::client(global, args.api_timeout).await?;
            let ns = args
                .namespace
                .clone()
                .unwrap_or_else(|| client.default_namespace().to_string());
            let pods = running_meshed_pods(&client, ns.clone(), kind, &name).await?;
            let to_ns = args.to_namespace.clone().unwrap_or(ns);
            if to.is_some() {
                service_ips =
                    super::stat::edges::service_ips(&client, &Scope::Namespace(to_ns.clone()))
                        .await?;
            }
            let targets = pods
                .into_iter()
                .map(|p| Target::Pod {
                    namespace: p.namespace,
                    name: p.name,
                    port: p.admin_port,
                })
                .collect();
            (Some(client), targets, to_ns)
        }
    };
    let scraper = Scraper::new(client, args.scrape_timeout, 64)?;
    let keep = move |authority: &str| match &to {
        None => true,
        Some(name) => {
            super::stat::sample::service_of_authority(authority, &to_ns, &service_ips)
                == Some((to_ns.clone(), name.clone()))
        }
    };
    let keep = std::sync::Arc::new(keep);
    let read = |keep: std::sync::Arc<dyn Fn(&str) -> bool + Send + Sync>| {
        let scraper = &scraper;
        let targets = &targets;
        async move {
            scraper
                .all(targets, "/metrics", move |text| {
                    let page =
                        crate::metrics::parse(text).map_err(|e| format!("invalid metrics: {e}"))?;
                    Ok(table::reduce(&page, &*keep))
                })
                .await
        }
    };
    let before = read(keep.clone()).await;
    sample_for(args.time_window).await;
    let after = read(keep).await;
    let (windows, failed) = windows(&targets, before, after);
    if !targets.is_empty() && failed.len() == targets.len() && client_less(&args) {
        let reasons: Vec<String> = failed
            .iter()
            .map(|(t, why)| format!("  {t}: {why}"))
            .collect();
        bail!(
            "could not read any of the {} proxies:\n{}",
            targets.len(),
            reasons.join("\n")
        );
    }
    let rows = table::rows(&windows);
    let text = table::render(&rows, args.output);
    crate::output::stdout(|out| out.write_all(text.as_bytes()))?;
    let mut stderr = std::io::stderr().lock();
    if rows.is_empty() && args.output != Format::Json {
        let _ = writeln!(
            stderr,
            "No traffic found. Route metrics count requests that matched a ServiceProfile's route \
             (outbound); a Service with no ServiceProfile has none."
        );
    }
    if !failed.is_empty() {
        let _ = writeln!(
            stderr,
            "could not read {} of {} proxies; their traffic is not counted:",
            failed.len(),
            targets.len()
        );
        for (target, why) in &failed {
            let _ = writeln!(stderr, "  {target}: {why}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn client_less(args: &Args) -> bool {
    args.resource.is_none()
}

/// One proxy's windows by group key.
type Windows = HashMap<String, compute::Window>;

type Read = Vec<Scraped<crate::cmd::stat::sample::PodSample>>;

/// Each readable proxy's windows, and the proxies that could not be read (target, why).
fn windows(targets: &[Target], before: Read, after: Read) -> (Vec<Windows>, Vec<(String, String)>) {
    let mut windows = Vec::new();
    let mut failed = Vec::new();
    for ((target, b), a) in targets.iter().zip(before).zip(after) {
        match (&b.value, &a.value) {
            (Ok(earlier), Ok(later)) => {
                let seconds = a.at.saturating_duration_since(b.at).as_secs_f64();
                windows.push(compute::windows(earlier, later, seconds));
            }
            (Err(e), _) | (_, Err(e)) => failed.push((target.to_string(), e.clone())),
        }
    }
    failed.sort();
    (windows, failed)
}
