//! `mesh profile`: writes a ServiceProfile for a service, from a template, an OpenAPI (Swagger)
//! spec or a protobuf service definition, as Linkerd's `linkerd profile` does.

mod cluster;
#[cfg(test)]
mod fuzz;
mod openapi;
mod proto;
mod template;
#[cfg(test)]
mod tests;

use std::io::Read;
use std::process::ExitCode;

use anyhow::{Context, bail};
use serde_json::{Map, Value, json};

use crate::cmd::GlobalArgs;
use crate::exit::Failed;

/// The largest spec file read, in bytes. Real specs are far smaller; the bound keeps memory and
/// time in check when a wrong file (or an endless stdin) is given.
pub const MAX_INPUT_BYTES: u64 = 16 << 20;

/// The cluster domain when neither a flag nor the cluster names one, as in Linkerd.
const DEFAULT_CLUSTER_DOMAIN: &str = "cluster.local";

/// Output a ServiceProfile for a service
///
/// Writes a ServiceProfile (`linkerd.io/v1alpha2`) for SERVICE in --namespace, named by the
/// service's FQDN (`SERVICE.NAMESPACE.svc.CLUSTER-DOMAIN`) so proxies find it. Exactly one of:
///
///   --template         a commented example to edit, with every field explained
///   --open-api FILE    one route per path and method of a Swagger 2.0 or OpenAPI 3 spec
///                      (JSON or YAML); `x-linkerd-retryable: true` and `x-linkerd-timeout`
///                      on an operation set the route's isRetryable and timeout, and each
///                      response status becomes a response class (5xx are failures)
///   --proto FILE       one route per rpc of the gRPC services in a .proto file; an rpc with
///                      `option idempotency_level = IDEMPOTENT` (or NO_SIDE_EFFECTS) is
///                      retryable
///
/// FILE may be `-` for stdin. The cluster domain is the installed control plane's
/// (`clusterDomain` in the linkerd-config values), unless --cluster-domain names it or
/// --ignore-cluster (or having no kubeconfig at all) takes `cluster.local`.
///
/// Examples:
///
///     mesh profile -n emojivoto --template web-svc > web-svc-profile.yaml
///     mesh profile -n emojivoto --open-api web-svc.swagger web-svc | kubectl apply -f -
///     mesh profile -n emojivoto --proto Voting.proto voting-svc | kubectl apply -f -
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["template", "open_api", "proto"])))]
pub struct Args {
    /// The service's name, as its Kubernetes Service is named
    #[arg(value_name = "SERVICE")]
    service: String,
    /// Namespace of the service (default: the kubeconfig context's, else default)
    #[arg(short, long, value_name = "NS")]
    namespace: Option<String>,
    /// Output a commented ServiceProfile template
    #[arg(long)]
    template: bool,
    /// Output a ServiceProfile from a Swagger 2.0 or OpenAPI 3 spec (JSON or YAML; - for stdin)
    #[arg(long, value_name = "FILE")]
    open_api: Option<String>,
    /// Output a ServiceProfile from the gRPC services of a protobuf file (- for stdin)
    #[arg(long, value_name = "FILE")]
    proto: Option<String>,
    /// The cluster's DNS domain, the last part of the profile's name [default: the installed
    /// control plane's, else cluster.local]
    #[arg(long, value_name = "DOMAIN")]
    cluster_domain: Option<String>,
    /// Do not read the cluster domain from the cluster: use cluster.local
    #[arg(long)]
    ignore_cluster: bool,
    /// Output format
    #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Yaml)]
    output: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    Yaml,
    Json,
}

/// Whom a profile is for: the service and where it lives.
#[derive(Debug, Clone)]
pub struct Target {
    pub service: String,
    pub namespace: String,
    pub cluster_domain: String,
}

impl Target {
    /// The profile's name: the service's FQDN, which proxies look the profile up by.
    pub fn fqdn(&self) -> String {
        format!(
            "{}.{}.svc.{}",
            self.service, self.namespace, self.cluster_domain
        )
    }
}

/// One route of a profile: which requests it holds, and how proxies treat them.
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    pub name: String,
    pub method: String,
    pub path_regex: String,
    /// Status ranges `(min, max)`, each a response class; 5xx ones are failures.
    pub response_classes: Vec<(u16, u16)>,
    pub retryable: bool,
    pub timeout: Option<String>,
}

pub fn run(args: Args, global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let namespace = args
        .namespace
        .clone()
        .or_else(|| cluster::context_namespace(global))
        .unwrap_or_else(|| "default".to_string());
    // Everything the user gave is checked before the cluster is asked anything.
    check_names(&args.service, &namespace)?;
    let routes = if args.template {
        None
    } else if let Some(file) = &args.open_api {
        let (name, text) = read(file)?;
        Some(openapi::routes(&text).map_err(|e| Failed(format!("{name}: {e}")))?)
    } else if let Some(file) = &args.proto {
        let (name, text) = read(file)?;
        Some(proto::routes(&text).map_err(|e| Failed(format!("{name}: {e}")))?)
    } else {
        bail!("one of --template, --open-api or --proto is required");
    };
    let domain = match &args.cluster_domain {
        Some(domain) => domain.clone(),
        None if args.ignore_cluster || crate::client::nothing_configured(global) => {
            DEFAULT_CLUSTER_DOMAIN.to_string()
        }
        None => {
            cluster::cluster_domain(global)?.unwrap_or_else(|| DEFAULT_CLUSTER_DOMAIN.to_string())
        }
    };
    let target = Target {
        service: args.service.clone(),
        namespace,
        cluster_domain: check_domain(&domain)?,
    };
    if target.fqdn().len() > 253 {
        bail!(
            "the profile's name {} is longer than the 253 characters Kubernetes allows",
            target.fqdn()
        );
    }
    let profile = match routes {
        None => template::render(&target),
        Some(routes) => profile(&target, &routes),
    };
    let text = match (args.output, profile) {
        (Format::Yaml, Profile::Text(text)) => text,
        (Format::Json, Profile::Text(text)) => {
            let docs = mesh_inject::yaml::to_json_documents(&text)
                .context("the built-in template is not valid YAML")?;
            super::install::render::to_json(&docs)
        }
        (Format::Yaml, Profile::Object(value)) => {
            super::install::render::to_yaml(std::slice::from_ref(&value))
        }
        (Format::Json, Profile::Object(value)) => {
            super::install::render::to_json(std::slice::from_ref(&value))
        }
    };
    crate::output::stdout(|out| out.write_all(text.as_bytes()))?;
    Ok(ExitCode::SUCCESS)
}

/// What is written: the template is text with comments; generated profiles are objects.
enum Profile {
    Text(String),
    Object(Value),
}

/// Checks the names as the API server would: the profile's name is built from them.
fn check_names(service: &str, namespace: &str) -> anyhow::Result<()> {
    if let Err(why) = dns_label(service, true) {
        bail!("invalid service {service:?}: {why}");
    }
    if let Err(why) = dns_label(namespace, false) {
        bail!("invalid namespace {namespace:?}: {why}");
    }
    Ok(())
}

/// The cluster domain without a trailing dot, if it is a DNS name.
fn check_domain(domain: &str) -> anyhow::Result<String> {
    let trimmed = domain.trim_end_matches('.');
    if trimmed.is_empty() || trimmed.len() > 253 {
        bail!("invalid cluster domain {domain:?}: must be 1 to 253 characters");
    }
    for label in trimmed.split('.') {
        if let Err(why) = dns_label(label, false) {
            bail!("invalid cluster domain {domain:?}: label {label:?} {why}");
        }
    }
    Ok(trimmed.to_string())
}

/// Whether `s` is a DNS label (RFC 1123; with `alpha_first`, RFC 1035 as Services require); the
/// reason when it is not.
fn dns_label(s: &str, alpha_first: bool) -> Result<(), &'static str> {
    if s.is_empty() || s.len() > 63 {
        return Err("must be 1 to 63 characters");
    }
    if !s
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err("may hold only lowercase letters, digits and '-'");
    }
    let first = s.as_bytes()[0];
    if alpha_first && !first.is_ascii_lowercase() {
        return Err("must start with a lowercase letter");
    }
    if first == b'-' || s.ends_with('-') {
        return Err("must start and end with a letter or digit");
    }
    Ok(())
}

/// Reads FILE (or stdin for `-`) in full, up to [`MAX_INPUT_BYTES`]. Returns how messages name
/// it and its text.
fn read(file: &str) -> anyhow::Result<(String, String)> {
    let mut bytes = Vec::new();
    let name = if file == "-" {
        "<stdin>".to_string()
    } else {
        file.to_string()
    };
    let result = if file == "-" {
        std::io::stdin()
            .lock()
            .take(MAX_INPUT_BYTES + 1)
            .read_to_end(&mut bytes)
    } else {
        std::fs::File::open(file).and_then(|f| f.take(MAX_INPUT_BYTES + 1).read_to_end(&mut bytes))
    };
    // A file that cannot be read is a runtime error (exit 2), as for every command; what it
    // holds being unusable is bad input (exit 1).
    result.with_context(|| format!("cannot read {name}"))?;
    if bytes.len() as u64 > MAX_INPUT_BYTES {
        return Err(Failed(format!(
            "{name}: larger than {} MiB; is it the right file?",
            MAX_INPUT_BYTES >> 20
        ))
        .into());
    }
    let text = String::from_utf8(bytes).map_err(|e| {
        Failed(format!(
            "{name}: not UTF-8 text (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        ))
    })?;
    Ok((name, text))
}

/// The ServiceProfile object for `routes`, as `kubectl apply` takes it.
fn profile(target: &Target, routes: &[Route]) -> Profile {
    let routes: Vec<Value> = routes.iter().map(route).collect();
    Profile::Object(json!({
        "apiVersion": "linkerd.io/v1alpha2",
        "kind": "ServiceProfile",
        "metadata": {
            "name": target.fqdn(),
            "namespace": target.namespace,
        },
        "spec": { "routes": routes },
    }))
}

fn route(route: &Route) -> Value {
    let mut out = Map::new();
    out.insert("name".into(), json!(route.name));
    out.insert(
        "condition".into(),
        json!({ "method": route.method, "pathRegex": route.path_regex }),
    );
    if !route.response_classes.is_empty() {
        let classes: Vec<Value> = route
            .response_classes
            .iter()
            .map(|&(min, max)| {
                let mut class = Map::new();
                class.insert(
                    "condition".into(),
                    json!({ "status": { "min": min, "max": max } }),
                );
                if min >= 500 {
                    class.insert("isFailure".into(), Value::Bool(true));
                }
                Value::Object(class)
            })
            .collect();
        out.insert("responseClasses".into(), Value::Array(classes));
    }
    if route.retryable {
        out.insert("isRetryable".into(), Value::Bool(true));
    }
    if let Some(timeout) = &route.timeout {
        out.insert("timeout".into(), json!(timeout));
    }
    Value::Object(out)
}

/// Escapes every regex metacharacter in `s`, so it matches itself (what Go's `regexp.QuoteMeta`
/// escapes, so the regexes are the ones Linkerd writes).
pub fn quote_meta(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if r"\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
