//! The kinds the server knows: Kubernetes' built-in ones mesh needs, plus every served
//! CustomResourceDefinition.

use serde_json::{Value, json};

/// One resource type, e.g. `apps/v1 deployments`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceType {
    /// The API group, `""` for the core group.
    pub group: String,
    /// Every served version; the first is the preferred one.
    pub versions: Vec<String>,
    pub kind: String,
    pub plural: String,
    pub singular: String,
    pub namespaced: bool,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    /// Subresources such as `status`, `scale` or `proxy`.
    pub subresources: Vec<String>,
    /// Whether the type only accepts `create`, like SelfSubjectAccessReview.
    pub create_only: bool,
    /// Whether it was registered by a CustomResourceDefinition.
    pub custom: bool,
}

/// Identifies a resource type independent of version: (group, plural).
pub type ResourceKey = (String, String);

impl ResourceType {
    pub fn key(&self) -> ResourceKey {
        (self.group.clone(), self.plural.clone())
    }

    pub fn preferred_version(&self) -> &str {
        self.versions.first().map(String::as_str).unwrap_or("v1")
    }

    /// `v1` for the core group, `apps/v1` otherwise.
    pub fn api_version(&self, version: &str) -> String {
        if self.group.is_empty() {
            version.to_string()
        } else {
            format!("{}/{version}", self.group)
        }
    }

    pub fn has_subresource(&self, name: &str) -> bool {
        self.subresources.iter().any(|s| s == name)
    }

    pub fn verbs(&self) -> Vec<&'static str> {
        if self.create_only {
            vec!["create"]
        } else {
            vec![
                "create",
                "delete",
                "deletecollection",
                "get",
                "list",
                "patch",
                "update",
                "watch",
            ]
        }
    }

    /// The `APIResource` entries of this type for a discovery document.
    pub fn discovery_entries(&self) -> Vec<Value> {
        let mut out = vec![json!({
            "name": self.plural,
            "singularName": self.singular,
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": self.verbs(),
            "shortNames": self.short_names,
            "categories": self.categories,
        })];
        for sub in &self.subresources {
            let (kind, verbs): (&str, Vec<&str>) = match sub.as_str() {
                "status" => (&self.kind, vec!["get", "patch", "update"]),
                "scale" => ("Scale", vec!["get", "patch", "update"]),
                "proxy" => (
                    "PodProxyOptions",
                    vec!["create", "delete", "get", "patch", "update"],
                ),
                "log" => ("Pod", vec!["get"]),
                "portforward" => ("PodPortForwardOptions", vec!["create", "get"]),
                "eviction" => ("Eviction", vec!["create"]),
                _ => (&self.kind, vec!["get"]),
            };
            out.push(json!({
                "name": format!("{}/{sub}", self.plural),
                "singularName": "",
                "namespaced": self.namespaced,
                "kind": kind,
                "verbs": verbs,
            }));
        }
        out
    }
}

/// All served resource types.
#[derive(Debug, Clone)]
pub struct Registry {
    types: Vec<ResourceType>,
}

impl Default for Registry {
    fn default() -> Self {
        Registry {
            types: builtin_types(),
        }
    }
}

impl Registry {
    pub fn types(&self) -> &[ResourceType] {
        &self.types
    }

    /// The type served at `/apis/<group>/<version>/<plural>`.
    pub fn find(&self, group: &str, version: &str, plural: &str) -> Option<&ResourceType> {
        self.types.iter().find(|t| {
            t.group == group && t.plural == plural && t.versions.iter().any(|v| v == version)
        })
    }

    pub fn by_key(&self, key: &ResourceKey) -> Option<&ResourceType> {
        self.types
            .iter()
            .find(|t| t.group == key.0 && t.plural == key.1)
    }

    /// The type of objects whose `apiVersion` and `kind` are given.
    pub fn by_kind(&self, api_version: &str, kind: &str) -> Option<&ResourceType> {
        let (group, version) = split_api_version(api_version);
        self.types
            .iter()
            .find(|t| t.group == group && t.kind == kind && t.versions.iter().any(|v| v == version))
    }

    /// The type of a kind given as `Kind` (the first registered, so the core `Event` before
    /// `events.k8s.io`'s) or as `Kind.group` (`Event.events.k8s.io`).
    pub fn by_kind_name(&self, name: &str) -> Option<&ResourceType> {
        if let Some(t) = self.types.iter().find(|t| t.kind == name) {
            return Some(t);
        }
        let (kind, group) = name.split_once('.')?;
        self.types
            .iter()
            .find(|t| t.kind == kind && t.group == group)
    }

    /// Groups with their versions, in registration order, core group excluded.
    pub fn groups(&self) -> Vec<(String, Vec<String>)> {
        let mut groups: Vec<(String, Vec<String>)> = Vec::new();
        for t in self.types.iter().filter(|t| !t.group.is_empty()) {
            let entry = match groups.iter_mut().find(|(g, _)| *g == t.group) {
                Some(entry) => entry,
                None => {
                    groups.push((t.group.clone(), Vec::new()));
                    let last = groups.len() - 1;
                    &mut groups[last]
                }
            };
            for v in &t.versions {
                if !entry.1.contains(v) {
                    entry.1.push(v.clone());
                }
            }
        }
        for (_, versions) in &mut groups {
            versions.sort_by(|a, b| version_priority(a).cmp(&version_priority(b)).then(a.cmp(b)));
        }
        groups
    }

    /// The types served at one group-version.
    pub fn in_group_version<'a>(
        &'a self,
        group: &'a str,
        version: &'a str,
    ) -> impl Iterator<Item = &'a ResourceType> + 'a {
        self.types
            .iter()
            .filter(move |t| t.group == group && t.versions.iter().any(|v| v == version))
    }

    /// Registers (or re-registers) the type a CRD describes. Returns an error message for a CRD
    /// that lacks the required names.
    pub fn register_crd(&mut self, crd: &Value) -> Result<ResourceType, String> {
        let spec = crd
            .get("spec")
            .ok_or_else(|| "spec: Required value".to_string())?;
        let text = |v: Option<&Value>, field: &str| -> Result<String, String> {
            v.and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .ok_or_else(|| format!("{field}: Required value"))
        };
        let group = text(spec.get("group"), "spec.group")?;
        let names = spec.get("names");
        let plural = text(names.and_then(|n| n.get("plural")), "spec.names.plural")?;
        let kind = text(names.and_then(|n| n.get("kind")), "spec.names.kind")?;
        let singular = names
            .and_then(|n| n.get("singular"))
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| kind.to_lowercase());
        let strings = |v: Option<&Value>| -> Vec<String> {
            v.and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default()
        };
        let namespaced = spec.get("scope").and_then(Value::as_str) != Some("Cluster");
        let mut versions: Vec<(bool, String)> = spec
            .get("versions")
            .and_then(Value::as_array)
            .map(|vs| {
                vs.iter()
                    .filter(|v| v.get("served").and_then(Value::as_bool).unwrap_or(true))
                    .filter_map(|v| {
                        let name = v.get("name")?.as_str()?.to_string();
                        let storage = v.get("storage").and_then(Value::as_bool).unwrap_or(false);
                        Some((storage, name))
                    })
                    .collect()
            })
            .unwrap_or_default();
        if versions.is_empty() {
            return Err("spec.versions: Invalid value: must have exactly one version marked as storage version".into());
        }
        versions.sort_by_key(|(_, v)| version_priority(v));
        let mut subresources = Vec::new();
        if let Some(subs) = spec
            .get("versions")
            .and_then(Value::as_array)
            .and_then(|vs| vs.iter().find_map(|v| v.get("subresources")))
            .and_then(Value::as_object)
        {
            subresources.extend(subs.keys().cloned());
        }
        let t = ResourceType {
            group,
            versions: versions.into_iter().map(|(_, v)| v).collect(),
            kind,
            plural,
            singular,
            namespaced,
            short_names: strings(names.and_then(|n| n.get("shortNames"))),
            categories: strings(names.and_then(|n| n.get("categories"))),
            subresources,
            create_only: false,
            custom: true,
        };
        self.types.retain(|old| old.key() != t.key());
        self.types.push(t.clone());
        Ok(t)
    }

    /// Forgets a custom type. Built-in types stay.
    pub fn unregister(&mut self, key: &ResourceKey) {
        self.types.retain(|t| !(t.custom && t.key() == *key));
    }

    /// A stable digest of what a group-version serves, for OpenAPI `hash=` parameters.
    pub fn digest(&self, group: &str, version: &str) -> String {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for t in self.in_group_version(group, version) {
            for b in t.kind.bytes().chain(t.plural.bytes()).chain([0]) {
                h ^= u64::from(b);
                h = h.wrapping_mul(0x0000_0100_0000_01b3);
            }
        }
        format!("{h:016X}")
    }
}

/// Sorts Kubernetes versions the way discovery does: GA before beta before alpha, higher numbers
/// first, anything else last.
fn version_priority(v: &str) -> (u8, std::cmp::Reverse<u32>, std::cmp::Reverse<u32>) {
    use std::cmp::Reverse;
    let parsed = v.strip_prefix('v').and_then(|rest| {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let major: u32 = rest[..digits].parse().ok()?;
        let tail = &rest[digits..];
        let (stage, minor) = if tail.is_empty() {
            (0, 0)
        } else if let Some(n) = tail.strip_prefix("beta") {
            (1, n.parse().ok()?)
        } else if let Some(n) = tail.strip_prefix("alpha") {
            (2, n.parse().ok()?)
        } else {
            return None;
        };
        Some((stage, Reverse(major), Reverse(minor)))
    });
    parsed.unwrap_or((3, Reverse(0), Reverse(0)))
}

/// `("apps", "v1")` for `apps/v1`, `("", "v1")` for `v1`.
pub fn split_api_version(api_version: &str) -> (&str, &str) {
    match api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    }
}

struct Builtin {
    group: &'static str,
    version: &'static str,
    plural: &'static str,
    kind: &'static str,
    namespaced: bool,
    short_names: &'static [&'static str],
    subresources: &'static [&'static str],
}

const fn b(
    group: &'static str,
    version: &'static str,
    plural: &'static str,
    kind: &'static str,
    namespaced: bool,
    short_names: &'static [&'static str],
    subresources: &'static [&'static str],
) -> Builtin {
    Builtin {
        group,
        version,
        plural,
        kind,
        namespaced,
        short_names,
        subresources,
    }
}

const NS: bool = true;
const CLUSTER: bool = false;

const BUILTINS: &[Builtin] = &[
    b(
        "",
        "v1",
        "namespaces",
        "Namespace",
        CLUSTER,
        &["ns"],
        &["status", "finalize"],
    ),
    b(
        "",
        "v1",
        "pods",
        "Pod",
        NS,
        &["po"],
        &["status", "proxy", "portforward", "log", "eviction"],
    ),
    b(
        "",
        "v1",
        "services",
        "Service",
        NS,
        &["svc"],
        &["status", "proxy"],
    ),
    b("", "v1", "endpoints", "Endpoints", NS, &["ep"], &[]),
    b("", "v1", "configmaps", "ConfigMap", NS, &["cm"], &[]),
    b("", "v1", "secrets", "Secret", NS, &[], &[]),
    b(
        "",
        "v1",
        "serviceaccounts",
        "ServiceAccount",
        NS,
        &["sa"],
        &[],
    ),
    b(
        "",
        "v1",
        "nodes",
        "Node",
        CLUSTER,
        &["no"],
        &["status", "proxy"],
    ),
    b("", "v1", "events", "Event", NS, &["ev"], &[]),
    b(
        "",
        "v1",
        "replicationcontrollers",
        "ReplicationController",
        NS,
        &["rc"],
        &["status", "scale"],
    ),
    b(
        "",
        "v1",
        "persistentvolumeclaims",
        "PersistentVolumeClaim",
        NS,
        &["pvc"],
        &["status"],
    ),
    b(
        "apps",
        "v1",
        "deployments",
        "Deployment",
        NS,
        &["deploy"],
        &["status", "scale"],
    ),
    b(
        "apps",
        "v1",
        "statefulsets",
        "StatefulSet",
        NS,
        &["sts"],
        &["status", "scale"],
    ),
    b(
        "apps",
        "v1",
        "daemonsets",
        "DaemonSet",
        NS,
        &["ds"],
        &["status"],
    ),
    b(
        "apps",
        "v1",
        "replicasets",
        "ReplicaSet",
        NS,
        &["rs"],
        &["status", "scale"],
    ),
    b(
        "apps",
        "v1",
        "controllerrevisions",
        "ControllerRevision",
        NS,
        &[],
        &[],
    ),
    b("batch", "v1", "jobs", "Job", NS, &[], &["status"]),
    b(
        "batch",
        "v1",
        "cronjobs",
        "CronJob",
        NS,
        &["cj"],
        &["status"],
    ),
    b(
        "rbac.authorization.k8s.io",
        "v1",
        "roles",
        "Role",
        NS,
        &[],
        &[],
    ),
    b(
        "rbac.authorization.k8s.io",
        "v1",
        "rolebindings",
        "RoleBinding",
        NS,
        &[],
        &[],
    ),
    b(
        "rbac.authorization.k8s.io",
        "v1",
        "clusterroles",
        "ClusterRole",
        CLUSTER,
        &[],
        &[],
    ),
    b(
        "rbac.authorization.k8s.io",
        "v1",
        "clusterrolebindings",
        "ClusterRoleBinding",
        CLUSTER,
        &[],
        &[],
    ),
    b(
        "admissionregistration.k8s.io",
        "v1",
        "mutatingwebhookconfigurations",
        "MutatingWebhookConfiguration",
        CLUSTER,
        &[],
        &[],
    ),
    b(
        "admissionregistration.k8s.io",
        "v1",
        "validatingwebhookconfigurations",
        "ValidatingWebhookConfiguration",
        CLUSTER,
        &[],
        &[],
    ),
    b(
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        "CustomResourceDefinition",
        CLUSTER,
        &["crd", "crds"],
        &["status"],
    ),
    b(
        "policy",
        "v1",
        "poddisruptionbudgets",
        "PodDisruptionBudget",
        NS,
        &["pdb"],
        &["status"],
    ),
    b(
        "authorization.k8s.io",
        "v1",
        "selfsubjectaccessreviews",
        "SelfSubjectAccessReview",
        CLUSTER,
        &[],
        &[],
    ),
    b(
        "authorization.k8s.io",
        "v1",
        "selfsubjectrulesreviews",
        "SelfSubjectRulesReview",
        CLUSTER,
        &[],
        &[],
    ),
    b(
        "authentication.k8s.io",
        "v1",
        "tokenreviews",
        "TokenReview",
        CLUSTER,
        &[],
        &[],
    ),
    b("coordination.k8s.io", "v1", "leases", "Lease", NS, &[], &[]),
    b("events.k8s.io", "v1", "events", "Event", NS, &["ev"], &[]),
    b(
        "discovery.k8s.io",
        "v1",
        "endpointslices",
        "EndpointSlice",
        NS,
        &[],
        &[],
    ),
    b(
        "networking.k8s.io",
        "v1",
        "networkpolicies",
        "NetworkPolicy",
        NS,
        &["netpol"],
        &[],
    ),
];

fn builtin_types() -> Vec<ResourceType> {
    BUILTINS
        .iter()
        .map(|b| {
            let create_only = matches!(b.group, "authorization.k8s.io" | "authentication.k8s.io");
            let categories = match b.plural {
                "pods"
                | "services"
                | "deployments"
                | "statefulsets"
                | "daemonsets"
                | "replicasets"
                | "jobs"
                | "cronjobs"
                | "replicationcontrollers" => vec!["all".to_string()],
                _ => Vec::new(),
            };
            ResourceType {
                group: b.group.to_string(),
                versions: vec![b.version.to_string()],
                kind: b.kind.to_string(),
                plural: b.plural.to_string(),
                singular: b.kind.to_lowercase(),
                namespaced: b.namespaced,
                short_names: b.short_names.iter().map(|s| s.to_string()).collect(),
                categories,
                subresources: b.subresources.iter().map(|s| s.to_string()).collect(),
                create_only,
                custom: false,
            }
        })
        .collect()
}
