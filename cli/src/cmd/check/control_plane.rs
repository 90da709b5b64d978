//! The control plane: its namespace, configuration, RBAC, CRDs, webhook, Deployments and pods.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use mesh_names::{containers, resources};

use super::gather::{ControlPlane, Fetch};
use super::pods;
use super::report::{Check, Report};

const INSTALL_HINT: &str = "install the control plane: mesh install --crds | kubectl apply -f - && mesh install | kubectl apply -f -";

/// Adds the control plane categories to `report`. Returns the control plane's version, if known,
/// for the data plane checks to compare proxies against.
pub fn checks(
    cp: &ControlPlane,
    ns: &str,
    cli_version: &str,
    now: i64,
    report: &mut Report,
) -> Option<String> {
    let description = "control plane namespace exists";
    let namespace = match &cp.namespace {
        Ok(Some(_)) => Check::pass(description),
        Ok(None) => Check::fail(
            description,
            format!("The \"{ns}\" namespace does not exist"),
            INSTALL_HINT,
        ),
        Err(e) => Check::fail(
            description,
            format!("cannot read namespace {ns}: {e}"),
            "check the API server's health",
        ),
    };
    if namespace.outcome != super::report::Outcome::Success {
        // Everything else would fail for the same reason.
        report.push("linkerd-existence", vec![namespace]);
        return None;
    }
    report.push(
        "linkerd-existence",
        vec![
            namespace,
            exists(&cp.config, "'linkerd-config' config map exists", || {
                format!("configmap {ns}/{}", resources::CONFIG)
            }),
            deployments_ready(&cp.deployments, ns),
            pods_ready(&cp.pods, ns),
        ],
    );
    report.push(
        "linkerd-config",
        vec![
            named(
                "control plane ClusterRoles exist",
                "clusterrole",
                &resources::cluster_roles(ns),
                names_of(&cp.cluster_roles, |r| r.metadata.name.clone()),
            ),
            named(
                "control plane ClusterRoleBindings exist",
                "clusterrolebinding",
                &resources::cluster_roles(ns),
                names_of(&cp.cluster_role_bindings, |r| r.metadata.name.clone()),
            ),
            named(
                "control plane ServiceAccounts exist",
                "serviceaccount",
                &resources::COMPONENTS
                    .iter()
                    .map(|c| format!("{ns}/{c}"))
                    .collect::<Vec<_>>(),
                names_of(&cp.service_accounts, |sa| {
                    Some(format!("{ns}/{}", sa.metadata.name.as_deref()?))
                }),
            ),
            crds(cp),
            exists(
                &cp.webhook,
                "control plane MutatingWebhookConfigurations exist",
                || {
                    format!(
                        "mutatingwebhookconfiguration {}",
                        resources::INJECTOR_WEBHOOK
                    )
                },
            ),
        ],
    );
    report.push(
        "linkerd-identity",
        super::identity::identity(&cp.trust_roots, &cp.issuer, ns, now),
    );
    report.push(
        "linkerd-webhooks-and-apisvc-tls",
        super::identity::webhook(&cp.webhook, &cp.injector_tls, ns, now),
    );
    let control_plane_version = version(cp);
    report.push(
        "linkerd-control-plane-proxy",
        proxies(&cp.pods, ns, cli_version),
    );
    let description = "can retrieve the control plane version";
    let mut versions = Vec::new();
    match &control_plane_version {
        Some(v) => {
            versions.push(Check::pass(description).detail(format!("control plane version {v}")));
            let description = "control plane and cli versions match";
            versions.push(if pods::same_version(v, cli_version) {
                Check::pass(description)
            } else {
                Check::warn(
                    description,
                    format!("control plane running {v} but cli running {cli_version}"),
                    "upgrade the one that is behind: mesh install | kubectl apply -f -, or a matching mesh CLI",
                )
            });
        }
        None => versions.push(Check::warn(
            description,
            format!(
                "neither configmap {ns}/{} nor the control plane pods name a version",
                resources::CONFIG
            ),
            INSTALL_HINT,
        )),
    }
    report.push("control-plane-version", versions);
    control_plane_version
}

fn exists<T>(found: &Fetch<Option<T>>, description: &str, what: impl Fn() -> String) -> Check {
    match found {
        Ok(Some(_)) => Check::pass(description),
        Ok(None) => Check::fail(
            description,
            format!("{} does not exist", what()),
            INSTALL_HINT,
        ),
        Err(e) => Check::fail(
            description,
            format!("cannot read {}: {e}", what()),
            "check the API server's health",
        ),
    }
}

fn names_of<T>(list: &Fetch<Vec<T>>, name: impl Fn(&T) -> Option<String>) -> Fetch<Vec<String>> {
    list.as_ref()
        .map(|items| items.iter().filter_map(&name).collect())
        .map_err(Clone::clone)
}

fn named(description: &str, kind: &str, want: &[String], have: Fetch<Vec<String>>) -> Check {
    let have = match have {
        Ok(have) => have,
        Err(e) => {
            return Check::fail(
                description,
                format!("cannot list {kind}s: {e}"),
                "check that you may list them",
            );
        }
    };
    let missing: Vec<&String> = want.iter().filter(|w| !have.contains(w)).collect();
    if missing.is_empty() {
        return Check::pass(description);
    }
    let list: Vec<String> = missing.iter().map(|m| format!("{kind} {m}")).collect();
    Check::fail(
        description,
        format!("missing {}", list.join(", ")),
        INSTALL_HINT,
    )
}

fn crds(cp: &ControlPlane) -> Check {
    let description = "control plane CustomResourceDefinitions exist";
    let mut missing = Vec::new();
    for (name, found) in &cp.crds {
        match found {
            Ok(Some(_)) => {}
            Ok(None) => missing.push(name.to_string()),
            Err(e) => {
                return Check::fail(
                    description,
                    format!("cannot read CRD {name}: {e}"),
                    "check the API server's health",
                );
            }
        }
    }
    if missing.is_empty() {
        Check::pass(description)
    } else {
        Check::fail(
            description,
            format!("missing {}", missing.join(", ")),
            "install the CRDs: mesh install --crds | kubectl apply -f -",
        )
    }
}

fn deployments_ready(deployments: &Fetch<Vec<Deployment>>, ns: &str) -> Check {
    let description = "control plane deployments are ready";
    let deployments = match deployments {
        Ok(d) => d,
        Err(e) => {
            return Check::fail(
                description,
                format!("cannot list deployments in {ns}: {e}"),
                "check that you may list them",
            );
        }
    };
    let mut problems = Vec::new();
    let mut retryable = true;
    for component in resources::COMPONENTS {
        let Some(deploy) = deployments
            .iter()
            .find(|d| d.metadata.name.as_deref() == Some(component))
        else {
            problems.push(format!("deployment {ns}/{component} does not exist"));
            retryable = false;
            continue;
        };
        let want = deploy.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
        let ready = deploy
            .status
            .as_ref()
            .and_then(|s| s.ready_replicas)
            .unwrap_or(0);
        if ready < want {
            problems.push(format!(
                "deployment {ns}/{component}: {ready}/{want} replicas ready"
            ));
        }
    }
    if problems.is_empty() {
        return Check::pass(description);
    }
    let check = Check::fail(
        description,
        problems.join("\n"),
        format!("see what the pods are doing: kubectl get pods -n {ns}"),
    );
    if retryable { check.retryable() } else { check }
}

fn pods_ready(pods: &Fetch<Vec<Pod>>, ns: &str) -> Check {
    let description = "control plane pods are ready";
    let pods = match pods {
        Ok(p) => p,
        Err(e) => {
            return Check::fail(
                description,
                format!("cannot list pods in {ns}: {e}"),
                "check that you may list pods",
            );
        }
    };
    let running: Vec<&Pod> = pods.iter().filter(|p| !pods::finished(p)).collect();
    if running.is_empty() {
        return Check::fail(
            description,
            format!("no control plane pods found in namespace {ns}"),
            format!("see what the deployments are doing: kubectl get deploy -n {ns}"),
        )
        .retryable();
    }
    let not_ready: Vec<String> = running
        .iter()
        .filter(|p| !pods::ready(p))
        .map(|p| {
            let phase = p
                .status
                .as_ref()
                .and_then(|s| s.phase.as_deref())
                .unwrap_or("Unknown");
            format!("pod {} is not ready ({phase})", pods::id(p))
        })
        .collect();
    if not_ready.is_empty() {
        Check::pass(description).detail(format!("{} pods ready", running.len()))
    } else {
        Check::fail(
            description,
            not_ready.join("\n"),
            format!("see why: kubectl describe pods -n {ns}"),
        )
        .retryable()
    }
}

fn proxies(pods: &Fetch<Vec<Pod>>, ns: &str, cli_version: &str) -> Vec<Check> {
    let description = "control plane proxies are healthy";
    let pods = match pods {
        Ok(p) => p,
        Err(e) => {
            return vec![Check::fail(
                description,
                format!("cannot list pods in {ns}: {e}"),
                "check that you may list pods",
            )];
        }
    };
    let running: Vec<&Pod> = pods.iter().filter(|p| !pods::finished(p)).collect();
    let mut problems = Vec::new();
    let mut retryable = true;
    for pod in &running {
        if pods::proxy(pod).is_none() {
            problems.push(format!(
                "pod {} has no {} container",
                pods::id(pod),
                containers::PROXY
            ));
            retryable = false;
        } else if !pods::proxy_ready(pod) {
            problems.push(format!(
                "pod {}: {} is not ready",
                pods::id(pod),
                containers::PROXY
            ));
        }
    }
    let healthy = if problems.is_empty() {
        Check::pass(description)
    } else {
        let check = Check::fail(
            description,
            problems.join("\n"),
            format!(
                "see the proxy logs: kubectl logs -n {ns} <pod> -c {}",
                containers::PROXY
            ),
        );
        if retryable { check.retryable() } else { check }
    };
    let description = "control plane proxies and cli versions match";
    let off: Vec<String> = running
        .iter()
        .filter_map(|p| {
            let v = pods::proxy_version(p)?;
            (!pods::same_version(&v, cli_version))
                .then(|| format!("{} running {v} but cli running {cli_version}", pods::id(p)))
        })
        .collect();
    let versions = if off.is_empty() {
        Check::pass(description)
    } else {
        Check::warn(
            description,
            off.join("\n"),
            "upgrade the control plane: mesh install | kubectl apply -f -",
        )
    };
    vec![healthy, versions]
}

/// The version `mesh install` recorded in `linkerd-config`, else what the control plane's proxies
/// say.
fn version(cp: &ControlPlane) -> Option<String> {
    let from_config = cp
        .config
        .as_ref()
        .ok()
        .and_then(Option::as_ref)
        .and_then(config_version);
    from_config.or_else(|| {
        let pods = cp.pods.as_ref().ok()?;
        pods.iter().find_map(pods::proxy_version)
    })
}

/// `meshVersion:` (or Linkerd's `linkerdVersion:`) at the top level of the `values` key.
fn config_version(cm: &ConfigMap) -> Option<String> {
    let values = cm.data.as_ref()?.get("values")?;
    values.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        if key != "meshVersion" && key != "linkerdVersion" {
            return None;
        }
        let value = value.trim().trim_matches('"').trim_matches('\'');
        (!value.is_empty()).then(|| value.to_string())
    })
}
