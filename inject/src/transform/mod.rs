//! Inject and uninject, object by object.

mod manual;

use mesh_names::annotations::{DISABLED, ENABLED, INGRESS, INJECT};
use mesh_names::containers::{self, FOREIGN_SIDECARS};
use mesh_names::labels::CONTROL_PLANE_COMPONENT;

use crate::report::{Entry, Outcome, Report, Warning};
use crate::yaml::{Editor, Node};
use crate::{Error, Options, Refusal};

const ANNOTATIONS: [&str; 2] = ["metadata", "annotations"];
const LABELS: [&str; 2] = ["metadata", "labels"];

/// What a run does to each object.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Mode<'o> {
    Inject(&'o Options),
    /// Remove what inject added; with `keep_inject`, leave `linkerd.io/inject` (for re-injecting).
    Uninject {
        keep_inject: bool,
    },
}

/// Where a kind keeps its pod template, relative to the object.
fn template_path(kind: &str) -> Option<&'static [&'static str]> {
    match kind {
        "Deployment"
        | "StatefulSet"
        | "DaemonSet"
        | "ReplicaSet"
        | "ReplicationController"
        | "Job" => Some(&["spec", "template"]),
        "CronJob" => Some(&["spec", "jobTemplate", "spec", "template"]),
        "Pod" => Some(&[]),
        _ => None,
    }
}

/// Transforms one object (or each item of a `List`), recording edits and report entries.
pub(crate) fn object(
    editor: &mut Editor<'_>,
    node: &Node<'_>,
    mode: Mode<'_>,
    document: usize,
    report: &mut Report,
) -> Result<(), Error> {
    let Some(kind) = node.get("kind").and_then(Node::as_str) else {
        report.entries.push(Entry::MissingKind);
        return Ok(());
    };
    if kind == "List" {
        if let Some(items) = node.get("items") {
            for item in items.items() {
                object(editor, item, mode, document, report)?;
            }
        }
        return Ok(());
    }
    let name = node
        .path(&["metadata", "name"])
        .or_else(|| node.path(&["metadata", "generateName"]))
        .and_then(Node::as_str)
        .unwrap_or_default();
    let object_namespace = node
        .path(&["metadata", "namespace"])
        .and_then(Node::as_str)
        .unwrap_or_default();
    let target = Target {
        kind: kind.to_ascii_lowercase(),
        kind_name: kind.to_owned(),
        name: name.to_owned(),
        namespace: object_namespace.to_owned(),
        document,
    };
    let outcome = match (template_path(kind), kind) {
        (Some(path), _) => {
            report.supported = true;
            match node.path(path).filter(|t| t.is_map()) {
                Some(template) => workload(editor, template, mode, &target, report)?,
                None => Outcome::Skipped,
            }
        }
        (None, "Namespace") => {
            report.supported = true;
            namespace(editor, node, mode, &target, report)?
        }
        (None, "Service") => service(editor, node, mode, &target, report)?,
        _ => Outcome::Skipped,
    };
    report.entries.push(Entry::Object {
        kind: target.kind,
        name: target.name,
        outcome,
    });
    Ok(())
}

/// The object being transformed, for messages.
struct Target {
    /// Lowercased, as reports print it.
    kind: String,
    /// As Kubernetes spells it.
    kind_name: String,
    name: String,
    namespace: String,
    document: usize,
}

impl Target {
    fn refuse(&self, reason: Refusal) -> Error {
        Error::Refused {
            document: self.document,
            kind: self.kind.clone(),
            name: self.name.clone(),
            reason,
        }
    }

    fn edit_error(&self, error: crate::yaml::EditError) -> Error {
        Error::Edit {
            document: self.document,
            kind: self.kind.clone(),
            name: self.name.clone(),
            error,
        }
    }
}

/// The value of `linkerd.io/inject` in a pod template's or an object's own metadata.
fn inject_value<'n>(meta_owner: &'n Node<'_>) -> Option<&'n str> {
    meta_owner
        .path(&["metadata", "annotations", INJECT])
        .and_then(Node::as_str)
}

fn workload(
    editor: &mut Editor<'_>,
    template: &Node<'_>,
    mode: Mode<'_>,
    target: &Target,
    report: &mut Report,
) -> Result<Outcome, Error> {
    let current = inject_value(template);
    let options = match mode {
        Mode::Inject(options) => options,
        Mode::Uninject { keep_inject } => {
            return Ok(manual::uninject(editor, template, current, keep_inject));
        }
    };
    let spec = template.get("spec");
    if spec
        .and_then(|s| s.get("hostNetwork"))
        .is_some_and(Node::is_true)
    {
        return Err(target.refuse(Refusal::HostNetwork));
    }
    let containers = || {
        ["containers", "initContainers"]
            .into_iter()
            .flat_map(move |list| {
                spec.and_then(|s| s.get(list))
                    .map(Node::items)
                    .unwrap_or_default()
            })
    };
    if containers().any(|c| {
        c.get("name")
            .and_then(Node::as_str)
            .is_some_and(|n| FOREIGN_SIDECARS.contains(&n))
    }) {
        return Err(target.refuse(Refusal::Sidecar));
    }
    if options.manual.is_none()
        && template
            .path(&["metadata", "labels", CONTROL_PLANE_COMPONENT])
            .is_some()
    {
        return Err(target.refuse(Refusal::ControlPlane));
    }
    if current == Some(DISABLED) {
        report.warnings.push(Warning::InjectDisabled {
            kind: target.kind.clone(),
            name: target.name.clone(),
        });
        return Ok(Outcome::Skipped);
    }
    let udp = containers()
        .flat_map(|c| c.get("ports").map(Node::items).unwrap_or_default())
        .any(|p| p.get("protocol").and_then(Node::as_str) == Some("UDP"));
    if udp {
        report.warnings.push(Warning::Udp {
            kind: target.kind.clone(),
            name: target.name.clone(),
        });
    }
    match &options.manual {
        None => annotate(editor, template, options, current, target)?,
        Some(settings) => manual::inject(editor, template, options, settings, target)?,
    }
    Ok(Outcome::Injected)
}

fn namespace(
    editor: &mut Editor<'_>,
    node: &Node<'_>,
    mode: Mode<'_>,
    target: &Target,
    report: &mut Report,
) -> Result<Outcome, Error> {
    let current = inject_value(node);
    let options = match mode {
        Mode::Inject(options) => options,
        Mode::Uninject { keep_inject: true } => return Ok(Outcome::Skipped),
        Mode::Uninject { keep_inject: false } => {
            return Ok(remove_inject(editor, node, current));
        }
    };
    if current == Some(DISABLED) {
        report.warnings.push(Warning::InjectDisabled {
            kind: target.kind.clone(),
            name: target.name.clone(),
        });
        return Ok(Outcome::Skipped);
    }
    annotate(editor, node, options, current, target)?;
    Ok(Outcome::Annotated)
}

/// Services only carry the opaque-ports setting, so that clients treat those ports as opaque too.
fn service(
    editor: &mut Editor<'_>,
    node: &Node<'_>,
    mode: Mode<'_>,
    target: &Target,
    report: &mut Report,
) -> Result<Outcome, Error> {
    let Mode::Inject(options) = mode else {
        return Ok(Outcome::Skipped);
    };
    let setting = crate::Setting::OpaquePorts;
    let Some(ports) = options.overrides.get(setting) else {
        return Ok(Outcome::Skipped);
    };
    report.supported = true;
    let key = setting.annotation();
    editor
        .set(node, &ANNOTATIONS, &[(key.as_str(), ports)])
        .map_err(|e| target.edit_error(e))?;
    Ok(Outcome::Annotated)
}

/// Writes the inject annotation and the flag-given settings into `meta_owner`'s annotations.
fn annotate(
    editor: &mut Editor<'_>,
    meta_owner: &Node<'_>,
    options: &Options,
    current: Option<&str>,
    target: &Target,
) -> Result<(), Error> {
    let value = if options.ingress || current == Some(INGRESS) {
        INGRESS
    } else {
        ENABLED
    };
    let settings = options.overrides.pod_annotations();
    let mut values: Vec<(&str, &str)> = vec![(INJECT, value)];
    values.extend(settings.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    editor
        .set(meta_owner, &ANNOTATIONS, &values)
        .map_err(|e| target.edit_error(e))?;
    Ok(())
}

/// Removes the inject annotation when it turns injection on. Settings stay, as with Linkerd, so a
/// later inject finds them again.
fn remove_inject(editor: &mut Editor<'_>, meta_owner: &Node<'_>, current: Option<&str>) -> Outcome {
    if matches!(current, Some(ENABLED | INGRESS))
        && editor.remove(meta_owner, &ANNOTATIONS, &[INJECT])
    {
        Outcome::Uninjected
    } else {
        Outcome::Skipped
    }
}

/// Whether an object (or any item of a `List`) has a pod template that manual injection has
/// already changed.
pub(crate) fn has_injected_pod(node: &Node<'_>) -> bool {
    let Some(kind) = node.get("kind").and_then(Node::as_str) else {
        return false;
    };
    if kind == "List" {
        return node
            .get("items")
            .is_some_and(|items| items.items().iter().any(has_injected_pod));
    }
    let Some(template) = template_path(kind).and_then(|p| node.path(p)) else {
        return false;
    };
    ["containers", "initContainers"].iter().any(|list| {
        template.path(&["spec", list]).is_some_and(|l| {
            l.items()
                .iter()
                .any(|c| crate::yaml::named(c, containers::INJECTED))
        })
    })
}
