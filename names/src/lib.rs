//! The names and formats that the CLI, the injector, the controller and the proxy must agree on,
//! in one place so they cannot drift. They are Linkerd's, so Linkerd's manifests, tooling and
//! proxies carry over.
//!
//! This crate has no dependencies, so that the proxy can link it too (it does not yet: its
//! variable names are still its own).

pub mod annotations;
pub mod containers;
pub mod duration;
pub mod env;
pub mod identity;
pub mod labels;
pub mod metrics;
pub mod policy;
pub mod ports;
pub mod resources;

pub use duration::{DurationError, format_duration, parse_duration};
