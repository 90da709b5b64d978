use std::collections::BTreeMap;

use super::*;
use crate::config::Config;
use crate::identity::testing::Ca;

const WEB: &str = "web.ns.serviceaccount.identity.linkerd.cluster.local";

fn read(pairs: &[(&str, &str)]) -> Result<Config, Vec<String>> {
    let env: BTreeMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Config::from_env(&env).map_err(|e| e.0.iter().map(|e| e.to_string()).collect())
}

struct Files {
    _dir: tempfile::TempDir,
    cert: String,
    key: String,
    anchors: String,
}

fn files(ca: &Ca, name: &str) -> Files {
    let dir = tempfile::tempdir().unwrap();
    let leaf = ca.leaf(name);
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&cert, &leaf.cert_pem).unwrap();
    std::fs::write(&key, &leaf.key_pem).unwrap();
    Files {
        cert: cert.to_str().unwrap().to_owned(),
        key: key.to_str().unwrap().to_owned(),
        anchors: ca.pem.clone(),
        _dir: dir,
    }
}

#[test]
fn certificate_files_turn_identity_on() {
    let ca = Ca::new("root");
    let f = files(&ca, WEB);
    let c = read(&[
        (CERT_FILE, &f.cert),
        (KEY_FILE, &f.key),
        (TRUST_ANCHORS, &f.anchors),
        (
            "LINKERD2_PROXY_IDENTITY_DIR",
            "/var/run/linkerd/identity/end-entity",
        ),
    ])
    .unwrap();
    let identity = c.identity.unwrap();
    assert_eq!(identity.local_name, None);
    assert_eq!(identity.trust_anchors.len(), 1);
    let IdentitySource::Files(files) = &identity.source;
    assert_eq!(files.initial.name, WEB);
    // Read now, so not reported as unsupported; the directory is accepted and ignored.
    assert!(c.unsupported.is_empty(), "{:?}", c.unsupported);

    let named = read(&[
        (CERT_FILE, &f.cert),
        (KEY_FILE, &f.key),
        (TRUST_ANCHORS, &f.anchors),
        (LOCAL_NAME, WEB),
    ])
    .unwrap();
    assert_eq!(named.identity.unwrap().local_name.as_deref(), Some(WEB));

    // Without files (or the identity service's address), the identity variables are
    // ignored: nothing reads them.
    let c = read(&[(TRUST_ANCHORS, "not even PEM"), (LOCAL_NAME, WEB)]).unwrap();
    assert!(c.identity.is_none() && c.certify.is_none());
}

#[test]
fn identity_errors_name_their_variables() {
    let ca = Ca::new("root");
    let f = files(&ca, WEB);
    assert_eq!(
        read(&[(CERT_FILE, &f.cert)]).unwrap_err(),
        [
            "MESH_PROXY_IDENTITY_CERT_FILE is set but MESH_PROXY_IDENTITY_KEY_FILE is not; it needs both"
        ]
    );
    assert_eq!(
        read(&[(KEY_FILE, &f.key)]).unwrap_err(),
        [
            "MESH_PROXY_IDENTITY_KEY_FILE is set but MESH_PROXY_IDENTITY_CERT_FILE is not; it needs both"
        ]
    );
    assert_eq!(
        read(&[(CERT_FILE, &f.cert), (KEY_FILE, &f.key)]).unwrap_err(),
        [
            "MESH_PROXY_IDENTITY_CERT_FILE is set but LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS is not; it needs both"
        ]
    );
    assert_eq!(
        read(&[
            (CERT_FILE, &f.cert),
            (KEY_FILE, &f.key),
            (TRUST_ANCHORS, "-----BEGIN CERTIFICATE-----\n")
        ])
        .unwrap_err(),
        [
            "LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS: not usable trust anchors: not PEM: no END CERTIFICATE line"
        ]
    );
    let e = read(&[
        (CERT_FILE, &f.cert),
        (KEY_FILE, &f.key),
        (TRUST_ANCHORS, &f.anchors),
        (LOCAL_NAME, "not a name!"),
    ])
    .unwrap_err();
    assert_eq!(
        e,
        [
            "LINKERD2_PROXY_IDENTITY_LOCAL_NAME=\"not a name!\": not an identity name (use a DNS name without a trailing dot, like web.shop.serviceaccount.identity.linkerd.cluster.local)"
        ]
    );

    // The files are read and checked: their names come first in the message.
    let prefix = format!("{CERT_FILE}={:?} and {KEY_FILE}={:?}: ", f.cert, f.key);
    let e = read(&[
        (CERT_FILE, &f.cert),
        (KEY_FILE, &f.key),
        (TRUST_ANCHORS, &f.anchors),
        (
            LOCAL_NAME,
            "db.ns.serviceaccount.identity.linkerd.cluster.local",
        ),
    ])
    .unwrap_err();
    assert_eq!(
        e,
        [format!(
            "{prefix}the certificate is for {WEB}, not db.ns.serviceaccount.identity.linkerd.cluster.local"
        )]
    );
    let other = Ca::new("other");
    let e = read(&[
        (CERT_FILE, &f.cert),
        (KEY_FILE, &f.key),
        (TRUST_ANCHORS, &other.pem),
    ])
    .unwrap_err();
    assert!(
        e[0].starts_with(&format!(
            "{prefix}the certificate is not valid for {WEB} under the trust anchors: "
        )),
        "{e:?}"
    );
    let e = read(&[
        (CERT_FILE, "/nonexistent/cert.pem"),
        (KEY_FILE, &f.key),
        (TRUST_ANCHORS, &f.anchors),
    ])
    .unwrap_err();
    assert!(
        e[0].ends_with("/nonexistent/cert.pem: No such file or directory (os error 2)"),
        "{e:?}"
    );
    let e = read(&[
        (CERT_FILE, &f.cert),
        (KEY_FILE, &f.cert),
        (TRUST_ANCHORS, &f.anchors),
    ])
    .unwrap_err();
    assert_eq!(
        e,
        [
            format!("{prefix}no PRIVATE KEY or EC PRIVATE KEY block").replace(
                &format!("{KEY_FILE}={:?}", f.key),
                &format!("{KEY_FILE}={:?}", f.cert)
            )
        ]
    );
}
