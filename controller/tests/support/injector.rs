//! `mesh-controller proxy-injector`: the serving certificate `mesh install` would create.

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

/// The name the API server uses for the injector's Service, which its certificate must carry.
pub const HOST: &str = "linkerd-proxy-injector.linkerd.svc";

/// A CA and a serving certificate for the injector's Service name.
pub struct Certs {
    pub ca_pem: String,
    pub crt_pem: String,
    pub key_pem: String,
}

pub fn certs() -> Certs {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "injector test CA");
    let ca_crt = ca.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec![HOST.to_owned()]).unwrap();
    let crt = leaf.signed_by(&key, &Issuer::new(ca, &ca_key)).unwrap();
    Certs {
        ca_pem: ca_crt.pem(),
        crt_pem: crt.pem(),
        key_pem: key.serialize_pem(),
    }
}
