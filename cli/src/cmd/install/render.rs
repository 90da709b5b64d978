//! Rendering the templates in `manifests/` into Kubernetes objects.
//!
//! The templates are minijinja with every `{{ }}` written as JSON, so a value is always one quoted
//! scalar or one flow collection and cannot change the structure around it. The rendered text is
//! parsed back into objects (with YAML 1.1 rules, as kubectl reads it), the control plane's pod
//! templates get their proxy from manual injection, and the objects are written out by a serializer
//! that quotes every string kubectl could misread, such as `yes` or `on`.

use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use serde::Serialize;
use serde_json::Value;

use mesh_inject::manual::{self, Owner};
use mesh_inject::yaml;
use mesh_names::{containers, env, ports, resources};

/// The install templates, in the order their objects are applied.
const CONTROL_PLANE: &[(&str, &str)] = &[
    (
        "install/namespace.yaml",
        include_str!("../../../../manifests/install/namespace.yaml"),
    ),
    (
        "install/rbac.yaml",
        include_str!("../../../../manifests/install/rbac.yaml"),
    ),
    (
        "install/config.yaml",
        include_str!("../../../../manifests/install/config.yaml"),
    ),
    (
        "install/identity.yaml",
        include_str!("../../../../manifests/install/identity.yaml"),
    ),
    (
        "install/destination.yaml",
        include_str!("../../../../manifests/install/destination.yaml"),
    ),
    (
        "install/proxy-injector.yaml",
        include_str!("../../../../manifests/install/proxy-injector.yaml"),
    ),
];

/// The CRD templates, in the order they are applied.
const CRDS: &[(&str, &str)] = &[
    (
        "crds/authorizationpolicies.yaml",
        include_str!("../../../../manifests/crds/authorizationpolicies.yaml"),
    ),
    (
        "crds/httproutes.yaml",
        include_str!("../../../../manifests/crds/httproutes.yaml"),
    ),
    (
        "crds/meshtlsauthentications.yaml",
        include_str!("../../../../manifests/crds/meshtlsauthentications.yaml"),
    ),
    (
        "crds/networkauthentications.yaml",
        include_str!("../../../../manifests/crds/networkauthentications.yaml"),
    ),
    (
        "crds/serverauthorizations.yaml",
        include_str!("../../../../manifests/crds/serverauthorizations.yaml"),
    ),
    (
        "crds/servers.yaml",
        include_str!("../../../../manifests/crds/servers.yaml"),
    ),
    (
        "crds/serviceprofiles.yaml",
        include_str!("../../../../manifests/crds/serviceprofiles.yaml"),
    ),
];

/// Templates only imported by others.
const HELPERS: &[(&str, &str)] = &[
    (
        "install/_helpers.yaml",
        include_str!("../../../../manifests/install/_helpers.yaml"),
    ),
    (
        "crds/_schemas.yaml",
        include_str!("../../../../manifests/crds/_schemas.yaml"),
    ),
];

/// Why the templates could not be turned into objects. Each is a bug in the templates or in the
/// values checks before them, never a problem of the user's input, which is checked first.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// minijinja refused a template or a value it needed was missing.
    #[error("template {template}: {message}")]
    Template { template: String, message: String },
    /// A template rendered text that is not YAML.
    #[error("template {template} rendered invalid YAML at line {line}:{col}: {message}")]
    Yaml {
        template: String,
        line: usize,
        col: usize,
        message: String,
    },
    /// Manual injection refused a control-plane pod.
    #[error("cannot inject {kind}/{name}: {source}")]
    Inject {
        kind: String,
        name: String,
        #[source]
        source: manual::ManualError,
    },
}

/// Renders the control-plane templates with `context` and injects the Deployments' pods.
pub fn control_plane(
    context: &impl Serialize,
    injection: &manual::Context<'_>,
) -> Result<Vec<Value>, RenderError> {
    let mut objects = render(CONTROL_PLANE, context)?;
    for object in &mut objects {
        inject(object, injection)?;
    }
    Ok(objects)
}

/// Renders the CRD templates with `context`.
pub fn crds(context: &impl Serialize) -> Result<Vec<Value>, RenderError> {
    render(CRDS, context)
}

fn render(templates: &[(&str, &str)], context: &impl Serialize) -> Result<Vec<Value>, RenderError> {
    let env = environment(templates)?;
    let context = minijinja::Value::from(minijinja::value::Serde(context));
    let mut objects = Vec::new();
    for (name, _) in templates {
        let template_error = |e: minijinja::Error| RenderError::Template {
            template: (*name).to_owned(),
            message: format!("{e:#}"),
        };
        let text = env
            .get_template(name)
            .and_then(|t| t.render(&context))
            .map_err(template_error)?;
        objects.extend(parse(name, &text)?);
    }
    Ok(objects)
}

fn environment<'a>(templates: &[(&'a str, &'a str)]) -> Result<Environment<'a>, RenderError> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_auto_escape_callback(|_| AutoEscape::Json);
    for (name, source) in HELPERS.iter().chain(templates) {
        env.add_template(name, source)
            .map_err(|e| RenderError::Template {
                template: (*name).to_owned(),
                message: format!("{e:#}"),
            })?;
    }
    Ok(env)
}

/// Parses rendered text into its non-empty documents.
fn parse(template: &str, text: &str) -> Result<Vec<Value>, RenderError> {
    yaml::to_json_documents(text).map_err(|e| RenderError::Yaml {
        template: template.to_owned(),
        line: e.line,
        col: e.col,
        message: e.message,
    })
}

/// Adds the proxy to a Deployment's pod template, as `mesh inject --manual` would.
fn inject(object: &mut Value, injection: &manual::Context<'_>) -> Result<(), RenderError> {
    if object["kind"] != "Deployment" {
        return Ok(());
    }
    let name = object["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let namespace = object["metadata"]["namespace"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let Some(template) = object.pointer_mut("/spec/template") else {
        return Ok(());
    };
    let owner = Owner {
        kind: "Deployment",
        name: &name,
        namespace: &namespace,
    };
    manual::inject_json(template, owner, injection).map_err(|source| RenderError::Inject {
        kind: "Deployment".to_owned(),
        name: name.clone(),
        source,
    })?;
    controllers_over_localhost(&name, template);
    Ok(())
}

/// A controller's own proxy reaches the controller beside it over localhost, as in Linkerd's
/// chart: the identity pod's proxy gets its certificate there (through the Service it would
/// wait for a pod that is not ready yet, because it waits for that very certificate), and the
/// destination pod's proxy asks the destination and policy services there, in plaintext (the
/// proxy speaks mesh TLS to those services only off loopback). Other pods' proxies reach ports
/// 8086 and 8090 over mesh TLS, which this pod's inbound proxy terminates.
fn controllers_over_localhost(deployment: &str, template: &mut Value) {
    let local = |port: u16| format!("localhost.:{port}");
    let vars: Vec<(&str, String)> = match deployment {
        resources::IDENTITY => vec![(env::IDENTITY_SVC_ADDR, local(ports::IDENTITY_GRPC))],
        resources::DESTINATION => vec![
            (env::DESTINATION_SVC_ADDR, local(ports::DESTINATION_GRPC)),
            (env::POLICY_SVC_ADDR, local(ports::POLICY_GRPC)),
        ],
        _ => return,
    };
    for path in ["/spec/containers", "/spec/initContainers"] {
        let Some(list) = template.pointer_mut(path).and_then(Value::as_array_mut) else {
            continue;
        };
        for container in list.iter_mut().filter(|c| c["name"] == containers::PROXY) {
            for var in container["env"].as_array_mut().into_iter().flatten() {
                if let Some((_, value)) = vars.iter().find(|(name, _)| var["name"] == *name) {
                    var["value"] = Value::String(value.clone());
                }
            }
        }
    }
}

/// Writes objects as a YAML stream, each document starting with `---`.
pub fn to_yaml(objects: &[Value]) -> String {
    let mut out = String::new();
    for object in objects {
        out.push_str("---\n");
        out.push_str(&yaml_document(object));
    }
    out
}

/// One value as block YAML. Multi-line strings (certificates, the values file) become literal
/// blocks; long single-line strings stay on one line.
pub fn yaml_document(value: &Value) -> String {
    let mut options = serde_saphyr::SerializerOptions::default();
    options.prefer_block_scalars = true;
    options.folded_wrap_chars = usize::MAX / 2;
    options.min_fold_chars = usize::MAX / 2;
    let text = serde_saphyr::to_string_with_options(value, options).unwrap_or_default();
    if text.ends_with('\n') {
        text
    } else {
        text + "\n"
    }
}

/// Writes objects as a stream of JSON documents, which kubectl reads like a YAML stream.
pub fn to_json(objects: &[Value]) -> String {
    let mut out = String::new();
    for object in objects {
        out.push_str(&serde_json::to_string_pretty(object).unwrap_or_default());
        out.push('\n');
    }
    out
}
