//! Settings for the control plane's Destination service, and the formats of their values.

use std::fmt;
use std::net::IpAddr;

use super::{ConfigError, Reader};

/// Where the Destination service is and what the proxy asks it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DestinationConfig {
    /// `LINKERD2_PROXY_DESTINATION_SVC_ADDR`.
    pub addr: ControlAddr,
    /// `LINKERD2_PROXY_DESTINATION_CONTEXT`: the opaque token sent with every lookup as
    /// `context_token` (Linkerd's injector writes a JSON object naming the pod's namespace,
    /// node and pod).
    pub context: String,
    /// `LINKERD2_PROXY_DESTINATION_PROFILE_SUFFIXES`: the names the control plane is
    /// asked about.
    pub profile_suffixes: Suffixes,
    /// `LINKERD2_PROXY_DESTINATION_PROFILE_NETWORKS`: the addresses the control plane is
    /// asked about (every address when unset).
    pub profile_networks: Networks,
    /// `LINKERD2_PROXY_DESTINATION_SVC_NAME`: the identity the Destination service must
    /// present; the connection is mesh TLS when the proxy has an identity and the address
    /// is not loopback (`control::Transport`).
    pub identity: Option<String>,
}

/// A `host:port` address of a control-plane service. The host may be a name, looked up
/// again on every connection attempt, so a headless service's pods can come and go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ControlAddr {
    /// A DNS name (a trailing dot allowed), an IPv4 address, or an IPv6 address in
    /// brackets.
    pub host: String,
    pub port: u16,
}

impl ControlAddr {
    /// Whether the address is on loopback, as Linkerd decides it: a loopback IP, or the
    /// absolute name `localhost.` (any case). A bare `localhost` is not, since a pod's
    /// resolver may first try it under its search domains.
    pub fn is_loopback(&self) -> bool {
        let host = self
            .host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(&self.host);
        match host.parse::<IpAddr>() {
            Ok(ip) => ip.is_loopback(),
            Err(_) => host.eq_ignore_ascii_case("localhost."),
        }
    }
}

impl fmt::Display for ControlAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

/// DNS suffixes, in Linkerd's form: lowercase, each ending with a dot; `.` is every name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Suffixes(Vec<String>);

/// Linkerd's default: names inside the cluster.
pub const DEFAULT_PROFILE_SUFFIXES: &str = "svc.cluster.local.";

impl Suffixes {
    /// Whether `host` (with or without its trailing dot, any case) ends with one of the
    /// suffixes at a label boundary: `svc.cluster.local.` takes `web.ns.svc.cluster.local`
    /// but not `websvc.cluster.local`.
    pub fn contains(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.');
        if host.is_empty() {
            return false;
        }
        self.0.iter().any(|suffix| {
            let suffix = suffix.trim_end_matches('.');
            if suffix.is_empty() {
                return true;
            }
            let Some(rest) = host.len().checked_sub(suffix.len()) else {
                return false;
            };
            host[rest..].eq_ignore_ascii_case(suffix)
                && (rest == 0 || host.as_bytes()[rest - 1] == b'.')
        })
    }

    pub fn as_slice(&self) -> &[String] {
        &self.0
    }
}

/// IP networks; `None` is every address.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Networks(Option<Vec<(IpAddr, u8)>>);

impl Networks {
    /// Every address.
    pub fn all() -> Networks {
        Networks(None)
    }

    /// The networks listed; empty for every address.
    pub fn list(&self) -> &[(IpAddr, u8)] {
        self.0.as_deref().unwrap_or(&[])
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let Some(nets) = &self.0 else {
            return true;
        };
        nets.iter().any(|(net, len)| match (net, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(*len)).unwrap_or(0);
                u32::from(*net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(*len)).unwrap_or(0);
                u128::from(*net) & mask == u128::from(ip) & mask
            }
            _ => false,
        })
    }
}

/// Parses a comma-separated list of `IP/PREFIX` networks.
pub fn networks(s: &str) -> Option<Networks> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (ip, len) = part.split_once('/')?;
        let ip: IpAddr = ip.parse().ok()?;
        let len: u8 = len.parse().ok()?;
        let max = if ip.is_ipv4() { 32 } else { 128 };
        if len > max {
            return None;
        }
        out.push((ip, len));
    }
    Some(Networks(Some(out)))
}

/// Parses a comma-separated suffix list; empty entries are skipped, so an empty value
/// asks about no names (only addresses).
pub fn suffixes(s: &str) -> Option<Suffixes> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        if part != "." && !is_dns_name(part) {
            return None;
        }
        let mut suffix = part.to_ascii_lowercase();
        if !suffix.ends_with('.') {
            suffix.push('.');
        }
        if !out.contains(&suffix) {
            out.push(suffix);
        }
    }
    Some(Suffixes(out))
}

/// Parses `host:port`; the port must not be 0.
pub fn control_addr(s: &str) -> Option<ControlAddr> {
    let s = s.trim();
    let (host, port) = s.rsplit_once(':')?;
    let port: u16 = port.parse().ok().filter(|p| *p != 0)?;
    let valid = if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        v6.parse::<std::net::Ipv6Addr>().is_ok()
    } else {
        host.parse::<std::net::Ipv4Addr>().is_ok() || is_dns_name(host)
    };
    valid.then(|| ControlAddr {
        host: host.to_owned(),
        port,
    })
}

/// A DNS name: labels of letters, digits, `-` and `_`, 1 to 63 bytes each, 253 in all,
/// with an optional trailing dot.
pub(super) fn is_dns_name(s: &str) -> bool {
    let name = s.strip_suffix('.').unwrap_or(s);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && !label.starts_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

impl Reader<'_> {
    /// The `LINKERD2_PROXY_DESTINATION_*` variables; `None` without a service address.
    pub(super) fn destination(&mut self) -> Option<DestinationConfig> {
        use mesh_names::env::{DESTINATION_SVC_ADDR as ADDR, DESTINATION_SVC_NAME as NAME};
        const SUFFIXES: &str = "LINKERD2_PROXY_DESTINATION_PROFILE_SUFFIXES";
        let profile_suffixes = match self.env.var(SUFFIXES) {
            None => suffixes(DEFAULT_PROFILE_SUFFIXES).unwrap_or_default(),
            Some(value) => match suffixes(&value) {
                Some(suffixes) => suffixes,
                None => {
                    self.errors.push(ConfigError::Suffixes {
                        name: SUFFIXES,
                        value,
                    });
                    Suffixes::default()
                }
            },
        };
        const NETWORKS: &str = "LINKERD2_PROXY_DESTINATION_PROFILE_NETWORKS";
        let profile_networks = match self.env.var(NETWORKS) {
            None => Networks::all(),
            Some(value) => match networks(&value) {
                Some(networks) => networks,
                None => {
                    self.errors.push(ConfigError::Networks {
                        name: NETWORKS,
                        value,
                    });
                    Networks::all()
                }
            },
        };
        let value = self.env.var(ADDR).filter(|v| !v.trim().is_empty())?;
        let Some(addr) = control_addr(&value) else {
            self.errors
                .push(ConfigError::HostPort { name: ADDR, value });
            return None;
        };
        Some(DestinationConfig {
            addr,
            context: self
                .env
                .var("LINKERD2_PROXY_DESTINATION_CONTEXT")
                .unwrap_or_default(),
            profile_suffixes,
            profile_networks,
            identity: self.service_identity(NAME),
        })
    }

    /// The identity a control-plane service must present (`…_SVC_NAME`): unset or empty is
    /// `None`; anything else must be a DNS name without a trailing dot.
    pub(super) fn service_identity(&mut self, name: &'static str) -> Option<String> {
        let value = self.env.var(name).filter(|v| !v.trim().is_empty())?;
        self.check_identity_name(name, value)
    }

    /// `value` of the variable `name` as an identity name: a DNS name without a trailing
    /// dot, as certificates carry it; otherwise an error naming the variable.
    pub(super) fn check_identity_name(
        &mut self,
        name: &'static str,
        value: String,
    ) -> Option<String> {
        let trimmed = value.trim();
        if is_dns_name(trimmed) && !trimmed.ends_with('.') {
            Some(trimmed.to_owned())
        } else {
            self.errors.push(ConfigError::IdentityName { name, value });
            None
        }
    }
}
