//! `mesh install` against Linkerd's own install goldens in ../shared/conformance/linkerd2: the
//! objects mesh renders carry Linkerd's kinds, names, labels and selectors, so either control plane
//! can replace the other and Linkerd's tools find mesh's objects. Structure is compared, not bytes.
//! Skipped (and says so) when the shared fixtures are not next to the repository.

#![allow(clippy::unwrap_used)] // Tests fail loudly; helpers outside #[test] functions too.

mod support;

use serde_json::Value;
use support::{INSTALL_CERTS, linkerd_fixtures, testdata, text};

/// What mesh renders that Linkerd's golden lacks, and why.
const MESH_ONLY: &[(&str, &str, &str)] = &[(
    "Secret",
    "linkerd-proxy-injector-k8s-tls",
    "Linkerd's golden is rendered with externally managed webhook secrets",
)];

fn documents(text: &str) -> Vec<Value> {
    let mut docs = mesh_inject::yaml::to_json_documents(text).unwrap();
    docs.retain(|d| d.is_object());
    docs
}

fn mesh_install(args: &[&str]) -> Vec<Value> {
    let out = support::mesh_offline()
        .current_dir(testdata().join("install"))
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    documents(&text(&out.stdout))
}

fn key(o: &Value) -> (String, String, String) {
    let s = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    (
        s(&o["kind"]),
        s(&o["metadata"]["namespace"]),
        s(&o["metadata"]["name"]),
    )
}

fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind}/{name}"))
}

fn compare(golden: &str, args: &[&str]) {
    let Some(dir) = linkerd_fixtures() else {
        return;
    };
    let linkerd = documents(&std::fs::read_to_string(dir.join(golden)).unwrap());
    let ours = mesh_install(args);
    assert!(ours.len() > 20);

    for object in &ours {
        let (kind, ns, name) = key(object);
        if MESH_ONLY.iter().any(|(k, n, _)| *k == kind && *n == name) {
            continue;
        }
        let theirs = linkerd
            .iter()
            .find(|o| key(o) == (kind.clone(), ns.clone(), name.clone()))
            .unwrap_or_else(|| panic!("{golden} has no {kind} {ns}/{name}"));
        assert_eq!(object["apiVersion"], theirs["apiVersion"], "{kind}/{name}");
        // The labels tools select on.
        for label in [
            "linkerd.io/control-plane-component",
            "linkerd.io/control-plane-ns",
        ] {
            assert_eq!(
                object["metadata"]["labels"][label], theirs["metadata"]["labels"][label],
                "{kind}/{name} label {label}"
            );
        }
        match kind.as_str() {
            // Selectors are immutable: they must match for one to replace the other in place.
            "Deployment" => {
                assert_eq!(
                    object["spec"]["selector"], theirs["spec"]["selector"],
                    "{name}"
                );
                assert_eq!(
                    object["spec"]["replicas"], theirs["spec"]["replicas"],
                    "{name}"
                );
            }
            "Service" => {
                assert_eq!(
                    object["spec"]["selector"], theirs["spec"]["selector"],
                    "{name}"
                );
                let ports = |o: &Value| {
                    o["spec"]["ports"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|p| (p["name"].clone(), p["port"].clone()))
                        .collect::<Vec<_>>()
                };
                assert_eq!(ports(object), ports(theirs), "{name}");
            }
            "PodDisruptionBudget" => {
                assert_eq!(object["spec"], theirs["spec"], "{name}");
            }
            _ => {}
        }
    }

    // The injector webhook: the same rules, exclusions and failure policy.
    let webhook = |objects: &[Value]| {
        find(
            objects,
            "MutatingWebhookConfiguration",
            "linkerd-proxy-injector-webhook-config",
        )["webhooks"][0]
            .clone()
    };
    let (ours_hook, theirs_hook) = (webhook(&ours), webhook(&linkerd));
    for field in ["name", "rules", "failurePolicy", "sideEffects"] {
        assert_eq!(ours_hook[field], theirs_hook[field], "webhook {field}");
    }
    assert_eq!(
        ours_hook["namespaceSelector"]["matchExpressions"][0],
        theirs_hook["namespaceSelector"]["matchExpressions"][0]
    );
    assert_eq!(
        ours_hook["clientConfig"]["service"]["name"],
        theirs_hook["clientConfig"]["service"]["name"]
    );

    // The identity objects carry the same keys, so credentials move between the two.
    let data_keys = |objects: &[Value], kind: &str, name: &str| {
        let mut keys: Vec<String> = find(objects, kind, name)["data"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        keys.sort();
        keys
    };
    assert_eq!(
        data_keys(&ours, "Secret", "linkerd-identity-issuer"),
        data_keys(&linkerd, "Secret", "linkerd-identity-issuer")
    );
    assert_eq!(
        data_keys(&ours, "ConfigMap", "linkerd-identity-trust-roots"),
        data_keys(&linkerd, "ConfigMap", "linkerd-identity-trust-roots")
    );
}

#[test]
fn default_install_has_linkerds_names_labels_and_selectors() {
    let args: Vec<&str> = ["install"].iter().chain(INSTALL_CERTS).copied().collect();
    compare("install_default.golden", &args);
}

#[test]
fn ha_install_has_linkerds_names_labels_and_selectors() {
    let args: Vec<&str> = ["install", "--ha"]
        .iter()
        .chain(INSTALL_CERTS)
        .copied()
        .collect();
    compare("install_ha_output.golden", &args);
}

#[test]
fn crds_have_linkerds_groups_names_and_storage_versions() {
    let Some(dir) = linkerd_fixtures() else {
        return;
    };
    let linkerd = documents(&std::fs::read_to_string(dir.join("install_crds.golden")).unwrap());
    for ours in mesh_install(&["install", "--crds"]) {
        let name = ours["metadata"]["name"].as_str().unwrap();
        let theirs = find(&linkerd, "CustomResourceDefinition", name);
        for field in ["group", "scope", "names"] {
            let (a, b) = (&ours["spec"][field], &theirs["spec"][field]);
            if field == "names" {
                for k in ["kind", "plural", "singular"] {
                    assert_eq!(a[k], b[k], "{name} names.{k}");
                }
            } else {
                assert_eq!(a, b, "{name} {field}");
            }
        }
        let storage = |crd: &Value| {
            crd["spec"]["versions"]
                .as_array()
                .unwrap()
                .iter()
                .find(|v| v["storage"] == true)
                .map(|v| v["name"].clone())
                .unwrap()
        };
        assert_eq!(storage(&ours), storage(theirs), "{name} storage version");
        // Every version Linkerd serves and does not deprecate, mesh serves too.
        for version in theirs["spec"]["versions"].as_array().unwrap() {
            if version["deprecated"] == true || version["served"] != true {
                continue;
            }
            assert!(
                ours["spec"]["versions"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|v| v["name"] == version["name"] && v["served"] == true),
                "{name} does not serve {}",
                version["name"]
            );
        }
    }
}
