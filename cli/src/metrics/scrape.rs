//! Fetching a page from many proxies' admin servers at once, with a bound on concurrency and a
//! timeout per proxy. A proxy that cannot be read is a result, never an error of the whole run.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::client::error_chain;

/// Where a proxy's admin server is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    /// Through the API server's pod proxy:
    /// `/api/v1/namespaces/NAMESPACE/pods/NAME:PORT/proxy/PATH`.
    Pod {
        namespace: String,
        name: String,
        port: u16,
    },
    /// Straight to `HOST:PORT`, for proxies outside a cluster.
    Direct(String),
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Pod {
                namespace, name, ..
            } => write!(f, "{namespace}/{name}"),
            Target::Direct(addr) => f.write_str(addr),
        }
    }
}

/// What one proxy gave, and when it answered.
#[derive(Debug)]
pub struct Scraped<T> {
    pub value: Result<T, String>,
    pub at: Instant,
}

/// Reads admin endpoints.
#[derive(Clone)]
pub struct Scraper {
    kube: Option<kube::Client>,
    http: reqwest::Client,
    timeout: Duration,
    concurrency: usize,
}

impl Scraper {
    /// `kube` is needed for [`Target::Pod`] targets only.
    pub fn new(
        kube: Option<kube::Client>,
        timeout: Duration,
        concurrency: usize,
    ) -> anyhow::Result<Scraper> {
        let http = reqwest::Client::builder()
            .connect_timeout(timeout)
            .no_proxy()
            .build()
            .context("cannot build an HTTP client")?;
        Ok(Scraper {
            kube,
            http,
            timeout,
            concurrency: concurrency.max(1),
        })
    }

    /// `GET path` from one admin server, within the timeout.
    pub async fn get(&self, target: &Target, path: &str) -> Result<String, String> {
        let fetch = async {
            match target {
                Target::Pod {
                    namespace,
                    name,
                    port,
                } => {
                    let kube = self
                        .kube
                        .as_ref()
                        .ok_or_else(|| "no Kubernetes client".to_string())?;
                    let uri = pod_proxy_path(namespace, name, *port, path);
                    let request = http::Request::get(uri)
                        .body(Vec::new())
                        .map_err(|e| e.to_string())?;
                    kube.request_text(request)
                        .await
                        .map_err(crate::client::describe)
                }
                Target::Direct(addr) => {
                    let url = format!("http://{addr}{path}");
                    let response = self
                        .http
                        .get(&url)
                        .send()
                        .await
                        .map_err(|e| error_chain(&e))?;
                    let status = response.status();
                    let body = response.text().await.map_err(|e| error_chain(&e))?;
                    if !status.is_success() {
                        return Err(format!("{url} answered {status}: {}", body.trim()));
                    }
                    Ok(body)
                }
            }
        };
        match tokio::time::timeout(self.timeout, fetch).await {
            Ok(result) => result,
            Err(_) => Err(format!("timed out after {:?}", self.timeout)),
        }
    }

    /// Fetches `path` from every target, at most `concurrency` at a time, and runs `digest`
    /// on each page as it arrives (on the runtime's worker threads, so parsing overlaps the
    /// waiting). Results come back in the order of `targets`.
    pub async fn all<T, F>(&self, targets: &[Target], path: &str, digest: F) -> Vec<Scraped<T>>
    where
        T: Send + 'static,
        F: Fn(&str) -> Result<T, String> + Send + Sync + 'static,
    {
        let digest = Arc::new(digest);
        let permits = Arc::new(Semaphore::new(self.concurrency));
        let mut tasks = JoinSet::new();
        for (index, target) in targets.iter().enumerate() {
            let scraper = self.clone();
            let target = target.clone();
            let digest = digest.clone();
            let permits = permits.clone();
            let path = path.to_string();
            tasks.spawn(async move {
                let _permit = permits.acquire_owned().await;
                let sent = Instant::now();
                let page = scraper.get(&target, &path).await;
                // The proxy wrote its counters somewhere between the request and the answer:
                // the midpoint halves the error a slow round trip (the API server's pod proxy)
                // would put into the window, and so into every rate.
                let at = sent + sent.elapsed() / 2;
                let value = page.and_then(|text| digest(&text));
                (index, Scraped { value, at })
            });
        }
        let mut results: Vec<Option<Scraped<T>>> = (0..targets.len()).map(|_| None).collect();
        while let Some(joined) = tasks.join_next().await {
            if let Ok((index, scraped)) = joined {
                results[index] = Some(scraped);
            }
        }
        results
            .into_iter()
            .map(|r| {
                r.unwrap_or_else(|| Scraped {
                    value: Err("the scrape task failed".to_string()),
                    at: Instant::now(),
                })
            })
            .collect()
    }
}

/// The API server path that reaches `path` on a pod's port.
pub fn pod_proxy_path(namespace: &str, name: &str, port: u16, path: &str) -> String {
    format!("/api/v1/namespaces/{namespace}/pods/{name}:{port}/proxy{path}")
}
