//! `mesh upgrade`.

use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::anyhow;

use super::{IdentityArgs, OutputArgs, ValuesArgs, cluster};
use crate::cmd::GlobalArgs;
use crate::exit::Failed;

/// Render the installed control plane anew, keeping its values and certificates
///
/// Reads what the control plane in the cluster was installed with: its values (the `values` key
/// of the linkerd-config ConfigMap), its trust anchors and its identity issuer. Applies --ha, -f
/// and --set over those values, then renders the control plane of this CLI's version. Apply it as
/// the install was:
///
///     mesh upgrade --crds | kubectl apply -f -
///     mesh upgrade | kubectl apply -f -
///
/// Only what the new version or the given values change differs from what runs: the trust anchor,
/// the issuer and the webhook certificate stay, so meshed pods keep working. Values given here
/// are kept by the next upgrade. `mesh check --proxy` then names the pods whose proxy is older
/// than the control plane.
///
/// To replace the issuer, give the three --identity-* files. Giving other trust anchors than the
/// installed ones means every meshed pod must be restarted to trust the new ones.
///
/// Examples:
///
///     # Turn on debug logs in every proxy injected from now on
///     mesh upgrade --set proxy.logLevel=debug | kubectl apply -f -
///
///     # Move to high availability
///     mesh upgrade --ha | kubectl apply -f -
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// Render only the CustomResourceDefinitions (the first phase)
    #[arg(long)]
    crds: bool,
    #[command(flatten)]
    values: ValuesArgs,
    #[command(flatten)]
    identity: IdentityArgs,
    #[command(flatten)]
    output: OutputArgs,
}

pub fn run(args: Args, global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let installed = cluster::installed(global)?;
    let settings = args
        .values
        .settings_over(global, Some((&installed.values_source, &installed.values)))?;
    let objects = if args.crds {
        super::crds(&settings)?
    } else {
        let identity = if args.identity.given() {
            let identity = args.identity.load(&settings.values.identity_trust_domain)?;
            if identity.trust_anchors_pem.trim() != installed.trust_anchors.1.trim() {
                eprintln!(
                    "mesh: the trust anchors given differ from the installed ones; every meshed \
                     pod must be restarted to trust them (`mesh check --proxy` lists the pods)"
                );
            }
            identity
        } else {
            installed_identity(&installed)?
        };
        super::control_plane(&settings, &identity)?
    };
    let text = args.output.write(&objects);
    crate::output::stdout(|out| out.write_all(text.as_bytes()))?;
    Ok(ExitCode::SUCCESS)
}

/// The installed trust anchors and issuer, checked as `--identity-*` files would be.
fn installed_identity(installed: &cluster::Installed) -> anyhow::Result<mesh_pki::Credentials> {
    let files = mesh_pki::IdentityFiles {
        trust_anchors: (&installed.trust_anchors.0, &installed.trust_anchors.1),
        issuer_certificate: (&installed.issuer_crt.0, &installed.issuer_crt.1),
        issuer_key: (&installed.issuer_key.0, &installed.issuer_key.1),
    };
    mesh_pki::Credentials::load(files, SystemTime::now()).map_err(|e| match e {
        mesh_pki::CertError::Generate { .. } => anyhow!(e),
        e => Failed(format!(
            "the installed identity certificates cannot be used: {e}; give new ones with \
             --identity-trust-anchors-file, --identity-issuer-certificate-file and \
             --identity-issuer-key-file"
        ))
        .into(),
    })
}
