//! Discovery (`/api`, `/apis`, `/apis/<group>/<version>`), `/version` and the minimal OpenAPI v3
//! documents `kubectl apply` reads before it writes.

use serde_json::{Value, json};

use crate::resources::Registry;

pub fn version((major, minor): (u32, u32)) -> Value {
    json!({
        "major": major.to_string(),
        "minor": minor.to_string(),
        "gitVersion": format!("v{major}.{minor}.0"),
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2025-01-01T00:00:00Z",
        "goVersion": "go1.24.0",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

pub fn core_versions(server: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{ "clientCIDR": "0.0.0.0/0", "serverAddress": server }],
    })
}

fn group_entry(group: &str, versions: &[String]) -> Value {
    let gv = |v: &String| json!({ "groupVersion": format!("{group}/{v}"), "version": v });
    json!({
        "name": group,
        "versions": versions.iter().map(gv).collect::<Vec<_>>(),
        "preferredVersion": versions.first().map(gv).unwrap_or(Value::Null),
    })
}

pub fn group_list(registry: &Registry) -> Value {
    let groups: Vec<Value> = registry
        .groups()
        .iter()
        .map(|(g, vs)| group_entry(g, vs))
        .collect();
    json!({ "kind": "APIGroupList", "apiVersion": "v1", "groups": groups })
}

pub fn group(registry: &Registry, name: &str) -> Option<Value> {
    let (g, vs) = registry.groups().into_iter().find(|(g, _)| g == name)?;
    let mut entry = group_entry(&g, &vs);
    entry["kind"] = json!("APIGroup");
    entry["apiVersion"] = json!("v1");
    Some(entry)
}

pub fn resource_list(registry: &Registry, group: &str, version: &str) -> Option<Value> {
    let types: Vec<_> = registry.in_group_version(group, version).collect();
    if types.is_empty() {
        return None;
    }
    let resources: Vec<Value> = types.iter().flat_map(|t| t.discovery_entries()).collect();
    let group_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources,
    }))
}

/// `/openapi/v3`: one entry per group-version, with a hash that changes when its types do.
pub fn openapi_index(registry: &Registry) -> Value {
    let mut paths = serde_json::Map::new();
    paths.insert(
        "api/v1".into(),
        json!({ "serverRelativeURL": format!("/openapi/v3/api/v1?hash={}", registry.digest("", "v1")) }),
    );
    for (group, versions) in registry.groups() {
        for v in versions {
            let path = format!("apis/{group}/{v}");
            let url = format!("/openapi/v3/{path}?hash={}", registry.digest(&group, &v));
            paths.insert(path, json!({ "serverRelativeURL": url }));
        }
    }
    json!({ "paths": paths })
}

/// `/openapi/v3/apis/<group>/<version>`: a PATCH operation per kind, carrying its
/// group-version-kind and the `fieldValidation` parameter, which is what kubectl looks for to
/// decide that the server validates fields itself.
pub fn openapi_document(registry: &Registry, group: &str, version: &str) -> Option<Value> {
    let types: Vec<_> = registry.in_group_version(group, version).collect();
    if types.is_empty() {
        return None;
    }
    let prefix = if group.is_empty() {
        format!("/api/{version}")
    } else {
        format!("/apis/{group}/{version}")
    };
    let mut paths = serde_json::Map::new();
    let params = json!([
        { "name": "dryRun", "in": "query", "schema": { "type": "string", "uniqueItems": true } },
        { "name": "fieldManager", "in": "query", "schema": { "type": "string", "uniqueItems": true } },
        { "name": "fieldValidation", "in": "query", "schema": { "type": "string", "uniqueItems": true } },
        { "name": "force", "in": "query", "schema": { "type": "boolean", "uniqueItems": true } },
    ]);
    for t in types.iter().filter(|t| !t.create_only) {
        let path = if t.namespaced {
            format!("{prefix}/namespaces/{{namespace}}/{}/{{name}}", t.plural)
        } else {
            format!("{prefix}/{}/{{name}}", t.plural)
        };
        let gvk = json!({ "group": group, "version": version, "kind": t.kind });
        paths.insert(
            path,
            json!({
                "patch": {
                    "operationId": format!("patch{}", t.kind),
                    "parameters": params,
                    "requestBody": { "content": {
                        "application/apply-patch+yaml": { "schema": { "type": "object" } },
                        "application/json-patch+json": { "schema": { "type": "object" } },
                        "application/merge-patch+json": { "schema": { "type": "object" } },
                        "application/strategic-merge-patch+json": { "schema": { "type": "object" } },
                    }},
                    "responses": { "200": { "description": "OK" } },
                    "x-kubernetes-action": "patch",
                    "x-kubernetes-group-version-kind": gvk,
                },
            }),
        );
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": { "title": "Kubernetes", "version": "v1.33.0" },
        "paths": paths,
        "components": { "schemas": {} },
    }))
}
