//! Proxy metrics: the Prometheus text format, histograms and quantiles, and scraping proxies'
//! admin endpoints, through the Kubernetes API server's pod proxy or directly.

#[cfg(test)]
pub(crate) mod fuzz;
mod histogram;
mod obfuscate;
mod parse;
pub mod scrape;
#[cfg(test)]
mod tests;

pub use histogram::Buckets;
pub use obfuscate::obfuscate;
pub use parse::{Exposition, Sample, parse};
#[cfg(test)]
pub use parse::{Kind, render};
pub use scrape::{Scraped, Scraper, Target};
