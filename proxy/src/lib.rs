//! mesh-proxy: the sidecar data plane.
//!
//! `main.rs` stays thin; everything lives in this library so tests can drive it in-process.

pub mod init;
