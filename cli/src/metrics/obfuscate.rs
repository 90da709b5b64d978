//! `--obfuscate`: label values that name workloads, hosts and identities become short hashes,
//! as Linkerd's `diagnostics proxy-metrics --obfuscate` makes them.

use std::borrow::Cow;
use std::fmt::Write;

use mesh_names::metrics as m;

use super::parse::{ParseError, parse, render};

/// The labels whose values are hashed, as Linkerd lists them.
const SECRET_LABELS: [&str; 6] = [
    m::AUTHORITY,
    m::CLIENT_ID,
    m::SERVER_ID,
    m::TARGET_ADDR,
    m::DST_SERVICE,
    m::DST_NAMESPACE,
];

/// Rewrites a `/metrics` page with each value of a [`SECRET_LABELS`] label replaced by the
/// first four bytes of its SHA-256, in hex.
pub fn obfuscate(text: &str) -> Result<String, ParseError> {
    let mut exposition = parse(text)?;
    for family in &mut exposition.families {
        for sample in &mut family.samples {
            for (name, value) in &mut sample.labels {
                if SECRET_LABELS.contains(name) {
                    *value = Cow::Owned(hash(value));
                }
            }
        }
    }
    let mut out = String::with_capacity(text.len());
    render(&exposition, &mut out);
    Ok(out)
}

fn hash(value: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, value.as_bytes());
    let mut out = String::with_capacity(8);
    for byte in &digest.as_ref()[..4] {
        let _ = write!(out, "{byte:02x}");
    }
    out
}
