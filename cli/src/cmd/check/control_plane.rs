//! The control plane: its namespace, configuration, RBAC, CRDs, webhook and Deployments; what
//! runs is judged in [`super::running`].

use k8s_openapi::api::apps::v1::Deployment;
use mesh_names::resources;

use super::gather::{ControlPlane, Fetch};
use super::pods;
use super::report::{Check, Report};
use super::running::{self, Injector};

const INSTALL_HINT: &str = "install the control plane: mesh install --crds | kubectl apply -f - && mesh install | kubectl apply -f -";

/// What the data plane checks need to know about the control plane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    /// The version the running control plane reports, to compare proxies against.
    pub version: Option<String>,
    pub injector: Injector,
    /// The `linkerd.io/trust-root-sha256` pods injected now get, to find pods that trust other
    /// anchors.
    pub trust_anchors_sha256: Option<String>,
}

/// Adds the control plane categories to `report`, and returns what the data plane checks need.
pub fn checks(
    cp: &ControlPlane,
    ns: &str,
    cli_version: &str,
    now: i64,
    report: &mut Report,
) -> Facts {
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
        return Facts {
            version: None,
            injector: Injector::Down(format!("the control plane namespace {ns} does not exist")),
            trust_anchors_sha256: None,
        };
    }
    report.push(
        "linkerd-existence",
        vec![
            namespace,
            exists(&cp.config, "'linkerd-config' config map exists", || {
                format!("configmap {ns}/{}", resources::CONFIG)
            }),
            deployments_ready(&cp.deployments, ns),
            running::pods_ready(&cp.pods, ns),
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
        super::webhook::webhook(&cp.webhook, &cp.injector_tls, ns, now),
    );
    report.push("linkerd-api", running::admin(cp, ns));
    report.push(
        "linkerd-control-plane-proxy",
        running::proxies(&cp.pods, ns, cli_version),
    );
    let description = "can retrieve the control plane version";
    let mut versions = Vec::new();
    let version = running::version(cp, ns);
    match &version {
        Ok(v) => {
            versions.push(Check::pass(description).detail(format!("control plane version {v}")));
            let description = "control plane and cli versions match";
            versions.push(if pods::same_version(v, cli_version) {
                Check::pass(description)
            } else {
                Check::warn(
                    description,
                    format!("control plane running {v} but cli running {cli_version}"),
                    "upgrade the one that is behind: mesh upgrade | kubectl apply -f -, or a matching mesh CLI",
                )
            });
        }
        Err(why) => versions.push(
            Check::fail(
                description,
                why.clone(),
                format!("see why: kubectl describe pods -n {ns}"),
            )
            .retryable(),
        ),
    }
    report.push("control-plane-version", versions);
    Facts {
        version: version.ok(),
        injector: running::injector(cp, ns),
        trust_anchors_sha256: match &cp.trust_roots {
            Ok(Some(roots)) => roots
                .data
                .as_ref()
                .and_then(|d| d.get(resources::TRUST_ROOTS_KEY))
                .map(|pem| mesh_inject::manual::trust_anchors_sha256(pem)),
            _ => None,
        },
    }
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
