//! What a `GetDestination` asks for: the path's forms and the context token, read as Linkerd
//! reads them.

use std::net::IpAddr;

use super::ServiceRef;

/// A lookup the server refuses, with the gRPC status Linkerd gives it.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum LookupError {
    /// `InvalidArgument`: the path is not a name or address the service resolves.
    #[error("{0}")]
    InvalidArgument(String),
    /// `NotFound`: the path names a Service that does not exist.
    #[error("{0}")]
    NotFound(String),
}

/// A parsed destination path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Authority {
    Ip(IpAddr, u16),
    /// `<svc>.<ns>.svc.<domain>`, or `<hostname>.<svc>.<ns>.svc.<domain>` for one endpoint of a
    /// (headless) service.
    Name {
        service: ServiceRef,
        instance: Option<String>,
        port: u16,
    },
}

/// Splits `host[:port]` (port 80 when absent) and reads the host as an IP or a service name.
pub fn parse(path: &str, cluster_domain: &str) -> Result<Authority, LookupError> {
    let invalid = || LookupError::InvalidArgument(format!("Invalid authority: {path}"));
    let (host, port) = host_and_port(path).ok_or_else(invalid)?;
    let host = host.strip_suffix('.').unwrap_or(host);
    if let Ok(ip) = host.trim_start_matches('[').trim_end_matches(']').parse() {
        return Ok(Authority::Ip(ip, port));
    }
    let (service, instance) = service_name(host, cluster_domain).ok_or_else(invalid)?;
    Ok(Authority::Name {
        service,
        instance,
        port,
    })
}

fn host_and_port(path: &str) -> Option<(&str, u16)> {
    if !path.contains(':') {
        return (!path.is_empty()).then_some((path, 80));
    }
    let (host, port) = path.rsplit_once(':')?;
    if host.contains(':') && !(host.starts_with('[') && host.ends_with(']')) {
        return None;
    }
    let port = port.parse::<u16>().ok().filter(|&p| p != 0)?;
    (!host.is_empty()).then_some((host, port))
}

/// `<svc>.<ns>.svc.<domain>` or `<instance>.<svc>.<ns>.svc.<domain>`.
pub fn service_name(host: &str, cluster_domain: &str) -> Option<(ServiceRef, Option<String>)> {
    let host = host.strip_suffix('.').unwrap_or(host);
    let suffix = format!(".svc.{}", cluster_domain.trim_end_matches('.'));
    let labels: Vec<&str> = host.strip_suffix(suffix.as_str())?.split('.').collect();
    if labels.iter().any(|l| l.is_empty()) {
        return None;
    }
    let (instance, name, namespace) = match labels.as_slice() {
        [name, ns] => (None, *name, *ns),
        [instance, name, ns] => (Some(instance.to_string()), *name, *ns),
        _ => return None,
    };
    Some((
        ServiceRef {
            namespace: namespace.to_string(),
            name: name.to_string(),
        },
        instance,
    ))
}

/// The client's namespace from its context token: JSON `{"ns":"..."}`, or the older `ns:<ns>`.
pub fn context_namespace(token: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Token {
        ns: Option<String>,
    }
    if token.is_empty() {
        return None;
    }
    match serde_json::from_str::<Token>(token) {
        Ok(t) => t.ns.filter(|ns| !ns.is_empty()),
        Err(_) => token
            .strip_prefix("ns:")
            .filter(|ns| !ns.is_empty() && !ns.contains(':'))
            .map(str::to_string),
    }
}
