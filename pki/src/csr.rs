//! Certificate signing requests (PKCS#10, DER) as proxies send them to the identity service.
//!
//! A request is accepted when its signature verifies with its own key (the requester holds the
//! private key), that key is ECDSA P-256 (what Linkerd's proxies generate and the issuer signs
//! for), and it names exactly the identity the requester was authenticated as: one DNS name,
//! no other alternative names, and a common name that is empty or that same name.

use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::oid_registry::{OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY};
use x509_parser::prelude::FromDer;

/// The largest request accepted. A P-256 request with one name is about 300 bytes.
pub const MAX_CSR_BYTES: usize = 8 * 1024;

/// Why a signing request is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CsrError {
    /// The request is empty.
    #[error("the certificate signing request is empty")]
    Empty,
    /// The request is larger than [`MAX_CSR_BYTES`].
    #[error("the certificate signing request has {0} bytes, more than {MAX_CSR_BYTES}")]
    TooLarge(usize),
    /// The bytes are not one DER PKCS#10 request.
    #[error("the certificate signing request is not DER PKCS#10: {0}")]
    Malformed(String),
    /// The request's signature does not verify with its own public key.
    #[error("the certificate signing request's signature does not verify")]
    BadSignature,
    /// The key is not an ECDSA P-256 key.
    #[error("the certificate signing request's key is not an ECDSA P-256 key")]
    WrongKeyType,
    /// The request names more or fewer than one DNS name.
    #[error("the certificate signing request must name exactly one DNS name, not {0}")]
    NameCount(usize),
    /// The request asks for another kind of name (IP, email, URI, …).
    #[error("the certificate signing request asks for a name other than a DNS name")]
    OtherName,
    /// The request's DNS name is not the identity asked for.
    #[error("the certificate signing request names {csr}, not {requested}")]
    NameMismatch { csr: String, requested: String },
    /// The request's common name is neither empty nor the identity.
    #[error("the certificate signing request's common name {0:?} is not the identity")]
    CommonName(String),
}

/// A parsed and verified signing request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Csr {
    public_key: Vec<u8>,
    dns_names: Vec<String>,
    other_names: usize,
    common_name: Option<String>,
}

impl Csr {
    /// Parses a DER request, verifies its signature and requires a P-256 key.
    pub fn parse(der: &[u8]) -> Result<Csr, CsrError> {
        if der.is_empty() {
            return Err(CsrError::Empty);
        }
        if der.len() > MAX_CSR_BYTES {
            return Err(CsrError::TooLarge(der.len()));
        }
        let (rest, csr) = X509CertificationRequest::from_der(der)
            .map_err(|e| CsrError::Malformed(e.to_string()))?;
        if !rest.is_empty() {
            return Err(CsrError::Malformed(format!(
                "{} bytes after the request",
                rest.len()
            )));
        }
        let info = &csr.certification_request_info;
        let algorithm = &info.subject_pki.algorithm;
        let curve = algorithm.parameters.as_ref().and_then(|p| p.as_oid().ok());
        if algorithm.algorithm != OID_KEY_TYPE_EC_PUBLIC_KEY || curve != Some(OID_EC_P256) {
            return Err(CsrError::WrongKeyType);
        }
        csr.verify_signature().map_err(|_| CsrError::BadSignature)?;

        let mut dns_names = Vec::new();
        let mut other_names = 0;
        for extension in csr.requested_extensions().into_iter().flatten() {
            if let ParsedExtension::SubjectAlternativeName(san) = extension {
                for name in &san.general_names {
                    match name {
                        GeneralName::DNSName(dns) => dns_names.push((*dns).to_owned()),
                        _ => other_names += 1,
                    }
                }
            }
        }
        let common_name = match info.subject.iter_common_name().next() {
            Some(cn) => Some(
                cn.as_str()
                    .map_err(|e| CsrError::Malformed(format!("common name: {e}")))?
                    .to_owned(),
            ),
            None => None,
        };
        Ok(Csr {
            public_key: info.subject_pki.subject_public_key.data.to_vec(),
            dns_names,
            other_names,
            common_name,
        })
    }

    /// The DNS names the request asks for.
    pub fn dns_names(&self) -> &[String] {
        &self.dns_names
    }

    /// The key to certify: an uncompressed P-256 point.
    pub fn public_key(&self) -> &[u8] {
        &self.public_key
    }

    /// Requires the request to name `identity` and nothing else.
    pub fn check_names(&self, identity: &str) -> Result<(), CsrError> {
        if self.other_names > 0 {
            return Err(CsrError::OtherName);
        }
        let [name] = self.dns_names.as_slice() else {
            return Err(CsrError::NameCount(self.dns_names.len()));
        };
        if name != identity {
            return Err(CsrError::NameMismatch {
                csr: name.clone(),
                requested: identity.to_owned(),
            });
        }
        match self.common_name.as_deref() {
            None | Some("") => Ok(()),
            Some(cn) if cn == identity => Ok(()),
            Some(cn) => Err(CsrError::CommonName(cn.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests;
