//! HTTP routes of an inbound policy, and which one a request takes.
//!
//! The control plane may split a port's HTTP traffic into routes (Gateway API `HTTPRoute`s
//! and `GRPCRoute`s, and the probe routes Linkerd's policy controller adds for a pod's
//! kubelet probes), each with authorizations of its own. A request takes the most specific
//! match, in the Gateway API's order: the host (an exact name before a wildcard, longer
//! wildcards first), then the path (exact, then the longest prefix, then a regular
//! expression), then a method, then the most header matches, then the most query
//! parameter matches; among equals, the first listed. Route filters (redirects, header
//! changes, injected failures) are not applied.

use std::sync::Arc;

use http::{HeaderName, Method, Request};
use regex_lite::Regex;

use super::{Authorization, Meta};

/// One route: the hosts it serves (none: every host) and its rules.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    pub hosts: Vec<HostMatch>,
    pub rules: Vec<Rule>,
}

/// Requests a rule takes (none: every request), and who may send them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub matches: Vec<RequestMatch>,
    /// The `route_*` labels.
    pub meta: Arc<Meta>,
    /// The route's authorizations, followed by the server's.
    pub authorizations: Arc<[Authorization]>,
}

/// A host name, lowercase, without a trailing dot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostMatch {
    Exact(String),
    /// `*.example.com`, kept as `.example.com`.
    Suffix(String),
}

/// One way a request can match a rule: every part given must match.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestMatch {
    pub path: Option<PathMatch>,
    pub headers: Vec<(HeaderName, ValueMatch)>,
    pub query: Vec<(String, ValueMatch)>,
    pub method: Option<Method>,
}

#[derive(Clone, Debug)]
pub enum PathMatch {
    Exact(String),
    /// Whole path segments: `/foo` takes `/foo` and `/foo/bar`, not `/foobar`.
    Prefix(String),
    /// Matched against the whole path.
    Regex(Regex),
}

#[derive(Clone, Debug)]
pub enum ValueMatch {
    Exact(Vec<u8>),
    /// Matched against the whole value.
    Regex(Regex),
}

impl PartialEq for PathMatch {
    fn eq(&self, other: &PathMatch) -> bool {
        match (self, other) {
            (PathMatch::Exact(a), PathMatch::Exact(b))
            | (PathMatch::Prefix(a), PathMatch::Prefix(b)) => a == b,
            (PathMatch::Regex(a), PathMatch::Regex(b)) => a.as_str() == b.as_str(),
            _ => false,
        }
    }
}

impl Eq for PathMatch {}

impl PartialEq for ValueMatch {
    fn eq(&self, other: &ValueMatch) -> bool {
        match (self, other) {
            (ValueMatch::Exact(a), ValueMatch::Exact(b)) => a == b,
            (ValueMatch::Regex(a), ValueMatch::Regex(b)) => a.as_str() == b.as_str(),
            _ => false,
        }
    }
}

impl Eq for ValueMatch {}

/// The longest regular expression accepted from the control plane.
pub const MAX_REGEX_BYTES: usize = 1024;

/// Compiles `pattern` to match whole strings; `None` if it is too long or invalid.
pub fn whole_regex(pattern: &str) -> Option<Regex> {
    if pattern.len() > MAX_REGEX_BYTES {
        return None;
    }
    regex_lite::RegexBuilder::new(&format!("^(?:{pattern})$"))
        .size_limit(1 << 20)
        .build()
        .ok()
}

/// The rule `req` takes, if any.
pub fn find<'r, B>(routes: &'r [Route], req: &Request<B>) -> Option<&'r Rule> {
    let host = request_host(req);
    let mut best: Option<((u8, usize), Rank, &Rule)> = None;
    for route in routes {
        let Some(host_rank) = host_rank(&route.hosts, host) else {
            continue;
        };
        for rule in &route.rules {
            let rank = if rule.matches.is_empty() {
                Some(Rank::ANY)
            } else {
                rule.matches.iter().filter_map(|m| m.rank(req)).max()
            };
            let Some(rank) = rank else { continue };
            if best
                .as_ref()
                .is_none_or(|(h, r, _)| (host_rank, rank) > (*h, *r))
            {
                best = Some((host_rank, rank, rule));
            }
        }
    }
    best.map(|(_, _, rule)| rule)
}

/// How specific a match is; larger wins.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Rank {
    /// 3 exact, 2 prefix, 1 regex.
    path_kind: u8,
    path_len: usize,
    method: bool,
    headers: usize,
    query: usize,
}

impl Rank {
    /// A rule without matches: as a prefix match of `/`.
    const ANY: Rank = Rank {
        path_kind: 2,
        path_len: 1,
        method: false,
        headers: 0,
        query: 0,
    };
}

impl RequestMatch {
    fn rank<B>(&self, req: &Request<B>) -> Option<Rank> {
        let path = req.uri().path();
        let (path_kind, path_len) = match &self.path {
            None => (2, 1),
            Some(PathMatch::Exact(p)) => (p == path).then_some((3, p.len()))?,
            Some(PathMatch::Prefix(p)) => prefix_matches(p, path).then_some((2, p.len()))?,
            Some(PathMatch::Regex(r)) => r.is_match(path).then_some((1, r.as_str().len()))?,
        };
        if let Some(m) = &self.method
            && m != req.method()
        {
            return None;
        }
        for (name, value) in &self.headers {
            let any = req.headers().get_all(name).iter().any(|v| match value {
                ValueMatch::Exact(e) => v.as_bytes() == e.as_slice(),
                ValueMatch::Regex(r) => v.to_str().is_ok_and(|s| r.is_match(s)),
            });
            if !any {
                return None;
            }
        }
        for (name, value) in &self.query {
            let found = req
                .uri()
                .query()
                .unwrap_or("")
                .split('&')
                .filter_map(|kv| kv.split_once('=').or(Some((kv, ""))))
                .find(|(k, _)| k == name)
                .map(|(_, v)| v)?;
            let ok = match value {
                ValueMatch::Exact(e) => found.as_bytes() == e.as_slice(),
                ValueMatch::Regex(r) => r.is_match(found),
            };
            if !ok {
                return None;
            }
        }
        Some(Rank {
            path_kind,
            path_len,
            method: self.method.is_some(),
            headers: self.headers.len(),
            query: self.query.len(),
        })
    }
}

/// Whether `prefix` takes `path` by whole segments.
fn prefix_matches(prefix: &str, path: &str) -> bool {
    let prefix = if prefix.len() > 1 {
        prefix.trim_end_matches('/')
    } else {
        prefix
    };
    path.starts_with(prefix)
        && (prefix.ends_with('/')
            || path.len() == prefix.len()
            || path.as_bytes().get(prefix.len()) == Some(&b'/'))
}

/// How well a route's hosts take `host` (any case): `None` if not at all; larger is more
/// specific. The routes' hosts are lowercase.
fn host_rank(hosts: &[HostMatch], host: Option<&str>) -> Option<(u8, usize)> {
    if hosts.is_empty() {
        return Some((0, 0));
    }
    let host = host?.as_bytes();
    hosts
        .iter()
        .filter_map(|m| match m {
            HostMatch::Exact(h) => h
                .as_bytes()
                .eq_ignore_ascii_case(host)
                .then_some((2, h.len())),
            HostMatch::Suffix(s) => {
                let start = host.len().checked_sub(s.len()).filter(|&n| n > 0)?;
                host[start..]
                    .eq_ignore_ascii_case(s.as_bytes())
                    .then_some((1, s.len()))
            }
        })
        .max()
}

/// The request's host, without port or trailing dot, as it came (any case).
fn request_host<B>(req: &Request<B>) -> Option<&str> {
    let host = match req.uri().host() {
        Some(h) => h,
        None => {
            let h = req.headers().get(http::header::HOST)?.to_str().ok()?;
            match h.rsplit_once(':') {
                Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
                _ => h,
            }
        }
    };
    Some(host.trim_end_matches('.'))
}
