use serde_json::{Map, Value, json};

use super::rules::{Request, namespace_matches, object_matches, rules_match};
use super::{denied, review_request};
use crate::resources::Registry;

fn rule(resources: Value, scope: &str) -> Value {
    json!({ "rules": [{
        "operations": ["CREATE"], "apiGroups": ["", "apps"], "apiVersions": ["*"],
        "resources": resources, "scope": scope,
    }]})
}

#[test]
fn rules_match_resources_and_scopes_as_the_api_server_does() {
    let registry = Registry::default();
    let pods = registry.find("", "v1", "pods").unwrap();
    let namespaces = registry.find("", "v1", "namespaces").unwrap();
    let req = |rt| Request {
        rt,
        version: "v1",
        operation: "CREATE",
    };
    assert!(rules_match(&rule(json!(["pods"]), "*"), req(pods)));
    assert!(rules_match(&rule(json!(["*"]), "*"), req(pods)));
    assert!(rules_match(&rule(json!(["*/*"]), "*"), req(pods)));
    // The API server's matcher lets `*` after the slash match "no subresource" as well.
    assert!(rules_match(&rule(json!(["pods/*"]), "*"), req(pods)));
    assert!(!rules_match(&rule(json!(["pods/status"]), "*"), req(pods)));
    assert!(!rules_match(&rule(json!(["services"]), "*"), req(pods)));
    assert!(rules_match(&rule(json!(["pods"]), "Namespaced"), req(pods)));
    assert!(!rules_match(&rule(json!(["pods"]), "Cluster"), req(pods)));
    assert!(rules_match(&rule(json!(["*"]), "Cluster"), req(namespaces)));
    let update = Request {
        rt: pods,
        version: "v1",
        operation: "UPDATE",
    };
    assert!(!rules_match(&rule(json!(["pods"]), "*"), update));
    assert!(!rules_match(&json!({}), req(pods)), "no rules, no calls");
    let other_group = json!({ "rules": [{ "operations": ["*"], "apiGroups": ["apps"],
        "apiVersions": ["v1"], "resources": ["*"] }]});
    assert!(!rules_match(&other_group, req(pods)));
}

#[test]
fn selectors_pick_namespaces_and_objects() {
    let registry = Registry::default();
    let pods = registry.find("", "v1", "pods").unwrap();
    let namespaces = registry.find("", "v1", "namespaces").unwrap();
    let nodes = registry.find("", "v1", "nodes").unwrap();
    let hook = json!({
        "namespaceSelector": { "matchLabels": { "mesh": "on" } },
        "objectSelector": { "matchExpressions": [{ "key": "tier", "operator": "In", "values": ["web"] }] },
    });
    let labels: Map<String, Value> = json!({ "mesh": "on" }).as_object().unwrap().clone();
    let none = json!({});
    assert!(namespace_matches(&hook, pods, Some(&labels), &none));
    assert!(!namespace_matches(&hook, pods, None, &none));
    // A Namespace is matched by its own labels; other cluster-scoped objects always.
    let ns = json!({ "metadata": { "labels": { "mesh": "on" } } });
    assert!(namespace_matches(&hook, namespaces, None, &ns));
    assert!(!namespace_matches(&hook, namespaces, None, &none));
    assert!(namespace_matches(&hook, nodes, None, &none));
    assert!(object_matches(
        &hook,
        &json!({ "metadata": { "labels": { "tier": "web" } } })
    ));
    assert!(!object_matches(
        &hook,
        &json!({ "metadata": { "labels": { "tier": "db" } } })
    ));
    assert!(
        object_matches(&json!({}), &none),
        "no selector selects everything"
    );
}

#[test]
fn denials_read_like_the_api_server() {
    let with_message = denied(
        "a.example.com",
        Some(&json!({ "message": "no", "code": 403 })),
    );
    assert_eq!(with_message.code, 403);
    assert_eq!(
        with_message.message,
        r#"admission webhook "a.example.com" denied the request: no"#
    );
    let with_reason = denied("a", Some(&json!({ "reason": "Forbidden", "code": 200 })));
    assert_eq!(with_reason.code, 400, "never below 400");
    assert_eq!(
        with_reason.message,
        r#"admission webhook "a" denied the request: Forbidden"#
    );
    let bare = denied("a", None);
    assert_eq!(
        bare.message,
        r#"admission webhook "a" denied the request without explanation"#
    );
}

#[test]
fn reviews_carry_the_request() {
    let registry = Registry::default();
    let services = registry.find("", "v1", "services").unwrap();
    let attrs = super::Attributes::create(services, "v1", "app", super::admin_user());
    let object = json!({ "metadata": { "name": "web", "namespace": "app" } });
    let review = review_request(&attrs, "u-1", &object);
    assert_eq!(review["kind"], "AdmissionReview");
    let request = &review["request"];
    assert_eq!(request["uid"], "u-1");
    assert_eq!(request["name"], "web");
    assert_eq!(request["resource"]["resource"], "services");
    assert_eq!(
        request["options"],
        json!({ "kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1" })
    );
}
