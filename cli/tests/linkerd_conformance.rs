//! `mesh inject` against Linkerd's own (non-manual) inject fixtures.
//!
//! The fixtures live in the shared Linkerd corpus next to the repository, not in it. Where the
//! corpus is absent, as on a user's clone, each test says so and passes without checking anything.
//!
//! Linkerd re-serializes its output, so its goldens differ from ours in layout. The comparison is
//! semantic: both outputs are parsed, and the objects must be equal (or, where Linkerd's golden is
//! from `--manual`, our annotation must sit where Linkerd put its own). Report lines must match
//! Linkerd's byte for byte.

#![allow(clippy::unwrap_used)] // Tests fail loudly; helpers outside #[test] functions too.

mod support;

use std::path::Path;

use serde_json::Value;
use support::{linkerd_fixtures, mesh, text};

fn fixtures() -> Option<std::path::PathBuf> {
    let dir = linkerd_fixtures();
    if dir.is_none() {
        eprintln!(
            "skipped: Linkerd's fixtures (shared/conformance/linkerd2) are not next to this repository"
        );
    }
    dir
}

fn parse_yaml(text: &str) -> Vec<Value> {
    let docs: Vec<Value> = serde_saphyr::from_multiple(text).expect("valid YAML");
    docs.into_iter()
        .filter(|d| !d.is_null())
        .flat_map(|d| match d.get("kind").and_then(Value::as_str) {
            Some("List") => d["items"].as_array().cloned().unwrap_or_default(),
            _ => vec![d],
        })
        .collect()
}

fn inject(dir: &Path, input: &str, args: &[&str]) -> std::process::Output {
    mesh()
        .arg("inject")
        .args(args)
        .arg(dir.join(input))
        .output()
        .expect("run mesh")
}

fn template(obj: &Value) -> &Value {
    match obj["kind"].as_str() {
        Some("CronJob") => &obj["spec"]["jobTemplate"]["spec"]["template"],
        Some("Pod" | "Namespace") => obj,
        _ => &obj["spec"]["template"],
    }
}

/// Runs `input` and checks the objects against Linkerd's non-manual golden: equal as data.
fn same_objects(input: &str, args: &[&str], golden: &str, report: Option<&str>) {
    let Some(dir) = fixtures() else { return };
    let out = inject(&dir, input, args);
    assert!(out.status.success(), "{input}: {}", text(&out.stderr));
    let ours = parse_yaml(&text(&out.stdout));
    let theirs = parse_yaml(&std::fs::read_to_string(dir.join(golden)).expect("golden"));
    assert_eq!(
        ours, theirs,
        "{input}: objects differ from Linkerd's {golden}"
    );
    if let Some(report) = report {
        let expected = std::fs::read_to_string(dir.join(report)).expect("report");
        assert_eq!(
            text(&out.stderr),
            expected,
            "{input}: report differs from Linkerd's {report}"
        );
    }
}

/// Runs `input` and checks, against Linkerd's `--manual` golden, that each object's annotation
/// sits in the metadata where Linkerd put its proxy annotations, and that the report matches.
fn same_placement(input: &str, golden: &str, report: &str) {
    let Some(dir) = fixtures() else { return };
    let out = inject(&dir, input, &[]);
    assert!(out.status.success(), "{input}: {}", text(&out.stderr));
    let ours = parse_yaml(&text(&out.stdout));
    let theirs = parse_yaml(&std::fs::read_to_string(dir.join(golden)).expect("golden"));
    let kinds = |objs: &[Value]| -> Vec<String> {
        objs.iter()
            .map(|o| o["kind"].as_str().unwrap_or("").to_owned())
            .collect()
    };
    assert_eq!(kinds(&ours), kinds(&theirs), "{input}: objects differ");
    for (o, t) in ours.iter().zip(&theirs) {
        let linkerd_placed = template(t)["metadata"]["annotations"]
            .get("linkerd.io/proxy-version")
            .is_some();
        let we_placed = template(o)["metadata"]["annotations"]["linkerd.io/inject"] == "enabled";
        assert_eq!(
            we_placed, linkerd_placed,
            "{input}: placement differs for {}",
            o["metadata"]["name"]
        );
    }
    let expected = std::fs::read_to_string(dir.join(report)).expect("report");
    assert_eq!(
        text(&out.stderr),
        expected,
        "{input}: report differs from Linkerd's {report}"
    );
}

#[test]
fn overridden_noinject() {
    same_objects(
        "inject_emojivoto_deployment.input.yml",
        &["--admin-port", "1234"],
        "inject_emojivoto_deployment_overridden_noinject.golden.yml",
        Some("inject_emojivoto_deployment.report"),
    );
}

#[test]
fn cronjob() {
    same_objects(
        "inject_emojivoto_cronjob.input.yml",
        &[],
        "inject_emojivoto_cronjob.golden.yml",
        Some("inject_emojivoto_cronjob.report"),
    );
}

#[test]
fn cronjob_without_pod_metadata() {
    same_objects(
        "inject_emojivoto_cronjob_nometa.input.yml",
        &[],
        "inject_emojivoto_cronjob_nometa.golden.yml",
        None,
    );
}

#[test]
fn namespace() {
    same_objects(
        "inject_emojivoto_namespace_good.input.yml",
        &[],
        "inject_emojivoto_namespace_good.golden.yml",
        Some("inject_emojivoto_namespace_good.golden.report"),
    );
}

#[test]
fn inject_disabled_passes_through_with_a_warning() {
    same_objects(
        "inject_emojivoto_deployment_injectDisabled.input.yml",
        &[],
        "inject_emojivoto_deployment_injectDisabled.input.yml",
        Some("inject_emojivoto_deployment_injectDisabled.report"),
    );
    same_objects(
        "inject_emojivoto_deployment_injectDisabled.input.yml",
        &["--verbose"],
        "inject_emojivoto_deployment_injectDisabled.input.yml",
        Some("inject_emojivoto_deployment_injectDisabled.report.verbose"),
    );
}

#[test]
fn host_network_is_refused() {
    let Some(dir) = fixtures() else { return };
    let out = inject(
        &dir,
        "inject_emojivoto_deployment_hostNetwork_true.input.yml",
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty(), "nothing may be written on a refusal");
    let linkerd = std::fs::read_to_string(
        dir.join("inject_emojivoto_deployment_hostNetwork_true.golden.stderr"),
    )
    .expect("stderr golden");
    let reason = linkerd.lines().last().expect("a reason line");
    let (object, why) = reason.split_once(": ").expect("object: reason");
    let stderr = text(&out.stderr);
    assert!(stderr.contains(object), "{stderr:?} should name {object:?}");
    assert!(
        stderr.trim_end().ends_with(why),
        "{stderr:?} should end with {why:?}"
    );
}

#[test]
fn list() {
    same_placement(
        "inject_emojivoto_list.input.yml",
        "inject_emojivoto_list.golden.yml",
        "inject_emojivoto_list.report",
    );
}

#[test]
fn empty_resources() {
    same_placement(
        "inject_emojivoto_deployment_empty_resources.input.yml",
        "inject_emojivoto_deployment_empty_resources.golden.yml",
        "inject_emojivoto_deployment_empty_resources.report",
    );
    same_placement(
        "inject_emojivoto_list_empty_resources.input.yml",
        "inject_emojivoto_list_empty_resources.golden.yml",
        "inject_emojivoto_list_empty_resources.report",
    );
}
