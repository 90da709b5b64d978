//! One proxy's `/metrics` page, reduced to the few totals `mesh stat` needs, per group.
//!
//! The page is parsed and reduced as soon as it arrives, so a refresh over many pods keeps
//! only these totals, never the text.

use std::collections::HashMap;
use std::net::IpAddr;

use mesh_names::metrics as m;

use crate::metrics::{Buckets, Exposition, Sample};

use super::resource::Kind;

/// Which of a proxy's metrics count, and how they are grouped into rows.
#[derive(Debug, Clone)]
pub struct View {
    /// `inbound` or `outbound`.
    pub direction: Direction,
    pub group: GroupBy,
    /// Keep only traffic to this destination (`--to`).
    pub only: Option<Destination>,
    /// Services by cluster IP, `(namespace, name)`, so traffic sent to a Service's IP counts as
    /// the Service's (filled from the API for `--to svc/…` and `stat svc --from …`).
    pub service_ips: HashMap<IpAddr, (String, String)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Direction {
    Inbound,
    Outbound,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Inbound => m::INBOUND,
            Direction::Outbound => m::OUTBOUND,
        }
    }

    /// The `peer` of the transport metrics on this side: accepted connections inbound,
    /// opened ones outbound.
    fn peer(self) -> &'static str {
        match self {
            Direction::Inbound => m::PEER_SRC,
            Direction::Outbound => m::PEER_DST,
        }
    }
}

/// How one proxy's traffic splits into rows.
#[derive(Debug, Clone)]
pub enum GroupBy {
    /// All of it is the pod's (key `""`).
    Whole,
    /// By the `authority` label.
    Authority,
    /// By destination workload of `kind` from the `dst_*` labels, else by the Service the
    /// authority names, and by the connection's mesh TLS (`mesh edges`): key
    /// `kind/namespace/name` with the kind's short name, then the `tls`, `server_id` and
    /// `no_tls_reason` labels, each after a tab (see [`EdgeKey`]).
    Edge { kind: Kind, namespace: String },
    /// By destination resource, key `namespace/name`, from the `dst_*` labels (`--from`,
    /// `--proxy` with a TYPE other than `au`).
    Destination { kind: Kind, namespace: String },
}

/// A [`GroupBy::Edge`] key, split back into its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgeKey<'a> {
    /// The destination kind's short name.
    pub short: &'a str,
    pub namespace: &'a str,
    pub name: &'a str,
    /// The `tls` label: `true` for mesh TLS, `no_identity` otherwise.
    pub tls: &'a str,
    pub server_id: &'a str,
    pub no_tls_reason: &'a str,
}

impl<'a> EdgeKey<'a> {
    /// Splits a key [`GroupBy::Edge`] wrote; `None` for any other.
    pub fn parse(key: &'a str) -> Option<Self> {
        let mut fields = key.splitn(4, '\t');
        let mut route = fields.next()?.splitn(3, '/');
        Some(EdgeKey {
            short: route.next()?,
            namespace: route.next()?,
            name: route.next()?,
            tls: fields.next()?,
            server_id: fields.next()?,
            no_tls_reason: fields.next()?,
        })
    }
}

/// A destination resource for `--to`.
#[derive(Debug, Clone)]
pub struct Destination {
    pub kind: Kind,
    pub namespace: String,
    pub name: String,
}

/// One proxy's totals.
#[derive(Debug, Clone, Default)]
pub struct PodSample {
    /// `process_start_time_seconds`: a change means the counters restarted.
    pub start_time: Option<f64>,
    pub groups: HashMap<String, Counters>,
}

/// Totals since the proxy started.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Counters {
    pub success: f64,
    pub failure: f64,
    /// `response_latency_ms`, summed over label sets.
    pub latency_ms: Buckets,
    /// `response_latency_fine_us`, when the proxy exports it.
    pub fine_us: Option<Buckets>,
    pub tcp_open: f64,
    pub read_bytes: f64,
    pub write_bytes: f64,
}

impl View {
    /// The row key of a sample, or `None` when the sample does not count.
    fn key(&self, sample: &Sample<'_>) -> Option<String> {
        if sample.label(m::DIRECTION) != Some(self.direction.as_str()) {
            return None;
        }
        if let Some(only) = &self.only
            && destination(sample, only.kind, &only.namespace, &self.service_ips).as_ref()
                != Some(&(only.namespace.clone(), only.name.clone()))
        {
            return None;
        }
        match &self.group {
            GroupBy::Whole => Some(String::new()),
            GroupBy::Authority => sample.label(m::AUTHORITY).map(str::to_string),
            GroupBy::Edge { kind, namespace } => {
                [*kind, Kind::Service].into_iter().find_map(|kind| {
                    let (ns, name) = destination(sample, kind, namespace, &self.service_ips)?;
                    let label = |name| sample.label(name).unwrap_or("");
                    Some(format!(
                        "{}/{ns}/{name}\t{}\t{}\t{}",
                        kind.short(),
                        label(m::TLS),
                        label(m::SERVER_ID),
                        label(m::NO_TLS_REASON)
                    ))
                })
            }
            GroupBy::Destination { kind, namespace } => {
                destination(sample, *kind, namespace, &self.service_ips)
                    .map(|(ns, name)| format!("{ns}/{name}"))
            }
        }
    }
}

/// The `(namespace, name)` of the destination resource of kind `kind` a sample names, from
/// `dst_<kind>` and `dst_namespace` (the endpoint's labels from the control plane's discovery).
/// Without them a Service, and a namespace, are still recognised by the `authority`: a
/// Service's cluster IP (from `service_ips`), `name.namespace.svc…`, `name.namespace` or a
/// bare `name` in `default_namespace`.
pub(crate) fn destination(
    sample: &Sample<'_>,
    kind: Kind,
    default_namespace: &str,
    service_ips: &HashMap<IpAddr, (String, String)>,
) -> Option<(String, String)> {
    let namespace = sample.label(m::DST_NAMESPACE);
    if kind == Kind::Namespace {
        if let Some(ns) = namespace {
            return Some((ns.to_string(), ns.to_string()));
        }
        let (ns, _) = service_by_authority(sample, default_namespace, service_ips)?;
        return (!ns.is_empty()).then(|| (ns.clone(), ns));
    }
    if let Some(name) = sample.label(kind.dst_label()) {
        let ns = namespace.unwrap_or(default_namespace);
        return Some((ns.to_string(), name.to_string()));
    }
    if kind != Kind::Service {
        return None;
    }
    service_by_authority(sample, default_namespace, service_ips)
}

/// The Service a sample's `authority` names, by cluster IP or by DNS name.
fn service_by_authority(
    sample: &Sample<'_>,
    default_namespace: &str,
    service_ips: &HashMap<IpAddr, (String, String)>,
) -> Option<(String, String)> {
    service_of_authority(sample.label(m::AUTHORITY)?, default_namespace, service_ips)
}

/// The `(namespace, name)` of the Service an authority names: a cluster IP in `service_ips`,
/// `name.namespace.svc…`, `name.namespace`, or a bare `name` in `default_namespace`.
pub(crate) fn service_of_authority(
    authority: &str,
    default_namespace: &str,
    service_ips: &HashMap<IpAddr, (String, String)>,
) -> Option<(String, String)> {
    let host = authority
        .rsplit_once(':')
        .map_or(authority, |(host, port)| {
            if port.bytes().all(|b| b.is_ascii_digit()) {
                host
            } else {
                authority
            }
        });
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return service_ips.get(&ip).cloned();
    }
    let parts: Vec<&str> = host.split('.').collect();
    match parts.as_slice() {
        [name] if !name.is_empty() => Some((default_namespace.to_string(), name.to_string())),
        [name, ns] => Some((ns.to_string(), name.to_string())),
        [name, ns, "svc", ..] => Some((ns.to_string(), name.to_string())),
        _ => None,
    }
}

/// Reduces a parsed page to its totals under `view`.
pub fn reduce(page: &Exposition<'_>, view: &View) -> PodSample {
    let mut out = PodSample::default();
    let mut coarse: Series<'_> = HashMap::new();
    let mut fine: Series<'_> = HashMap::new();
    for family in &page.families {
        match family.name {
            m::RESPONSE_TOTAL => {
                for s in &family.samples {
                    let Some(key) = view.key(s) else { continue };
                    let counters = out.groups.entry(key).or_default();
                    match s.label(m::CLASSIFICATION) {
                        Some(m::SUCCESS) => counters.success += s.value,
                        Some(m::FAILURE) => counters.failure += s.value,
                        _ => {}
                    }
                }
            }
            m::RESPONSE_LATENCY_MS | m::RESPONSE_LATENCY_FINE_US => {
                let series = if family.name == m::RESPONSE_LATENCY_FINE_US {
                    &mut fine
                } else {
                    &mut coarse
                };
                for s in &family.samples {
                    if s.name.ends_with("_bucket")
                        && let Some(key) = view.key(s)
                    {
                        add_bucket(series, key, s);
                    }
                }
            }
            m::TCP_OPEN_CONNECTIONS | m::TCP_READ_BYTES_TOTAL | m::TCP_WRITE_BYTES_TOTAL => {
                for s in &family.samples {
                    if s.label(m::PEER) != Some(view.direction.peer()) {
                        continue;
                    }
                    let Some(key) = view.key(s) else { continue };
                    let counters = out.groups.entry(key).or_default();
                    match family.name {
                        m::TCP_OPEN_CONNECTIONS => counters.tcp_open += s.value,
                        m::TCP_READ_BYTES_TOTAL => counters.read_bytes += s.value,
                        _ => counters.write_bytes += s.value,
                    }
                }
            }
            m::PROCESS_START_TIME_SECONDS => {
                out.start_time = family.samples.first().map(|s| s.value);
            }
            _ => {}
        }
    }
    merge_series(&mut out.groups, coarse, false);
    merge_series(&mut out.groups, fine, true);
    out
}

/// Histogram series: (row key, labels other than `le`) to (le, cumulative) points.
pub(crate) type Series<'a> = HashMap<(String, Vec<(&'a str, &'a str)>), Vec<(f64, f64)>>;

/// Adds one `_bucket` sample to row `key`'s series (a sample without a readable `le` is
/// skipped).
pub(crate) fn add_bucket<'a>(series: &mut Series<'a>, key: String, s: &'a Sample<'a>) {
    let Some(le) = s.label(m::LE).and_then(parse_le) else {
        return;
    };
    let labels: Vec<(&str, &str)> = s
        .labels
        .iter()
        .filter(|(n, _)| *n != m::LE)
        .map(|(n, v)| (*n, v.as_ref()))
        .collect();
    series.entry((key, labels)).or_default().push((le, s.value));
}

/// Adds up each row's series into one histogram.
pub(crate) fn merge_series(groups: &mut HashMap<String, Counters>, series: Series<'_>, fine: bool) {
    let mut by_key: HashMap<String, Vec<Buckets>> = HashMap::new();
    for ((key, _), points) in series {
        by_key
            .entry(key)
            .or_default()
            .push(Buckets::from_points(points));
    }
    for (key, histograms) in by_key {
        let sum = Buckets::sum(&histograms);
        let counters = groups.entry(key).or_default();
        if fine {
            counters.fine_us = Some(sum);
        } else {
            counters.latency_ms = sum;
        }
    }
}

fn parse_le(text: &str) -> Option<f64> {
    match text {
        "+Inf" | "Inf" | "+inf" | "inf" => Some(f64::INFINITY),
        _ => text.parse().ok(),
    }
}
