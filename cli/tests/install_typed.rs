//! Every object `mesh install` and `mesh uninstall` render is read back the way the API server
//! would read it: YAML 1.1 into JSON, then into its k8s-openapi type. Serializing the typed object
//! again must give the same JSON, so a misspelt or misplaced field (which the typed read would
//! silently drop) fails here. CRD schemas are checked for the structural rules the API server
//! enforces.

#![allow(clippy::unwrap_used)] // Tests fail loudly; helpers outside #[test] functions too.

mod support;

use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{
    ConfigMap, EnvVar, Namespace, PodSpec, Secret, Service, ServiceAccount,
};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSONSchemaProps,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use support::{INSTALL_CERTS, mesh, testdata, text};

/// The documents of a YAML stream, read with YAML 1.1 rules as kubectl reads them.
fn documents(text: &str) -> Vec<Value> {
    mesh_inject::yaml::to_json_documents(text).unwrap()
}

/// The variable `name` of the pod's `linkerd-proxy` container, a sidecar or a native one.
fn proxy_env<'p>(pod: &'p PodSpec, name: &str) -> &'p EnvVar {
    let proxy = pod
        .containers
        .iter()
        .chain(pod.init_containers.iter().flatten())
        .find(|c| c.name == "linkerd-proxy")
        .expect("the pod carries linkerd-proxy");
    proxy
        .env
        .iter()
        .flatten()
        .find(|e| e.name == name)
        .unwrap_or_else(|| panic!("linkerd-proxy has no {name}"))
}

fn install(args: &[&str]) -> Vec<Value> {
    let out = support::mesh_offline()
        .current_dir(testdata().join("install"))
        .args(args)
        .args(INSTALL_CERTS)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    documents(&text(&out.stdout))
}

/// Reads `object` as `T` and checks that nothing was lost on the way.
fn round_trip<T: DeserializeOwned + Serialize>(object: &Value) -> T {
    let name = format!("{}/{}", object["kind"], object["metadata"]["name"]);
    let typed: T = serde_json::from_value(object.clone())
        .unwrap_or_else(|e| panic!("{name} is not a valid {}: {e}", std::any::type_name::<T>()));
    let again = serde_json::to_value(&typed).unwrap();
    let differences = diff(object, &again, "");
    if !differences.is_empty() {
        panic!("{name} has fields its type does not know (or of the wrong shape):\n{differences}");
    }
    typed
}

/// The paths where two values differ, for a readable failure; empty when they are the same.
fn diff(a: &Value, b: &Value, path: &str) -> String {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => x
            .keys()
            .chain(y.keys().filter(|k| !x.contains_key(*k)))
            .map(|k| {
                diff(
                    &x[k.as_str()],
                    y.get(k).unwrap_or(&Value::Null),
                    &format!("{path}.{k}"),
                )
            })
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join("\n"),
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .map(|(i, (x, y))| diff(x, y, &format!("{path}[{i}]")))
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join("\n"),
        // Schema bounds are floats in the typed model: 1 and 1.0 are the same bound.
        (Value::Number(x), Value::Number(y)) if x.as_f64() == y.as_f64() => String::new(),
        _ if a == b => String::new(),
        _ => format!("{path}: rendered {a}, typed {b}"),
    }
}

fn check_all(objects: &[Value]) -> Vec<String> {
    let mut kinds = Vec::new();
    for object in objects {
        let kind = object["kind"].as_str().unwrap().to_owned();
        match kind.as_str() {
            "Namespace" => drop(round_trip::<Namespace>(object)),
            "ServiceAccount" => drop(round_trip::<ServiceAccount>(object)),
            "ConfigMap" => drop(round_trip::<ConfigMap>(object)),
            "Secret" => drop(round_trip::<Secret>(object)),
            "Service" => drop(round_trip::<Service>(object)),
            "Deployment" => drop(round_trip::<Deployment>(object)),
            "PodDisruptionBudget" => drop(round_trip::<PodDisruptionBudget>(object)),
            "ClusterRole" => drop(round_trip::<ClusterRole>(object)),
            "ClusterRoleBinding" => drop(round_trip::<ClusterRoleBinding>(object)),
            "MutatingWebhookConfiguration" => {
                drop(round_trip::<MutatingWebhookConfiguration>(object))
            }
            "CustomResourceDefinition" => {
                let crd = round_trip::<CustomResourceDefinition>(object);
                check_structural(&crd);
            }
            other => panic!("no typed check for kind {other}"),
        }
        kinds.push(kind);
    }
    kinds
}

#[test]
fn default_install_objects_are_valid_typed_objects() {
    let objects = install(&["install"]);
    let kinds = check_all(&objects);
    let pod = |name: &str| -> PodSpec {
        let deployment: Deployment = serde_json::from_value(
            objects
                .iter()
                .find(|o| o["kind"] == "Deployment" && o["metadata"]["name"] == name)
                .unwrap()
                .clone(),
        )
        .unwrap();
        deployment.spec.unwrap().template.spec.unwrap()
    };
    let value = |pod: &PodSpec, name: &str| proxy_env(pod, name).value.clone().unwrap();
    // The identity controller's proxy asks the controller beside it for its certificate.
    let identity = pod("linkerd-identity");
    assert_eq!(
        value(&identity, "LINKERD2_PROXY_IDENTITY_SVC_ADDR"),
        "localhost.:8080"
    );
    // The destination controller's proxy asks the controllers beside it over loopback, in
    // plaintext; other pods' proxies come through its inbound side over mesh TLS, so ports
    // 8086 and 8090 are proxied, not skipped.
    let destination = pod("linkerd-destination");
    assert_eq!(
        value(&destination, "LINKERD2_PROXY_DESTINATION_SVC_ADDR"),
        "localhost.:8086"
    );
    assert_eq!(
        value(&destination, "LINKERD2_PROXY_POLICY_SVC_ADDR"),
        "localhost.:8090"
    );
    let inbound = value(&destination, "LINKERD2_PROXY_INBOUND_PORTS");
    let init = destination
        .init_containers
        .iter()
        .flatten()
        .find(|c| c.name == "linkerd-init")
        .unwrap();
    let args = init.args.clone().unwrap();
    let skipped = args
        .iter()
        .skip_while(|a| *a != "--inbound-ports-to-ignore")
        .nth(1)
        .unwrap();
    for port in ["8086", "8090"] {
        assert!(inbound.split(',').any(|p| p == port), "{inbound}");
        assert!(!skipped.split(',').any(|p| p == port), "{skipped}");
    }
    let dst_name = "linkerd-destination.linkerd.serviceaccount.identity.linkerd.cluster.local";
    let injector = pod("linkerd-proxy-injector");
    for (name, addr) in [
        (
            "DESTINATION",
            "linkerd-dst-headless.linkerd.svc.cluster.local.:8086",
        ),
        ("POLICY", "linkerd-policy.linkerd.svc.cluster.local.:8090"),
    ] {
        let var = |what: &str| format!("LINKERD2_PROXY_{name}_SVC_{what}");
        assert_eq!(value(&injector, &var("ADDR")), addr);
        assert_eq!(value(&injector, &var("NAME")), dst_name);
    }
    for expected in [
        "Namespace",
        "ClusterRole",
        "ServiceAccount",
        "ConfigMap",
        "Secret",
        "Service",
        "Deployment",
        "MutatingWebhookConfiguration",
    ] {
        assert!(kinds.iter().any(|k| k == expected), "no {expected}");
    }
    assert!(!kinds.iter().any(|k| k == "PodDisruptionBudget"));
}

/// Whether the ClusterRoles bound to ServiceAccount `ns/name` let it `verb` `resource` in
/// `group`.
fn granted(
    objects: &[Value],
    ns: &str,
    name: &str,
    verb: &str,
    group: &str,
    resource: &str,
) -> bool {
    let bindings = objects
        .iter()
        .filter(|o| o["kind"] == "ClusterRoleBinding")
        .map(|o| serde_json::from_value::<ClusterRoleBinding>(o.clone()).unwrap());
    let roles: Vec<String> = bindings
        .filter(|b| {
            b.subjects.iter().flatten().any(|s| {
                s.kind == "ServiceAccount" && s.name == name && s.namespace.as_deref() == Some(ns)
            })
        })
        .map(|b| b.role_ref.name)
        .collect();
    objects
        .iter()
        .filter(|o| o["kind"] == "ClusterRole")
        .map(|o| serde_json::from_value::<ClusterRole>(o.clone()).unwrap())
        .filter(|r| roles.iter().any(|n| r.metadata.name.as_ref() == Some(n)))
        .flat_map(|r| r.rules.unwrap_or_default())
        .any(|rule| {
            let has = |list: &Option<Vec<String>>, want: &str| {
                list.iter().flatten().any(|x| x == want || x == "*")
            };
            has(&rule.api_groups, group)
                && has(&rule.resources, resource)
                && rule.verbs.iter().any(|v| v == verb || v == "*")
        })
}

/// The destination component's ServiceAccount may watch every kind its destination and policy
/// controllers watch, the Gateway API's routes included, and nothing in the policy groups is
/// left out by a typo in the group or the plural.
#[test]
fn the_destination_service_account_may_watch_what_its_controllers_watch() {
    let objects = install(&["install"]);
    let watched = [
        ("", "pods"),
        ("", "services"),
        ("discovery.k8s.io", "endpointslices"),
        ("linkerd.io", "serviceprofiles"),
        ("policy.linkerd.io", "servers"),
        ("policy.linkerd.io", "serverauthorizations"),
        ("policy.linkerd.io", "authorizationpolicies"),
        ("policy.linkerd.io", "meshtlsauthentications"),
        ("policy.linkerd.io", "networkauthentications"),
        ("policy.linkerd.io", "httproutes"),
        ("gateway.networking.k8s.io", "httproutes"),
        ("gateway.networking.k8s.io", "grpcroutes"),
    ];
    for (group, resource) in watched {
        for verb in ["get", "list", "watch"] {
            assert!(
                granted(
                    &objects,
                    "linkerd",
                    "linkerd-destination",
                    verb,
                    group,
                    resource
                ),
                "linkerd-destination may not {verb} {resource}.{group}"
            );
        }
    }
    // Only reads: the Gateway API's routes belong to whoever installed them.
    for verb in ["create", "update", "patch", "delete"] {
        assert!(!granted(
            &objects,
            "linkerd",
            "linkerd-destination",
            verb,
            "gateway.networking.k8s.io",
            "httproutes"
        ));
    }
    // The injector's account is not the policy controller's.
    assert!(!granted(
        &objects,
        "linkerd",
        "linkerd-proxy-injector",
        "list",
        "gateway.networking.k8s.io",
        "grpcroutes"
    ));
}

#[test]
fn ha_install_objects_are_valid_typed_objects() {
    let objects = install(&["install", "--ha"]);
    check_all(&objects);
    let budgets = objects
        .iter()
        .filter(|o| o["kind"] == "PodDisruptionBudget")
        .count();
    assert_eq!(budgets, 3);
    for object in objects.iter().filter(|o| o["kind"] == "Deployment") {
        let deployment: Deployment = serde_json::from_value(object.clone()).unwrap();
        let spec = deployment.spec.unwrap();
        assert_eq!(spec.replicas, Some(3));
        let pod = spec.template.spec.unwrap();
        let anti = pod.affinity.unwrap().pod_anti_affinity.unwrap();
        assert_eq!(
            anti.required_during_scheduling_ignored_during_execution
                .unwrap()[0]
                .topology_key,
            "kubernetes.io/hostname"
        );
        // Every container, the proxy included, asks for CPU and memory.
        for c in pod
            .containers
            .iter()
            .chain(pod.init_containers.iter().flatten())
        {
            if c.name == "linkerd-init" {
                continue;
            }
            let requests = c.resources.as_ref().and_then(|r| r.requests.as_ref());
            let requests = requests.unwrap_or_else(|| panic!("{} has no requests", c.name));
            assert!(requests.contains_key("cpu") && requests.contains_key("memory"));
        }
    }
    let webhook: MutatingWebhookConfiguration = serde_json::from_value(
        objects
            .iter()
            .find(|o| o["kind"] == "MutatingWebhookConfiguration")
            .unwrap()
            .clone(),
    )
    .unwrap();
    assert_eq!(
        webhook.webhooks.unwrap()[0].failure_policy.as_deref(),
        Some("Fail")
    );
}

#[test]
fn crds_are_valid_and_structural() {
    let kinds = check_all(&install(&["install", "--crds"]));
    assert_eq!(kinds.len(), 7);
    let crds = install(&["install", "--crds"]);
    let names: Vec<&str> = crds
        .iter()
        .map(|c| c["metadata"]["name"].as_str().unwrap())
        .collect();
    for name in [
        "serviceprofiles.linkerd.io",
        "servers.policy.linkerd.io",
        "httproutes.policy.linkerd.io",
        "authorizationpolicies.policy.linkerd.io",
        "serverauthorizations.policy.linkerd.io",
        "meshtlsauthentications.policy.linkerd.io",
        "networkauthentications.policy.linkerd.io",
    ] {
        assert!(names.contains(&name), "no CRD {name}");
    }
    // `mesh check` looks for the same CRDs install renders: each one the control plane
    // waits for.
    let mut rendered = names.clone();
    rendered.sort_unstable();
    let mut checked = mesh_names::resources::CRDS.to_vec();
    checked.sort_unstable();
    assert_eq!(rendered, checked);
}

#[test]
fn uninstall_objects_are_valid_typed_objects() {
    let out = mesh()
        .args(["uninstall", "--crds", "--ha"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let objects = documents(&text(&out.stdout));
    let kinds = check_all(&objects);
    assert_eq!(kinds.first().unwrap(), "MutatingWebhookConfiguration");
    assert_eq!(kinds.last().unwrap(), "CustomResourceDefinition");
    let ns = kinds.iter().position(|k| k == "Namespace").unwrap();
    let first_crd = kinds
        .iter()
        .position(|k| k == "CustomResourceDefinition")
        .unwrap();
    assert!(kinds[..ns].iter().all(|k| k != "CustomResourceDefinition"));
    assert_eq!(ns + 1, first_crd, "the namespace goes after what is in it");
    // Nothing secret is written for deletion.
    for secret in objects.iter().filter(|o| o["kind"] == "Secret") {
        for value in secret["data"].as_object().unwrap().values() {
            assert_eq!(value, "");
        }
    }
}

/// Strings kubectl would read as booleans stay strings: a version, an env value and a list item.
#[test]
fn yes_on_and_y_survive_as_strings() {
    let objects = install(&[
        "install",
        "--set",
        "meshVersion=yes",
        "--set",
        "proxy.logLevel=on",
        "--set",
        "proxyInjector.excludedNamespaces={kube-system,y}",
    ]);
    check_all(&objects);
    let deployment: Deployment = serde_json::from_value(
        objects
            .iter()
            .find(|o| o["kind"] == "Deployment" && o["metadata"]["name"] == "linkerd-destination")
            .unwrap()
            .clone(),
    )
    .unwrap();
    assert_eq!(
        deployment.metadata.labels.unwrap()["app.kubernetes.io/version"],
        "yes"
    );
    let pod = deployment.spec.unwrap().template.spec.unwrap();
    let controller = &pod
        .containers
        .iter()
        .find(|c| c.name == "destination")
        .unwrap();
    assert!(controller.image.as_deref().unwrap().ends_with(":yes"));
    let log = proxy_env(&pod, "LINKERD2_PROXY_LOG");
    assert!(log.value.as_deref().unwrap().starts_with("on"), "{log:?}");

    let webhook: MutatingWebhookConfiguration = serde_json::from_value(
        objects
            .iter()
            .find(|o| o["kind"] == "MutatingWebhookConfiguration")
            .unwrap()
            .clone(),
    )
    .unwrap();
    let selector = webhook.webhooks.unwrap()[0]
        .namespace_selector
        .clone()
        .unwrap();
    let excluded = &selector.match_expressions.unwrap()[1];
    assert_eq!(
        excluded.values.as_deref().unwrap(),
        ["kube-system".to_owned(), "y".to_owned()]
    );

    // linkerd-config holds the values as YAML text; read with YAML 1.1 rules they are strings.
    let config: ConfigMap = serde_json::from_value(
        objects
            .iter()
            .find(|o| o["metadata"]["name"] == "linkerd-config")
            .unwrap()
            .clone(),
    )
    .unwrap();
    let values = &documents(&config.data.unwrap()["values"])[0];
    assert_eq!(values["meshVersion"], "yes");
    assert_eq!(values["proxy"]["logLevel"], "on");
    assert_eq!(values["proxyInjector"]["excludedNamespaces"][1], "y");
}

/// The rules of a structural schema that matter for what we write: every node says its type
/// (unless it is int-or-string or keeps unknown fields), and the branches of oneOf/anyOf/allOf
/// only constrain, never declare types, defaults or descriptions.
fn check_structural(crd: &CustomResourceDefinition) {
    for version in &crd.spec.versions {
        let schema = version
            .schema
            .as_ref()
            .and_then(|s| s.open_api_v3_schema.as_ref())
            .unwrap_or_else(|| panic!("{} {} has no schema", crd.spec.names.kind, version.name));
        walk(
            schema,
            &format!("{} {}", crd.spec.names.kind, version.name),
            false,
        );
    }
}

fn walk(s: &JSONSchemaProps, path: &str, in_junctor: bool) {
    let int_or_string = s.x_kubernetes_int_or_string == Some(true);
    let preserve = s.x_kubernetes_preserve_unknown_fields == Some(true);
    if in_junctor {
        assert!(
            s.type_.is_none() && s.default.is_none() && s.description.is_none(),
            "{path}: a oneOf/anyOf/allOf branch declares a type, default or description"
        );
    } else {
        assert!(
            s.type_.is_some() || int_or_string || preserve,
            "{path}: no type"
        );
    }
    for (name, child) in s.properties.iter().flatten() {
        walk(child, &format!("{path}.{name}"), in_junctor);
    }
    if let Some(k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSONSchemaPropsOrArray::Schema(items)) = &s.items {
        walk(items, &format!("{path}[]"), in_junctor);
    }
    for branch in s.one_of.iter().chain(&s.all_of).flatten() {
        walk(branch, &format!("{path}(oneOf)"), true);
    }
    for branch in s.any_of.iter().flatten() {
        // int-or-string may list its two types, and nothing else may.
        if int_or_string {
            assert!(
                matches!(branch.type_.as_deref(), Some("integer" | "string")),
                "{path}: int-or-string anyOf"
            );
        } else {
            walk(branch, &format!("{path}(anyOf)"), true);
        }
    }
}

/// A value full of YAML and JSON syntax lands as one string where it belongs: templates insert
/// every value quoted, so no value can add keys or documents.
#[test]
fn values_cannot_change_the_manifest_structure() {
    let tricky = "x\", \"evil\": {\"a\": 1} # }\n---\nkind: Secret";
    let clean = install(&["install"]);
    let dir = tempfile::tempdir().unwrap();
    let values = dir.path().join("tricky.yaml");
    std::fs::write(
        &values,
        format!(
            "controllerLogLevel: {}\n",
            serde_json::to_string(tricky).unwrap()
        ),
    )
    .unwrap();
    let objects = install(&["install", "-f", values.to_str().unwrap()]);
    check_all(&objects);
    assert_eq!(objects.len(), clean.len(), "no object was added");
    let identity = objects
        .iter()
        .find(|o| o["kind"] == "Deployment" && o["metadata"]["name"] == "linkerd-identity")
        .unwrap();
    let args = identity["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .unwrap();
    assert_eq!(args[1], format!("--log-level={tricky}").as_str());
    assert!(identity.pointer("/evil").is_none());
}
