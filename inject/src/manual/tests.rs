use serde_json::{Value, json};

use super::*;

const ANCHORS: &str = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

fn template() -> Value {
    json!({
        "metadata": {"labels": {"app": "web"}},
        "spec": {"containers": [{"name": "web", "image": "nginx", "ports": [{"containerPort": 8080, "name": "http"}, {"containerPort": 3306, "name": "mysql"}]}]},
    })
}

fn owner() -> Owner<'static> {
    Owner {
        kind: "Deployment",
        name: "web",
        namespace: "shop",
    }
}

fn injected(values: &Values, mut template: Value) -> Value {
    let context = Context {
        values,
        trust_anchors_pem: ANCHORS,
        control_plane_namespace: "linkerd",
        cli_version: "1.2.3",
    };
    inject_json(&mut template, owner(), &context).unwrap();
    template
}

fn names_of(list: &Value) -> Vec<&str> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect()
}

fn env<'a>(container: &'a Value, name: &str) -> Option<&'a Value> {
    container["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == name)
        .map(|e| &e["value"])
}

#[test]
fn a_native_sidecar_by_default() {
    let t = injected(&Values::defaults(), template());
    let spec = &t["spec"];
    assert_eq!(
        names_of(&spec["initContainers"]),
        ["linkerd-init", "linkerd-proxy"]
    );
    assert_eq!(names_of(&spec["containers"]), ["web"]);
    assert_eq!(
        names_of(&spec["volumes"]),
        [
            "linkerd-proxy-init-xtables-lock",
            "linkerd-identity-end-entity",
            "linkerd-identity-token"
        ]
    );
    let proxy = &spec["initContainers"][1];
    assert_eq!(proxy["restartPolicy"], "Always");
    assert_eq!(proxy["startupProbe"]["httpGet"]["path"], "/ready");
    assert_eq!(proxy["securityContext"]["runAsUser"], 2102);
    assert_eq!(
        proxy["ports"][1],
        json!({"containerPort": 4191, "name": "linkerd-admin"})
    );
    assert_eq!(
        env(proxy, "LINKERD2_PROXY_INBOUND_PORTS").unwrap(),
        "8080,3306"
    );
    assert_eq!(
        env(proxy, "LINKERD2_PROXY_ADMIN_LISTEN_ADDR").unwrap(),
        "0.0.0.0:4191"
    );
    assert_eq!(
        env(proxy, "LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS").unwrap(),
        ANCHORS
    );
    let init = &spec["initContainers"][0];
    assert_eq!(init["command"], json!(["mesh-proxy", "init"]));
    assert_eq!(
        init["securityContext"]["capabilities"]["add"],
        json!(["NET_ADMIN", "NET_RAW"])
    );
    assert_eq!(
        t["metadata"]["labels"],
        json!({"app": "web", "linkerd.io/control-plane-ns": "linkerd", "linkerd.io/proxy-deployment": "web", "linkerd.io/workload-ns": "shop"})
    );
    assert_eq!(
        t["metadata"]["annotations"]["linkerd.io/proxy-version"],
        "1.2.3"
    );
    assert_eq!(
        t["metadata"]["annotations"]["linkerd.io/created-by"],
        "mesh/cli 1.2.3"
    );
}

#[test]
fn a_regular_container_with_await_when_not_native() {
    let mut b = crate::values::ValuesBuilder::new().unwrap();
    b.set("proxy.nativeSidecar=false").unwrap();
    let t = injected(&b.build().unwrap(), template());
    assert_eq!(names_of(&t["spec"]["initContainers"]), ["linkerd-init"]);
    assert_eq!(names_of(&t["spec"]["containers"]), ["linkerd-proxy", "web"]);
    let proxy = &t["spec"]["containers"][0];
    assert_eq!(
        proxy["lifecycle"]["postStart"]["exec"]["command"],
        json!(["mesh-proxy", "await", "--timeout=2m"])
    );
    assert!(proxy.get("restartPolicy").is_none());
}

#[test]
fn pod_annotations_override_values() {
    let mut t = template();
    t["metadata"]["annotations"] = json!({
        "config.linkerd.io/admin-port": "9998",
        "config.linkerd.io/skip-inbound-ports": "7777,8888",
        "config.linkerd.io/skip-outbound-ports": "9999",
        "config.linkerd.io/proxy-cpu-limit": "1500m",
        "config.linkerd.io/proxy-memory-request": "64Mi",
        "config.linkerd.io/proxy-version": "override",
        "config.linkerd.io/opaque-ports": "mysql,5000-6000",
        "config.linkerd.io/proxy-uid": "3000",
    });
    let t = injected(&Values::defaults(), t);
    let init = &t["spec"]["initContainers"][0];
    let args: Vec<&str> = init["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(
        args.windows(2)
            .any(|w| w == ["--inbound-ports-to-ignore", "4190,9998,7777,8888"]),
        "{args:?}"
    );
    assert!(
        args.windows(2)
            .any(|w| w == ["--outbound-ports-to-ignore", "9999"]),
        "{args:?}"
    );
    assert!(
        args.windows(2).any(|w| w == ["--proxy-uid", "3000"]),
        "{args:?}"
    );
    let proxy = &t["spec"]["initContainers"][1];
    assert_eq!(proxy["image"], "ghcr.io/mesh-project/mesh-proxy:override");
    assert_eq!(proxy["livenessProbe"]["httpGet"]["port"], 9998);
    assert_eq!(env(proxy, "LINKERD2_PROXY_CORES").unwrap(), "1");
    assert_eq!(env(proxy, "LINKERD2_PROXY_CORES_MAX").unwrap(), "1");
    assert_eq!(
        env(
            proxy,
            "LINKERD2_PROXY_INBOUND_PORTS_DISABLE_PROTOCOL_DETECTION"
        )
        .unwrap(),
        "3306,5000-6000"
    );
    assert_eq!(
        proxy["resources"],
        json!({"limits": {"cpu": "1500m"}, "requests": {"memory": "64Mi"}})
    );
    assert_eq!(proxy["securityContext"]["runAsUser"], 3000);
    assert_eq!(
        t["metadata"]["annotations"]["config.linkerd.io/admin-port"], "9998",
        "settings stay"
    );
}

#[test]
fn bad_annotations_are_named() {
    let mut t = template();
    t["metadata"]["annotations"] = json!({"config.linkerd.io/admin-port": "99999"});
    let values = Values::defaults();
    let context = Context {
        values: &values,
        trust_anchors_pem: ANCHORS,
        control_plane_namespace: "linkerd",
        cli_version: "1",
    };
    let err = inject_json(&mut t, owner(), &context).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("annotation config.linkerd.io/admin-port: "),
        "{err}"
    );
}

#[test]
fn inject_is_idempotent_and_uninject_restores() {
    let values = Values::defaults();
    let once = injected(&values, template());
    assert!(is_injected(&once));
    assert_eq!(injected(&values, once.clone()), once);
    let mut back = once;
    uninject_json(&mut back);
    let mut original = template();
    original["metadata"]["annotations"] = json!({});
    assert_eq!(back, original);
}

fn tap_env(values: &Values, annotations: Value) -> Option<Value> {
    let mut t = template();
    t["metadata"]["annotations"] = annotations;
    let t = injected(values, t);
    env(&t["spec"]["initContainers"][1], "MESH_PROXY_TAP_ENABLED").cloned()
}

fn tap_on_by_default() -> Values {
    let mut b = crate::values::ValuesBuilder::new().unwrap();
    b.set("proxy.enableTap=true").unwrap();
    b.build().unwrap()
}

#[test]
fn tap_is_off_unless_asked_for() {
    assert_eq!(tap_env(&Values::defaults(), json!({})), None);
    assert_eq!(
        tap_env(&tap_on_by_default(), json!({})),
        Some(json!("true"))
    );
}

#[test]
fn the_pods_tap_annotations_override_the_values() {
    let off = Values::defaults();
    let on = tap_on_by_default();
    let cases = [
        (&off, json!({"config.linkerd.io/enable-tap": "true"}), true),
        (&on, json!({"config.linkerd.io/enable-tap": "false"}), false),
        // Linkerd's opt-outs mean the opposite, in Go's spellings of a boolean.
        (&on, json!({"config.linkerd.io/disable-tap": "true"}), false),
        (&on, json!({"viz.linkerd.io/disable-tap": "1"}), false),
        (
            &off,
            json!({"config.linkerd.io/disable-tap": "false"}),
            true,
        ),
        // On one object, mesh's own key decides over Linkerd's, and Linkerd's core over viz.
        (
            &off,
            json!({"config.linkerd.io/enable-tap": "true", "config.linkerd.io/disable-tap": "true"}),
            true,
        ),
        (
            &on,
            json!({"config.linkerd.io/disable-tap": "True", "viz.linkerd.io/disable-tap": "false"}),
            false,
        ),
    ];
    for (values, annotations, want) in cases {
        let got = tap_env(values, annotations.clone());
        assert_eq!(got, want.then(|| json!("true")), "{annotations}");
    }
}

#[test]
fn a_bad_tap_annotation_is_named() {
    let mut t = template();
    t["metadata"]["annotations"] = json!({"viz.linkerd.io/disable-tap": "yes"});
    let values = Values::defaults();
    let context = Context {
        values: &values,
        trust_anchors_pem: ANCHORS,
        control_plane_namespace: "linkerd",
        cli_version: "1",
    };
    let err = inject_json(&mut t, owner(), &context).unwrap_err();
    assert_eq!(
        err.to_string(),
        "annotation viz.linkerd.io/disable-tap: \"yes\" is neither true nor false"
    );
}

#[test]
fn uninject_removes_the_tap_variable_with_the_proxy() {
    let values = tap_on_by_default();
    let mut t = injected(&values, template());
    assert!(env(&t["spec"]["initContainers"][1], "MESH_PROXY_TAP_ENABLED").is_some());
    uninject_json(&mut t);
    assert!(!t.to_string().contains("MESH_PROXY_TAP_ENABLED"), "{t}");
}

#[test]
fn require_identity_ports_come_from_the_annotation() {
    let key = "config.linkerd.io/proxy-require-identity-inbound-ports";
    let var = "LINKERD2_PROXY_INBOUND_PORTS_REQUIRE_IDENTITY";
    let plain = injected(&Values::defaults(), template());
    assert_eq!(env(&plain["spec"]["initContainers"][1], var), None);

    let mut t = template();
    t["metadata"]["annotations"] = json!({ key: " 8080, 9000-9010 " });
    let t = injected(&Values::defaults(), t);
    assert_eq!(
        env(&t["spec"]["initContainers"][1], var).unwrap(),
        "8080,9000-9010"
    );

    let mut t = template();
    t["metadata"]["annotations"] = json!({ key: "http" });
    let values = Values::defaults();
    let context = Context {
        values: &values,
        trust_anchors_pem: ANCHORS,
        control_plane_namespace: "linkerd",
        cli_version: "1",
    };
    let err = inject_json(&mut t, owner(), &context).unwrap_err();
    assert!(
        err.to_string().starts_with(&format!("annotation {key}: ")),
        "{err}"
    );
}
