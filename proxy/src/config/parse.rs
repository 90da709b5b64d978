//! Parsers for the value formats Linkerd uses in its environment variables.

use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::time::Duration;

/// A set of TCP ports, kept as sorted, merged inclusive ranges.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PortSet(Vec<RangeInclusive<u16>>);

impl PortSet {
    /// Builds a set from ranges in any order; overlapping ranges are merged.
    pub fn from_ranges(ranges: impl IntoIterator<Item = RangeInclusive<u16>>) -> Self {
        let mut ranges: Vec<RangeInclusive<u16>> = ranges.into_iter().collect();
        ranges.sort_by_key(|r| *r.start());
        let mut merged: Vec<RangeInclusive<u16>> = Vec::with_capacity(ranges.len());
        for r in ranges {
            match merged.last_mut() {
                Some(last) if u32::from(*r.start()) <= u32::from(*last.end()) + 1 => {
                    if r.end() > last.end() {
                        *last = *last.start()..=*r.end();
                    }
                }
                _ => merged.push(r),
            }
        }
        PortSet(merged)
    }

    pub fn contains(&self, port: u16) -> bool {
        self.0.iter().any(|r| r.contains(&port))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn ranges(&self) -> &[RangeInclusive<u16>] {
        &self.0
    }
}

/// Parses Linkerd's duration format: an integer and a unit (`ms`, `s`, `m`, `h`, `d`).
///
/// A bare `0` is accepted, as Linkerd does; any other bare number is not, since its unit
/// would be a guess.
pub fn duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return None;
    }
    let magnitude: u64 = s[..digits].parse().ok()?;
    let secs = |factor: u64| magnitude.checked_mul(factor).map(Duration::from_secs);
    match &s[digits..] {
        "" if magnitude == 0 => Some(Duration::ZERO),
        "ms" => Some(Duration::from_millis(magnitude)),
        "s" => secs(1),
        "m" => secs(60),
        "h" => secs(60 * 60),
        "d" => secs(24 * 60 * 60),
        _ => None,
    }
}

/// Parses a comma-separated list of ports and `low-high` ranges, ignoring blanks.
pub fn ports(s: &str) -> Result<PortSet, String> {
    let mut ranges = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (low, high) = match part.split_once('-') {
            Some((low, high)) => (port(low.trim(), part)?, port(high.trim(), part)?),
            None => {
                let p = port(part, part)?;
                (p, p)
            }
        };
        if high < low {
            return Err(format!("range {part:?} ends before it starts"));
        }
        ranges.push(low..=high);
    }
    Ok(PortSet::from_ranges(ranges))
}

fn port(s: &str, part: &str) -> Result<u16, String> {
    s.parse::<u16>()
        .map_err(|_| format!("{part:?} is not a port or a port range (1-65535)"))
}

/// Parses `IP:PORT`, with IPv6 addresses in brackets.
pub fn socket_addr(s: &str) -> Option<SocketAddr> {
    s.trim().parse().ok()
}

/// Parses one or two comma-separated socket addresses (Linkerd's dual-stack form).
pub fn socket_addrs(s: &str) -> Option<Vec<SocketAddr>> {
    let addrs: Option<Vec<SocketAddr>> = s.split(',').map(socket_addr).collect();
    addrs.filter(|a| !a.is_empty() && a.len() <= 2)
}

/// Parses `true` or `false`, as Go and Linkerd write them.
pub fn boolean(s: &str) -> Option<bool> {
    match s.trim() {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

/// Parses a byte size: a plain number, or one with a `Ki`/`Mi` suffix.
pub fn bytes(s: &str) -> Option<usize> {
    let s = s.trim();
    let (num, factor) = if let Some(n) = s.strip_suffix("Ki") {
        (n, 1024)
    } else if let Some(n) = s.strip_suffix("Mi") {
        (n, 1024 * 1024)
    } else {
        (s, 1)
    };
    num.parse::<usize>().ok()?.checked_mul(factor)
}
