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

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SerialNumber,
};
use support::BIN;
use support::netns::{APP_PORT, DEADLINE, Lab, Pod, poll, skip};
use support::pods::{self, TOOLS, identity};

/// A test CA: the trust anchors, and the leaf certificates it signs.
struct Ca {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl Ca {
    fn new() -> Ca {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = CertificateParams::new(Vec::new()).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "identity.linkerd.cluster.local");
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let pem = params.self_signed(&key).unwrap().pem();
        Ca {
            pem,
            issuer: Issuer::new(params, key),
        }
    }

    /// A certificate for `name` with a fresh P-256 key, as the identity service issues
    /// them: the name as its one DNS SAN, for servers and clients. PEM chain and key.
    fn leaf(&self, name: &str, serial: u64) -> (String, String) {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = CertificateParams::new(vec![name.to_owned()]).unwrap();
        params.serial_number = Some(SerialNumber::from(serial));
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.use_authority_key_identifier_extension = true;
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    /// Writes a certificate for `sa`'s identity as `<pod>/crt.pem` and `<pod>/key.pem`.
    fn write(&self, lab: &Lab, pod: &str, sa: &str, serial: u64) {
        let (crt, key) = self.leaf(&identity(sa), serial);
        // The key first: a proxy that sees the new key with the old certificate keeps
        // what it has until the pair matches.
        lab.write(&format!("{pod}/key.pem"), key.as_bytes());
        lab.write(&format!("{pod}/crt.pem"), crt.as_bytes());
    }

    /// The variables of a pod whose identity is `sa`'s, in files written now.
    fn identify(&self, lab: &Lab, pod: &str, sa: &str) -> Vec<(String, String)> {
        self.write(lab, pod, sa, 1);
        let file = |f: &str| lab.dir.join(pod).join(f).display().to_string();
        vec![
            ("MESH_PROXY_IDENTITY_CERT_FILE".into(), file("crt.pem")),
            ("MESH_PROXY_IDENTITY_KEY_FILE".into(), file("key.pem")),
            (
                "LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS".into(),
                self.pem.clone(),
            ),
            ("LINKERD2_PROXY_IDENTITY_LOCAL_NAME".into(), identity(sa)),
        ]
    }
}

#[test]
fn meshed_pods_with_file_identities_speak_mesh_tls_and_refuse_plaintext() {
    if skip("meshed pods with file identities", TOOLS) {
        return;
    }
    let ca = Ca::new();
    let mut lab = Lab::new(BIN);
    pods::meshed_pods_speak_mesh_tls_and_refuse_plaintext(&mut lab, &|l, p, s| {
        ca.identify(l, p, s)
    });
}

#[test]
fn a_server_with_another_file_identity_gets_no_plaintext() {
    if skip("mesh TLS to a pod with another file identity", TOOLS) {
        return;
    }
    let ca = Ca::new();
    let mut lab = Lab::new(BIN);
    pods::a_server_with_another_identity_gets_no_plaintext(&mut lab, &|l, p, s| {
        ca.identify(l, p, s)
    });
}

/// The serial number of the certificate the server pod's proxy presents for `name`, as a
/// TLS client without a certificate of its own sees it from `from`.
fn served_serial(lab: &Lab, from: &Pod, server: &Pod, name: &str) -> String {
    let connect = format!("{}:{APP_PORT}", server.ip());
    let script = format!(
        "openssl s_client -connect {connect} -servername {name} -verify_quiet </dev/null 2>/dev/null \
         | openssl x509 -noout -serial"
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
    let ca = Ca::new();
    let identify = |l: &Lab, p: &str, s: &str| ca.identify(l, p, s);
    let mut lab = Lab::new(BIN);
    let server = pods::meshed_pod(&mut lab, &identify, "server", "server", &[]);
    let app = lab.app(&server, "server");
    // Every request on a connection of its own, so a handshake with the current certificate.
    let no_pool = ("LINKERD2_PROXY_OUTBOUND_MAX_IDLE_CONNS_PER_ENDPOINT", "0");
    let server_id = identity("server");
    let client = pods::client_pod(&mut lab, &identify, &server, &server_id, &[no_pool]);
    let plain = lab.pod("plain");

    let name = identity("server");
    assert_eq!(served_serial(&lab, &plain, &server, &name), "serial=01");
    assert_eq!(pods::get(&lab, &client, &server).status, 200);

    ca.write(&lab, "server", "server", 2);
    let mut serial = String::new();
    let replaced = poll(DEADLINE, || {
        serial = served_serial(&lab, &plain, &server, &name);
        serial == "serial=02"
    });
    assert!(replaced, "still serving {serial}:\n{}", lab.output(app));
    let reply = pods::get(&lab, &client, &server);
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(lab.app_log(app), (2, 0));
}
