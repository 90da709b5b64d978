//! `mesh inject`.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, bail};
use mesh_inject::values::ValuesBuilder;
use mesh_inject::{ManualSettings, Options, Setting};

use super::GlobalArgs;

use mesh_names::resources::{TRUST_ROOTS, TRUST_ROOTS_KEY};

/// Reads the trust anchors of the installed control plane.
fn trust_anchors_from_cluster(global: &GlobalArgs) -> anyhow::Result<String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    runtime.block_on(async {
        let timeout = std::time::Duration::from_secs(10);
        let (client, url) = crate::client::client(global, timeout).await?;
        let api: kube::Api<k8s_openapi::api::core::v1::ConfigMap> =
            kube::Api::namespaced(client, &global.control_plane_namespace);
        let map = api
            .get(TRUST_ROOTS)
            .await
            .map_err(|e| anyhow::anyhow!("{} (at {url})", crate::client::describe(e)))?;
        map.data
            .and_then(|mut d| d.remove(TRUST_ROOTS_KEY))
            .with_context(|| format!("ConfigMap {TRUST_ROOTS} has no {TRUST_ROOTS_KEY}"))
    })
}

use super::manifest;

/// Add the mesh proxy to Kubernetes workloads
///
/// Reads Kubernetes manifests and adds the `linkerd.io/inject: enabled` annotation to the pod
/// template of every Deployment, StatefulSet, DaemonSet, ReplicaSet, ReplicationController, Job
/// and CronJob, and to every Pod and Namespace. The proxy injector then adds the proxy when the
/// pods are created. Other kinds pass through unchanged.
///
/// Only lines are added: comments, key order, quoting, anchors and block scalars are kept byte for
/// byte, so a GitOps diff shows exactly the new annotations. JSON documents stay JSON.
///
/// Pods with `hostNetwork: true` or another mesh's sidecar are refused, as in Linkerd: the run
/// fails with exit code 1 and writes nothing, so a pipeline never applies half a change. Workloads
/// annotated `linkerd.io/inject: disabled` pass through unchanged with a warning.
///
/// Examples:
///
///     # Inject a file and apply it
///     mesh inject deployment.yml | kubectl apply -f -
///
///     # Inject what is running now
///     kubectl get deploy -o yaml | mesh inject - | kubectl apply -f -
///
///     # Inject every manifest under a directory, skipping the SMTP port
///     mesh inject --skip-outbound-ports 25 ./k8s/
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// Manifests: files, directories (read recursively), https:// URLs, or `-` for stdin
    #[arg(required = true, value_name = "FILE|DIR|URL|-")]
    inputs: Vec<String>,
    #[command(flatten)]
    output: manifest::OutputArgs,
    /// Also print the checks that passed
    #[arg(long)]
    verbose: bool,
    /// Mark workloads as ingresses (`linkerd.io/inject: ingress`), whose proxies route by header
    #[arg(long)]
    ingress: bool,
    #[command(flatten)]
    proxy: ProxyFlags,
    #[command(flatten)]
    manual: ManualFlags,
}

/// Manual injection: the whole sidecar in the manifest, rather than an annotation for the injector.
#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Manual injection")]
pub struct ManualFlags {
    /// Write the proxy sidecar into pod specs instead of relying on the proxy injector
    ///
    /// Adds the linkerd-init container (iptables), the linkerd-proxy container, identity volumes,
    /// annotations and labels, exactly as the injector would. Injecting an injected manifest again
    /// gives the same bytes.
    #[arg(long)]
    manual: bool,
    /// Run the proxy as a native sidecar (an init container with restartPolicy Always)
    ///
    /// Needs Kubernetes 1.29 or later. With false, the proxy is the first regular container and
    /// the application waits for it with a postStart hook.
    #[arg(long, value_name = "BOOL", requires = "manual")]
    native_sidecar: Option<bool>,
    /// PEM file with the identity trust anchors the proxy verifies peers against
    ///
    /// Without it, they are read from the ca-bundle.crt of the linkerd-identity-trust-roots
    /// ConfigMap of the cluster that --kubeconfig and --context point at.
    #[arg(long, value_name = "PATH", requires = "manual")]
    identity_trust_anchors_file: Option<std::path::PathBuf>,
    /// A values file, as for `mesh install` (repeatable; later files win)
    #[arg(short = 'f', long = "values", value_name = "FILE", requires = "manual")]
    values: Vec<std::path::PathBuf>,
    /// Set a value, as for `mesh install`, e.g. proxy.logLevel=debug (repeatable)
    #[arg(long = "set", value_name = "KEY=VALUE", requires = "manual")]
    set: Vec<String>,
}

impl ManualFlags {
    /// The settings for manual injection, or `None` without `--manual`.
    fn settings(&self, global: &GlobalArgs) -> anyhow::Result<Option<ManualSettings>> {
        let control_plane_namespace = &global.control_plane_namespace;
        if !self.manual {
            return Ok(None);
        }
        let mut builder = ValuesBuilder::new()?;
        for file in &self.values {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("cannot read values file {}", file.display()))?;
            builder.merge_file(&file.display().to_string(), &text)?;
        }
        for assignment in &self.set {
            builder.set(assignment)?;
        }
        if let Some(native) = self.native_sidecar {
            builder.set(&format!("proxy.nativeSidecar={native}"))?;
        }
        let values = builder.build()?;
        let trust_anchors_pem = match &self.identity_trust_anchors_file {
            Some(path) => std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?,
            None => trust_anchors_from_cluster(global).with_context(|| {
                format!(
                    "--manual needs the identity trust anchors: pass --identity-trust-anchors-file, \
                     or point --kubeconfig at a cluster where mesh is installed \
                     (ConfigMap {}/{TRUST_ROOTS})",
                    global.control_plane_namespace
                )
            })?,
        };
        if !trust_anchors_pem.contains("-----BEGIN CERTIFICATE-----") {
            bail!("the identity trust anchors hold no PEM certificate");
        }
        Ok(Some(ManualSettings {
            values,
            trust_anchors_pem,
            control_plane_namespace: control_plane_namespace.to_owned(),
            cli_version: super::version::VERSION.to_owned(),
        }))
    }
}

/// Proxy settings, written as `config.linkerd.io/*` annotations only when given.
#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Proxy configuration")]
pub struct ProxyFlags {
    /// Inbound ports the proxy should not intercept, e.g. 22,8000-8100
    #[arg(long, value_name = "PORTS", value_delimiter = ',')]
    skip_inbound_ports: Vec<String>,
    /// Outbound ports the proxy should not intercept, e.g. 25,587
    #[arg(long, value_name = "PORTS", value_delimiter = ',')]
    skip_outbound_ports: Vec<String>,
    /// Ports whose traffic is forwarded as opaque TCP, without protocol detection
    ///
    /// Ports, ranges or port names, e.g. 3306,5000-6000,mysql. Services get the annotation too, so
    /// clients treat those ports as opaque as well.
    #[arg(long, value_name = "PORTS", value_delimiter = ',')]
    opaque_ports: Vec<String>,
    /// Log filter for the proxy, e.g. warn,linkerd=info
    #[arg(long, value_name = "FILTER")]
    proxy_log_level: Option<String>,
    /// CPU request for the proxy, e.g. 100m
    #[arg(long, value_name = "QUANTITY")]
    proxy_cpu_request: Option<String>,
    /// CPU limit for the proxy, e.g. 1
    #[arg(long, value_name = "QUANTITY")]
    proxy_cpu_limit: Option<String>,
    /// Memory request for the proxy, e.g. 20Mi
    #[arg(long, value_name = "QUANTITY")]
    proxy_memory_request: Option<String>,
    /// Memory limit for the proxy, e.g. 250Mi
    #[arg(long, value_name = "QUANTITY")]
    proxy_memory_limit: Option<String>,
    /// Port of the proxy's admin server (metrics, readiness)
    #[arg(long, value_name = "PORT")]
    admin_port: Option<String>,
    /// Whether the app container waits for the proxy to be ready: enabled or disabled
    #[arg(long, value_name = "enabled|disabled")]
    proxy_await: Option<String>,
    /// Policy for inbound traffic no policy resource covers
    ///
    /// One of all-unauthenticated, all-authenticated, cluster-unauthenticated,
    /// cluster-authenticated, deny or audit.
    #[arg(long, value_name = "POLICY")]
    default_inbound_policy: Option<String>,
    /// Serve the proxy's tap stream for mesh tap and mesh top; =false keeps it off
    ///
    /// Writes config.linkerd.io/enable-tap, which wins over the namespace's annotation and the
    /// install's proxy.enableTap. Tap is off unless one of them turns it on, because nothing
    /// checks who reads it yet: whoever reaches the pod's admin port sees every request's method,
    /// authority and path.
    #[arg(
        long,
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true"
    )]
    enable_tap: Option<bool>,
}

impl ProxyFlags {
    /// Validates every given value; the first bad one is an error naming its flag.
    fn options(&self, ingress: bool, manual: Option<ManualSettings>) -> anyhow::Result<Options> {
        let joined = |v: &[String]| (!v.is_empty()).then(|| v.join(","));
        let given = [
            (Setting::SkipInboundPorts, joined(&self.skip_inbound_ports)),
            (
                Setting::SkipOutboundPorts,
                joined(&self.skip_outbound_ports),
            ),
            (Setting::OpaquePorts, joined(&self.opaque_ports)),
            (Setting::ProxyLogLevel, self.proxy_log_level.clone()),
            (Setting::ProxyCpuRequest, self.proxy_cpu_request.clone()),
            (Setting::ProxyCpuLimit, self.proxy_cpu_limit.clone()),
            (
                Setting::ProxyMemoryRequest,
                self.proxy_memory_request.clone(),
            ),
            (Setting::ProxyMemoryLimit, self.proxy_memory_limit.clone()),
            (Setting::AdminPort, self.admin_port.clone()),
            (Setting::ProxyAwait, self.proxy_await.clone()),
            (
                Setting::DefaultInboundPolicy,
                self.default_inbound_policy.clone(),
            ),
            (Setting::EnableTap, self.enable_tap.map(|b| b.to_string())),
        ];
        let mut options = Options {
            ingress,
            manual,
            ..Options::default()
        };
        for (setting, value) in given {
            if let Some(value) = value {
                options.overrides.set(setting, &value)?;
            }
        }
        Ok(options)
    }
}

pub fn run(args: Args, global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let manual = args.manual.settings(global)?;
    let options = args.proxy.options(args.ingress, manual)?;
    let inputs = crate::input::read_all(&args.inputs)?;
    let result = manifest::transform(&inputs, args.output.format(), |text| {
        mesh_inject::inject(text, &options)
    })?;
    crate::output::stdout(|out| result.write(out))?;
    std::io::stderr().write_all(result.report.render_inject(args.verbose).as_bytes())?;
    Ok(ExitCode::SUCCESS)
}
