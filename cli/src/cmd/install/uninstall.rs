//! `mesh uninstall`.

use std::process::ExitCode;

use serde_json::Value;

use super::{OutputArgs, ValuesArgs};
use crate::cmd::GlobalArgs;

/// Render every object `mesh install` creates, for `kubectl delete -f -`
///
/// The objects are written without their secrets, in a safe order: the injector webhook first,
/// so no new pod waits on an injector that is going away, then the control plane and its
/// namespace, and with --crds the CRDs last. Give the same --ha, -f and --set as at install, or
/// use `kubectl delete --ignore-not-found`, so that objects only some settings create (such as
/// the disruption budgets of --ha) are handled.
///
/// Deleting the CRDs deletes every ServiceProfile, Server, HTTPRoute and policy object in the
/// cluster with them.
///
/// Examples:
///
///     mesh uninstall | kubectl delete --ignore-not-found -f -
///     mesh uninstall --crds | kubectl delete --ignore-not-found -f -
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// Also delete the CustomResourceDefinitions, and with them every custom resource
    #[arg(long)]
    crds: bool,
    #[command(flatten)]
    values: ValuesArgs,
    #[command(flatten)]
    output: OutputArgs,
}

pub fn run(args: Args, global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let settings = args.values.settings(global)?;
    let objects = super::control_plane(&settings, &mesh_pki::Credentials::placeholder())?;
    let crds = if args.crds {
        super::crds(&settings)?
    } else {
        Vec::new()
    };
    let text = args.output.write(&deletion_order(objects, crds));
    crate::output::stdout(|out| out.write_all(text.as_bytes()))?;
    Ok(ExitCode::SUCCESS)
}

/// Webhooks first, then the control plane in reverse install order (so the namespace comes after
/// what is in it), then the CRDs.
fn deletion_order(control_plane: Vec<Value>, crds: Vec<Value>) -> Vec<Value> {
    let is_webhook = |o: &Value| {
        matches!(
            o["kind"].as_str(),
            Some("MutatingWebhookConfiguration" | "ValidatingWebhookConfiguration")
        )
    };
    let (webhooks, rest): (Vec<Value>, Vec<Value>) =
        control_plane.into_iter().rev().partition(is_webhook);
    webhooks.into_iter().chain(rest).chain(crds).collect()
}
