//! Linkerd's identity metrics: when the proxy's certificate expires and how often it was
//! renewed. Rendered only when the proxy has an identity source.

use std::fmt::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{SystemTime, UNIX_EPOCH};

/// The current certificate's expiry and the number of certificates received.
#[derive(Debug, Default)]
pub struct IdentityMetrics {
    enabled: AtomicBool,
    /// Unix seconds; 0 until the first certificate, as in Linkerd.
    expiry: AtomicU64,
    refreshes: AtomicU64,
}

impl IdentityMetrics {
    /// Starts rendering the families (with zeros until the first certificate).
    pub fn enable(&self) {
        self.enabled.store(true, Relaxed);
    }

    /// A new certificate that expires at `not_after`.
    pub fn certified(&self, not_after: SystemTime) {
        let secs = not_after
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.expiry.store(secs, Relaxed);
        self.refreshes.fetch_add(1, Relaxed);
        self.enable();
    }

    pub(super) fn render(&self, out: &mut String) {
        if !self.enabled.load(Relaxed) {
            return;
        }
        let expiry = "identity_cert_expiration_timestamp_seconds";
        let refreshes = "identity_cert_refresh_count";
        let _ = writeln!(
            out,
            "# HELP {expiry} When the proxy's current identity certificate expires, in seconds since the Unix epoch (0 before the first).\n\
             # TYPE {expiry} gauge\n\
             {expiry} {}\n\
             # HELP {refreshes} Identity certificates the proxy has received, the first included.\n\
             # TYPE {refreshes} counter\n\
             {refreshes} {}",
            self.expiry.load(Relaxed),
            self.refreshes.load(Relaxed),
        );
    }
}
