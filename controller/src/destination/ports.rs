//! Port lists as Linkerd's annotations and flags write them: `25,443,8000-8100`, and on pods also
//! the names of container ports.

use std::collections::BTreeSet;

/// A set of ports, kept as sorted inclusive ranges so `1-65535` stays small.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PortSet(Vec<(u16, u16)>);

/// A port list that cannot be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid port {0:?}: expected a port, a range like 8000-8100 or a container port name")]
pub struct PortListError(pub String);

impl PortSet {
    /// Parses `text`; `named` resolves a container port name (pods only), and items it cannot
    /// resolve are skipped, as Linkerd skips them.
    pub fn parse(
        text: &str,
        named: impl Fn(&str) -> Option<u16>,
    ) -> Result<PortSet, PortListError> {
        let mut ranges = BTreeSet::new();
        for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            if let Some((lo, hi)) = item.split_once('-') {
                let (Some(lo), Some(hi)) = (port(lo), port(hi)) else {
                    return Err(PortListError(item.to_string()));
                };
                if lo > hi {
                    return Err(PortListError(item.to_string()));
                }
                ranges.insert((lo, hi));
            } else if let Some(p) = port(item) {
                ranges.insert((p, p));
            } else if item.bytes().any(|b| b.is_ascii_alphabetic())
                && item.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            {
                if let Some(p) = named(item) {
                    ranges.insert((p, p));
                }
            } else {
                return Err(PortListError(item.to_string()));
            }
        }
        Ok(PortSet(ranges.into_iter().collect()))
    }

    /// Parses a list that may not name ports (flags and services).
    pub fn parse_numeric(text: &str) -> Result<PortSet, PortListError> {
        PortSet::parse(text, |_| None)
    }

    pub fn contains(&self, port: u16) -> bool {
        self.0.iter().any(|&(lo, hi)| lo <= port && port <= hi)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

fn port(text: &str) -> Option<u16> {
    text.trim().parse::<u16>().ok().filter(|&p| p != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_ranges_and_names() {
        let set = PortSet::parse("25, 8000-8002,http,nope", |name| {
            (name == "http").then_some(8080)
        })
        .unwrap();
        assert!(set.contains(25) && set.contains(8001) && set.contains(8080));
        assert!(!set.contains(26) && !set.contains(8003));
        assert!(PortSet::parse_numeric("").unwrap().is_empty());
        assert!(PortSet::parse_numeric("9-1").is_err());
        assert!(PortSet::parse_numeric("1;2").is_err());
        assert!(PortSet::parse_numeric("70000").is_err());
    }
}
