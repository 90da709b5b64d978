//! `mesh install` and `mesh uninstall`.

mod cluster;
pub(super) mod render;
mod settings;
pub mod uninstall;
pub mod upgrade;

use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::Context as _;
use base64::Engine;
use serde::Serialize;
use serde_json::{Value, json};

use mesh_inject::manual;
use mesh_inject::values::Values;
use mesh_pki::Credentials;

use super::GlobalArgs;

use crate::exit::Failed;
pub(crate) use settings::is_dns_label;
pub use settings::{OutputArgs, ValuesArgs};

/// Render the control plane's manifests, for `kubectl apply -f -`
///
/// Installation has two phases, as in Linkerd. First the CRDs, then the control plane itself, in
/// namespace `linkerd` unless -L says otherwise:
///
///     mesh install --crds | kubectl apply -f -
///     mesh install | kubectl apply -f -
///
/// The control plane is the namespace, RBAC, the identity, destination and proxy-injector
/// Deployments (running mesh-controller) with their Services, the injector webhook, the
/// `linkerd-config` and `linkerd-identity-trust-roots` ConfigMaps and the identity issuer Secret.
/// The control plane's own pods carry the proxy already, as `mesh inject --manual` writes it.
///
/// A control plane already in the namespace is not installed over: that would replace its trust
/// anchor and issuer behind the running proxies' backs. Use `mesh upgrade` to change it, or
/// --ignore-cluster to render without looking (as for GitOps; without any kubeconfig nothing is
/// looked at either).
///
/// Without --identity-* files a new trust anchor (ECDSA P-256, valid 10 years) and issuer (valid 1
/// year) are generated on every run. With them, the output depends only on the files and values,
/// byte for byte, so a GitOps diff stays quiet.
///
/// Examples:
///
///     # High availability, with certificates made by your own CA
///     mesh install --ha --identity-trust-anchors-file ca.crt \
///       --identity-issuer-certificate-file issuer.crt --identity-issuer-key-file issuer.key
///
///     # See every value and its effective setting
///     mesh install --show-values --set proxy.logLevel=debug
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// Render only the CustomResourceDefinitions (the first phase)
    #[arg(long)]
    crds: bool,
    /// Print the effective values instead of manifests
    #[arg(long)]
    show_values: bool,
    /// Render without checking the cluster for an existing control plane
    #[arg(long)]
    ignore_cluster: bool,
    #[command(flatten)]
    values: ValuesArgs,
    #[command(flatten)]
    identity: IdentityArgs,
    #[command(flatten)]
    output: OutputArgs,
}

/// Bring-your-own identity certificates: all three or none.
#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Identity")]
pub struct IdentityArgs {
    /// PEM file with the trust anchors: one or more CA certificates every proxy trusts
    #[arg(
        long,
        value_name = "FILE",
        requires_all = ["identity_issuer_certificate_file", "identity_issuer_key_file"]
    )]
    identity_trust_anchors_file: Option<std::path::PathBuf>,
    /// PEM file with the issuer certificate, a CA signed by one of the trust anchors
    #[arg(
        long,
        value_name = "FILE",
        requires_all = ["identity_trust_anchors_file", "identity_issuer_key_file"]
    )]
    identity_issuer_certificate_file: Option<std::path::PathBuf>,
    /// PEM file with the issuer's ECDSA P-256 private key (PKCS#8 or SEC1)
    #[arg(
        long,
        value_name = "FILE",
        requires_all = ["identity_trust_anchors_file", "identity_issuer_certificate_file"]
    )]
    identity_issuer_key_file: Option<std::path::PathBuf>,
}

pub fn run(args: Args, global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let settings = args.values.settings(global)?;
    let text = if args.show_values {
        let tree = mesh_inject::values::to_tree(&settings.values);
        args.output.write_value(&tree)
    } else if args.crds {
        args.output.write(&crds(&settings)?)
    } else {
        let identity = args.identity.load(&settings.values.identity_trust_domain)?;
        if !args.ignore_cluster {
            cluster::refuse_if_installed(global)?;
        }
        args.output.write(&control_plane(&settings, &identity)?)
    };
    crate::output::stdout(|out| out.write_all(text.as_bytes()))?;
    Ok(ExitCode::SUCCESS)
}

impl IdentityArgs {
    fn given(&self) -> bool {
        self.identity_trust_anchors_file.is_some()
    }

    /// Reads and verifies the given certificates, or generates new ones.
    fn load(&self, trust_domain: &str) -> anyhow::Result<Credentials> {
        let (Some(anchors), Some(crt), Some(key)) = (
            &self.identity_trust_anchors_file,
            &self.identity_issuer_certificate_file,
            &self.identity_issuer_key_file,
        ) else {
            return Ok(Credentials::generate(trust_domain, SystemTime::now())?);
        };
        let read = |path: &std::path::Path, flag: &str| {
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {flag} {}", path.display()))
        };
        let texts = (
            read(anchors, "--identity-trust-anchors-file")?,
            read(crt, "--identity-issuer-certificate-file")?,
            read(key, "--identity-issuer-key-file")?,
        );
        let names = (
            anchors.display().to_string(),
            crt.display().to_string(),
            key.display().to_string(),
        );
        let files = mesh_pki::IdentityFiles {
            trust_anchors: (&names.0, &texts.0),
            issuer_certificate: (&names.1, &texts.1),
            issuer_key: (&names.2, &texts.2),
        };
        Credentials::load(files, SystemTime::now()).map_err(|e| match e {
            mesh_pki::CertError::Generate { .. } => anyhow::Error::new(e),
            e => Failed(e.to_string()).into(),
        })
    }
}

/// The CLI's version, which images and annotations carry unless `meshVersion` is set.
fn cli_version() -> &'static str {
    super::version::VERSION
}

fn created_by() -> String {
    format!("mesh/cli {}", cli_version())
}

/// What the CRD templates see.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CrdContext<'a> {
    ns: &'a str,
    created_by: String,
}

fn crds(settings: &settings::Settings) -> anyhow::Result<Vec<Value>> {
    Ok(render::crds(&CrdContext {
        ns: &settings.namespace,
        created_by: created_by(),
    })?)
}

/// What the control-plane templates see.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ControlPlaneContext<'a> {
    ns: &'a str,
    version: &'a str,
    created_by: String,
    controller_image: String,
    values: &'a Values,
    max_unavailable: Value,
    resources: ComponentResources,
    config_values: String,
    config_checksum: String,
    trust_anchors_pem: &'a str,
    issuer: SecretData,
    webhook: WebhookData,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ComponentResources {
    destination: Value,
    identity: Value,
    proxy_injector: Value,
}

#[derive(Serialize)]
struct SecretData {
    crt: String,
    key: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WebhookData {
    ca_bundle: String,
    crt: String,
    key: String,
}

fn control_plane(
    settings: &settings::Settings,
    identity: &Credentials,
) -> anyhow::Result<Vec<Value>> {
    let values = &settings.values;
    let ns = settings.namespace.as_str();
    let webhook = if identity.issuer_key_pem.is_empty() {
        mesh_pki::Webhook {
            ca_pem: String::new(),
            crt_pem: String::new(),
            key_pem: String::new(),
        }
    } else {
        identity.webhook(
            mesh_names::resources::PROXY_INJECTOR,
            ns,
            &values.cluster_domain,
        )?
    };
    let version = values.version(cli_version());
    let config_values = render::yaml_document(&mesh_inject::values::to_tree(values));
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let context = ControlPlaneContext {
        ns,
        version,
        created_by: created_by(),
        controller_image: format!("{}:{version}", values.controller_image),
        values,
        max_unavailable: if values.high_availability {
            json!(1)
        } else {
            json!("25%")
        },
        resources: ComponentResources {
            destination: settings::resources_json(&values.destination_resources),
            identity: settings::resources_json(&values.identity_resources),
            proxy_injector: settings::resources_json(&values.proxy_injector_resources),
        },
        config_checksum: sha256_hex(&config_values),
        config_values,
        trust_anchors_pem: &identity.trust_anchors_pem,
        issuer: SecretData {
            crt: b64(&identity.issuer_crt_pem),
            key: b64(&identity.issuer_key_pem),
        },
        webhook: WebhookData {
            ca_bundle: b64(&webhook.ca_pem),
            crt: b64(&webhook.crt_pem),
            key: b64(&webhook.key_pem),
        },
    };
    let injection = manual::Context {
        values,
        trust_anchors_pem: &identity.trust_anchors_pem,
        control_plane_namespace: ns,
        cli_version: cli_version(),
    };
    Ok(render::control_plane(&context, &injection)?)
}

fn sha256_hex(text: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests;
