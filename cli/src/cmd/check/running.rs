//! Whether the control plane actually runs: each component's pods and containers, their proxies,
//! what the controllers answer on their admin `/ready`, and the version the running pods report.
//! These checks judge what the pods and controllers report, never what was installed.

use k8s_openapi::api::core::v1::Pod;
use mesh_names::{containers, labels, ports, resources};

use super::gather::{AdminRead, ControlPlane, Fetch};
use super::pods;
use super::report::Check;

/// A control plane component.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Component {
    /// Its Deployment, which is also its ServiceAccount's name.
    pub deployment: &'static str,
    /// The value of its pods' `linkerd.io/control-plane-component` label, and its container's name.
    pub label: &'static str,
    /// The controller's admin port (`/ready`, `/metrics`).
    pub admin_port: u16,
}

pub const COMPONENTS: [Component; 3] = [
    Component {
        deployment: resources::DESTINATION,
        label: resources::DESTINATION_COMPONENT,
        admin_port: ports::DESTINATION_ADMIN,
    },
    Component {
        deployment: resources::IDENTITY,
        label: "identity",
        admin_port: ports::IDENTITY_ADMIN,
    },
    Component {
        deployment: resources::PROXY_INJECTOR,
        label: "proxy-injector",
        admin_port: ports::INJECTOR_ADMIN,
    },
];

/// The component a control plane pod belongs to, by its label.
pub fn component_of(pod: &Pod) -> Option<&'static Component> {
    let label = pod
        .metadata
        .labels
        .as_ref()?
        .get(labels::CONTROL_PLANE_COMPONENT)?;
    COMPONENTS.iter().find(|c| c.label == label)
}

/// Whether the proxy injector is running and answering, which decides what an uninjected pod
/// means: with it down, new pods are not injected either.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Injector {
    Running,
    /// Why it is not: the webhook configuration is missing, no pod runs, or none answers ready.
    Down(String),
}

/// Pods that have not finished.
fn live(pods: &[Pod]) -> Vec<&Pod> {
    pods.iter().filter(|p| !pods::finished(p)).collect()
}

fn of<'p>(live: &[&'p Pod], component: &Component) -> Vec<&'p Pod> {
    live.iter()
        .copied()
        .filter(|p| component_of(p) == Some(component))
        .collect()
}

/// `pod ns/name is not ready (Pending): container x is waiting: ImagePullBackOff: …`.
fn not_ready_line(pod: &Pod) -> String {
    format!(
        "pod {} is not ready ({}): {}",
        pods::id(pod),
        pods::phase(pod),
        pods::not_ready_reasons(pod).join("; ")
    )
}

/// Why no pod of `component` runs: each pod's reasons, or that there is none.
fn why_none_runs(pods: &[&Pod], component: &Component, ns: &str) -> String {
    if pods.is_empty() {
        return format!("deployment {ns}/{} has no pods", component.deployment);
    }
    pods.iter()
        .map(|p| not_ready_line(p))
        .collect::<Vec<_>>()
        .join("\n")
}

fn cannot_list(description: &str, ns: &str, e: &str) -> Check {
    Check::fail(
        description,
        format!("cannot list pods in {ns}: {e}"),
        "check that you may list pods",
    )
}

/// Every control plane pod runs and is ready, and every component has one; a pod that is not
/// names each failing container with the kubelet's reason.
pub fn pods_ready(pods: &Fetch<Vec<Pod>>, ns: &str) -> Check {
    let description = "control plane pods are ready";
    let pods = match pods {
        Ok(p) => p,
        Err(e) => return cannot_list(description, ns, e),
    };
    let running = live(pods);
    if running.is_empty() {
        return Check::fail(
            description,
            format!("no control plane pods found in namespace {ns}"),
            format!("see what the deployments are doing: kubectl get deploy -n {ns}"),
        )
        .retryable();
    }
    let mut problems: Vec<String> = running
        .iter()
        .filter(|p| !pods::ready(p))
        .map(|p| not_ready_line(p))
        .collect();
    for component in &COMPONENTS {
        if of(&running, component).is_empty() {
            problems.push(format!(
                "deployment {ns}/{} has no pods",
                component.deployment
            ));
        }
    }
    if problems.is_empty() {
        Check::pass(description).detail(format!("{} pods ready", running.len()))
    } else {
        Check::fail(
            description,
            problems.join("\n"),
            format!("see why: kubectl describe pods -n {ns}"),
        )
        .retryable()
    }
}

/// Every control plane pod has a proxy that runs and is ready, in a pod that runs and is ready,
/// and every component has such a pod.
pub fn proxies(pods: &Fetch<Vec<Pod>>, ns: &str, cli_version: &str) -> Vec<Check> {
    let description = "control plane proxies are healthy";
    let pods = match pods {
        Ok(p) => p,
        Err(e) => return vec![cannot_list(description, ns, e)],
    };
    let running = live(pods);
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
        } else if let Some(problem) = pods::proxy_problem(pod) {
            problems.push(format!("pod {}: {problem}", pods::id(pod)));
        }
    }
    for component in &COMPONENTS {
        let own = of(&running, component);
        if own.iter().any(|p| pods::ready(p) && pods::proxy_ready(p)) {
            continue;
        }
        problems.push(format!(
            "no {} pod runs with a ready proxy:\n{}",
            component.deployment,
            indent(&why_none_runs(&own, component, ns))
        ));
    }
    let healthy = if problems.is_empty() {
        Check::pass(description)
    } else {
        let check = Check::fail(
            description,
            problems.join("\n"),
            format!(
                "see why: kubectl describe pods -n {ns}, and the proxy logs: kubectl logs -n {ns} <pod> -c {}",
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
            "upgrade the control plane: mesh upgrade | kubectl apply -f -",
        )
    };
    vec![healthy, versions]
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Each controller answers `/ready` on its admin port, from every pod that runs.
pub fn admin(cp: &ControlPlane, ns: &str) -> Vec<Check> {
    COMPONENTS
        .iter()
        .map(|component| answers(cp, component, ns))
        .collect()
}

fn answers(cp: &ControlPlane, component: &Component, ns: &str) -> Check {
    let description = format!("{} answers ready on its admin port", component.deployment);
    let pods = match &cp.pods {
        Ok(p) => p,
        Err(e) => return cannot_list(&description, ns, e),
    };
    let reads: Vec<&AdminRead> = cp
        .admin
        .iter()
        .filter(|r| r.component == component.deployment)
        .collect();
    let hint = format!(
        "see why: kubectl describe pods -n {ns} -l {}={}, and kubectl logs -n {ns} deploy/{} -c {}",
        labels::CONTROL_PLANE_COMPONENT,
        component.label,
        component.deployment,
        component.label
    );
    if reads.is_empty() {
        let own = of(&live(pods), component);
        return Check::fail(
            description,
            format!(
                "no {} pod is running to ask:\n{}",
                component.deployment,
                indent(&why_none_runs(&own, component, ns))
            ),
            hint,
        )
        .retryable();
    }
    let failed: Vec<String> = reads
        .iter()
        .filter_map(|r| {
            let e = r.ready.as_ref().err()?;
            Some(format!("{}:{}/ready: {e}", r.pod, r.port))
        })
        .collect();
    if failed.is_empty() {
        Check::pass(description).detail(format!("{} pods answered", reads.len()))
    } else {
        Check::fail(description, failed.join("\n"), hint).retryable()
    }
}

/// Whether the injector runs: its webhook is configured, and one of its pods is ready and
/// answers ready.
pub fn injector(cp: &ControlPlane, ns: &str) -> Injector {
    match &cp.webhook {
        Ok(Some(_)) => {}
        Ok(None) => {
            return Injector::Down(format!(
                "mutatingwebhookconfiguration {} does not exist",
                resources::INJECTOR_WEBHOOK
            ));
        }
        Err(e) => return Injector::Down(format!("cannot read its webhook configuration: {e}")),
    }
    let pods = match &cp.pods {
        Ok(p) => p,
        Err(e) => return Injector::Down(format!("cannot list pods in {ns}: {e}")),
    };
    let component = &COMPONENTS[2];
    let own = of(&live(pods), component);
    let ready: Vec<&&Pod> = own.iter().filter(|p| pods::ready(p)).collect();
    if ready.is_empty() {
        return Injector::Down(why_none_runs(&own, component, ns));
    }
    let answered = cp.admin.iter().any(|r| {
        r.component == component.deployment
            && r.ready.is_ok()
            && ready.iter().any(|p| pods::id(p) == r.pod)
    });
    if answered {
        return Injector::Running;
    }
    let failures: Vec<String> = cp
        .admin
        .iter()
        .filter(|r| r.component == component.deployment)
        .filter_map(|r| {
            Some(format!(
                "{}:{}/ready: {}",
                r.pod,
                r.port,
                r.ready.as_ref().err()?
            ))
        })
        .collect();
    Injector::Down(if failures.is_empty() {
        "no ready pod answered on its admin port".to_string()
    } else {
        failures.join("\n")
    })
}

/// The version the control plane runs, read from its ready pods: the controller's image tag, or
/// else the version their proxy reports. An error says why no ready pod could tell.
pub fn version(cp: &ControlPlane, ns: &str) -> Result<String, String> {
    let pods = cp
        .pods
        .as_ref()
        .map_err(|e| format!("cannot list pods in {ns}: {e}"))?;
    pods_version(pods, ns)
}

/// [`version`] from the pods of the control-plane namespace.
pub fn pods_version(pods: &[Pod], ns: &str) -> Result<String, String> {
    let running = live(pods);
    let from_pods = running
        .iter()
        .filter(|p| pods::ready(p))
        .filter_map(|p| Some((p, component_of(p)?)))
        .find_map(|(p, component)| {
            controller_version(p, component).or_else(|| pods::proxy_version(p))
        });
    if let Some(version) = from_pods {
        return Ok(version);
    }
    let reasons: Vec<String> = COMPONENTS
        .iter()
        .map(|c| why_none_runs(&of(&running, c), c, ns))
        .collect();
    Err(format!(
        "no control plane pod is running and ready to report a version:\n{}",
        indent(&reasons.join("\n"))
    ))
}

/// The tag of the controller container's image.
fn controller_version(pod: &Pod, component: &Component) -> Option<String> {
    let spec = pod.spec.as_ref()?;
    let container = spec
        .containers
        .iter()
        .find(|c| c.name == component.label)
        .or_else(|| spec.containers.iter().find(|c| c.name != containers::PROXY))?;
    let image = container.image.as_deref()?;
    let image = image.split('@').next()?;
    let (_, tag) = image.rsplit_once(':')?;
    (!tag.contains('/') && !tag.is_empty()).then(|| tag.to_string())
}
