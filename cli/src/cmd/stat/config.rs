//! Validated `mesh stat` arguments.

use std::time::Duration;

use anyhow::bail;

use super::Args;
use super::render::Format;
use super::resource::{Kind, Target, parse_one, parse_targets};
use super::sample::{Destination, Direction, GroupBy, View};

/// Validated arguments.
#[derive(Debug, Clone)]
pub struct Config {
    pub source: Source,
    pub view: View,
    pub window: Duration,
    pub format: Format,
    pub watch: bool,
    pub unmeshed: bool,
    pub scrape_timeout: Duration,
    pub api_timeout: Duration,
    /// The command line, for the --watch header.
    pub title: String,
}

#[derive(Debug, Clone)]
pub enum Source {
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
        /// `Authority`: rows by the `authority` label; any other kind: rows by the outbound
        /// `dst_<kind>` label (with `dst_namespace`).
        kind: Kind,
        names: Vec<String>,
    },
}

impl Config {
    pub fn from_args(args: Args) -> anyhow::Result<Config> {
        let title = format!("mesh stat {}", args.resources.join(" "));
        let direction = args.direction;
        if !args.proxy.is_empty() {
            let targets = if args.resources.is_empty() {
                Vec::new()
            } else {
                parse_targets(&args.resources).map_err(|e| anyhow::anyhow!("RESOURCES: {e}"))?
            };
            let kind = match targets.as_slice() {
                [] => Kind::Authority,
                [one] => one.kind,
                _ => bail!("--proxy shows one resource type at a time"),
            };
            let names = targets.into_iter().flat_map(|t| t.names).collect();
            let (direction, group) = if kind == Kind::Authority {
                (direction.unwrap_or(Direction::Inbound), GroupBy::Authority)
            } else {
                // Only outbound metrics name their destination's resources.
                if direction == Some(Direction::Inbound) {
                    bail!(
                        "--direction inbound cannot be used with --proxy and {kind}: only outbound \
                         metrics carry the dst_* labels that name a {kind}"
                    );
                }
                (
                    Direction::Outbound,
                    GroupBy::Destination {
                        kind,
                        namespace: String::new(),
                    },
                )
            };
            return Ok(Config {
                source: Source::Proxies {
                    addrs: args.proxy,
                    kind,
                    names,
                },
                view: View {
                    direction,
                    group,
                    only: None,
                    service_ips: Default::default(),
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
                service_ips: Default::default(),
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
