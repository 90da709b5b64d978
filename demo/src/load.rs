//! `load`: steady traffic to the front end, so success rates and latencies have something to
//! show. Prints a summary line every `report` interval.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use bytes::Bytes;
use http::Uri;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::time::MissedTickBehavior;

/// Per-request deadline.
const TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    pub ok: u64,
    pub failed: u64,
}

/// Sends `rate` requests a second to `target`, `total` of them (forever if `None`).
pub async fn run(target: &str, rate: u32, total: Option<u64>, report: Duration) -> Result<Tally> {
    let uri: Uri = target
        .parse()
        .with_context(|| format!("--target: invalid URL {target:?}"))?;
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let mut tick = tokio::time::interval(Duration::from_secs(1) / rate.max(1));
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut tally = Tally::default();
    let mut last = tally;
    let mut reported = Instant::now();
    let mut sent = 0u64;
    while total.is_none_or(|t| sent < t) {
        tick.tick().await;
        sent += 1;
        let call = async {
            let res = client.get(uri.clone()).await?;
            let ok = res.status().is_success();
            res.into_body().collect().await?;
            anyhow::Ok(ok)
        };
        match tokio::time::timeout(TIMEOUT, call).await {
            Ok(Ok(true)) => tally.ok += 1,
            _ => tally.failed += 1,
        }
        if reported.elapsed() >= report {
            println!(
                "load: {} ok, {} failed in the last {:?}",
                tally.ok - last.ok,
                tally.failed - last.failed,
                reported.elapsed()
            );
            last = tally;
            reported = Instant::now();
        }
    }
    println!("load: {} ok, {} failed in all", tally.ok, tally.failed);
    Ok(tally)
}
