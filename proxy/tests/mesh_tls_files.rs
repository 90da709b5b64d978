//! Meshed pods in network namespaces with identities from files and no control plane
//! (`MESH_PROXY_IDENTITY_CERT_FILE`, `MESH_PROXY_IDENTITY_KEY_FILE` and
//! `LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS`, certificates from a test CA): the scenarios of
//! `support::pods`, which the controller's tests run with certificates from the identity
//! service, and a certificate replaced on disk reaching the wire.
//!
//! Needs root, iptables, iproute2, setpriv, curl, openssl and Debian's python3
//! (`cargo xtask deps`); skipped, saying why, without them.

// Tests panic on what they did not expect.
#![allow(clippy::unwrap_used)]

mod support;

use support::BIN;
use support::apps::APP_PORT;
use support::certs::Pki;
use support::netns::{DEADLINE, Lab, Pod, poll, skip};
use support::pods::{self, TOOLS, identity};

/// Writes a certificate for `sa`'s identity from `pki`, valid until the start of
/// `until_year`, as `<pod>/crt.pem` and `<pod>/key.pem` in the lab.
fn write_identity(pki: &Pki, lab: &Lab, pod: &str, sa: &str, until_year: i32) {
    let (crt, key) = pki.leaf(&identity(sa), until_year);
    // The key first: a proxy that sees the new key with the old certificate keeps what it
    // has until the pair matches.
    lab.write(&format!("{pod}/key.pem"), key.as_bytes());
    lab.write(&format!("{pod}/crt.pem"), crt.as_bytes());
}

/// The variables of a pod whose identity is `sa`'s, in files written now.
fn identify(pki: &Pki, lab: &Lab, pod: &str, sa: &str) -> Vec<(String, String)> {
    write_identity(pki, lab, pod, sa, 2100);
    let file = |f: &str| lab.dir.join(pod).join(f).display().to_string();
    vec![
        ("MESH_PROXY_IDENTITY_CERT_FILE".into(), file("crt.pem")),
        ("MESH_PROXY_IDENTITY_KEY_FILE".into(), file("key.pem")),
        (
            "LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS".into(),
            pki.anchors.clone(),
        ),
        ("LINKERD2_PROXY_IDENTITY_LOCAL_NAME".into(), identity(sa)),
    ]
}

#[test]
fn meshed_pods_with_file_identities_speak_mesh_tls_and_refuse_plaintext() {
    if skip("meshed pods with file identities", TOOLS) {
        return;
    }
    let pki = Pki::new();
    let mut lab = Lab::new(BIN);
    pods::meshed_pods_speak_mesh_tls_and_refuse_plaintext(&mut lab, &|l, p, s| {
        identify(&pki, l, p, s)
    });
}

#[test]
fn a_server_with_another_file_identity_gets_no_plaintext() {
    if skip("mesh TLS to a pod with another file identity", TOOLS) {
        return;
    }
    let pki = Pki::new();
    let mut lab = Lab::new(BIN);
    pods::a_server_with_another_identity_gets_no_plaintext(&mut lab, &|l, p, s| {
        identify(&pki, l, p, s)
    });
}

/// The expiry of the certificate the server pod's proxy presents for `name`, as a TLS
/// client without a certificate of its own sees it from `from` (`notAfter=…`).
fn served_until(lab: &Lab, from: &Pod, server: &Pod, name: &str) -> String {
    let connect = format!("{}:{APP_PORT}", server.ip());
    let script = format!(
        "openssl s_client -connect {connect} -servername {name} -verify_quiet </dev/null 2>/dev/null \
         | openssl x509 -noout -enddate"
    );
    let out = lab.exec(from, &["sh", "-c", &script]);
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// New certificate files are read while the proxy runs: the server presents the new
/// certificate to new connections, and meshed requests keep working.
#[test]
fn a_replaced_certificate_file_reaches_the_wire() {
    let tools = [TOOLS, &["openssl"]].concat();
    if skip("a replaced certificate file", &tools) {
        return;
    }
    let pki = Pki::new();
    let files = |l: &Lab, p: &str, s: &str| identify(&pki, l, p, s);
    let mut lab = Lab::new(BIN);
    let server = pods::meshed_pod(&mut lab, &files, "server", "server", &[]);
    let app = lab.app(&server, "server");
    // Every request on a connection of its own, so a handshake with the current certificate.
    let no_pool = ("LINKERD2_PROXY_OUTBOUND_MAX_IDLE_CONNS_PER_ENDPOINT", "0");
    let server_id = identity("server");
    let client = pods::client_pod(&mut lab, &files, &server, &server_id, &[no_pool]);
    let plain = lab.pod("plain");

    let name = identity("server");
    let until = |year: i32| format!("notAfter=Jan  1 00:00:00 {year} GMT");
    assert_eq!(served_until(&lab, &plain, &server, &name), until(2100));
    assert_eq!(pods::get(&lab, &client, &server).status, 200);

    write_identity(&pki, &lab, "server", "server", 2101);
    let mut served = String::new();
    let replaced = poll(DEADLINE, || {
        served = served_until(&lab, &plain, &server, &name);
        served == until(2101)
    });
    assert!(replaced, "still serving {served}");
    let reply = pods::get(&lab, &client, &server);
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(lab.app_log(app), (2, 0));
}
