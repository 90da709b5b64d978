//! The flags of `mesh-proxy init`, spelled as Linkerd's proxy-init spells them.
//!
//! These structs do no I/O and no validation beyond types; [`super::config`] checks the values.

use clap::builder::BoolishValueParser;
use clap::{ArgAction, Parser};

/// Installs the iptables rules that send a pod's TCP traffic through mesh-proxy.
///
/// Creates the nat chains PROXY_INIT_REDIRECT (hooked from PREROUTING: inbound connections go to
/// the proxy's inbound port) and PROXY_INIT_OUTPUT (hooked from OUTPUT: outbound connections go
/// to the proxy's outbound port, except the proxy's own and loopback traffic). Running it again
/// changes nothing if the rules are already in place, and replaces them if they differ.
#[derive(Debug, Parser)]
#[command(
    name = "mesh-proxy init",
    disable_version_flag = true,
    after_help = "Exit codes: 0 ok (or nothing to do), 1 an iptables command failed, 2 bad usage."
)]
pub struct InitArgs {
    /// Port that redirected inbound connections are sent to.
    #[arg(short = 'p', long, value_name = "PORT", default_value = "4143")]
    pub incoming_proxy_port: String,

    /// Port that redirected outbound connections are sent to.
    #[arg(short = 'o', long, value_name = "PORT", default_value = "4140")]
    pub outgoing_proxy_port: String,

    /// User id the proxy runs as; its own connections are never redirected.
    #[arg(
        short = 'u',
        long,
        value_name = "UID",
        default_value = "2102",
        allow_hyphen_values = true
    )]
    pub proxy_uid: String,

    /// Group id the proxy runs as; its connections are never redirected either.
    #[arg(long, value_name = "GID")]
    pub proxy_gid: Option<String>,

    /// Inbound ports to redirect; without it every inbound port is redirected.
    #[arg(short = 'r', long, value_name = "PORTS", value_delimiter = ',', action = ArgAction::Append)]
    pub ports_to_redirect: Vec<String>,

    /// Inbound ports and ranges (8000-8100) that bypass the proxy.
    ///
    /// Comma-separated, and the flag may repeat. Linkerd passes the proxy's own admin and
    /// control ports (4190,4191) here.
    #[arg(long, value_name = "PORTS", value_delimiter = ',', action = ArgAction::Append)]
    pub inbound_ports_to_ignore: Vec<String>,

    /// Outbound ports and ranges (8000-8100) that bypass the proxy.
    #[arg(long, value_name = "PORTS", value_delimiter = ',', action = ArgAction::Append)]
    pub outbound_ports_to_ignore: Vec<String>,

    /// Source subnets (CIDR) whose inbound connections bypass the proxy.
    #[arg(long, value_name = "CIDRS", value_delimiter = ',', action = ArgAction::Append)]
    pub subnets_to_ignore: Vec<String>,

    /// The iptables binary: iptables-legacy, iptables-nft or a path.
    #[arg(long, value_name = "PATH", default_value = "iptables-legacy")]
    pub firewall_bin_path: String,

    /// The matching iptables-save binary, used to find rules already in place.
    #[arg(long, value_name = "PATH", default_value = "iptables-legacy-save")]
    pub firewall_save_bin_path: String,

    /// Also install the rules with ip6tables (the binary name with iptables replaced).
    #[arg(
        long,
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_value = "true",
        default_missing_value = "true",
        value_parser = BoolishValueParser::new()
    )]
    pub ipv6: bool,

    /// Print the commands for a fresh network namespace instead of running them.
    #[arg(
        long,
        visible_alias = "simulate",
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_value = "false",
        default_missing_value = "true",
        value_parser = BoolishValueParser::new()
    )]
    pub dry_run: bool,

    /// Run the iptables commands in this network namespace (a path such as /run/netns/NAME).
    #[arg(long, value_name = "PATH")]
    pub netns: Option<String>,

    /// Pass -w to iptables so it waits for the xtables lock instead of failing.
    #[arg(
        short = 'w',
        long,
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_value = "false",
        default_missing_value = "true",
        value_parser = BoolishValueParser::new()
    )]
    pub use_wait_flag: bool,

    /// Set net.netfilter.nf_conntrack_tcp_timeout_close_wait to this many seconds.
    #[arg(long, value_name = "SECONDS")]
    pub timeout_close_wait_secs: Option<String>,

    /// Accepted for compatibility with Linkerd's proxy-init; only `error` quiets the output.
    #[arg(long, value_name = "LEVEL", default_value = "info")]
    pub log_level: String,

    /// Accepted for compatibility with Linkerd's proxy-init and ignored.
    #[arg(long, value_name = "FORMAT", default_value = "plain")]
    pub log_format: String,
}
