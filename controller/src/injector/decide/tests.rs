use mesh_inject::manual::{self, Context, Owner};
use mesh_inject::values::Values;
use serde_json::{Value, json};

use super::*;

const ANCHORS: &str = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
const CREATED_BY: &str = "mesh/proxy-injector 9.9.9";

fn pod(annotation: Option<&str>) -> Value {
    let mut pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "generateName": "web-5d8f9-",
            "namespace": "shop",
            "labels": {"app": "web"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-5d8f9", "uid": "1", "controller": true}],
        },
        "spec": {"containers": [{"name": "web", "image": "nginx", "ports": [{"containerPort": 8080}]}]},
    });
    if let Some(a) = annotation {
        pod["metadata"]["annotations"] = json!({"linkerd.io/inject": a});
    }
    pod
}

fn ns(annotation: Option<&str>) -> Annotations {
    annotation
        .map(|a| Annotations::from([("linkerd.io/inject".to_owned(), a.to_owned())]))
        .unwrap_or_default()
}

fn owner() -> Owner<'static> {
    Owner {
        kind: "Deployment",
        name: "web",
        namespace: "shop",
    }
}

fn context(values: &Values) -> Context<'_> {
    Context {
        values,
        trust_anchors_pem: ANCHORS,
        control_plane_namespace: "linkerd",
        cli_version: "9.9.9",
    }
}

fn inject(pod: &Value, ns: &Annotations) -> Value {
    let values = Values::defaults();
    let plan = decide(pod, ns).unwrap();
    injected(pod, ns, plan, owner(), &context(&values), CREATED_BY).unwrap()
}

fn env<'a>(pod: &'a Value, name: &str) -> Option<&'a str> {
    let proxy = ["containers", "initContainers"]
        .iter()
        .flat_map(|l| pod["spec"][*l].as_array().unwrap().iter())
        .find(|c| c["name"] == "linkerd-proxy")
        .unwrap();
    proxy["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == name)
        .and_then(|e| e["value"].as_str())
}

#[test]
fn linkerds_table_of_the_inject_annotation() {
    use At::*;
    use Skip::*;
    // (namespace, pod) -> outcome, as in Linkerd's pkg/inject/report.go for the webhook.
    type Row = (Option<&'static str>, Option<&'static str>, Result<At, Skip>);
    let table: &[Row] = &[
        (Some("enabled"), Some("enabled"), Ok(Namespace)),
        (Some("enabled"), None, Ok(Namespace)),
        (Some("enabled"), Some("disabled"), Err(InjectDisabled)),
        (Some("disabled"), Some("enabled"), Ok(Workload)),
        (None, Some("enabled"), Ok(Workload)),
        (Some("disabled"), Some("disabled"), Err(InjectAbsent)),
        (None, Some("disabled"), Err(InjectAbsent)),
        (Some("disabled"), None, Err(InjectAbsent)),
        (None, None, Err(InjectAbsent)),
        (Some("ingress"), None, Ok(Namespace)),
        (None, Some("ingress"), Ok(Workload)),
        (Some("ingress"), Some("disabled"), Err(InjectDisabled)),
        (Some("yes"), Some("enabled"), Err(InvalidAtNamespace)),
        (None, Some("true"), Err(InvalidAtWorkload)),
    ];
    for (on_ns, on_pod, want) in table {
        let got = decide(&pod(*on_pod), &ns(*on_ns))
            .map(|plan| plan.at)
            .map_err(|skips| skips[0]);
        assert_eq!(&got, want, "namespace {on_ns:?}, pod {on_pod:?}");
    }
}

#[test]
fn only_the_pods_own_ingress_means_ingress_mode() {
    let plan = decide(&pod(Some("ingress")), &ns(None)).unwrap();
    assert!(plan.ingress);
    let plan = decide(&pod(None), &ns(Some("ingress"))).unwrap();
    assert!(!plan.ingress);
    let injected = inject(&pod(Some("ingress")), &ns(None));
    assert_eq!(env(&injected, "LINKERD2_PROXY_INGRESS_MODE"), Some("true"));
    let plain = inject(&pod(Some("enabled")), &ns(None));
    assert_eq!(env(&plain, "LINKERD2_PROXY_INGRESS_MODE"), None);
}

#[test]
fn pods_that_cannot_take_a_proxy_are_skipped_with_every_reason() {
    let mut host = pod(Some("enabled"));
    host["spec"]["hostNetwork"] = json!(true);
    assert_eq!(decide(&host, &ns(None)), Err(vec![Skip::HostNetwork]));

    let mut injected_already = pod(None);
    injected_already["spec"]["containers"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "linkerd-proxy"}));
    assert_eq!(
        decide(&injected_already, &ns(Some("enabled"))),
        Err(vec![Skip::SidecarExists])
    );

    let mut istio = pod(Some("enabled"));
    istio["spec"]["initContainers"] = json!([{"name": "istio-init"}]);
    assert_eq!(decide(&istio, &ns(None)), Err(vec![Skip::SidecarExists]));

    let mut control_plane = pod(None);
    control_plane["metadata"]["labels"]["linkerd.io/control-plane-component"] = json!("identity");
    assert_eq!(
        decide(&control_plane, &ns(Some("enabled"))),
        Err(vec![Skip::ControlPlane])
    );

    // All reasons, in Linkerd's order, the annotation last.
    host["spec"]["containers"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "linkerd-proxy"}));
    host["metadata"]["annotations"]["linkerd.io/inject"] = json!("disabled");
    assert_eq!(
        decide(&host, &ns(None)),
        Err(vec![
            Skip::HostNetwork,
            Skip::SidecarExists,
            Skip::InjectAbsent
        ])
    );
    assert!(Skip::InjectAbsent.is_routine() && !Skip::HostNetwork.is_routine());
    assert_eq!(Skip::HostNetwork.to_string(), "hostNetwork is enabled");
    assert_eq!(Skip::SidecarExists.label(), "sidecar_already_exists");
}

#[test]
fn the_patch_turns_the_pod_into_inject_jsons_result() {
    let values = Values::defaults();
    for annotation in ["enabled", "ingress"] {
        let original = pod(Some(annotation));
        let target = inject(&original, &ns(None));

        let mut expected = original.clone();
        manual::inject_json_as(
            &mut expected,
            owner(),
            &context(&values),
            annotation == "ingress",
        )
        .unwrap();
        expected["metadata"]["annotations"]["linkerd.io/created-by"] = json!(CREATED_BY);
        assert_eq!(target, expected);

        let mut patched = original.clone();
        json_patch::patch(&mut patched, &patch(&original, &target)).unwrap();
        assert_eq!(patched, expected);
        let spec = &patched["spec"];
        let names: Vec<&str> = ["initContainers", "containers"]
            .iter()
            .flat_map(|l| spec[*l].as_array().unwrap())
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert!(names.contains(&"linkerd-proxy") && names.contains(&"linkerd-init"));
        assert_eq!(
            patched["metadata"]["labels"]["linkerd.io/proxy-deployment"],
            "web"
        );
        assert_eq!(
            patched["metadata"]["annotations"]["linkerd.io/inject"],
            annotation
        );
    }
}

#[test]
fn a_pod_without_annotations_or_labels_is_patched_too() {
    let mut bare = json!({"metadata": {"namespace": "shop"}, "spec": {"containers": [{"name": "app", "image": "app"}]}});
    let ns = ns(Some("enabled"));
    let plan = decide(&bare, &ns).unwrap();
    let values = Values::defaults();
    let target = injected(&bare, &ns, plan, owner(), &context(&values), CREATED_BY).unwrap();
    let ops = patch(&bare, &target);
    json_patch::patch(&mut bare, &ops).unwrap();
    assert_eq!(bare, target);
    assert!(has_sidecar(&bare["spec"]));
}

#[test]
fn namespace_settings_are_copied_unless_the_pod_has_its_own() {
    let ns: Annotations = [
        ("linkerd.io/inject", "enabled"),
        ("config.linkerd.io/proxy-log-level", "debug"),
        ("config.linkerd.io/skip-outbound-ports", "3306"),
        (
            "config.alpha.linkerd.io/proxy-wait-before-exit-seconds",
            "5",
        ),
        ("unrelated.example.com/x", "y"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let mut own = pod(None);
    own["metadata"]["annotations"] = json!({"config.linkerd.io/skip-outbound-ports": "25"});
    let injected = inject(&own, &ns);
    let annotations = &injected["metadata"]["annotations"];
    assert_eq!(annotations["config.linkerd.io/proxy-log-level"], "debug");
    assert_eq!(annotations["config.linkerd.io/skip-outbound-ports"], "25");
    assert_eq!(
        annotations["config.alpha.linkerd.io/proxy-wait-before-exit-seconds"],
        "5"
    );
    assert!(annotations.get("unrelated.example.com/x").is_none());
    assert!(annotations.get("linkerd.io/inject").is_none());
    assert_eq!(env(&injected, "LINKERD2_PROXY_LOG"), Some("debug"));
}

#[test]
fn tap_follows_the_pod_then_the_namespace_then_the_values() {
    let ns_says = |pairs: &[(&str, &str)]| -> Annotations {
        let mut ns = ns(Some("enabled"));
        ns.extend(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        ns
    };
    let pod_says = |annotations: Value| {
        let mut p = pod(None);
        p["metadata"]["annotations"] = annotations;
        p
    };
    let tap = |pod: &Value, ns: &Annotations, values: &Values| {
        let plan = decide(pod, ns).unwrap();
        let injected = injected(pod, ns, plan, owner(), &context(values), CREATED_BY).unwrap();
        env(&injected, "MESH_PROXY_TAP_ENABLED") == Some("true")
    };
    let off = Values::defaults();
    let mut on = off.clone();
    on.proxy.enable_tap = true;
    let none = pod_says(json!({}));
    assert!(!tap(&none, &ns_says(&[]), &off), "off by default");
    assert!(tap(&none, &ns_says(&[]), &on), "the values' default");
    let ns_on = ns_says(&[("config.linkerd.io/enable-tap", "true")]);
    assert!(tap(&none, &ns_on, &off), "the namespace over the values");
    let ns_off = ns_says(&[("viz.linkerd.io/disable-tap", "true")]);
    assert!(!tap(&none, &ns_off, &on), "viz's opt-out on the namespace");
    // The pod wins, whichever of the keys either uses.
    let pod_off = pod_says(json!({"config.linkerd.io/disable-tap": "true"}));
    assert!(!tap(&pod_off, &ns_on, &on), "the pod's opt-out");
    let pod_on = pod_says(json!({"config.linkerd.io/enable-tap": "true"}));
    assert!(tap(&pod_on, &ns_off, &off), "the pod's opt-in");
    let pod_on = pod_says(json!({"config.linkerd.io/disable-tap": "false"}));
    assert!(
        tap(
            &pod_on,
            &ns_says(&[("config.linkerd.io/enable-tap", "false")]),
            &on
        ),
        "the pod's Linkerd key over the namespace's mesh key"
    );
}

#[test]
fn default_opaque_ports_the_pod_exposes_are_annotated() {
    let mut mysql = pod(Some("enabled"));
    mysql["spec"]["containers"][0]["ports"] =
        json!([{"containerPort": 3306}, {"containerPort": 8080}, {"containerPort": 6379}]);
    let injected = inject(&mysql, &ns(None));
    assert_eq!(
        injected["metadata"]["annotations"]["config.linkerd.io/opaque-ports"],
        "3306,6379"
    );
    // The namespace's value wins over the defaults, the pod's over both.
    let from_ns: Annotations = [(
        "config.linkerd.io/opaque-ports".to_owned(),
        "9000".to_owned(),
    )]
    .into();
    let injected = inject(&mysql, &from_ns);
    assert_eq!(
        injected["metadata"]["annotations"]["config.linkerd.io/opaque-ports"],
        "9000"
    );
    mysql["metadata"]["annotations"]["config.linkerd.io/opaque-ports"] = json!("1234");
    let injected = inject(&mysql, &from_ns);
    assert_eq!(
        injected["metadata"]["annotations"]["config.linkerd.io/opaque-ports"],
        "1234"
    );
    // Nothing exposed, nothing added.
    let injected = inject(&pod(Some("enabled")), &ns(None));
    assert!(
        injected["metadata"]["annotations"]
            .get("config.linkerd.io/opaque-ports")
            .is_none()
    );
    assert!(in_port_list("25,4444-4450", 4445) && !in_port_list("25,4444-4450", 4451));
}

#[test]
fn a_bad_setting_is_an_error_not_a_panic() {
    let mut bad = pod(Some("enabled"));
    bad["metadata"]["annotations"]["config.linkerd.io/proxy-cpu-limit"] = json!("lots");
    let values = Values::defaults();
    let plan = decide(&bad, &ns(None)).unwrap();
    let err = injected(
        &bad,
        &ns(None),
        plan,
        owner(),
        &context(&values),
        CREATED_BY,
    )
    .unwrap_err();
    assert!(err.to_string().contains("proxy-cpu-limit"), "{err}");
}

#[test]
fn services_get_the_namespaces_opaque_ports_or_the_defaults_they_target() {
    let defaults = Values::defaults().proxy.opaque_ports;
    let service = json!({
        "metadata": {"name": "svc", "namespace": "shop"},
        "spec": {"ports": [
            {"name": "a", "port": 9090, "targetPort": 3306},
            {"name": "b", "port": 5432, "targetPort": 9091},
            {"name": "c", "port": 3306},
            {"name": "d", "port": 9093, "targetPort": "not-an-int"},
        ]},
    });
    let annotated = annotated_service(&service, &Annotations::new(), &defaults).unwrap();
    assert_eq!(
        annotated["metadata"]["annotations"][OPAQUE_PORTS],
        "9090,3306"
    );
    let mut patched = service.clone();
    json_patch::patch(&mut patched, &patch(&service, &annotated)).unwrap();
    assert_eq!(patched, annotated);

    let ns: Annotations = [(OPAQUE_PORTS.to_owned(), "4000-4010".to_owned())].into();
    let annotated = annotated_service(&service, &ns, &defaults).unwrap();
    assert_eq!(
        annotated["metadata"]["annotations"][OPAQUE_PORTS],
        "4000-4010"
    );

    let mut own = service.clone();
    own["metadata"]["annotations"] = json!({OPAQUE_PORTS: "80"});
    assert_eq!(annotated_service(&own, &ns, &defaults), None);

    let web =
        json!({"metadata": {"name": "web"}, "spec": {"ports": [{"port": 80, "targetPort": 8080}]}});
    assert_eq!(
        annotated_service(&web, &Annotations::new(), &defaults),
        None
    );
}

#[test]
fn names_for_logs_and_owners() {
    let p = pod(None);
    assert_eq!(display_name("Pod", &p), "pod/web-5d8f9-");
    assert_eq!(controller_of(&p).unwrap()["kind"], "ReplicaSet");
    assert_eq!(controller_of(&json!({"metadata": {}})), None);
}
