//! The injector's metrics: reviews by kind, outcome and reason, and how long they took.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// What became of one review.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The proxy was added.
    Injected,
    /// Admitted without the proxy, for the reason given (a Linkerd skip reason).
    Skipped(&'static str),
    /// A Service was given the opaque-ports annotation.
    Annotated,
    /// Admitted unchanged because the injector could not do its job (reason given).
    Error(&'static str),
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ReviewLabels {
    kind: String,
    outcome: &'static str,
    reason: &'static str,
}

/// Registered once at start-up.
#[derive(Clone)]
pub struct Metrics {
    reviews: Family<ReviewLabels, Counter>,
    duration: Histogram,
}

impl Metrics {
    pub fn register(registry: &mut Registry) -> Metrics {
        let reviews = Family::<ReviewLabels, Counter>::default();
        registry.register(
            "proxy_injector_reviews",
            "Admission reviews answered, by object kind, outcome and reason",
            reviews.clone(),
        );
        let duration = Histogram::new([
            0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
        ]);
        registry.register(
            "proxy_injector_review_duration_seconds",
            "Time from a review's body being read to its answer",
            duration.clone(),
        );
        Metrics { reviews, duration }
    }

    pub fn record(&self, kind: &str, outcome: Outcome, seconds: f64) {
        let (outcome, reason) = match outcome {
            Outcome::Injected => ("injected", ""),
            Outcome::Skipped(reason) => ("skipped", reason),
            Outcome::Annotated => ("annotated", ""),
            Outcome::Error(reason) => ("error", reason),
        };
        // Only the kinds the webhook is registered for, so the label set stays bounded.
        let kind = match kind {
            "Pod" | "Service" => kind.to_ascii_lowercase(),
            _ => "other".to_owned(),
        };
        self.reviews
            .get_or_create(&ReviewLabels {
                kind,
                outcome,
                reason,
            })
            .inc();
        self.duration.observe(seconds);
    }
}
