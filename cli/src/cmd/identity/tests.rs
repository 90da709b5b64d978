use std::collections::HashMap;

use k8s_openapi::api::core::v1::Pod;
use serde_json::json;

use super::cert::{self, Trust};
use super::pod::{self, PodError, ProxyTarget};

const CA: &str = include_str!("../../../../testdata/identity/certs/ca.crt");
const OTHER_CA: &str = include_str!("../../../../testdata/identity/certs/other-ca.crt");
const WEB_0: &str = include_str!("../../../../testdata/identity/certs/web-0.crt");

fn meshed(phase: &str, env: serde_json::Value) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": "web-0", "namespace": "demo"},
        "spec": {
            "serviceAccountName": "web",
            "containers": [
                {"name": "web", "image": "web"},
                {"name": "linkerd-proxy", "image": "proxy", "env": env,
                 "ports": [{"name": "linkerd-proxy", "containerPort": 4143},
                           {"name": "linkerd-admin", "containerPort": 4191}]},
            ],
        },
        "status": {"phase": phase},
    }))
    .unwrap()
}

fn injected_env() -> serde_json::Value {
    json!([
        {"name": "_pod_sa", "valueFrom": {"fieldRef": {"fieldPath": "spec.serviceAccountName"}}},
        {"name": "_pod_ns", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {"name": "_l5d_ns", "value": "linkerd"},
        {"name": "_l5d_trustdomain", "value": "cluster.local"},
        {"name": "LINKERD2_PROXY_IDENTITY_LOCAL_NAME",
         "value": "$(_pod_sa).$(_pod_ns).serviceaccount.identity.$(_l5d_ns).$(_l5d_trustdomain)"},
    ])
}

#[test]
fn the_identity_name_is_filled_in_from_the_pod() {
    assert_eq!(
        pod::proxy_target(&meshed("Running", injected_env())),
        Ok(ProxyTarget {
            identity: "web.demo.serviceaccount.identity.linkerd.cluster.local".into(),
            port: 4143,
        })
    );
}

#[test]
fn pods_without_a_running_proxy_with_an_identity_are_refused() {
    assert_eq!(
        pod::proxy_target(&meshed("Pending", injected_env())),
        Err(PodError::NotRunning("Pending".into()))
    );
    let mut plain = meshed("Running", injected_env());
    plain.spec.as_mut().unwrap().containers.truncate(1);
    assert_eq!(pod::proxy_target(&plain), Err(PodError::NotMeshed));
    let err = pod::proxy_target(&meshed("Running", json!([]))).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the proxy has no identity (LINKERD2_PROXY_IDENTITY_LOCAL_NAME is not set)"
    );
}

#[test]
fn expansion_follows_the_kubelet() {
    let env: HashMap<String, String> = [("A".to_string(), "x".to_string())].into();
    assert_eq!(pod::expand("$(A).$(B)", &env), "x.$(B)");
    assert_eq!(pod::expand("$$(A) $ $(A", &env), "$(A) $ $(A");
    assert_eq!(pod::expand("", &env), "");
}

fn der(pem: &str) -> Vec<Vec<u8>> {
    cert::bundle(pem).unwrap()
}

#[test]
fn the_leaf_is_described_as_openssl_would() {
    let info = cert::describe(&der(WEB_0)[0]).unwrap();
    let name = "web.demo.serviceaccount.identity.linkerd.cluster.local";
    assert_eq!(info.subject, format!("CN={name}"));
    assert_eq!(info.subject_alt_names, vec![format!("DNS:{name}")]);
    assert_eq!(info.issuer, "CN=root.linkerd.cluster.local");
    assert_eq!(info.serial, "10:01");
    assert_eq!(info.not_before, "2026-01-01T00:00:00Z");
    assert_eq!(info.not_after, "2099-01-01T12:30:00Z");
    assert_eq!(info.public_key_algorithm, "ECDSA P-256");
    assert_eq!(der(&info.pem), der(WEB_0));
}

#[test]
fn trust_needs_a_signature_from_an_anchor_and_a_valid_date() {
    let leaf = der(WEB_0);
    let in_2030 = 1_893_456_000;
    assert_eq!(cert::trust(&leaf, &der(CA), in_2030), Trust::Trusted);
    let bundle = format!("{OTHER_CA}{CA}");
    assert_eq!(cert::trust(&leaf, &der(&bundle), in_2030), Trust::Trusted);
    assert!(matches!(
        cert::trust(&leaf, &der(OTHER_CA), in_2030),
        Trust::Untrusted(_)
    ));
    let in_2100 = 4_102_444_800;
    match cert::trust(&leaf, &der(CA), in_2100) {
        Trust::Untrusted(why) => assert!(why.contains("is not valid now"), "{why}"),
        other => panic!("expected untrusted, got {other:?}"),
    }
    // The anchor presented as if it were its own leaf does not make itself trusted by others.
    assert!(matches!(
        cert::trust(&der(CA), &der(OTHER_CA), in_2030),
        Trust::Untrusted(_)
    ));
}
