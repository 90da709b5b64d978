//! The dashboard's JSON API: settings, namespaces, and stat rows per (kind, namespace, window),
//! each query read by at most one request at a time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::StatusCode;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ListParams};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

use super::tap::Taps;
use crate::cmd::GlobalArgs;
use crate::cmd::install::is_dns_label;
use crate::cmd::stat::live::{Live, Query, Reading};
use crate::cmd::stat::{Kind, Scope, edges};
use crate::metrics::Scraper;

/// How many proxies are read at once, as `mesh stat` does.
const CONCURRENCY: usize = 64;
/// How many queries keep their history; the least recently used idle one makes room.
const MAX_QUERIES: usize = 16;
/// A reading this fresh is answered again rather than read anew, so that many tabs or a
/// reload cost one read.
const FRESH: Duration = Duration::from_secs(1);
/// The shortest and longest windows the API accepts.
const MIN_WINDOW: Duration = Duration::from_secs(1);
const MAX_WINDOW: Duration = Duration::from_secs(600);

/// What the command line set.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The namespace the page shows first.
    pub namespace: String,
    pub window: Duration,
    pub scrape_timeout: Duration,
    pub api_timeout: Duration,
}

/// An answer: a status and a JSON body.
pub type Answer = (StatusCode, Value);

/// Everything the API serves from.
pub struct State {
    client: Client,
    scraper: Scraper,
    pub settings: Settings,
    pub taps: Taps,
    queries: Mutex<HashMap<Query, Slot>>,
}

struct Slot {
    live: Arc<tokio::sync::Mutex<Latest>>,
    used: Instant,
}

/// A query's history and its latest reading.
struct Latest {
    live: Live,
    reading: Option<(Instant, Reading)>,
}

impl State {
    pub fn new(client: Client, settings: Settings, global: GlobalArgs) -> anyhow::Result<State> {
        let scraper = Scraper::new(Some(client.clone()), settings.scrape_timeout, CONCURRENCY)?;
        Ok(State {
            client,
            scraper,
            settings,
            taps: Taps::new(global),
            queries: Mutex::new(HashMap::new()),
        })
    }

    /// `GET /api/settings`.
    pub fn settings(&self) -> Answer {
        (
            StatusCode::OK,
            json!({
                "namespace": self.settings.namespace,
                "window": format!("{}s", self.settings.window.as_secs_f64()),
                "kinds": Kind::ALL.iter().map(|k| k.canonical()).collect::<Vec<_>>(),
            }),
        )
    }

    /// `GET /api/namespaces`: every namespace's name, sorted.
    pub async fn namespaces(&self) -> Answer {
        let api = Api::<Namespace>::all(self.client.clone());
        match crate::client::list_all(&api, &ListParams::default()).await {
            Ok(all) => {
                let mut names: Vec<String> = all.iter().map(|ns| ns.name_any()).collect();
                names.sort();
                (StatusCode::OK, json!({ "namespaces": names }))
            }
            Err(e) => error(
                StatusCode::BAD_GATEWAY,
                format!("cannot list namespaces: {}", crate::client::describe(e)),
            ),
        }
    }

    /// `GET /api/stat?kind=KIND&namespace=NS&window=DURATION`: the rows of
    /// `mesh stat KIND -n NS -t DURATION -o json`, the proxies that could not be read, and the
    /// seconds the numbers cover.
    pub async fn stat(&self, query: Option<&str>) -> Answer {
        let query = match parse_query(query.unwrap_or(""), &self.settings) {
            Ok(query) => query,
            Err(why) => return error(StatusCode::BAD_REQUEST, why),
        };
        let Some(latest) = self.slot(&query) else {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("more than {MAX_QUERIES} different queries at once; try again"),
            );
        };
        // A first read takes a window; one waiting for another query's read up to two. The
        // reads around them are bounded by the API and scrape timeouts.
        let limit =
            query.window * 2 + self.settings.api_timeout * 2 + self.settings.scrape_timeout * 2;
        let read = async {
            // One read per query at a time: whoever waits here gets the reading just made.
            let mut latest = latest.lock().await;
            match &latest.reading {
                Some((at, reading)) if at.elapsed() < FRESH => anyhow::Ok(reading.clone()),
                _ => {
                    let reading = latest.live.read(&self.scraper).await?;
                    latest.reading = Some((Instant::now(), reading.clone()));
                    Ok(reading)
                }
            }
        };
        let reading = match tokio::time::timeout(limit, read).await {
            Ok(Ok(reading)) => reading,
            Ok(Err(e)) => return error(StatusCode::BAD_GATEWAY, format!("{e:#}")),
            Err(_) => {
                return error(
                    StatusCode::GATEWAY_TIMEOUT,
                    format!("no answer in {}s", limit.as_secs()),
                );
            }
        };
        let unread: Vec<Value> = reading
            .unread
            .iter()
            .map(|(pod, why)| json!({ "pod": pod, "error": why }))
            .collect();
        (
            StatusCode::OK,
            json!({ "rows": reading.rows, "unread": unread, "seconds": reading.seconds }),
        )
    }

    /// `GET /api/edges?kind=KIND&namespace=NS`: the rows of `mesh edges KIND -n NS -o json`
    /// and the proxies that could not be read. Edges count since the proxies started, so
    /// there is no window; a `window` parameter is accepted and ignored, as the page sends
    /// one query string to both.
    pub async fn edges(&self, query: Option<&str>) -> Answer {
        let query = match parse_query(query.unwrap_or(""), &self.settings) {
            Ok(query) => query,
            Err(why) => return error(StatusCode::BAD_REQUEST, why),
        };
        if matches!(
            query.kind,
            Kind::Authority | Kind::Namespace | Kind::Service
        ) {
            return error(
                StatusCode::BAD_REQUEST,
                format!("kind: {} has no pods of its own to read", query.kind),
            );
        }
        let scope = Scope::Namespace(query.namespace.clone());
        // Two rounds of reads (the sources, then the secured edges' destinations), each
        // bounded by the API and scrape timeouts.
        let limit = (self.settings.api_timeout + self.settings.scrape_timeout) * 2;
        let read = edges::edges(&self.client, &self.scraper, &scope, query.kind);
        let (rows, unread) = match tokio::time::timeout(limit, read).await {
            Ok(Ok(found)) => found,
            Ok(Err(e)) => return error(StatusCode::BAD_GATEWAY, format!("{e:#}")),
            Err(_) => {
                return error(
                    StatusCode::GATEWAY_TIMEOUT,
                    format!("no answer in {}s", limit.as_secs()),
                );
            }
        };
        let rows: Vec<Value> = rows.iter().map(edges::Edge::to_json).collect();
        let unread: Vec<Value> = unread
            .iter()
            .map(|(pod, why)| json!({ "pod": pod, "error": why }))
            .collect();
        (StatusCode::OK, json!({ "rows": rows, "unread": unread }))
    }

    /// The query's slot, made if new; `None` when every slot is busy.
    fn slot(&self, query: &Query) -> Option<Arc<tokio::sync::Mutex<Latest>>> {
        let mut queries = self.queries.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(slot) = queries.get_mut(query) {
            slot.used = Instant::now();
            return Some(slot.live.clone());
        }
        if queries.len() >= MAX_QUERIES {
            // Only a slot nobody is reading or waiting for may go.
            let idle = queries
                .iter()
                .filter(|(_, slot)| Arc::strong_count(&slot.live) == 1)
                .min_by_key(|(_, slot)| slot.used)
                .map(|(query, _)| query.clone())?;
            queries.remove(&idle);
        }
        let live = Arc::new(tokio::sync::Mutex::new(Latest {
            live: Live::new(self.client.clone(), query, self.settings.scrape_timeout),
            reading: None,
        }));
        queries.insert(
            query.clone(),
            Slot {
                live: live.clone(),
                used: Instant::now(),
            },
        );
        Some(live)
    }
}

pub fn error(status: StatusCode, message: String) -> Answer {
    (status, json!({ "error": message }))
}

/// Parses `--time-window` and the `window` parameter.
pub fn window(text: &str) -> Result<Duration, String> {
    let window = mesh_names::parse_duration(text).map_err(|e| e.to_string())?;
    if !(MIN_WINDOW..=MAX_WINDOW).contains(&window) {
        return Err(format!(
            "the sampling window must be between {}s and {}s",
            MIN_WINDOW.as_secs(),
            MAX_WINDOW.as_secs()
        ));
    }
    Ok(window)
}

/// Reads `kind`, `namespace` and `window` from a query string; every other parameter is an
/// error, so that a typo does not silently show something else.
pub fn parse_query(text: &str, settings: &Settings) -> Result<Query, String> {
    let mut kind = Kind::Deployment;
    let mut namespace = None;
    let mut window_value = settings.window;
    for pair in text.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "kind" => {
                kind = Kind::parse(value)
                    .filter(|k| Kind::ALL.contains(k))
                    .ok_or_else(|| format!("kind: unknown resource type {value:?}"))?;
            }
            "namespace" => {
                if !is_dns_label(value) {
                    return Err(format!("namespace: {value:?} is not a namespace name"));
                }
                namespace = Some(value.to_owned());
            }
            "window" => window_value = window(value).map_err(|e| format!("window: {e}"))?,
            _ => return Err(format!("unknown parameter {key:?}")),
        }
    }
    Ok(Query {
        kind,
        namespace: namespace.unwrap_or_else(|| settings.namespace.clone()),
        window: window_value,
    })
}
