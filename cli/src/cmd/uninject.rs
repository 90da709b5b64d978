//! `mesh uninject`.

use std::io::Write;
use std::process::ExitCode;

use super::manifest;

/// Remove what `mesh inject` added
///
/// Removes the `linkerd.io/inject` annotation that turns injection on. Proxy settings
/// (`config.linkerd.io/*` annotations) are kept, as Linkerd does, so injecting again restores the
/// same configuration. For block-style YAML, uninjecting the output of `mesh inject` gives back the
/// original bytes.
///
/// Examples:
///
///     mesh uninject deployment.yml | kubectl apply -f -
///
///     kubectl get deploy -o yaml | mesh uninject - | kubectl apply -f -
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// Manifests: files, directories (read recursively), https:// URLs, or `-` for stdin
    #[arg(required = true, value_name = "FILE|DIR|URL|-")]
    inputs: Vec<String>,
    #[command(flatten)]
    output: manifest::OutputArgs,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let inputs = crate::input::read_all(&args.inputs)?;
    let result = manifest::transform(&inputs, args.output.format(), mesh_inject::uninject)?;
    crate::output::stdout(|out| result.write(out))?;
    std::io::stderr().write_all(result.report.render_uninject().as_bytes())?;
    Ok(ExitCode::SUCCESS)
}
