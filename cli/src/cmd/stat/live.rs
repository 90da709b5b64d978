//! Repeated reads of one stat query, for the dashboard. Each read returns the rows
//! `mesh stat -o json` prints for the same arguments, computed with the same plan, scrape and
//! arithmetic; only the window slides: after the first read, which waits one window as `stat`
//! does, each read compares the proxies now with an earlier read about one window ago, so a page
//! that refreshes every few seconds does not wait a whole window each time.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use kube::Client;

use super::config::{Config, Source};
use super::plan::plan;
use super::render::{self, Format};
use super::resource::{Kind, Target};
use super::sample::{Direction, GroupBy, View};
use super::{Computed, Samples, compute_rows, scrape};
use crate::metrics::Scraper;

/// What one dashboard table shows: every resource of a kind in a namespace, inbound, as
/// `mesh stat KIND -n NAMESPACE -t WINDOW -o json`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Query {
    pub kind: Kind,
    pub namespace: String,
    pub window: Duration,
}

/// The rows of one read.
#[derive(Debug, Clone)]
pub struct Reading {
    /// Exactly the array `mesh stat -o json` prints.
    pub rows: serde_json::Value,
    /// Proxies that could not be read, as (namespace/pod, why), sorted; their traffic is not
    /// counted, as `stat` says on stderr.
    pub unread: Vec<(String, String)>,
    /// The time between the two reads the numbers come from.
    pub seconds: f64,
}

/// A query and its earlier reads.
pub struct Live {
    client: Client,
    config: Config,
    /// Earlier reads, oldest first, at least [`SPACING`] of a window apart, none older than
    /// [`STALE`] windows: bounded whatever the refresh rate.
    history: VecDeque<(Instant, Samples)>,
}

/// Reads closer together than a window over this are not kept.
const SPACING: u32 = 16;
/// A history this many windows old is dropped, so numbers never cover a long-gone past.
const STALE: u32 = 3;

impl Live {
    pub fn new(client: Client, query: &Query, scrape_timeout: Duration) -> Live {
        let config = Config {
            source: Source::Cluster {
                namespace: Some(query.namespace.clone()),
                all_namespaces: false,
                targets: vec![Target {
                    kind: query.kind,
                    names: Vec::new(),
                }],
                selector: None,
                from: None,
            },
            view: View {
                direction: Direction::Inbound,
                group: GroupBy::Whole,
                only: None,
                service_ips: Default::default(),
            },
            window: query.window,
            format: Format::Json,
            watch: false,
            unmeshed: false,
            scrape_timeout,
            // Unused: the client, which carries the API timeout, is made already.
            api_timeout: scrape_timeout,
            title: String::new(),
        };
        Live {
            client,
            config,
            history: VecDeque::new(),
        }
    }

    /// Reads the cluster and the proxies. The first read (or the first after a long pause)
    /// takes one window.
    pub async fn read(&mut self, scraper: &Scraper) -> anyhow::Result<Reading> {
        let window = self.config.window;
        let plan = plan(Some(&self.client), &self.config).await?;
        let started = Instant::now();
        self.history
            .retain(|(at, _)| started.duration_since(*at) < window * STALE);
        if self.history.is_empty() {
            let first = scrape(scraper, &plan.targets, &self.config.view).await;
            self.history.push_back((Instant::now(), first));
            tokio::time::sleep(window).await;
        }
        let now = Instant::now();
        let current = scrape(scraper, &plan.targets, &self.config.view).await;
        // The newest read at least a window old, else the oldest there is.
        let base = self
            .history
            .iter()
            .rposition(|(at, _)| now.duration_since(*at) >= window)
            .unwrap_or(0);
        self.history.drain(..base);
        let Some((base_at, base_samples)) = self.history.front() else {
            anyhow::bail!("no earlier read to compare with");
        };
        let seconds = now.duration_since(*base_at).as_secs_f64();
        let Computed { rows, failed } = compute_rows(&plan, base_samples, &current);
        let spaced = self
            .history
            .back()
            .is_none_or(|(at, _)| now.duration_since(*at) >= window / SPACING);
        if spaced {
            self.history.push_back((now, current));
        }
        Ok(Reading {
            rows: render::json_value(&rows),
            unread: failed,
            seconds,
        })
    }
}
