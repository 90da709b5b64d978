//! The names and formats that the CLI, the injector, the controller and the proxy must agree on,
//! in one place so they cannot drift. They are Linkerd's, so Linkerd's manifests, tooling and
//! proxies carry over.
//!
//! This crate has no dependencies: the proxy links it too.

pub mod annotations;
pub mod containers;
pub mod duration;
pub mod identity;
pub mod labels;
pub mod ports;
pub mod resources;

pub use duration::{DurationError, format_duration, parse_duration};
