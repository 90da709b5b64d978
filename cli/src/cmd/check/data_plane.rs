//! `--proxy`: every pod in scope that should be meshed has a proxy, and every proxy is ready and
//! current. These run whether or not the control plane checks passed: they are independent facts.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use k8s_openapi::api::core::v1::{Namespace, Pod};
use mesh_names::annotations::TRUST_ROOT_SHA256;
use mesh_names::containers::PROXY as PROXY_CONTAINER;

use super::gather::DataPlane;
use super::pods::{self, Recreate};
use super::report::Check;
use super::running::Injector;

/// How many pods a message lists before it summarises the rest.
const LISTED: usize = 10;

pub fn checks(
    dp: &DataPlane,
    control_plane_version: Option<&str>,
    cli_version: &str,
    injector: &Injector,
) -> Vec<Check> {
    let mut checks = Vec::new();
    if let Some((ns, found)) = &dp.namespace {
        let description = "data plane namespace exists";
        let check = match found {
            Ok(Some(_)) => Check::pass(description),
            Ok(None) => Check::fail(
                description,
                format!("The \"{ns}\" namespace does not exist"),
                "name an existing namespace with -n, or leave -n out to check every namespace",
            ),
            Err(e) => Check::fail(
                description,
                format!("cannot read namespace {ns}: {e}"),
                "check the API server's health",
            ),
        };
        let missing = check.outcome != super::report::Outcome::Success;
        checks.push(check);
        if missing {
            return checks;
        }
    }
    let pods = match &dp.pods {
        Ok(pods) => pods,
        Err(e) => {
            checks.push(Check::fail(
                "data plane proxies are ready",
                format!("cannot list pods: {e}"),
                "check that you may list pods",
            ));
            return checks;
        }
    };
    let namespaces: HashMap<&str, &Namespace> = dp
        .namespaces
        .iter()
        .flatten()
        .filter_map(|ns| Some((ns.metadata.name.as_deref()?, ns)))
        .collect();

    let mut finished = 0usize;
    let mut uninjected: Vec<(&Pod, &str)> = Vec::new();
    let mut meshed: Vec<&Pod> = Vec::new();
    for pod in pods {
        if pods::finished(pod) {
            finished += 1;
            continue;
        }
        if pods::proxy(pod).is_some() {
            meshed.push(pod);
        } else {
            let ns = namespaces
                .get(pod.metadata.namespace.as_deref().unwrap_or(""))
                .copied();
            if let Some(reason) = pods::injection_reason(pod, ns) {
                uninjected.push((pod, reason));
            }
        }
    }

    checks.push(injected(&uninjected, pods.len(), finished, injector));
    checks.push(ready(
        &meshed,
        finished,
        dp.namespace.as_ref().map(|(ns, _)| ns.as_str()),
    ));
    if let Some(cp) = control_plane_version {
        checks.push(versions(
            &meshed,
            "data plane is up-to-date",
            |v| pods::older(v, cp) == Some(true),
            &format!("the control plane runs {cp}"),
        ));
    }
    checks.push(versions(
        &meshed,
        "data plane and cli versions match",
        |v| !pods::same_version(v, cli_version),
        &format!("this CLI is {cli_version}"),
    ));
    checks
}

fn listing<T>(items: &[T], line: impl Fn(&T) -> String) -> String {
    let mut out: Vec<String> = items
        .iter()
        .take(LISTED)
        .map(|i| format!("    {}", line(i)))
        .collect();
    if items.len() > LISTED {
        out.push(format!("    ...and {} more", items.len() - LISTED));
    }
    out.join("\n")
}

fn injected(
    uninjected: &[(&Pod, &str)],
    total: usize,
    finished: usize,
    injector: &Injector,
) -> Check {
    let description = "data plane pods are injected";
    if uninjected.is_empty() {
        return Check::pass(description).detail(format!(
            "{total} pods looked at, {finished} of them finished and skipped"
        ));
    }
    let mut error = format!(
        "{} should be meshed but {} no {PROXY_CONTAINER} container:\n{}",
        plural(uninjected.len(), "pod", "pods"),
        if uninjected.len() == 1 { "has" } else { "have" },
        listing(uninjected, |(pod, reason)| format!(
            "{} ({reason})",
            pods::id(pod)
        ))
    );
    // Workloads to restart and pods whose owner recreates them, per namespace; pods nothing
    // manages must be recreated by hand.
    let mut restarts: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut deletes: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut by_hand: Vec<String> = Vec::new();
    for (pod, _) in uninjected {
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        match pods::recreate(pod) {
            Recreate::Restart(workload) => {
                restarts.entry(ns).or_default().insert(workload);
            }
            Recreate::Delete => {
                let name = pod.metadata.name.clone().unwrap_or_default();
                deletes.entry(ns).or_default().insert(name);
            }
            Recreate::ByHand => by_hand.push(pods::id(pod)),
        }
    }
    // Only a running injector makes "started before injection was enabled" the explanation;
    // without one, new pods are not injected either, and restarting them would not help yet.
    let mut hint = match injector {
        Injector::Running => vec![
            "these pods started before injection was enabled; the proxy injector only sees new pods"
                .to_string(),
        ],
        Injector::Down(why) => {
            let why: Vec<String> = why.lines().map(|l| format!("    {l}")).collect();
            error.push_str(&format!(
                "\nthe proxy injector is not running, so no new pod is injected either:\n{}",
                why.join("\n")
            ));
            vec![
                "get the proxy injector running first (see the control plane checks), then recreate these pods"
                    .to_string(),
            ]
        }
    };
    for (ns, workloads) in &restarts {
        let list: Vec<&str> = workloads.iter().map(String::as_str).collect();
        hint.push(format!(
            "kubectl rollout restart -n {ns} {}",
            list.join(" ")
        ));
    }
    for (ns, names) in &deletes {
        let list: Vec<&str> = names.iter().map(String::as_str).collect();
        hint.push(format!("kubectl delete pod -n {ns} {}", list.join(" ")));
    }
    if !by_hand.is_empty() {
        hint.push(format!("delete and recreate: {}", by_hand.join(" ")));
    }
    Check::fail(description, error, hint.join("\n"))
}

fn ready(meshed: &[&Pod], finished: usize, namespace: Option<&str>) -> Check {
    let description = "data plane proxies are ready";
    if meshed.is_empty()
        && let Some(ns) = namespace
    {
        return Check::fail(
            description,
            format!("no pod in namespace {ns} has a {PROXY_CONTAINER} container"),
            format!(
                "mesh the namespace's workloads, e.g. kubectl get deploy -n {ns} -o yaml | mesh inject - | kubectl apply -f -"
            ),
        );
    }
    let not_ready: Vec<&&Pod> = meshed.iter().filter(|p| !pods::proxy_ready(p)).collect();
    if not_ready.is_empty() {
        return Check::pass(description).detail(format!(
            "{} meshed pods ready, {finished} finished pods skipped",
            meshed.len()
        ));
    }
    let first = not_ready[0];
    let error = format!(
        "{} not ready:\n{}",
        plural(not_ready.len(), "proxy is", "proxies are"),
        listing(&not_ready, |pod| {
            let phase = pod
                .status
                .as_ref()
                .and_then(|s| s.phase.as_deref())
                .unwrap_or("Unknown");
            format!("{} ({phase})", pods::id(pod))
        })
    );
    let hint = format!(
        "see why with: kubectl logs -n {} {} -c {PROXY_CONTAINER}",
        first.metadata.namespace.as_deref().unwrap_or(""),
        first.metadata.name.as_deref().unwrap_or("")
    );
    Check::fail(description, error, hint).retryable()
}

/// Linkerd's "data plane proxies certificate match CA": every meshed pod was injected with the
/// trust anchors installed now. A pod injected before the anchors changed keeps trusting the old
/// ones and, once peers hold certificates from the new ones, cannot reach them.
pub fn trust_anchors(dp: &DataPlane, current_sha256: &str) -> Check {
    let description = "data plane proxies certificate match CA";
    let pods = dp.pods.as_ref().map(Vec::as_slice).unwrap_or_default();
    let off: Vec<(&Pod, String)> = pods
        .iter()
        .filter(|p| !pods::finished(p) && pods::proxy(p).is_some())
        .filter_map(|p| {
            let sha = p.metadata.annotations.as_ref()?.get(TRUST_ROOT_SHA256)?;
            (sha != current_sha256).then(|| (p, sha.clone()))
        })
        .collect();
    if off.is_empty() {
        return Check::pass(description);
    }
    let error = format!(
        "{} the current trust anchors (linkerd-identity-trust-roots) and must be restarted:\n{}",
        plural(off.len(), "pod does not trust", "pods do not trust"),
        listing(&off, |(pod, _)| pods::id(pod))
    );
    let hint = restart_hint(off.iter().map(|(p, _)| *p), "trust the current anchors");
    Check::warn(description, error, hint)
}

fn versions(
    meshed: &[&Pod],
    description: &str,
    stale: impl Fn(&str) -> bool,
    reference: &str,
) -> Check {
    let off: Vec<(&&Pod, String)> = meshed
        .iter()
        .filter_map(|p| pods::proxy_version(p).filter(|v| stale(v)).map(|v| (p, v)))
        .collect();
    if off.is_empty() {
        return Check::pass(description);
    }
    let error = format!(
        "{} {reference}:\n{}",
        plural(
            off.len(),
            "proxy runs another version;",
            "proxies run other versions;"
        ),
        listing(&off, |(pod, v)| format!("{} runs {v}", pods::id(pod)))
    );
    let hint = restart_hint(off.iter().map(|(p, _)| **p), "pick up the current proxy");
    Check::warn(description, error, hint)
}

/// One example command that recreates `pods` so that they `why`: a rollout restart where kubectl
/// can do one, else a pod to delete.
fn restart_hint<'a>(pods: impl Iterator<Item = &'a Pod>, why: &str) -> String {
    let mut restarts: BTreeSet<String> = BTreeSet::new();
    let mut deletes: BTreeSet<String> = BTreeSet::new();
    for pod in pods {
        let ns = pod.metadata.namespace.as_deref().unwrap_or("");
        match pods::recreate(pod) {
            Recreate::Restart(w) => {
                restarts.insert(format!("-n {ns} {w}"));
            }
            Recreate::Delete => {
                let name = pod.metadata.name.as_deref().unwrap_or("");
                deletes.insert(format!("-n {ns} {name}"));
            }
            Recreate::ByHand => {}
        }
    }
    match (restarts.first(), deletes.first()) {
        (Some(example), _) => {
            format!("restart the workloads to {why}, e.g. kubectl rollout restart {example}")
        }
        (None, Some(example)) => {
            format!("recreate the pods to {why}, e.g. kubectl delete pod {example}")
        }
        (None, None) => format!("recreate the pods to {why}"),
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}
