//! Per-request latency from mesh-proxy's own histogram.
//!
//! wrk's percentiles are "corrected" for coordinated omission: for every response slower
//! than a connection's mean interval it adds synthetic samples. When a few requests wait
//! 20 ms behind a slow backend, those synthetic samples dominate wrk's p90 and p99 and
//! hide what the balancer does (with one connection sending fast, fast, slow, wrk reports
//! the mean as its median). The proxy's `response_latency_fine_us` histogram has one
//! sample per request, from its head to its response, with buckets at most 3.2 % wide,
//! so the scenarios behind a proxy are compared on it: read before and after each run,
//! the difference is that run's requests.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use anyhow::Result;

use super::super::proxy::procs;

const FAMILY: &str = "response_latency_fine_us_bucket{";

/// Cumulative counts of outbound responses by upper bound (µs), all series summed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Histogram(BTreeMap<u64, f64>);

impl Histogram {
    /// Reads the proxy's metrics page.
    pub fn scrape(admin: SocketAddr) -> Result<Histogram> {
        Ok(Histogram::parse(&procs::get_text(admin, "/metrics")?))
    }

    /// The outbound series of the fine histogram, summed. A series writes only its
    /// non-empty buckets (each after the bound below it), so its cumulative count at any
    /// bound is that of the nearest written bound at or below it.
    pub fn parse(text: &str) -> Histogram {
        let mut series: BTreeMap<&str, BTreeMap<u64, f64>> = BTreeMap::new();
        for line in text.lines() {
            let Some(rest) = line.strip_prefix(FAMILY) else {
                continue;
            };
            if !rest.contains("direction=\"outbound\"") {
                continue;
            }
            let Some((labels, value)) = rest.rsplit_once("} ") else {
                continue;
            };
            let Some((key, le)) = labels.rsplit_once(",le=\"") else {
                continue;
            };
            let le = le.trim_end_matches('"');
            let bound = if le == "+Inf" {
                u64::MAX
            } else {
                match le.parse() {
                    Ok(b) => b,
                    Err(_) => continue,
                }
            };
            if let Ok(v) = value.trim().parse::<f64>() {
                series.entry(key).or_default().insert(bound, v);
            }
        }
        let bounds: Vec<u64> = series
            .values()
            .flat_map(|s| s.keys().copied())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut sum = BTreeMap::new();
        for b in bounds {
            let total: f64 = series
                .values()
                .map(|s| s.range(..=b).next_back().map_or(0.0, |(_, v)| *v))
                .sum();
            sum.insert(b, total);
        }
        Histogram(sum)
    }

    /// The requests between `earlier` and this reading.
    pub fn since(&self, earlier: &Histogram) -> Histogram {
        let at = |h: &Histogram, b: u64| h.0.range(..=b).next_back().map_or(0.0, |(_, v)| *v);
        Histogram(
            self.0
                .keys()
                .map(|&b| (b, at(self, b) - at(earlier, b)))
                .collect(),
        )
    }

    /// The `q` quantile's bucket bound, in milliseconds; none without requests.
    pub fn quantile_ms(&self, q: f64) -> Option<f64> {
        let total = self.0.values().copied().fold(0.0, f64::max);
        if total <= 0.0 {
            return None;
        }
        self.0.iter().find(|(_, v)| **v >= q * total).map(|(b, _)| {
            if *b == u64::MAX {
                f64::INFINITY
            } else {
                *b as f64 / 1000.0
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_sparse_series_and_takes_differences() {
        let page = |a: u64, b: u64| {
            format!(
                "response_latency_fine_us_bucket{{direction=\"outbound\",target_addr=\"a\",le=\"100\"}} 0\n\
                 response_latency_fine_us_bucket{{direction=\"outbound\",target_addr=\"a\",le=\"104\"}} {a}\n\
                 response_latency_fine_us_bucket{{direction=\"outbound\",target_addr=\"a\",le=\"+Inf\"}} {a}\n\
                 response_latency_fine_us_bucket{{direction=\"outbound\",target_addr=\"b\",le=\"20480\"}} 0\n\
                 response_latency_fine_us_bucket{{direction=\"outbound\",target_addr=\"b\",le=\"21504\"}} {b}\n\
                 response_latency_fine_us_bucket{{direction=\"outbound\",target_addr=\"b\",le=\"+Inf\"}} {b}\n\
                 response_latency_fine_us_bucket{{direction=\"inbound\",target_addr=\"c\",le=\"+Inf\"}} 999\n"
            )
        };
        let before = Histogram::parse(&page(10, 0));
        let after = Histogram::parse(&page(1010, 5));
        let run = after.since(&before);
        assert_eq!(run.quantile_ms(0.5), Some(0.104));
        assert_eq!(run.quantile_ms(0.99), Some(0.104));
        assert_eq!(run.quantile_ms(0.999), Some(21.504));
        assert_eq!(Histogram::default().quantile_ms(0.5), None);
    }
}
