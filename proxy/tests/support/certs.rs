//! Identities for mesh TLS tests: a CA made with rcgen, and leaf certificates shaped like
//! Linkerd's (the identity as the only DNS name, serverAuth and clientAuth) written to files
//! a proxy reads through `MESH_PROXY_IDENTITY_CERT_FILE` and `…_KEY_FILE`.

use std::path::PathBuf;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

pub struct Pki {
    issuer: Issuer<'static, KeyPair>,
    pub anchors: String,
    dir: tempfile::TempDir,
}

/// An identity's files.
pub struct Identity {
    pub name: String,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Pki {
    pub fn new() -> Pki {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "identity.linkerd.cluster.local");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Pki {
            issuer: Issuer::new(params, key),
            anchors: cert.pem(),
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// Writes a certificate for `name`, valid until the start of `until_year`.
    pub fn identity(&self, name: &str, until_year: i32) -> Identity {
        let dir = self.dir.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let id = Identity {
            name: name.to_owned(),
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
        };
        self.renew(&id, until_year);
        id
    }

    /// Replaces an identity's files with a new key and certificate, each file swapped in
    /// whole (written aside, then renamed), as a Secret volume update does.
    pub fn renew(&self, id: &Identity, until_year: i32) {
        let (cert, key) = self.leaf(&id.name, until_year);
        replace(&id.key, &key);
        replace(&id.cert, &cert);
    }

    /// A new certificate and key for `name`, as PEM.
    pub fn leaf(&self, name: &str, until_year: i32) -> (String, String) {
        let mut params = CertificateParams::new(vec![name.to_owned()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(until_year, 1, 1);
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    /// The variables that give a proxy this identity.
    pub fn env(&self, id: &Identity) -> Vec<(String, String)> {
        vec![
            (
                "LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS".into(),
                self.anchors.clone(),
            ),
            (
                "MESH_PROXY_IDENTITY_CERT_FILE".into(),
                id.cert.display().to_string(),
            ),
            (
                "MESH_PROXY_IDENTITY_KEY_FILE".into(),
                id.key.display().to_string(),
            ),
        ]
    }
}

/// The Unix time at the start of `year` (UTC).
pub fn start_of(year: i32) -> u64 {
    rcgen::date_time_ymd(year, 1, 1).unix_timestamp() as u64
}

fn replace(path: &std::path::Path, contents: &str) {
    let aside = path.with_extension("new");
    std::fs::write(&aside, contents).unwrap();
    std::fs::rename(&aside, path).unwrap();
}
