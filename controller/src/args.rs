//! Command-line flags, exactly those `mesh install` renders (see `manifests/install/`). Parsing
//! does no I/O; each component validates its own flags and files when it starts.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use mesh_names::policy::{self, DefaultInboundPolicy};
use mesh_names::ports;

/// The mesh control plane.
#[derive(Debug, Parser)]
#[command(name = "mesh-controller", version, about, long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every component takes.
#[derive(Debug, Clone, Args)]
pub struct CommonArgs {
    /// Log filter: a level (`info`) or tracing directives (`warn,mesh_controller=debug`).
    #[arg(long, global = true, default_value = "info", value_name = "FILTER")]
    pub log_level: String,
    /// The namespace the control plane runs in (Linkerd's `linkerd`).
    #[arg(
        long,
        global = true,
        default_value = "linkerd",
        value_name = "NAMESPACE"
    )]
    pub control_plane_namespace: String,
    /// Where to serve `/metrics`, `/ready`, `/live` and `/ping`; defaults to the component's port
    /// in the install manifests.
    #[arg(long, global = true, value_name = "ADDR")]
    pub admin_addr: Option<SocketAddr>,
    /// A kubeconfig file to use instead of `$KUBECONFIG` or the in-cluster service account.
    #[arg(long, global = true, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// How long to wait for in-flight requests after SIGTERM before exiting anyway.
    #[arg(long, global = true, default_value = "30s", value_parser = duration, value_name = "DURATION")]
    pub shutdown_grace_period: Duration,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Issue workload certificates (Linkerd's identity service).
    Identity(IdentityArgs),
    /// Serve endpoints and service profiles to proxies (Linkerd's destination service).
    Destination(DestinationArgs),
    /// Add the proxy to new pods (a mutating admission webhook).
    ProxyInjector(InjectorArgs),
}

/// Flags of `mesh-controller identity`.
#[derive(Debug, Clone, Args)]
pub struct IdentityArgs {
    /// Where to serve the identity gRPC service (TLS).
    #[arg(long, default_value_t = any_addr(ports::IDENTITY_GRPC), value_name = "ADDR")]
    pub addr: SocketAddr,
    /// The trust domain: the suffix of every identity name.
    #[arg(long, default_value = "cluster.local", value_name = "DOMAIN")]
    pub identity_trust_domain: String,
    /// How long the workload certificates it issues are valid.
    #[arg(long, default_value = "24h0m0s", value_parser = duration, value_name = "DURATION")]
    pub issuance_lifetime: Duration,
    /// How far back a certificate's validity starts, for clocks that disagree.
    #[arg(long, default_value = "20s", value_parser = duration, value_name = "DURATION")]
    pub clock_skew_allowance: Duration,
    /// A directory holding the issuer's `crt.pem` and `key.pem` (the mounted Secret); it is
    /// re-read when they change.
    #[arg(long, value_name = "DIR")]
    pub issuer_dir: PathBuf,
    /// The PEM bundle of trust anchors the issuer must chain to.
    #[arg(long, value_name = "FILE")]
    pub trust_anchors: PathBuf,
    /// How often to look for a new issuer or trust anchors in the mounted files.
    #[arg(long, default_value = "5s", value_parser = duration, value_name = "DURATION")]
    pub issuer_poll_interval: Duration,
    /// How long a token review may take before the request is refused.
    #[arg(long, default_value = "10s", value_parser = duration, value_name = "DURATION")]
    pub token_review_timeout: Duration,
}

/// Flags of `mesh-controller destination`.
#[derive(Debug, Clone, Args)]
pub struct DestinationArgs {
    /// Where to serve the destination gRPC service.
    #[arg(long, default_value_t = any_addr(ports::DESTINATION_GRPC), value_name = "ADDR")]
    pub addr: SocketAddr,
    /// Where to serve the inbound policy gRPC service (Linkerd's policy port).
    #[arg(long, default_value_t = any_addr(ports::POLICY_GRPC), value_name = "ADDR")]
    pub policy_addr: SocketAddr,
    /// The cluster's DNS domain.
    #[arg(long, default_value = "cluster.local", value_name = "DOMAIN")]
    pub cluster_domain: String,
    /// The trust domain of workload identities.
    #[arg(long, default_value = "cluster.local", value_name = "DOMAIN")]
    pub identity_trust_domain: String,
    /// Comma-separated CIDRs of the pod and service networks: whom `cluster-*` policies admit.
    #[arg(
        long,
        default_value = policy::DEFAULT_CLUSTER_NETWORKS,
        value_name = "CIDRS"
    )]
    pub cluster_networks: String,
    /// Comma-separated ports (or ranges) treated as opaque when nothing else says so.
    #[arg(long, default_value = "", value_name = "PORTS")]
    pub default_opaque_ports: String,
    /// The inbound policy of ports no `Server` selects, on pods without their own
    /// (`config.linkerd.io/default-inbound-policy`): all-unauthenticated, all-authenticated,
    /// cluster-unauthenticated, cluster-authenticated, deny or audit.
    #[arg(long, default_value = DefaultInboundPolicy::default().as_str(), value_name = "POLICY")]
    pub default_inbound_policy: String,
}

/// Flags of `mesh-controller proxy-injector`.
#[derive(Debug, Clone, Args)]
pub struct InjectorArgs {
    /// Where to serve the webhook (HTTPS).
    #[arg(long, default_value_t = any_addr(ports::INJECTOR_WEBHOOK), value_name = "ADDR")]
    pub addr: SocketAddr,
    /// The effective install values (the `values` key of the `linkerd-config` ConfigMap).
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// The PEM bundle of trust anchors written into injected proxies.
    #[arg(long, value_name = "FILE")]
    pub trust_anchors: PathBuf,
    /// A directory holding the serving certificate `tls.crt` and key `tls.key` (the mounted
    /// Secret); they are re-read when they change.
    #[arg(long, value_name = "DIR")]
    pub tls_dir: PathBuf,
}

/// Every address of this host on `port`: the servers' default listen addresses use the ports
/// `mesh install` renders and the proxies dial.
fn any_addr(port: u16) -> SocketAddr {
    SocketAddr::from(([0, 0, 0, 0], port))
}

fn duration(text: &str) -> Result<Duration, String> {
    mesh_names::parse_duration(text).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn flags_are_consistent() {
        super::Cli::command().debug_assert();
    }
}
