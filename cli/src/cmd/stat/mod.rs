//! `mesh stat`: live traffic numbers read straight from the proxies.
//!
//! Linkerd's `viz stat` asks a Prometheus. mesh asks the proxies themselves: it finds each
//! resource's pods through the resource's own selector, reads every meshed pod's `/metrics`
//! through the API server's pod proxy twice, one window apart, and computes rates and latency
//! quantiles from the differences. No extension, no Prometheus.

mod cluster;
mod compute;
mod render;
mod resource;
mod sample;
#[cfg(test)]
mod tests;
mod watch;

use std::collections::HashMap;
use std::io::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};

use super::GlobalArgs;
use crate::metrics::{Scraped, Scraper, Target as ScrapeTarget};
use cluster::Inventory;
pub use render::Format;
use render::Row;
use sample::{Destination, Direction, GroupBy, PodSample, View};

pub(crate) use cluster::{PodInfo, Scope, inventory};
pub(crate) use resource::{Kind, Target, parse_one, parse_targets};

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
/// Examples:
///   mesh stat deploy -n emojivoto
///   mesh stat deploy/web -n emojivoto --watch
///   mesh stat po -A -o wide
///   mesh stat deploy --to svc/emoji-svc -n emojivoto
///   mesh stat --proxy 127.0.0.1:4191
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
    #[arg(short = 't', long, value_name = "DURATION", default_value = "10s", value_parser = super::check::parse_duration)]
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
    #[arg(long, value_name = "HOST:PORT", conflicts_with_all = ["namespace", "all_namespaces", "selector", "to", "from"])]
    proxy: Vec<String>,
    /// Give up on a proxy that has not answered in this long
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = super::check::parse_duration)]
    scrape_timeout: Duration,
    /// Timeout of each Kubernetes API request
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = super::check::parse_duration)]
    api_timeout: Duration,
}

/// Validated arguments.
#[derive(Debug, Clone)]
struct Config {
    source: Source,
    view: View,
    window: Duration,
    format: Format,
    watch: bool,
    unmeshed: bool,
    scrape_timeout: Duration,
    api_timeout: Duration,
    /// The command line, for the --watch header.
    title: String,
}

#[derive(Debug, Clone)]
enum Source {
    Cluster {
        /// `None`: the kubeconfig context's namespace.
        namespace: Option<String>,
        all_namespaces: bool,
        targets: Vec<Target>,
        selector: Option<String>,
        /// `--from`: the resource whose pods are read, and its namespace (`None`: as above).
        from: Option<(Kind, String, Option<String>)>,
    },
    Proxies {
        addrs: Vec<String>,
        names: Vec<String>,
    },
}

impl Config {
    fn from_args(args: Args) -> anyhow::Result<Config> {
        let title = format!("mesh stat {}", args.resources.join(" "));
        let direction = args.direction;
        if !args.proxy.is_empty() {
            let targets = if args.resources.is_empty() {
                Vec::new()
            } else {
                parse_targets(&args.resources).map_err(|e| anyhow::anyhow!("RESOURCES: {e}"))?
            };
            let mut names = Vec::new();
            for target in targets {
                if target.kind != Kind::Authority {
                    bail!(
                        "--proxy shows authorities; {} is not available without a cluster",
                        target.kind
                    );
                }
                names.extend(target.names);
            }
            return Ok(Config {
                source: Source::Proxies {
                    addrs: args.proxy,
                    names,
                },
                view: View {
                    direction: direction.unwrap_or(Direction::Inbound),
                    group: GroupBy::Authority,
                    only: None,
                },
                window: args.time_window,
                format: args.output,
                watch: args.watch,
                unmeshed: true,
                scrape_timeout: args.scrape_timeout,
                api_timeout: args.api_timeout,
                title,
            });
        }
        let targets =
            parse_targets(&args.resources).map_err(|e| anyhow::anyhow!("RESOURCES: {e}"))?;
        if targets.iter().any(|t| t.kind == Kind::Authority) {
            bail!("RESOURCES: authorities are shown with --proxy HOST:PORT");
        }
        if targets.iter().any(|t| t.kind == Kind::Namespace) && args.namespace.is_some() {
            bail!("--namespace cannot be used with the namespace resource type");
        }
        if args.all_namespaces && args.namespace.is_some() {
            bail!("--all-namespaces and --namespace cannot be used together");
        }
        let outbound = args.to.is_some() || args.from.is_some();
        if outbound && direction == Some(Direction::Inbound) {
            bail!(
                "--direction inbound cannot be used with --to or --from, which read outbound traffic"
            );
        }
        let direction = direction.unwrap_or(if outbound {
            Direction::Outbound
        } else {
            Direction::Inbound
        });
        let mut only = None;
        if let Some(to) = &args.to {
            let (kind, name) = parse_one(to).map_err(|e| anyhow::anyhow!("--to: {e}"))?;
            if kind == Kind::Authority {
                bail!("--to: authorities are not resources");
            }
            only = Some(Destination {
                kind,
                // Filled in once the default namespace is known.
                namespace: args.to_namespace.clone().unwrap_or_default(),
                name,
            });
        }
        let mut from = None;
        let mut group = GroupBy::Whole;
        if let Some(text) = &args.from {
            let (kind, name) = parse_one(text).map_err(|e| anyhow::anyhow!("--from: {e}"))?;
            if matches!(kind, Kind::Authority | Kind::Service) {
                bail!("--from: {kind} has no pods of its own to read; name a workload or pod");
            }
            if targets.len() != 1 {
                bail!("--from shows one resource type at a time");
            }
            from = Some((kind, name, args.from_namespace.clone()));
            group = GroupBy::Destination {
                kind: targets[0].kind,
                namespace: String::new(),
            };
        }
        Ok(Config {
            source: Source::Cluster {
                namespace: args.namespace,
                all_namespaces: args.all_namespaces,
                targets,
                selector: args.selector,
                from,
            },
            view: View {
                direction,
                group,
                only,
            },
            window: args.time_window,
            format: args.output,
            watch: args.watch,
            unmeshed: args.unmeshed || args.from.is_some(),
            scrape_timeout: args.scrape_timeout,
            api_timeout: args.api_timeout,
            title,
        })
    }
}

pub fn run(args: Args, global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let config = Config::from_args(args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(stat(config, global))
}

/// What one refresh reads and shows.
#[derive(Debug, Default)]
struct Plan {
    rows: Vec<RowPlan>,
    /// Every proxy to read, once each.
    targets: Vec<ScrapeTarget>,
}

#[derive(Debug)]
struct RowPlan {
    row: Row,
    /// The proxies and group keys whose traffic makes the row.
    sources: Vec<(ScrapeTarget, String)>,
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
    }
    let scraper = Scraper::new(client.clone(), config.scrape_timeout, CONCURRENCY)?;
    let mut screen = watch::Screen::new(config.watch, &config.title, config.window);
    let mut plan = plan(client.as_ref(), &config).await?;
    let mut previous = scrape(&scraper, &plan.targets, &config.view).await;
    let mut refresh = 0u64;
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
            screen.draw(refresh, &frame)?;
            previous = current;
            continue;
        }
        tokio::time::sleep(config.window).await;
        let current = scrape(&scraper, &plan.targets, &config.view).await;
        if let Source::Proxies { .. } = config.source {
            plan = authority_rows(&plan.targets, &current, &config);
        }
        let frame = frame(&plan, &previous, &current, &config);
        crate::output::stdout(|out| out.write_all(frame.body.as_bytes()))?;
        let mut stderr = std::io::stderr().lock();
        if frame.empty && config.format != Format::Json {
            let _ = writeln!(stderr, "No traffic found.");
        }
        if !frame.footnote.is_empty() {
            let _ = stderr.write_all(frame.footnote.as_bytes());
        }
        return Ok(ExitCode::SUCCESS);
    }
}

/// A rendered refresh: the table or JSON, and what went wrong on the way.
struct Frame {
    body: String,
    footnote: String,
    empty: bool,
}

fn frame(plan: &Plan, previous: &Samples, current: &Samples, config: &Config) -> Frame {
    let plan_rows;
    let plan = if let Source::Proxies { .. } = config.source {
        plan_rows = authority_rows(&plan.targets, current, config);
        &plan_rows
    } else {
        plan
    };
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
    let all_namespaces = matches!(
        config.source,
        Source::Cluster {
            all_namespaces: true,
            ..
        }
    );
    let body = render::render(&rows, config.format, all_namespaces);
    let mut footnote = String::new();
    if !failed.is_empty() {
        failed.sort();
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
    }
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

/// `--proxy`: one row per authority seen in the latest scrape.
fn authority_rows(targets: &[ScrapeTarget], current: &Samples, config: &Config) -> Plan {
    let names = match &config.source {
        Source::Proxies { names, .. } => names.as_slice(),
        Source::Cluster { .. } => &[],
    };
    let mut authorities: Vec<&String> = current
        .values()
        .filter_map(|s| s.value.as_ref().ok())
        .flat_map(|s| s.groups.keys())
        .filter(|a| names.is_empty() || names.contains(a))
        .collect();
    authorities.sort();
    authorities.dedup();
    let rows = authorities
        .into_iter()
        .map(|authority| RowPlan {
            row: Row {
                kind: Kind::Authority,
                namespace: String::new(),
                name: authority.clone(),
                meshed: None,
                status: None,
                stats: None,
            },
            sources: targets
                .iter()
                .map(|t| (t.clone(), authority.clone()))
                .collect(),
        })
        .collect();
    Plan {
        rows,
        targets: targets.to_vec(),
    }
}

/// Reads the cluster (or takes the --proxy list) and decides the rows and the proxies.
async fn plan(client: Option<&kube::Client>, config: &Config) -> anyhow::Result<Plan> {
    let (client, namespace, all_namespaces, targets, selector, from) =
        match (&config.source, client) {
            (Source::Proxies { addrs, .. }, _) => {
                return Ok(Plan {
                    rows: Vec::new(),
                    targets: addrs.iter().cloned().map(ScrapeTarget::Direct).collect(),
                });
            }
            (
                Source::Cluster {
                    namespace,
                    all_namespaces,
                    targets,
                    selector,
                    from,
                },
                Some(client),
            ) => (client, namespace, *all_namespaces, targets, selector, from),
            (Source::Cluster { .. }, None) => bail!("no Kubernetes client"),
        };
    let ns = namespace.clone().unwrap_or_else(|| "default".to_string());
    let scope = if all_namespaces {
        Scope::All
    } else {
        Scope::Namespace(ns.clone())
    };
    let inventory_fut = inventory(client, &scope, targets, selector.as_deref());
    let from_fut = async {
        match from {
            Some((kind, name, from_ns)) => {
                let from_scope = Scope::Namespace(from_ns.clone().unwrap_or_else(|| ns.clone()));
                let target = Target {
                    kind: *kind,
                    names: vec![name.clone()],
                };
                Some(inventory(client, &from_scope, &[target], None).await).transpose()
            }
            None => Ok(None),
        }
    };
    let (inventory, from) = tokio::join!(inventory_fut, from_fut);
    let inventory = inventory?;
    let from = from?;
    let scrape_target = |pod: &PodInfo| ScrapeTarget::Pod {
        namespace: pod.namespace.clone(),
        name: pod.name.clone(),
        port: pod.admin_port,
    };
    let readable = |pod: &PodInfo| pod.live && pod.meshed && pod.running;
    let from_targets: Option<Vec<ScrapeTarget>> = from.as_ref().map(|from: &Inventory| {
        let mut pods: Vec<usize> = from
            .workloads
            .iter()
            .flat_map(|w| from.pods_of(w))
            .collect();
        pods.sort_unstable();
        pods.dedup();
        pods.iter()
            .map(|&i| &from.pods[i])
            .filter(|p| readable(p))
            .map(scrape_target)
            .collect()
    });
    let mut rows = Vec::new();
    let mut targets: Vec<ScrapeTarget> = Vec::new();
    for workload in &inventory.workloads {
        let pods: Vec<&PodInfo> = inventory
            .pods_of(workload)
            .into_iter()
            .map(|i| &inventory.pods[i])
            .filter(|p| p.live)
            .collect();
        let meshed = pods.iter().filter(|p| p.meshed).count();
        if workload.kind == Kind::Pod && pods.is_empty() {
            // Linkerd hides pods that have completed.
            continue;
        }
        if meshed == 0 && !config.unmeshed {
            continue;
        }
        let sources: Vec<(ScrapeTarget, String)> = match &from_targets {
            Some(from_targets) => {
                let key = format!("{}/{}", workload.namespace, workload.name);
                from_targets
                    .iter()
                    .map(|t| (t.clone(), key.clone()))
                    .collect()
            }
            None => pods
                .iter()
                .filter(|p| readable(p))
                .map(|p| (scrape_target(p), String::new()))
                .collect(),
        };
        targets.extend(sources.iter().map(|(t, _)| t.clone()));
        rows.push(RowPlan {
            row: Row {
                kind: workload.kind,
                namespace: workload.namespace.clone(),
                name: workload.name.clone(),
                meshed: Some((meshed, pods.len())),
                status: (workload.kind == Kind::Pod)
                    .then(|| pods.first().map(|p| p.status.clone()).unwrap_or_default()),
                stats: None,
            },
            sources,
        });
    }
    if let Some(from_targets) = from_targets {
        targets = from_targets;
    }
    let mut seen = std::collections::HashSet::new();
    targets.retain(|t| seen.insert(t.clone()));
    Ok(Plan { rows, targets })
}
