//! Service profiles: a logical target's routes, with their retry and timeout settings.
//!
//! The control plane sends them (`GetProfile`); they decide which requests may be retried
//! and how long one may take.

use std::time::Duration;

/// A target's profile.
#[derive(Clone, Debug, Default)]
pub struct Profile {
    pub routes: Vec<Route>,
}

/// One route of a profile.
#[derive(Clone, Debug, Default)]
pub struct Route {
    /// The route's name (its `rt_route` metric label).
    pub name: String,
    /// A failed request on this route may be sent again.
    pub is_retryable: bool,
    /// The whole request, retries included, fails after this long.
    pub timeout: Option<Duration>,
}
