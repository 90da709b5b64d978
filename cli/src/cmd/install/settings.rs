//! The flags `install` and `uninstall` share: values and output format, validated into
//! [`Settings`] before anything is rendered.

use std::io::Read;
use std::path::PathBuf;

use anyhow::{Context as _, bail};
use serde_json::{Map, Value};

use mesh_inject::values::{RequestLimit, Resources, Values, ValuesBuilder};

use crate::cmd::GlobalArgs;

/// What `mesh install --ha` merges over the defaults.
const HA_VALUES: &str = include_str!("../../../../manifests/values-ha.yaml");

#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Values")]
pub struct ValuesArgs {
    /// High availability: 3 replicas of each controller on separate nodes, disruption budgets,
    /// resource requests, and a webhook that fails closed
    ///
    /// Applies manifests/values-ha.yaml before any -f file or --set.
    #[arg(long)]
    ha: bool,
    /// A values file merged over the defaults; repeatable, later files win; `-` for stdin
    #[arg(short = 'f', long = "values", value_name = "FILE")]
    values_files: Vec<PathBuf>,
    /// Set one value, e.g. proxy.logLevel=debug or proxyInjector.excludedNamespaces={a,b}
    ///
    /// Repeatable; applied after the values files. Keys follow Linkerd's Helm values; an unknown
    /// key is an error that names it. `mesh install --show-values` lists them all.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
}

#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Output")]
pub struct OutputArgs {
    /// Output format
    #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Yaml)]
    format: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    Yaml,
    Json,
}

/// Validated values and namespace.
#[derive(Debug)]
pub struct Settings {
    pub values: Values,
    pub namespace: String,
}

impl ValuesArgs {
    /// Merges the defaults, `--ha`, the files and `--set`, then checks what Kubernetes would
    /// reject. Every error names the file or flag it came from.
    pub fn settings(&self, global: &GlobalArgs) -> anyhow::Result<Settings> {
        self.settings_over(global, None)
    }

    /// As [`ValuesArgs::settings`], with `base` (a source name and a values document, such as
    /// the values an installed control plane was rendered with) merged over the defaults first.
    pub fn settings_over(
        &self,
        global: &GlobalArgs,
        base: Option<(&str, &str)>,
    ) -> anyhow::Result<Settings> {
        let namespace = global.control_plane_namespace.clone();
        if !is_dns_label(&namespace) {
            bail!(
                "invalid value {namespace:?} for --control-plane-namespace: a namespace is at most \
                 63 lowercase letters, digits and '-', starting and ending with a letter or digit"
            );
        }
        let mut builder = ValuesBuilder::new()?;
        if let Some((name, text)) = base {
            builder.merge_file(name, text)?;
        }
        if self.ha {
            builder.merge_file("--ha (manifests/values-ha.yaml)", HA_VALUES)?;
        }
        for path in &self.values_files {
            let (name, text) = read_values_file(path)?;
            builder.merge_file(&name, &text)?;
        }
        for assignment in &self.set {
            builder.set(assignment)?;
        }
        let values = builder.build()?;
        check(&values)?;
        Ok(Settings { values, namespace })
    }
}

impl OutputArgs {
    /// Renders objects as a YAML stream or a stream of JSON objects.
    pub fn write(&self, objects: &[Value]) -> String {
        match self.format {
            Format::Yaml => super::render::to_yaml(objects),
            Format::Json => super::render::to_json(objects),
        }
    }

    /// Renders one value, such as the effective values.
    pub fn write_value(&self, value: &Value) -> String {
        match self.format {
            Format::Yaml => super::render::yaml_document(value),
            Format::Json => super::render::to_json(std::slice::from_ref(value)),
        }
    }
}

fn read_values_file(path: &std::path::Path) -> anyhow::Result<(String, String)> {
    if path.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("cannot read values from stdin")?;
        return Ok(("<stdin>".to_owned(), text));
    }
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read values file {}", path.display()))?;
    Ok((path.display().to_string(), text))
}

/// What the types allow but Kubernetes would refuse.
fn check(values: &Values) -> anyhow::Result<()> {
    let one_of = |key: &str, value: &str, allowed: &[&str]| -> anyhow::Result<()> {
        if allowed.contains(&value) {
            Ok(())
        } else {
            bail!(
                "values: {key}: expected one of {}, not {value:?}",
                allowed.join(", ")
            )
        }
    };
    one_of(
        "webhookFailurePolicy",
        &values.webhook_failure_policy,
        &["Ignore", "Fail"],
    )?;
    let pull_policies = ["Always", "IfNotPresent", "Never"];
    one_of("imagePullPolicy", &values.image_pull_policy, &pull_policies)?;
    if !values.proxy.image.pull_policy.is_empty() {
        one_of(
            "proxy.image.pullPolicy",
            &values.proxy.image.pull_policy,
            &pull_policies,
        )?;
    }
    if values.controller_image.is_empty() || values.controller_image.contains(char::is_whitespace) {
        bail!(
            "values: controllerImage: expected an image name such as ghcr.io/org/mesh-controller, \
             not {:?}",
            values.controller_image
        );
    }
    for (key, resources) in [
        ("destinationResources", &values.destination_resources),
        ("identityResources", &values.identity_resources),
        ("proxyInjectorResources", &values.proxy_injector_resources),
        ("proxy.resources", &values.proxy.resources),
    ] {
        for (field, quantity) in quantities(resources) {
            if !quantity.is_empty() {
                mesh_inject::quantity(quantity)
                    .map_err(|e| anyhow::anyhow!("values: {key}.{field}: {e}"))?;
            }
        }
    }
    for ns in &values.proxy_injector.excluded_namespaces {
        if !is_dns_label(ns) {
            bail!("values: proxyInjector.excludedNamespaces: {ns:?} is not a namespace name");
        }
    }
    Ok(())
}

fn quantities(r: &Resources) -> [(&'static str, &str); 4] {
    [
        ("cpu.request", &r.cpu.request),
        ("cpu.limit", &r.cpu.limit),
        ("memory.request", &r.memory.request),
        ("memory.limit", &r.memory.limit),
    ]
}

/// A container's `resources` block, leaving out what is empty; `null` when everything is.
pub fn resources_json(r: &Resources) -> Value {
    let pick = |f: fn(&RequestLimit) -> &String| {
        let mut map = Map::new();
        for (name, rl) in [("cpu", &r.cpu), ("memory", &r.memory)] {
            let v = f(rl);
            if !v.is_empty() {
                map.insert(name.to_owned(), Value::String(v.clone()));
            }
        }
        map
    };
    let mut out = Map::new();
    for (name, map) in [
        ("requests", pick(|rl| &rl.request)),
        ("limits", pick(|rl| &rl.limit)),
    ] {
        if !map.is_empty() {
            out.insert(name.to_owned(), Value::Object(map));
        }
    }
    if out.is_empty() {
        Value::Null
    } else {
        Value::Object(out)
    }
}

/// An RFC 1123 label, as namespace names must be.
pub fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}
