//! The mtls mode's identities: a trust anchor and two leaf certificates shaped as Linkerd's
//! identity service issues them (ECDSA P-256, one DNS SAN, server and client auth), written
//! as PEM files for `MESH_PROXY_IDENTITY_CERT_FILE` and `MESH_PROXY_IDENTITY_KEY_FILE`.
//!
//! Made here with rcgen rather than by `mesh-controller identity`: the benchmark measures the
//! data path, and xtask depends on no product crate.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256,
};

/// The client proxy's identity, as Linkerd names the `default` service account's in `default`.
pub const CLIENT: &str = "client.default.serviceaccount.identity.linkerd.cluster.local";
/// The server proxy's identity, which the outbound proxy expects (`tls=` in the namer file).
pub const SERVER: &str = "server.default.serviceaccount.identity.linkerd.cluster.local";

/// Certificates are valid from an hour ago, for clocks a little behind, for a day.
const SKEW: Duration = Duration::from_secs(3600);
const LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// One proxy's identity files.
#[derive(Debug, Clone)]
pub struct Identity {
    pub name: &'static str,
    /// The leaf certificate, PEM.
    pub cert: PathBuf,
    /// Its key, PKCS#8 PEM.
    pub key: PathBuf,
}

/// The trust anchor and both proxies' identities.
#[derive(Debug, Clone)]
pub struct Identities {
    /// The CA certificate, PEM: the text itself goes in `LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS`.
    pub anchors_pem: String,
    pub client: Identity,
    pub server: Identity,
}

impl Identities {
    /// Generates fresh keys and certificates into `dir`.
    pub fn generate(dir: &Path) -> Result<Identities> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let now = SystemTime::now();
        let not_before = now.checked_sub(SKEW).unwrap_or(now);
        let not_after = now + LIFETIME;

        let ca_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let mut ca = CertificateParams::default();
        ca.distinguished_name = common_name("identity.linkerd.cluster.local");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        ca.not_before = not_before.into();
        ca.not_after = not_after.into();
        let anchors_pem = ca.self_signed(&ca_key)?.pem();
        let issuer = Issuer::new(ca, &ca_key);
        std::fs::write(dir.join("ca.pem"), &anchors_pem)?;

        let leaf = |name: &'static str, file: &str| -> Result<Identity> {
            let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
            let mut params = CertificateParams::new(vec![name.to_string()])?;
            params.distinguished_name = common_name(name);
            params.key_usages = vec![
                KeyUsagePurpose::DigitalSignature,
                KeyUsagePurpose::KeyEncipherment,
            ];
            params.extended_key_usages = vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ];
            params.use_authority_key_identifier_extension = true;
            params.not_before = not_before.into();
            params.not_after = not_after.into();
            let cert = params.signed_by(&key, &issuer)?;
            let identity = Identity {
                name,
                cert: dir.join(format!("{file}.crt")),
                key: dir.join(format!("{file}.key")),
            };
            std::fs::write(&identity.cert, cert.pem())
                .with_context(|| format!("writing {}", identity.cert.display()))?;
            // rcgen writes the key as PKCS#8 (`BEGIN PRIVATE KEY`).
            std::fs::write(&identity.key, key.serialize_pem())
                .with_context(|| format!("writing {}", identity.key.display()))?;
            Ok(identity)
        };
        Ok(Identities {
            client: leaf(CLIENT, "client")?,
            server: leaf(SERVER, "server")?,
            anchors_pem,
        })
    }

    /// The proxy environment that gives a proxy `identity`.
    pub fn env(&self, identity: &Identity) -> Vec<(String, String)> {
        vec![
            (
                "MESH_PROXY_IDENTITY_CERT_FILE".into(),
                identity.cert.display().to_string(),
            ),
            (
                "MESH_PROXY_IDENTITY_KEY_FILE".into(),
                identity.key.display().to_string(),
            ),
            (
                "LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS".into(),
                self.anchors_pem.clone(),
            ),
            (
                "LINKERD2_PROXY_IDENTITY_LOCAL_NAME".into(),
                identity.name.to_string(),
            ),
        ]
    }
}

fn common_name(name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, name);
    dn
}
