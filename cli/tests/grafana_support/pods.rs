//! The pod the scrape config is run over: the emojivoto web Deployment as `mesh inject
//! --manual` writes it, running.

use std::process::Command;

use mesh_names::{containers, ports};
use serde_json::{Value, json};

use super::relabel::{self, LabelSet};
use super::scrape_config;

/// `mesh inject --manual` of the emojivoto web Deployment, as JSON.
pub fn injected_deployment() -> Value {
    let testdata = concat!(env!("CARGO_MANIFEST_DIR"), "/../testdata/inject");
    let out = Command::new(env!("CARGO_BIN_EXE_mesh"))
        .current_dir(testdata)
        .args([
            "inject",
            "--manual",
            "--identity-trust-anchors-file",
            "trust-anchors.pem",
            "manual_deployment.in.yaml",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_saphyr::from_str(&String::from_utf8(out.stdout).unwrap()).unwrap()
}

/// The pod a Deployment's template makes, as the API server would show it running.
pub fn running_pod(deployment: &Value, name: &str, ip: &str) -> Value {
    let template = &deployment["spec"]["template"];
    let mut labels = template["metadata"]["labels"].clone();
    labels["pod-template-hash"] = json!("5d9c7b6f4");
    json!({
        "metadata": {
            "name": name,
            "namespace": deployment["metadata"]["namespace"],
            "labels": labels,
            "annotations": template["metadata"]["annotations"],
        },
        "spec": template["spec"],
        "status": {"phase": "Running", "podIP": ip},
    })
}

/// The labels the scrape config gives the series of pod `name` of `deployment`, checking on
/// the way that it keeps exactly that pod's proxy admin port.
pub fn target_labels(deployment: &Value, name: &str, ip: &str) -> LabelSet {
    let jobs = relabel::jobs(&scrape_config()).unwrap();
    let [job] = jobs.as_slice() else {
        panic!("expected one scrape job, found {}", jobs.len());
    };
    let pod = running_pod(deployment, name, ip);
    let targets = relabel::pod_targets(&pod);
    let admin = format!("{ip}:{}", ports::PROXY_ADMIN);
    let admin_port = targets.iter().find(|t| t["__address__"] == admin);
    let admin_port = admin_port.unwrap_or_else(|| panic!("no admin port in {targets:#?}"));
    assert_eq!(
        admin_port["__meta_kubernetes_pod_container_name"],
        containers::PROXY
    );
    assert_eq!(
        admin_port["__meta_kubernetes_pod_container_port_name"],
        containers::ADMIN_PORT
    );
    let kept: Vec<LabelSet> = targets.iter().filter_map(|t| job.relabel(t)).collect();
    let [target] = kept.as_slice() else {
        panic!(
            "expected one target of {} ports, kept {kept:#?}",
            targets.len()
        );
    };
    assert_eq!(target["instance"], admin);
    target.clone()
}
