use std::collections::BTreeMap;
use std::time::Duration;

use crate::config::{Config, ConfigError};

const LOCAL: &str = "web.shop.serviceaccount.identity.linkerd.cluster.local";
const SERVICE: &str = "linkerd-identity.linkerd.serviceaccount.identity.linkerd.cluster.local";

/// The variables `mesh inject` renders, with a token file in `dir`.
fn injected(dir: &std::path::Path) -> BTreeMap<String, String> {
    let token = dir.join("token");
    std::fs::write(&token, "header.payload.signature\n").unwrap();
    let (anchors, _) = crate::identity::tests::ca_pem("root.linkerd.cluster.local");
    [
        (
            "LINKERD2_PROXY_IDENTITY_DIR",
            "/var/run/linkerd/identity/end-entity",
        ),
        ("LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS", anchors.as_str()),
        (
            "LINKERD2_PROXY_IDENTITY_TOKEN_FILE",
            &token.display().to_string(),
        ),
        (
            "LINKERD2_PROXY_IDENTITY_SVC_ADDR",
            "linkerd-identity-headless.linkerd.svc.cluster.local.:8080",
        ),
        ("LINKERD2_PROXY_IDENTITY_LOCAL_NAME", LOCAL),
        ("LINKERD2_PROXY_IDENTITY_SVC_NAME", SERVICE),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

#[test]
fn the_identity_service_as_injected() {
    let dir = tempfile::tempdir().unwrap();
    let c = Config::from_env(&injected(dir.path())).unwrap();
    let certify = c.certify.unwrap();
    assert_eq!(
        certify.addr.to_string(),
        "linkerd-identity-headless.linkerd.svc.cluster.local.:8080"
    );
    assert_eq!(certify.server_name, SERVICE);
    assert_eq!(certify.local_name, LOCAL);
    assert_eq!(certify.token_file, dir.path().join("token"));
    assert_eq!(certify.trust_anchors.len(), 1);
    // Linkerd's refresh bounds.
    assert_eq!(certify.min_refresh, Duration::from_secs(10));
    assert_eq!(certify.max_refresh, Duration::from_secs(86_400));
    assert!(c.unsupported.is_empty(), "{:?}", c.unsupported);

    let mut vars = injected(dir.path());
    vars.insert("LINKERD2_PROXY_IDENTITY_MIN_REFRESH".into(), "1s".into());
    vars.insert("LINKERD2_PROXY_IDENTITY_MAX_REFRESH".into(), "1h".into());
    let certify = Config::from_env(&vars).unwrap().certify.unwrap();
    assert_eq!(certify.min_refresh, Duration::from_secs(1));
    assert_eq!(certify.max_refresh, Duration::from_secs(3600));
}

#[test]
fn no_identity_service_unless_its_address_is_set() {
    let dir = tempfile::tempdir().unwrap();
    let mut vars = injected(dir.path());
    vars.remove("LINKERD2_PROXY_IDENTITY_SVC_ADDR");
    assert_eq!(Config::from_env(&vars).unwrap().certify, None);
    vars.insert("LINKERD2_PROXY_IDENTITY_SVC_ADDR".into(), " ".into());
    assert_eq!(Config::from_env(&vars).unwrap().certify, None);
    // Certificate files take the identity service's place.
    let ca = crate::identity::testing::Ca::new("root.linkerd.cluster.local");
    let leaf = ca.leaf(LOCAL);
    let (cert, key) = (dir.path().join("crt.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, &leaf.cert_pem).unwrap();
    std::fs::write(&key, &leaf.key_pem).unwrap();
    let mut vars = injected(dir.path());
    vars.insert(
        "LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS".into(),
        ca.pem.clone(),
    );
    vars.insert(
        "MESH_PROXY_IDENTITY_CERT_FILE".into(),
        cert.display().to_string(),
    );
    vars.insert(
        "MESH_PROXY_IDENTITY_KEY_FILE".into(),
        key.display().to_string(),
    );
    let config = Config::from_env(&vars).unwrap();
    assert_eq!(config.certify, None);
    assert!(config.identity.is_some());
}

#[test]
fn every_missing_variable_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let mut vars = injected(dir.path());
    for name in [
        "LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS",
        "LINKERD2_PROXY_IDENTITY_TOKEN_FILE",
        "LINKERD2_PROXY_IDENTITY_LOCAL_NAME",
        "LINKERD2_PROXY_IDENTITY_SVC_NAME",
    ] {
        vars.remove(name);
    }
    // The directory is not needed: the key never leaves memory.
    vars.remove("LINKERD2_PROXY_IDENTITY_DIR");
    let errors = Config::from_env(&vars).unwrap_err();
    let mut needs: Vec<&str> = errors
        .0
        .iter()
        .map(|e| match e {
            ConfigError::Requires { name, needs } => {
                assert_eq!(*name, "LINKERD2_PROXY_IDENTITY_SVC_ADDR");
                *needs
            }
            other => panic!("{other}"),
        })
        .collect();
    needs.sort();
    assert_eq!(
        needs,
        [
            "LINKERD2_PROXY_IDENTITY_LOCAL_NAME",
            "LINKERD2_PROXY_IDENTITY_SVC_NAME",
            "LINKERD2_PROXY_IDENTITY_TOKEN_FILE",
            "LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS",
        ]
    );
    assert!(
        errors.to_string().contains(
            "LINKERD2_PROXY_IDENTITY_SVC_ADDR is set but LINKERD2_PROXY_IDENTITY_TOKEN_FILE is not"
        ),
        "{errors}"
    );
}

#[test]
fn bad_values_name_their_variable() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty");
    std::fs::write(&empty, "\n").unwrap();
    let large = dir.path().join("large");
    std::fs::write(&large, vec![b'a'; 16 * 1024 + 1]).unwrap();
    let missing = dir.path().join("missing").display().to_string();
    for (name, value, expected) in [
        (
            "LINKERD2_PROXY_IDENTITY_SVC_ADDR",
            "linkerd-identity",
            "not a host and port",
        ),
        (
            "LINKERD2_PROXY_IDENTITY_SVC_ADDR",
            "identity:0",
            "not a host and port",
        ),
        (
            "LINKERD2_PROXY_IDENTITY_LOCAL_NAME",
            "web shop",
            "not an identity name",
        ),
        (
            "LINKERD2_PROXY_IDENTITY_LOCAL_NAME",
            "$(_pod_sa).shop.serviceaccount",
            "not an identity name",
        ),
        (
            "LINKERD2_PROXY_IDENTITY_SVC_NAME",
            "linkerd-identity.linkerd.",
            "not an identity name",
        ),
        (
            "LINKERD2_PROXY_IDENTITY_TOKEN_FILE",
            &missing,
            "No such file",
        ),
        (
            "LINKERD2_PROXY_IDENTITY_TOKEN_FILE",
            &empty.display().to_string(),
            "the token is empty",
        ),
        (
            "LINKERD2_PROXY_IDENTITY_TOKEN_FILE",
            &large.display().to_string(),
            "longer than 16384 bytes",
        ),
        (
            "LINKERD2_PROXY_IDENTITY_MIN_REFRESH",
            "10",
            "not a duration",
        ),
        (
            "LINKERD2_PROXY_IDENTITY_MAX_REFRESH",
            "1 day",
            "not a duration",
        ),
    ] {
        let mut vars = injected(dir.path());
        vars.insert(name.to_owned(), value.to_owned());
        let errors = Config::from_env(&vars).unwrap_err();
        assert_eq!(errors.0.len(), 1, "{name}={value}: {errors}");
        let text = errors.to_string();
        assert!(
            text.starts_with(&format!("{name}={value:?}: ")) && text.contains(expected),
            "{name}={value}: {text}"
        );
    }
}

#[test]
fn unusable_trust_anchors_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let mut vars = injected(dir.path());
    vars.insert(
        "LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS".into(),
        "not a certificate".into(),
    );
    let errors = Config::from_env(&vars).unwrap_err();
    assert_eq!(
        errors.0,
        [ConfigError::TrustAnchors {
            name: "LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS",
            reason: "no CERTIFICATE block".into(),
        }]
    );
    assert_eq!(
        errors.to_string(),
        "LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS: not usable trust anchors: no CERTIFICATE block"
    );
}
