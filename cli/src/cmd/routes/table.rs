//! From proxies' route metrics to `viz routes` rows: a page reduced to per-route totals, two
//! reads turned into windows and numbers by `stat`'s own arithmetic, and the table or JSON.

use std::collections::{BTreeMap, HashMap};

use mesh_names::metrics as m;
use serde_json::{Value, json};

use crate::cmd::stat::compute::{self, Stats, Window};
use crate::cmd::stat::render::{align_right, millis, number, pad, width};
use crate::cmd::stat::sample::{PodSample, Series, add_bucket, merge_series};
use crate::metrics::Exposition;

/// The row Linkerd shows for requests that matched no route.
pub const DEFAULT_ROUTE: &str = "[DEFAULT]";

/// Group keys: what the clients got per route (`route_response_total` and its latency), every
/// attempt per route (`route_actual_response_total`), and all outbound HTTP per authority
/// (`response_total`), from which the routes' attempts are taken away to leave [DEFAULT].
const EFFECTIVE: char = 'R';
const ACTUAL: char = 'A';
const HTTP: char = 'H';

fn key(kind: char, dst: &str, route: &str) -> String {
    format!("{kind}\t{dst}\t{route}")
}

/// One page reduced to its per-route totals, keeping only destinations `keep` accepts.
pub fn reduce(page: &Exposition<'_>, keep: &dyn Fn(&str) -> bool) -> PodSample {
    let mut out = PodSample::default();
    let mut latency: Series<'_> = HashMap::new();
    for family in &page.families {
        let kind = match family.name {
            m::ROUTE_RESPONSE_TOTAL | m::ROUTE_RESPONSE_LATENCY_MS => EFFECTIVE,
            m::ROUTE_ACTUAL_RESPONSE_TOTAL => ACTUAL,
            m::RESPONSE_TOTAL | m::RESPONSE_LATENCY_MS => HTTP,
            m::PROCESS_START_TIME_SECONDS => {
                out.start_time = family.samples.first().map(|s| s.value);
                continue;
            }
            _ => continue,
        };
        for s in &family.samples {
            let (dst, route) = if kind == HTTP {
                if s.label(m::DIRECTION) != Some(m::OUTBOUND) {
                    continue;
                }
                (s.label(m::AUTHORITY), Some(""))
            } else {
                (s.label(m::DST), s.label(m::RT_ROUTE))
            };
            let (Some(dst), Some(route)) = (dst, route) else {
                continue;
            };
            if !keep(dst) {
                continue;
            }
            let key = key(kind, dst, route);
            if family.name.ends_with("latency_ms") {
                if s.name.ends_with("_bucket") {
                    add_bucket(&mut latency, key, s);
                }
                continue;
            }
            let counters = out.groups.entry(key).or_default();
            match s.label(m::CLASSIFICATION) {
                Some(m::SUCCESS) => counters.success += s.value,
                Some(m::FAILURE) => counters.failure += s.value,
                _ => {}
            }
        }
    }
    merge_series(&mut out.groups, latency, false);
    out
}

/// A route's effective and actual windows, one of each per proxy.
type RouteWindows<'a> = (Vec<&'a Window>, Vec<&'a Window>);

/// One output row.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub route: String,
    pub authority: String,
    /// What the clients got, after retries.
    pub effective: Option<Stats>,
    /// Every attempt, retries included.
    pub actual: Option<Stats>,
}

/// The rows from every proxy's windows: one per route seen, then [DEFAULT] per destination
/// with routes, when the HTTP metrics leave requests no route counted.
pub fn rows(windows: &[HashMap<String, Window>]) -> Vec<Row> {
    // (authority, route) → (effective, actual) windows; routes sort by name, [DEFAULT] last.
    let mut routes: BTreeMap<(String, String), RouteWindows<'_>> = BTreeMap::new();
    for proxy in windows {
        for (key, window) in proxy {
            let mut parts = key.splitn(3, '\t');
            let (Some(kind), Some(dst), Some(route)) = (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            let entry = routes.entry((dst.to_string(), route.to_string()));
            match kind.chars().next() {
                Some(EFFECTIVE) => entry.or_default().0.push(window),
                Some(ACTUAL) => entry.or_default().1.push(window),
                _ => {}
            }
        }
    }
    let defaults: Vec<(String, Window)> = windows.iter().flat_map(unrouted).collect();
    let mut authorities: Vec<&String> = routes.keys().map(|(dst, _)| dst).collect();
    authorities.dedup();
    let mut rows = Vec::new();
    for authority in authorities {
        for ((_, route), (effective, actual)) in routes.iter().filter(|((d, _), _)| d == authority)
        {
            rows.push(Row {
                route: route.clone(),
                authority: authority.clone(),
                effective: compute::aggregate(effective),
                actual: compute::aggregate(actual),
            });
        }
        let unrouted: Vec<&Window> = defaults
            .iter()
            .filter(|(a, _)| a == authority)
            .map(|(_, w)| w)
            .collect();
        let stats = compute::aggregate(&unrouted);
        rows.push(Row {
            route: DEFAULT_ROUTE.to_string(),
            authority: authority.clone(),
            effective: stats.clone(),
            actual: stats,
        });
    }
    rows
}

/// One proxy's requests to each routed authority that no route counted: its outbound HTTP
/// responses less every route's attempts (requests on no route are never retried, so their
/// attempts are their responses). Latency likewise, when the difference is a histogram.
fn unrouted(proxy: &HashMap<String, Window>) -> Vec<(String, Window)> {
    let mut out = Vec::new();
    for (key, http) in proxy {
        let Some(authority) = key
            .strip_prefix(HTTP)
            .and_then(|k| k.strip_prefix('\t'))
            .and_then(|k| k.strip_suffix('\t'))
        else {
            continue;
        };
        let prefix = |kind: char| format!("{kind}\t{authority}\t");
        let of = |kind: char| -> Vec<&Window> {
            proxy
                .iter()
                .filter(|(k, _)| k.starts_with(&prefix(kind)))
                .map(|(_, w)| w)
                .collect()
        };
        let (actual, effective) = (of(ACTUAL), of(EFFECTIVE));
        if actual.is_empty() && effective.is_empty() {
            continue;
        }
        // A proxy without route_actual_response_total: its responses stand in for attempts.
        let attempts = if actual.is_empty() {
            &effective
        } else {
            &actual
        };
        let routed = |f: fn(&Window) -> f64| attempts.iter().map(|w| f(w)).sum::<f64>();
        let latency = crate::metrics::Buckets::sum(effective.iter().map(|w| &w.latency_ms));
        let window = Window {
            success: (http.success - routed(|w| w.success)).max(0.0),
            failure: (http.failure - routed(|w| w.failure)).max(0.0),
            latency_ms: http.latency_ms.since(&latency).unwrap_or_default(),
            seconds: http.seconds,
            ..Window::default()
        };
        out.push((authority.to_string(), window));
    }
    out
}

/// The Service an authority names, as Linkerd's SERVICE column shows it: the first label of a
/// DNS name, else the authority as it is.
fn service(authority: &str) -> &str {
    let host = authority.rsplit_once(':').map_or(authority, |(h, _)| h);
    if host.parse::<std::net::IpAddr>().is_ok() || host.starts_with('[') {
        return authority;
    }
    host.split('.').next().unwrap_or(host)
}

/// The table (`wide` adds effective and actual numbers) or the JSON array.
pub fn render(rows: &[Row], format: super::Format) -> String {
    match format {
        super::Format::Json => {
            let rows: Vec<Value> = rows.iter().map(json_row).collect();
            let mut text = serde_json::to_string_pretty(&rows).unwrap_or_else(|_| "[]".to_string());
            text.push('\n');
            text
        }
        super::Format::Table => table(rows, false),
        super::Format::Wide => table(rows, true),
    }
}

fn table(rows: &[Row], wide: bool) -> String {
    if rows.is_empty() {
        return String::new();
    }
    let route_width = rows
        .iter()
        .map(|r| width(&r.route))
        .chain([width("ROUTE")])
        .max()
        .unwrap_or(0);
    let mut header = vec![pad("ROUTE", route_width), "SERVICE".to_string()];
    if wide {
        header.extend(
            [
                "EFFECTIVE_SUCCESS",
                "EFFECTIVE_RPS",
                "ACTUAL_SUCCESS",
                "ACTUAL_RPS",
            ]
            .map(String::from),
        );
    } else {
        header.extend(["SUCCESS", "RPS"].map(String::from));
    }
    header.extend(["LATENCY_P50", "LATENCY_P95", "LATENCY_P99"].map(String::from));
    let mut cells = vec![header];
    let rate = |s: Option<&Stats>| {
        s.map_or_else(
            || ["-".to_string(), "-".to_string()],
            |s| {
                [
                    format!("{:.2}%", s.success * 100.0),
                    format!("{:.1}rps", s.rps),
                ]
            },
        )
    };
    for row in rows {
        let mut line = vec![
            pad(&row.route, route_width),
            service(&row.authority).to_string(),
        ];
        line.extend(rate(row.effective.as_ref()));
        if wide {
            line.extend(rate(row.actual.as_ref()));
        }
        for i in 0..3 {
            let ms = row.effective.as_ref().and_then(|s| s.latency_ms[i]);
            line.push(ms.map_or_else(|| "-".to_string(), |ms| format!("{}ms", millis(ms))));
        }
        cells.push(line);
    }
    let mut out = String::new();
    align_right(&cells, &mut out);
    out
}

fn json_row(row: &Row) -> Value {
    let e = row.effective.as_ref();
    let a = row.actual.as_ref();
    let ms = |i: usize| e.and_then(|s| s.latency_ms[i]).map(millis);
    json!({
        "route": row.route,
        "authority": row.authority,
        "service": service(&row.authority),
        "success": number(e.map(|s| s.success)),
        "rps": number(e.map(|s| s.rps)),
        "latency_ms_p50": ms(0),
        "latency_ms_p95": ms(1),
        "latency_ms_p99": ms(2),
        "effective_success": number(e.map(|s| s.success)),
        "effective_rps": number(e.map(|s| s.rps)),
        "actual_success": number(a.map(|s| s.success)),
        "actual_rps": number(a.map(|s| s.rps)),
    })
}
