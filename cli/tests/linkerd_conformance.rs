//! `mesh inject` against Linkerd's own (non-manual) inject fixtures.
//!
//! The fixtures live in the shared Linkerd corpus next to the repository, not in it. Where the
//! corpus is absent, as on a user's clone, each test says so and passes without checking anything;
//! CI requires it (see `support/conformance.rs`).
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
    let Some(dir) = linkerd_fixtures() else {
        return;
    };
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
    let Some(dir) = linkerd_fixtures() else {
        return;
    };
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
    let Some(dir) = linkerd_fixtures() else {
        return;
    };
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

// --- `--manual` against Linkerd's --manual goldens: the structure, not the bytes. ---

/// What must match between Linkerd's sidecar and ours, for one pod template.
#[derive(Debug, PartialEq)]
struct Shape {
    init_containers: Vec<String>,
    containers: Vec<String>,
    /// linkerd-init's arguments: the same flags and values as Linkerd's proxy-init.
    init_args: Vec<String>,
    /// The proxy's restartPolicy (Always when it is a native sidecar).
    proxy_restart_policy: Value,
    proxy_ports: Value,
    /// (probe, path, port)
    probes: Vec<(String, Value, Value)>,
    env_names: std::collections::BTreeSet<String>,
    volumes: Vec<String>,
    mounts: Value,
    annotations: std::collections::BTreeSet<String>,
    labels: std::collections::BTreeSet<String>,
    proxy_resources: Value,
    proxy_uid: Value,
}

fn shape(template: &Value) -> Shape {
    let names = |list: &Value| -> Vec<String> {
        list.as_array()
            .into_iter()
            .flatten()
            .map(|c| c["name"].as_str().unwrap_or("").to_owned())
            .collect()
    };
    let spec = &template["spec"];
    let all: Vec<&Value> = spec["initContainers"]
        .as_array()
        .into_iter()
        .flatten()
        .chain(spec["containers"].as_array().into_iter().flatten())
        .collect();
    let find = |name: &str| {
        all.iter()
            .copied()
            .find(|c| c["name"] == name)
            .cloned()
            .unwrap_or(Value::Null)
    };
    let proxy = find("linkerd-proxy");
    let init = find("linkerd-init");
    let keys = |v: &Value| -> std::collections::BTreeSet<String> {
        v.as_object()
            .into_iter()
            .flatten()
            .map(|(k, _)| k.clone())
            .filter(|k| k.contains("linkerd.io"))
            .collect()
    };
    Shape {
        init_containers: names(&spec["initContainers"]),
        containers: names(&spec["containers"]),
        init_args: init["args"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|a| a.as_str().unwrap_or("").to_owned())
            .collect(),
        proxy_restart_policy: proxy["restartPolicy"].clone(),
        proxy_ports: proxy["ports"].clone(),
        probes: ["livenessProbe", "readinessProbe", "startupProbe"]
            .iter()
            .map(|p| {
                (
                    p.to_string(),
                    proxy[p]["httpGet"]["path"].clone(),
                    proxy[p]["httpGet"]["port"].clone(),
                )
            })
            .collect(),
        env_names: proxy["env"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| e["name"].as_str().unwrap_or("").to_owned())
            .collect(),
        volumes: names(&spec["volumes"]),
        mounts: proxy["volumeMounts"].clone(),
        annotations: keys(&template["metadata"]["annotations"]),
        labels: keys(&template["metadata"]["labels"]),
        proxy_resources: proxy["resources"].clone(),
        proxy_uid: proxy["securityContext"]["runAsUser"].clone(),
    }
}

fn same_sidecar(input: &str, args: &[&str], golden: &str) {
    let Some(dir) = linkerd_fixtures() else {
        return;
    };
    let anchors = dir.join("valid-trust-anchors.pem");
    let out = mesh()
        .args(["inject", "--manual", "--identity-trust-anchors-file"])
        .arg(&anchors)
        .args(args)
        .arg(dir.join(input))
        .output()
        .expect("run mesh");
    assert!(out.status.success(), "{input}: {}", text(&out.stderr));
    let ours = parse_yaml(&text(&out.stdout));
    let theirs = parse_yaml(&std::fs::read_to_string(dir.join(golden)).expect("golden"));
    assert_eq!(ours.len(), theirs.len(), "{input}: object count");
    for (o, t) in ours.iter().zip(&theirs) {
        let (ours, theirs) = (
            format!("{:#?}", shape(template(o))),
            format!("{:#?}", shape(template(t))),
        );
        let diff = similar::TextDiff::from_lines(&theirs, &ours)
            .unified_diff()
            .header("linkerd", "mesh")
            .to_string();
        assert!(
            diff.is_empty(),
            "{input}: {} differs from Linkerd's {golden}:\n{diff}",
            o["metadata"]["name"]
        );
    }
}

#[test]
fn manual_deployment() {
    same_sidecar(
        "inject_emojivoto_deployment.input.yml",
        &[],
        "inject_emojivoto_deployment.golden.yml",
    );
}

#[test]
fn manual_admin_port() {
    same_sidecar(
        "inject_emojivoto_deployment.input.yml",
        &["--admin-port", "1234"],
        "inject_emojivoto_deployment_overridden.golden.yml",
    );
}

#[test]
fn manual_skip_ports() {
    same_sidecar(
        "inject_emojivoto_deployment.input.yml",
        &[
            "--skip-inbound-ports",
            "22,8100-8102",
            "--skip-outbound-ports",
            "5432",
        ],
        "inject_emojivoto_deployment_proxyignores.golden.yml",
    );
}

#[test]
fn manual_opaque_ports() {
    same_sidecar(
        "inject_emojivoto_deployment.input.yml",
        &["--opaque-ports", "3000,5000-6000,mysql"],
        "inject_emojivoto_deployment_opaque_ports.golden.yml",
    );
}

#[test]
fn manual_config_annotations() {
    same_sidecar(
        "inject_emojivoto_deployment_config_overrides.input.yml",
        &[],
        "inject_emojivoto_deployment_config_overrides.golden.yml",
    );
}

#[test]
fn manual_statefulset_and_pod() {
    same_sidecar(
        "inject_emojivoto_statefulset.input.yml",
        &[],
        "inject_emojivoto_statefulset.golden.yml",
    );
    same_sidecar(
        "inject_emojivoto_pod.input.yml",
        &[],
        "inject_emojivoto_pod.golden.yml",
    );
}

#[test]
fn manual_pod_with_requests() {
    same_sidecar(
        "inject_emojivoto_pod_with_requests.input.yml",
        &[
            "--proxy-cpu-request",
            "110m",
            "--proxy-cpu-limit",
            "160m",
            "--proxy-memory-request",
            "100Mi",
            "--proxy-memory-limit",
            "150Mi",
        ],
        "inject_emojivoto_pod_with_requests.golden.yml",
    );
}

#[test]
fn manual_keeps_existing_init_containers_after_ours() {
    same_sidecar("inject_contour.input.yml", &[], "inject_contour.golden.yml");
}

#[test]
fn manual_reinjects_already_injected_workloads() {
    same_sidecar(
        "inject_emojivoto_already_injected.input.yml",
        &[],
        "inject_emojivoto_already_injected.golden.yml",
    );
}
