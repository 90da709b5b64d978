//! Fuzzing the HTTP/1 heads (the client's request head the lean path rewrites, the upstream's
//! response head both paths parse) and the body decoder (chunked, with extensions and
//! trailers).
//!
//! A few hundred inputs per target in a normal `cargo test`; `MESH_FUZZ_CASES=N` runs N (see
//! `crate::fuzz_runner` and `cargo xtask fuzz`). Here and not beside the code it tests, so that
//! the parsers' files hold only the parsers.

mod chunked;
mod head;
