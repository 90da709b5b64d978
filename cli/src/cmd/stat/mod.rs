//! `mesh stat`: live traffic numbers read straight from the proxies.
//!
//! Linkerd's `viz stat` asks a Prometheus. mesh asks the proxies themselves: it finds each
//! resource's pods through the resource's own selector, reads every meshed pod's `/metrics`
//! through the API server's pod proxy twice, one window apart, and computes rates and latency
//! quantiles from the differences. No extension, no Prometheus.

mod cluster;
pub(crate) mod compute;
mod config;
pub(crate) mod edges;
pub(crate) mod live;
mod notes;
mod plan;
pub(crate) mod render;
mod resource;
pub(crate) mod sample;
#[cfg(test)]
mod tests;
mod watch;

use std::collections::HashMap;
use std::io::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use super::GlobalArgs;
use crate::metrics::{Scraped, Scraper, Target as ScrapeTarget};
use config::{Config, Source};
use plan::{Plan, plan, proxy_rows};
use render::{Format, Row};
use sample::{Direction, GroupBy, PodSample, View};

pub(crate) use cluster::Scope;
pub(crate) use cluster::running_meshed_pods;
pub(crate) use notes::sample_for;
pub(crate) use resource::{Kind, parse_one};

/// How many proxies are read at once.
const CONCURRENCY: usize = 64;

/// Show live traffic stats for resources, read from their proxies
///
/// The RESOURCES argument is TYPE [NAME…] or TYPE/NAME…, e.g. `deploy`, `deploy/web`,
/// `po web-1 web-2`, `deploy/web svc/api`, or `all`. Types: deploy, sts, ds, rs, rc, job,
/// cronjob, po, ns, svc, and au (authorities, with --proxy).
///
/// Each pod's proxy serves its metrics on its admin port (the `linkerd-admin` port of the
/// `linkerd-proxy` container, else 4191). mesh reads them through the Kubernetes API server's pod
/// proxy, twice, one --time-window apart, and shows the requests that finished in between:
/// success rate, requests per second, latency percentiles and open connections. Inbound traffic
/// by default; --to and --from show outbound traffic instead. Pods whose proxy cannot be read are
/// listed on stderr and left out of the numbers.
///
/// Outbound requests carry the destination endpoint's labels from the control plane's discovery
/// (`dst_namespace`, `dst_service`, `dst_deployment`, `dst_pod`, …), as Linkerd's do: --to
/// deploy/web counts the requests whose `dst_deployment` is web, and --from splits a workload's
/// traffic by the destination's workload. Without those labels (a destination outside the
/// mesh's discovery) a Service is still recognised by the request's authority or cluster IP.
///
/// Examples:
///   mesh stat deploy -n emojivoto
///   mesh stat deploy/web -n emojivoto --watch
///   mesh stat po -A -o wide
///   mesh stat deploy --to svc/emoji-svc -n emojivoto
///   mesh stat deploy -n emojivoto --from deploy/web
///   mesh stat --proxy 127.0.0.1:4191
///   mesh stat deploy --proxy 127.0.0.1:4191       (where that proxy sends, by dst_deployment)
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// The resources: TYPE [NAME…] or TYPE/NAME…
    #[arg(value_name = "RESOURCES")]
    resources: Vec<String>,
    /// Namespace of the resources (default: the kubeconfig context's, else default)
    #[arg(short, long, value_name = "NS")]
    namespace: Option<String>,
    /// Show resources in every namespace
    #[arg(short = 'A', long)]
    all_namespaces: bool,
    /// Only resources with these labels, e.g. app=web,tier!=db
    #[arg(short = 'l', long = "selector", value_name = "SELECTOR")]
    selector: Option<String>,
    /// The sampling window, e.g. 10s or 1m
    #[arg(short = 't', long, value_name = "DURATION", default_value = "10s", value_parser = window)]
    time_window: Duration,
    /// Output format
    #[arg(short, long, value_enum, default_value_t = Format::Table)]
    output: Format,
    /// Redraw the table every window until Ctrl-C
    #[arg(short, long)]
    watch: bool,
    /// Show only outbound traffic to this resource, TYPE/NAME
    #[arg(long, value_name = "TYPE/NAME", conflicts_with = "from")]
    to: Option<String>,
    /// Namespace of the --to resource (default: --namespace)
    #[arg(long, value_name = "NS", requires = "to")]
    to_namespace: Option<String>,
    /// Show the outbound traffic of this resource, TYPE/NAME, split by destination
    #[arg(long, value_name = "TYPE/NAME")]
    from: Option<String>,
    /// Namespace of the --from resource (default: --namespace)
    #[arg(long, value_name = "NS", requires = "from")]
    from_namespace: Option<String>,
    /// Also show resources that have no meshed pods
    #[arg(long)]
    unmeshed: bool,
    /// Which traffic to count: requests the pods received, or requests they sent
    ///
    /// Defaults to inbound, or outbound with --to and --from.
    #[arg(long, value_enum)]
    direction: Option<Direction>,
    /// Read these proxy admin endpoints directly instead of a cluster's pods, and show one row
    /// per authority
    ///
    /// With a TYPE other than au (svc, deploy, po, ns, …), one row per destination of that type
    /// the proxies sent requests to, by the outbound `dst_<type>` label.
    #[arg(long, value_name = "HOST:PORT", conflicts_with_all = ["namespace", "all_namespaces", "selector", "to", "from"])]
    proxy: Vec<String>,
    /// Give up on a proxy that has not answered in this long
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = mesh_names::parse_duration)]
    scrape_timeout: Duration,
    /// Timeout of each Kubernetes API request
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = mesh_names::parse_duration)]
    api_timeout: Duration,
}

/// Parses `--time-window`: rates over an empty window would divide by zero.
fn window(text: &str) -> Result<Duration, String> {
    match mesh_names::parse_duration(text) {
        Ok(Duration::ZERO) => Err("the sampling window must be longer than 0s".to_owned()),
        Ok(window) => Ok(window),
        Err(e) => Err(e.to_string()),
    }
}

pub fn run(args: Args, global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let config = Config::from_args(args)?;
    let runtime = crate::cmd::runtime()?;
    runtime.block_on(stat(config, global))
}

type Samples = HashMap<ScrapeTarget, Scraped<PodSample>>;

async fn stat(mut config: Config, global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let client = match &config.source {
        Source::Cluster { .. } => Some(crate::client::client(global, config.api_timeout).await?.0),
        Source::Proxies { .. } => None,
    };
    if let (
        Some(client),
        Source::Cluster {
            namespace, from, ..
        },
    ) = (&client, &mut config.source)
    {
        // Resolve every "the current namespace" default once.
        let ns = namespace
            .clone()
            .unwrap_or_else(|| client.default_namespace().to_string());
        if let Some(only) = &mut config.view.only
            && only.namespace.is_empty()
        {
            only.namespace = ns.clone();
        }
        if let Some((_, _, from_ns)) = from {
            from_ns.get_or_insert_with(|| ns.clone());
        }
        if let GroupBy::Destination {
            namespace: group_ns,
            ..
        } = &mut config.view.group
        {
            *group_ns = from
                .as_ref()
                .and_then(|(_, _, n)| n.clone())
                .unwrap_or_else(|| ns.clone());
        }
        *namespace = Some(ns);
        if let Some(ns) = service_namespace(&config.view) {
            config.view.service_ips =
                edges::service_ips(client, &cluster::Scope::Namespace(ns)).await?;
        }
    }
    let scraper = Scraper::new(client.clone(), config.scrape_timeout, CONCURRENCY)?;
    let mut screen = watch::Screen::new(config.watch, &config.title, config.window);
    let mut plan = plan(client.as_ref(), &config).await?;
    let mut previous = scrape(&scraper, &plan.targets, &config.view).await;
    let mut refresh = 0u64;
    if config.watch {
        screen.sampling()?;
    }
    loop {
        if config.watch {
            tokio::select! {
                _ = tokio::time::sleep(config.window) => {}
                _ = tokio::signal::ctrl_c() => return Ok(screen.quit()),
            }
            let next = async {
                let plan = self::plan(client.as_ref(), &config).await?;
                let samples = scrape(&scraper, &plan.targets, &config.view).await;
                anyhow::Ok((plan, samples))
            };
            let (next_plan, current) = tokio::select! {
                next = next => next?,
                _ = tokio::signal::ctrl_c() => return Ok(screen.quit()),
            };
            plan = next_plan;
            refresh += 1;
            let frame = frame(&plan, &previous, &current, &config);
            screen.draw(refresh, &frame, &notes::after_table(&plan, &config, &frame))?;
            previous = current;
            continue;
        }
        notes::sample_for(config.window).await;
        let current = scrape(&scraper, &plan.targets, &config.view).await;
        if let Source::Proxies { .. } = config.source {
            plan = proxy_rows(&plan.targets, &current, &config);
        }
        let frame = frame(&plan, &previous, &current, &config);
        if let Source::Proxies { .. } = config.source
            && frame.unread == plan.targets.len()
            && frame.unread > 0
        {
            // Nothing at all could be read: a runtime error, not an empty table.
            let reasons = frame.footnote.split_once('\n').map_or("", |(_, r)| r);
            anyhow::bail!(
                "could not read any of the {} proxies:\n{}",
                frame.unread,
                reasons.trim_end()
            );
        }
        crate::output::stdout(|out| out.write_all(frame.body.as_bytes()))?;
        let mut stderr = std::io::stderr().lock();
        if config.format != Format::Json {
            let _ = stderr.write_all(notes::after_table(&plan, &config, &frame).as_bytes());
        }
        if !frame.footnote.is_empty() {
            let _ = stderr.write_all(frame.footnote.as_bytes());
        }
        return Ok(ExitCode::SUCCESS);
    }
}

/// The namespace whose Services traffic is matched against, when rows or `--to` are Services.
fn service_namespace(view: &View) -> Option<String> {
    if let Some(only) = view
        .only
        .as_ref()
        .filter(|o| o.kind == resource::Kind::Service)
    {
        return Some(only.namespace.clone());
    }
    match &view.group {
        GroupBy::Destination {
            kind: resource::Kind::Service,
            namespace,
        } => Some(namespace.clone()),
        _ => None,
    }
}

/// A rendered refresh: the table or JSON, and what went wrong on the way.
struct Frame {
    body: String,
    footnote: String,
    empty: bool,
    /// No row has any traffic.
    quiet: bool,
    /// How many targets could not be read.
    unread: usize,
}

fn frame(plan: &Plan, previous: &Samples, current: &Samples, config: &Config) -> Frame {
    let plan_rows;
    let plan = if let Source::Proxies { .. } = config.source {
        plan_rows = proxy_rows(&plan.targets, current, config);
        &plan_rows
    } else {
        plan
    };
    let Computed { rows, failed } = compute_rows(plan, previous, current);
    let all_namespaces = match config.source {
        Source::Cluster { all_namespaces, .. } => all_namespaces,
        // A proxy sends to any namespace: name it, unless the rows are namespaces themselves.
        Source::Proxies { kind, .. } => !matches!(kind, Kind::Authority | Kind::Namespace),
    };
    let body = render::render(&rows, config.format, all_namespaces);
    let mut footnote = String::new();
    if !failed.is_empty() {
        let what = match config.source {
            Source::Cluster { .. } => "pods",
            Source::Proxies { .. } => "proxies",
        };
        footnote.push_str(&format!(
            "could not read {} of {} {what}; their traffic is not counted:\n",
            failed.len(),
            plan.targets.len()
        ));
        for (target, why) in &failed {
            footnote.push_str(&format!("  {target}: {why}\n"));
        }
    }
    Frame {
        body,
        footnote,
        empty: rows.is_empty(),
        quiet: rows.iter().all(|r| r.stats.is_none()),
        unread: failed.len(),
    }
}

/// A refresh's rows with their numbers, and the proxies that could not be read (target, why).
struct Computed {
    rows: Vec<Row>,
    failed: Vec<(String, String)>,
}

/// The numbers of every planned row from two reads of its proxies.
fn compute_rows(plan: &Plan, previous: &Samples, current: &Samples) -> Computed {
    let mut windows: HashMap<&ScrapeTarget, HashMap<String, compute::Window>> = HashMap::new();
    let mut failed: Vec<(String, String)> = Vec::new();
    for target in &plan.targets {
        let (Some(before), Some(after)) = (previous.get(target), current.get(target)) else {
            continue;
        };
        match (&before.value, &after.value) {
            (Ok(b), Ok(a)) => {
                let seconds = after.at.saturating_duration_since(before.at).as_secs_f64();
                windows.insert(target, compute::windows(b, a, seconds));
            }
            (Err(e), _) | (_, Err(e)) => failed.push((target.to_string(), e.clone())),
        }
    }
    for target in &plan.targets {
        if previous.get(target).is_none()
            && let Some(Scraped { value: Err(e), .. }) = current.get(target)
        {
            failed.push((target.to_string(), e.clone()));
        }
    }
    let rows: Vec<Row> = plan
        .rows
        .iter()
        .map(|planned| {
            let contributing: Vec<&compute::Window> = planned
                .sources
                .iter()
                .filter_map(|(target, key)| windows.get(target)?.get(key))
                .collect();
            Row {
                stats: compute::aggregate(&contributing),
                ..planned.row.clone()
            }
        })
        .collect();
    failed.sort();
    Computed { rows, failed }
}

async fn scrape(scraper: &Scraper, targets: &[ScrapeTarget], view: &View) -> Samples {
    let view = view.clone();
    let results = scraper
        .all(targets, "/metrics", move |text| {
            let page = crate::metrics::parse(text).map_err(|e| format!("invalid metrics: {e}"))?;
            Ok(sample::reduce(&page, &view))
        })
        .await;
    targets.iter().cloned().zip(results).collect()
}
