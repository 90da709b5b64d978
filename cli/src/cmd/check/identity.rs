//! Certificates: the trust anchors and the identity issuer; [`super::webhook`] judges the proxy
//! injector's serving certificate with the same helpers.

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::jiff::Timestamp;
use mesh_names::resources;
use x509_parser::certificate::X509Certificate;
use x509_parser::oid_registry::{OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_PKCS1_RSAENCRYPTION};
use x509_parser::pem::Pem;

use super::gather::Fetch;
use super::report::Check;

/// Certificates closer than this to expiry get a warning.
const SOON_SECS: i64 = 60 * 24 * 3600;

/// PEM blocks parsed into certificates, owning their DER.
pub(super) struct Bundle {
    pems: Vec<Pem>,
}

impl Bundle {
    pub(super) fn parse(text: &[u8], what: &str) -> Result<Bundle, String> {
        let mut pems = Vec::new();
        for pem in Pem::iter_from_buffer(text) {
            let pem = pem.map_err(|e| format!("{what}: invalid PEM: {e}"))?;
            if pem.label == "CERTIFICATE" {
                pem.parse_x509()
                    .map_err(|e| format!("{what}: invalid certificate: {e}"))?;
                pems.push(pem);
            }
        }
        if pems.is_empty() {
            return Err(format!("{what}: no certificate found"));
        }
        Ok(Bundle { pems })
    }

    pub(super) fn certs(&self) -> Vec<X509Certificate<'_>> {
        self.pems
            .iter()
            .filter_map(|p| p.parse_x509().ok())
            .collect()
    }
}

fn date(secs: i64) -> String {
    Timestamp::from_second(secs)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| secs.to_string())
}

pub(super) fn subject(cert: &X509Certificate<'_>) -> String {
    cert.subject().to_string()
}

fn is_p256(cert: &X509Certificate<'_>) -> bool {
    let key = cert.public_key();
    key.algorithm.algorithm == OID_KEY_TYPE_EC_PUBLIC_KEY
        && key
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.as_oid().ok())
            .is_some_and(|oid| oid == OID_EC_P256)
}

fn is_rsa(cert: &X509Certificate<'_>) -> bool {
    cert.public_key().algorithm.algorithm == OID_PKCS1_RSAENCRYPTION
}

/// Validity problems of each certificate: errors (expired, not yet valid) and warnings (expiring).
pub(super) fn validity(certs: &[X509Certificate<'_>], now: i64) -> (Vec<String>, Vec<String>) {
    let mut invalid = Vec::new();
    let mut soon = Vec::new();
    for cert in certs {
        let v = cert.validity();
        let (from, until) = (v.not_before.timestamp(), v.not_after.timestamp());
        if until < now {
            invalid.push(format!(
                "{} not valid anymore. Expired on {}",
                subject(cert),
                date(until)
            ));
        } else if from > now {
            invalid.push(format!(
                "{} not valid before: {}",
                subject(cert),
                date(from)
            ));
        } else if until - now < SOON_SECS {
            soon.push(format!("{} will expire on {}", subject(cert), date(until)));
        }
    }
    (invalid, soon)
}

fn bullets(lines: &[String]) -> String {
    lines
        .iter()
        .map(|l| format!("* {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

pub fn identity(
    trust_roots: &Fetch<Option<ConfigMap>>,
    issuer: &Fetch<Option<Secret>>,
    ns: &str,
    now: i64,
) -> Vec<Check> {
    let description = "certificate config is valid";
    let anchors = match trust_roots {
        Ok(Some(cm)) => match cm
            .data
            .as_ref()
            .and_then(|d| d.get(resources::TRUST_ROOTS_KEY))
        {
            Some(text) => Bundle::parse(
                text.as_bytes(),
                &format!(
                    "configmap {ns}/{} key {}",
                    resources::TRUST_ROOTS,
                    resources::TRUST_ROOTS_KEY
                ),
            ),
            None => Err(format!(
                "configmap {ns}/{} has no key {}",
                resources::TRUST_ROOTS,
                resources::TRUST_ROOTS_KEY
            )),
        },
        Ok(None) => Err(format!(
            "configmap {ns}/{} does not exist",
            resources::TRUST_ROOTS
        )),
        Err(e) => Err(format!(
            "cannot read configmap {ns}/{}: {e}",
            resources::TRUST_ROOTS
        )),
    };
    let issuer_cert = match issuer {
        Ok(Some(secret)) => {
            let data = secret.data.clone().unwrap_or_default();
            let what = format!("secret {ns}/{}", resources::ISSUER_SECRET);
            // Linkerd's own scheme keeps crt.pem/key.pem; a kubernetes.io/tls secret (e.g. from
            // cert-manager) keeps tls.crt/tls.key.
            let (crt_key, key_key) = if data.contains_key("crt.pem") {
                ("crt.pem", "key.pem")
            } else {
                ("tls.crt", "tls.key")
            };
            match (data.get(crt_key), data.get(key_key)) {
                (Some(crt), Some(key)) if !key.0.is_empty() => {
                    Bundle::parse(&crt.0, &format!("{what} key {crt_key}"))
                }
                (None, _) => Err(format!("{what} has neither crt.pem nor tls.crt")),
                _ => Err(format!("{what} has no key {key_key}")),
            }
        }
        Ok(None) => Err(format!(
            "secret {ns}/{} does not exist",
            resources::ISSUER_SECRET
        )),
        Err(e) => Err(format!(
            "cannot read secret {ns}/{}: {e}",
            resources::ISSUER_SECRET
        )),
    };
    let (anchors, issuer_bundle) = match (anchors, issuer_cert) {
        (Ok(a), Ok(i)) => (a, i),
        (a, i) => {
            let errors: Vec<String> = [a.err(), i.err()].into_iter().flatten().collect();
            return vec![Check::fail(
                description,
                errors.join("\n"),
                "give new identity certificates: mesh upgrade --identity-trust-anchors-file FILE --identity-issuer-certificate-file FILE --identity-issuer-key-file FILE | kubectl apply -f -",
            )];
        }
    };
    let anchor_certs = anchors.certs();
    let issuer_certs = issuer_bundle.certs();
    let Some(issuer) = issuer_certs.first() else {
        return vec![Check::fail(
            description,
            "the issuer secret holds no certificate",
            "reinstall the identity certificates",
        )];
    };
    let mut checks = vec![Check::pass(description)];

    let description = "trust anchors are using supported crypto algorithm";
    let odd: Vec<String> = anchor_certs
        .iter()
        .filter(|c| !is_p256(c) && !is_rsa(c))
        .map(|c| format!("{} uses an unsupported key algorithm", subject(c)))
        .collect();
    checks.push(if odd.is_empty() {
        Check::pass(description)
    } else {
        Check::fail(
            description,
            format!("Invalid roots:\n{}", bullets(&odd)),
            "use ECDSA P-256 (or RSA) trust anchors",
        )
    });

    let (invalid, soon) = validity(&anchor_certs, now);
    let renew_anchors =
        "rotate the trust anchors before they expire: every proxy's identity depends on them";
    let description = "trust anchors are within their validity period";
    checks.push(if invalid.is_empty() {
        Check::pass(description)
    } else {
        Check::fail(
            description,
            format!("Invalid anchors:\n{}", bullets(&invalid)),
            renew_anchors,
        )
    });
    let description = "trust anchors are valid for at least 60 days";
    checks.push(if soon.is_empty() {
        Check::pass(description)
    } else {
        Check::warn(
            description,
            format!("Anchors expiring soon:\n{}", bullets(&soon)),
            renew_anchors,
        )
    });

    let description = "issuer cert is using supported crypto algorithm";
    checks.push(if is_p256(issuer) {
        Check::pass(description)
    } else {
        Check::fail(
            description,
            format!("{} must use an ECDSA P-256 key", subject(issuer)),
            "issue a new issuer certificate with an ECDSA P-256 key",
        )
    });

    let (invalid, soon) = validity(std::slice::from_ref(issuer), now);
    let renew_issuer = "rotate the issuer certificate: https://linkerd.io/2/tasks/manually-rotating-control-plane-tls-credentials/";
    let description = "issuer cert is within its validity period";
    checks.push(match invalid.first() {
        None => Check::pass(description),
        Some(problem) => Check::fail(
            description,
            format!("issuer certificate {problem}"),
            renew_issuer,
        ),
    });
    let description = "issuer cert is valid for at least 60 days";
    checks.push(match soon.first() {
        None => Check::pass(description),
        Some(problem) => Check::warn(
            description,
            format!("issuer certificate: {problem}"),
            renew_issuer,
        ),
    });

    let description = "issuer cert is issued by the trust anchor";
    let chained = anchor_certs
        .iter()
        .any(|anchor| issuer.verify_signature(Some(anchor.public_key())).is_ok());
    checks.push(if chained {
        Check::pass(description)
    } else {
        Check::fail(
            description,
            format!(
                "{} is not signed by any of the trust anchors",
                subject(issuer)
            ),
            "issue the issuer certificate from the trust anchor in linkerd-identity-trust-roots",
        )
    });
    checks
}
