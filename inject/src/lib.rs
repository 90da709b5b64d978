//! mesh-inject: the manifest transforms behind `mesh inject`, `mesh uninject` and (later) the
//! injector webhook.
//!
//! The crate is pure: text in, edits and a report out. It does no I/O, starts no runtime and knows
//! nothing of a cluster, so the CLI and the webhook cannot drift apart.

pub mod yaml;
