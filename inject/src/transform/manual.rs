//! `--manual` as text edits: the same [`Sidecar`](crate::manual::Sidecar) that
//! [`inject_json`](crate::manual::inject_json) applies to data, written into the document as
//! inserted lines.

use serde_json::Value;

use super::{ANNOTATIONS, LABELS, Target};
use mesh_names::annotations::{self, ENABLED, INGRESS, INJECT};
use mesh_names::{containers, labels};

use crate::manual::{self, Context, Owner};
use crate::report::Outcome;
use crate::yaml::{self, Editor, Node, Position, named};
use crate::{Error, ManualSettings, Options};

/// Adds the sidecar to `template`: annotations and labels, the init container and proxy, volumes.
pub(super) fn inject(
    editor: &mut Editor<'_>,
    template: &Node<'_>,
    options: &Options,
    settings: &ManualSettings,
    target: &Target,
) -> Result<(), Error> {
    // Flags are written as annotations, so the sidecar is computed from the pod as it will be.
    let overrides = options.overrides.pod_annotations();
    let mut json = yaml::to_json(editor.text(), template).map_err(|error| Error::Syntax {
        document: target.document,
        error,
    })?;
    if let Some(meta) = json
        .as_object_mut()
        .and_then(|t| ensure_object(t, "metadata"))
        && let Some(annotations) = ensure_object(meta, "annotations")
    {
        for (k, v) in &overrides {
            annotations.insert(k.clone(), Value::String(v.clone()));
        }
    }
    let owner = Owner {
        kind: &target.kind_name,
        name: &target.name,
        namespace: &target.namespace,
    };
    let context = Context {
        values: &settings.values,
        trust_anchors_pem: &settings.trust_anchors_pem,
        control_plane_namespace: &settings.control_plane_namespace,
        cli_version: &settings.cli_version,
    };
    let sidecar = manual::sidecar(&json, owner, &context, options.ingress).map_err(|error| {
        Error::Manual {
            document: target.document,
            kind: target.kind.clone(),
            name: target.name.clone(),
            error,
        }
    })?;
    let annotations: Vec<(&str, &str)> = overrides
        .iter()
        .chain(&sidecar.annotations)
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let labels: Vec<(&str, &str)> = sidecar
        .labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let edit_error = |error| target.edit_error(error);
    editor
        .set_paths(
            template,
            &[(&ANNOTATIONS, &annotations), (&LABELS, &labels)],
        )
        .map_err(edit_error)?;
    let spec = &["spec"][..];
    editor
        .insert_items(
            template,
            spec,
            "initContainers",
            Position::Start,
            &sidecar.init_containers,
        )
        .map_err(edit_error)?;
    editor
        .insert_items(
            template,
            spec,
            "containers",
            Position::Start,
            &sidecar.containers,
        )
        .map_err(edit_error)?;
    editor
        .insert_items(template, spec, "volumes", Position::End, &sidecar.volumes)
        .map_err(edit_error)?;
    Ok(())
}

/// Removes what inject (manual or not) added to `template`. With `keep_inject`, the
/// `linkerd.io/inject` annotation stays, as when a template is uninjected to be injected again.
pub(super) fn uninject(
    editor: &mut Editor<'_>,
    template: &Node<'_>,
    current: Option<&str>,
    keep_inject: bool,
) -> Outcome {
    let mut annotations: Vec<&str> = annotations::INJECTED.to_vec();
    if !keep_inject && matches!(current, Some(ENABLED | INGRESS)) {
        annotations.push(INJECT);
    }
    let labels: Vec<&str> = template
        .path(&LABELS)
        .map(Node::entries)
        .unwrap_or_default()
        .iter()
        .filter_map(|(k, _)| k.as_str())
        .filter(|k| labels::is_injected(k))
        .collect();
    let mut changed = editor.remove_paths(
        template,
        &[(&ANNOTATIONS, &annotations), (&LABELS, &labels)],
    );
    for (list, doomed) in [
        ("initContainers", containers::INJECTED),
        ("containers", containers::INJECTED),
        ("volumes", containers::VOLUMES),
    ] {
        changed |= editor.remove_items(template, &["spec"], list, |n| named(n, doomed));
    }
    if changed {
        Outcome::Uninjected
    } else {
        Outcome::Skipped
    }
}

fn ensure_object<'v>(
    map: &'v mut serde_json::Map<String, Value>,
    key: &str,
) -> Option<&'v mut serde_json::Map<String, Value>> {
    let slot = map
        .entry(key.to_owned())
        .or_insert_with(|| Value::Object(Default::default()));
    if !slot.is_object() {
        *slot = Value::Object(Default::default());
    }
    slot.as_object_mut()
}
