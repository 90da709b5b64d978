//! The cluster itself: can we talk to it, is it new enough, and (with `--pre`) may we install.

use k8s_openapi::api::core::v1::Node;

use super::gather::{Fetch, PreInstall};
use super::report::Check;

/// Native sidecars (init containers with `restartPolicy: Always`) are on by default from 1.29.
pub const MIN_VERSION: (u32, u32) = (1, 29);

/// Heartbeats further from our clock than this suggest skew that breaks certificate validity.
const MAX_CLOCK_SKEW_SECS: i64 = 5 * 60;

pub fn api(server: &str) -> Vec<Check> {
    vec![
        Check::pass("can initialize the client").detail(format!("API server {server}")),
        Check::pass("can query the Kubernetes API"),
    ]
}

pub fn version(server_version: Option<&(u32, u32, String)>) -> Vec<Check> {
    let description = "is running the minimum Kubernetes API version";
    let check = match server_version {
        Some((major, minor, git)) if (*major, *minor) >= MIN_VERSION => {
            Check::pass(description).detail(format!("server version {git}"))
        }
        Some((_, _, git)) => Check::fail(
            description,
            format!(
                "Kubernetes is on version [{git}], but version [{}.{}.0] or more recent is required",
                MIN_VERSION.0, MIN_VERSION.1
            ),
            "upgrade the cluster: mesh runs the proxy as a native sidecar, which needs Kubernetes 1.29 or later",
        ),
        None => Check::fail(
            description,
            "cannot determine the Kubernetes version",
            "check that the API server answers GET /version",
        ),
    };
    vec![check]
}

pub fn pre_install(pre: &PreInstall, ns: &str, now: i64) -> Vec<Check> {
    let mut checks = Vec::new();
    let description = "control plane namespace does not already exist";
    checks.push(match &pre.namespace {
        Ok(None) => Check::pass(description),
        Ok(Some(_)) => Check::fail(
            description,
            format!("The \"{ns}\" namespace already exists"),
            format!(
                "mesh is already installed there; check it with `mesh check -L {ns}`, or install into \
                 another namespace with -L"
            ),
        ),
        Err(e) => Check::fail(description, format!("cannot read namespace {ns}: {e}"), "check the API server's health"),
    });
    for (access, allowed) in &pre.access {
        let description = if access.verb == "get" {
            format!("can {}", access.what)
        } else {
            format!("can create {}", access.what)
        };
        let scope = if access.namespaced {
            format!(" in namespace {ns}")
        } else {
            " cluster-wide".to_string()
        };
        let resource = if access.group.is_empty() {
            access.resource.to_string()
        } else {
            format!("{}.{}", access.resource, access.group)
        };
        checks.push(match allowed {
            Ok(true) => Check::pass(description),
            Ok(false) => Check::fail(
                description,
                format!("not allowed to {} {resource}{scope}", access.verb),
                "mesh install needs cluster-admin-like rights; ask your cluster administrator, or run as a user who has them",
            ),
            Err(e) => Check::fail(
                description,
                format!("cannot ask whether we may {} {resource}: {e}", access.verb),
                "check that the API server serves SelfSubjectAccessReviews",
            ),
        });
    }
    checks.push(clock_skew(&pre.nodes, now));
    checks
}

fn clock_skew(nodes: &Fetch<Vec<Node>>, now: i64) -> Check {
    let description = "no clock skew detected";
    let nodes = match nodes {
        Ok(nodes) => nodes,
        Err(e) => {
            return Check::warn(
                description,
                format!("cannot list nodes: {e}"),
                "check that you may list nodes",
            );
        }
    };
    let mut skewed = Vec::new();
    for node in nodes {
        let heartbeat = node
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))
            .and_then(|c| c.last_heartbeat_time.as_ref())
            .map(|t| t.0.as_second());
        if let Some(heartbeat) = heartbeat {
            let skew = (now - heartbeat).abs();
            if skew > MAX_CLOCK_SKEW_SECS {
                let name = node.metadata.name.as_deref().unwrap_or("?");
                skewed.push(format!(
                    "node {name} last reported {skew}s away from this machine's clock"
                ));
            }
        }
    }
    if skewed.is_empty() {
        Check::pass(description).detail(format!("{} nodes checked", nodes.len()))
    } else {
        Check::warn(
            description,
            format!("clock skew detected:\n{}", skewed.join("\n")),
            "certificates are time-bound; sync the clocks (NTP) of this machine and the nodes",
        )
    }
}
