//! The proxy injector's serving certificate, as the API server will judge it when it calls the
//! webhook: current, trusted by the webhook's `caBundle`, and naming the Service it dials.

use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::core::v1::Secret;
use mesh_names::resources;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;

use super::gather::Fetch;
use super::identity::{Bundle, subject, validity};
use super::report::Check;

pub fn webhook(
    webhook: &Fetch<Option<MutatingWebhookConfiguration>>,
    tls: &Fetch<Option<Secret>>,
    ns: &str,
    now: i64,
) -> Vec<Check> {
    let description = "proxy-injector webhook has valid cert";
    let hint = "render the webhook certificate again: mesh upgrade | kubectl apply -f - (it expires with the identity issuer; give new --identity-* files if that has expired)";
    let config = match webhook {
        Ok(Some(config)) => config,
        Ok(None) => {
            return vec![Check::fail(
                description,
                format!(
                    "mutatingwebhookconfiguration {} does not exist",
                    resources::INJECTOR_WEBHOOK
                ),
                hint,
            )];
        }
        Err(e) => {
            return vec![Check::fail(
                description,
                format!("cannot read the webhook configuration: {e}"),
                hint,
            )];
        }
    };
    let bundle = config
        .webhooks
        .iter()
        .flatten()
        .find_map(|w| w.client_config.ca_bundle.as_ref())
        .filter(|b| !b.0.is_empty());
    let ca = match bundle {
        Some(b) => match Bundle::parse(&b.0, "caBundle") {
            Ok(ca) => ca,
            Err(e) => return vec![Check::fail(description, e, hint)],
        },
        None => {
            return vec![Check::fail(
                description,
                format!(
                    "mutatingwebhookconfiguration {} has no caBundle",
                    resources::INJECTOR_WEBHOOK
                ),
                hint,
            )];
        }
    };
    let ca_certs = ca.certs();
    let serving = match tls {
        Ok(Some(secret)) => secret
            .data
            .as_ref()
            .and_then(|d| d.get("tls.crt"))
            .map(|c| c.0.clone()),
        Ok(None) => None,
        Err(e) => {
            return vec![Check::fail(
                description,
                format!(
                    "cannot read secret {ns}/{}: {e}",
                    resources::INJECTOR_TLS_SECRET
                ),
                hint,
            )];
        }
    };
    let server_name = resources::service_server_name(resources::PROXY_INJECTOR, ns);
    let names = format!("proxy-injector cert is valid for {server_name}");
    // The API server refuses an injector it cannot verify and, with failurePolicy Ignore, creates
    // the pod uninjected: the serving certificate must exist, be current, be trusted by the
    // caBundle and name the Service.
    let Some(serving) = serving else {
        return vec![
            Check::fail(
                description,
                format!(
                    "secret {ns}/{} does not exist or has no tls.crt",
                    resources::INJECTOR_TLS_SECRET
                ),
                hint,
            ),
            Check::fail(names, "there is no serving certificate", hint),
        ];
    };
    let serving = match Bundle::parse(
        &serving,
        &format!("secret {ns}/{} key tls.crt", resources::INJECTOR_TLS_SECRET),
    ) {
        Ok(b) => b,
        Err(e) => return vec![Check::fail(description, e, hint)],
    };
    let serving_certs = serving.certs();
    let Some(leaf) = serving_certs.first() else {
        return vec![Check::fail(
            description,
            "the webhook secret holds no certificate",
            hint,
        )];
    };
    let (mut invalid, soon) = validity(std::slice::from_ref(leaf), now);
    let trusted = ca_certs.iter().any(|ca| {
        ca.as_ref() == leaf.as_ref() || leaf.verify_signature(Some(ca.public_key())).is_ok()
    });
    if !trusted {
        invalid.push(format!(
            "{} is not signed by the webhook's caBundle",
            subject(leaf)
        ));
    }
    let named = match dns_names(leaf) {
        Ok(dns) if dns.iter().any(|n| name_matches(n, &server_name)) => Check::pass(names),
        Ok(dns) => Check::fail(
            names,
            format!(
                "{} names {} but the API server dials {server_name}",
                subject(leaf),
                if dns.is_empty() {
                    "no DNS name".to_string()
                } else {
                    dns.join(", ")
                }
            ),
            hint,
        ),
        Err(e) => Check::fail(names, e, hint),
    };
    let mut checks = finish(description, hint, invalid, soon);
    checks.insert(1, named);
    checks
}

/// The certificate's DNS subject alternative names, which is all a TLS client checks.
fn dns_names(cert: &X509Certificate<'_>) -> Result<Vec<String>, String> {
    let san = cert
        .subject_alternative_name()
        .map_err(|e| format!("{}: invalid subjectAltName: {e}", subject(cert)))?;
    Ok(san
        .into_iter()
        .flat_map(|ext| ext.value.general_names.iter())
        .filter_map(|name| match name {
            GeneralName::DNSName(dns) => Some(dns.to_string()),
            _ => None,
        })
        .collect())
}

/// A DNS name as TLS matches it: exactly, or a `*.` wildcard for one leftmost label.
pub(super) fn name_matches(pattern: &str, host: &str) -> bool {
    let (pattern, host) = (pattern.to_ascii_lowercase(), host.to_ascii_lowercase());
    match pattern.strip_prefix("*.") {
        Some(rest) => host
            .split_once('.')
            .is_some_and(|(_, parent)| parent == rest),
        None => pattern == host,
    }
}

fn finish(description: &str, hint: &str, invalid: Vec<String>, soon: Vec<String>) -> Vec<Check> {
    let first = if invalid.is_empty() {
        Check::pass(description)
    } else {
        Check::fail(description, invalid.join("\n"), hint)
    };
    let description = "proxy-injector cert is valid for at least 60 days";
    let second = if soon.is_empty() {
        Check::pass(description)
    } else {
        Check::warn(description, soon.join("\n"), hint)
    };
    vec![first, second]
}
