use mesh_inject::values::{RequestLimit, Resources};
use serde_json::json;

use super::settings::{is_dns_label, resources_json};

#[test]
fn resources_leave_out_what_is_empty() {
    let rl = |request: &str, limit: &str| RequestLimit {
        request: request.to_owned(),
        limit: limit.to_owned(),
    };
    let none = Resources::default();
    assert_eq!(resources_json(&none), serde_json::Value::Null);
    let some = Resources {
        cpu: rl("100m", ""),
        memory: rl("50Mi", "250Mi"),
    };
    assert_eq!(
        resources_json(&some),
        json!({"requests": {"cpu": "100m", "memory": "50Mi"}, "limits": {"memory": "250Mi"}})
    );
}

#[test]
fn namespaces_are_dns_labels() {
    for good in ["linkerd", "mesh-system", "a", "a1"] {
        assert!(is_dns_label(good), "{good}");
    }
    let long = "a".repeat(64);
    for bad in [
        "",
        "-a",
        "a-",
        "Linkerd",
        "mesh_system",
        "a.b",
        long.as_str(),
    ] {
        assert!(!is_dns_label(bad), "{bad}");
    }
}

#[test]
fn sha256_is_lowercase_hex() {
    assert_eq!(
        super::sha256_hex(""),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
}
