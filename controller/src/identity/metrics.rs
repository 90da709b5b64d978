//! The identity service's metrics.

use std::time::SystemTime;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

type Label = [(&'static str, &'static str); 1];

/// Counters and gauges, registered once at start-up.
#[derive(Clone, Default)]
pub struct IdentityMetrics {
    issued: Counter,
    refused: Family<Label, Counter>,
    issuer_expiry: Gauge,
    issuer_reloads: Family<Label, Counter>,
}

impl IdentityMetrics {
    pub fn register(registry: &mut Registry) -> IdentityMetrics {
        let metrics = IdentityMetrics::default();
        registry.register(
            "identity_certificates_issued",
            "Workload certificates issued",
            metrics.issued.clone(),
        );
        registry.register(
            "identity_certify_refusals",
            "Certify requests refused, by reason",
            metrics.refused.clone(),
        );
        registry.register(
            "identity_issuer_expiration_timestamp_seconds",
            "When the current issuer certificate expires (Unix time)",
            metrics.issuer_expiry.clone(),
        );
        registry.register(
            "identity_issuer_reloads",
            "Issuer reloads after its files changed, by result (ok, error)",
            metrics.issuer_reloads.clone(),
        );
        metrics
    }

    pub fn issued(&self) {
        self.issued.inc();
    }

    pub fn refused(&self, reason: &'static str) {
        self.refused.get_or_create(&[("reason", reason)]).inc();
    }

    pub fn issuer_loaded(&self, not_after: SystemTime) {
        let secs = not_after
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        self.issuer_expiry
            .set(i64::try_from(secs).unwrap_or(i64::MAX));
    }

    pub fn reload(&self, result: &'static str) {
        self.issuer_reloads
            .get_or_create(&[("result", result)])
            .inc();
    }
}
