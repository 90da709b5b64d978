//! The rules themselves: the same chains, order and comment markers as Linkerd's proxy-init.
//!
//! Each rule is written with its arguments in the order iptables-save prints them, so the
//! `--dry-run` output reads like the saved table.

use super::config::{Config, Family, FamilyKind, InboundRedirect, PortRange};

/// The chain that inbound connections pass through, hooked from PREROUTING.
pub const REDIRECT_CHAIN: &str = "PROXY_INIT_REDIRECT";
/// The chain that outbound connections pass through, hooked from OUTPUT.
pub const OUTPUT_CHAIN: &str = "PROXY_INIT_OUTPUT";

/// The most ports one multiport match takes; a range counts as two.
const MULTIPORT_LIMIT: usize = 15;

/// One of our chains: its rules in order, and the rule in a built-in chain that jumps to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainRules {
    pub name: &'static str,
    /// The built-in chain that jumps here: PREROUTING or OUTPUT.
    pub hook: &'static str,
    /// Each rule's arguments after `-A <name>`.
    pub rules: Vec<Vec<String>>,
    /// The jump rule's arguments after `-A <hook>`.
    pub jump: Vec<String>,
}

impl ChainRules {
    /// The comment marker of each rule, in order; iptables-save shows them the same way.
    pub fn comments(&self) -> Vec<&str> {
        self.rules
            .iter()
            .filter_map(|rule| comment_of(rule))
            .collect()
    }
}

/// The value after `--comment` in a rule's arguments.
pub fn comment_of(spec: &[String]) -> Option<&str> {
    spec.iter()
        .position(|arg| arg == "--comment")
        .and_then(|i| spec.get(i + 1))
        .map(String::as_str)
}

/// The two chains for one address family: inbound first, as Linkerd installs them.
pub fn chains(config: &Config, family: &Family) -> [ChainRules; 2] {
    [inbound(config, family.kind), outbound(config)]
}

fn inbound(config: &Config, kind: FamilyKind) -> ChainRules {
    let mut rules = ignore_ports(&config.inbound_ports_to_ignore);
    for subnet in config.subnets_to_ignore.iter().filter(|s| s.kind() == kind) {
        rules.push(rule(
            &["-s", &subnet.to_string()],
            &format!("ignore-subnet-{subnet}"),
            &["-j", "RETURN"],
        ));
    }
    let to_port = config.inbound_proxy_port.to_string();
    match &config.inbound_redirect {
        InboundRedirect::All => rules.push(rule(
            &["-p", "tcp"],
            "redirect-all-incoming-to-proxy-port",
            &["-j", "REDIRECT", "--to-ports", &to_port],
        )),
        InboundRedirect::Listed(ports) => {
            for port in ports {
                rules.push(rule(
                    &["-p", "tcp", "-m", "tcp", "--dport", &port.to_string()],
                    &format!("redirect-port-{port}-to-proxy-port"),
                    &["-j", "REDIRECT", "--to-ports", &to_port],
                ));
            }
        }
    }
    ChainRules {
        name: REDIRECT_CHAIN,
        hook: "PREROUTING",
        rules,
        jump: rule(
            &[],
            "install-proxy-init-prerouting",
            &["-j", REDIRECT_CHAIN],
        ),
    }
}

fn outbound(config: &Config) -> ChainRules {
    let mut rules = vec![rule(
        &["-m", "owner", "--uid-owner", &config.proxy_uid.to_string()],
        "ignore-proxy-user-id",
        &["-j", "RETURN"],
    )];
    if let Some(gid) = config.proxy_gid {
        rules.push(rule(
            &["-m", "owner", "--gid-owner", &gid.to_string()],
            "ignore-proxy-group-id",
            &["-j", "RETURN"],
        ));
    }
    rules.push(rule(&["-o", "lo"], "ignore-loopback", &["-j", "RETURN"]));
    rules.extend(ignore_ports(&config.outbound_ports_to_ignore));
    rules.push(rule(
        &["-p", "tcp"],
        "redirect-all-outgoing-to-proxy-port",
        &[
            "-j",
            "REDIRECT",
            "--to-ports",
            &config.outbound_proxy_port.to_string(),
        ],
    ));
    ChainRules {
        name: OUTPUT_CHAIN,
        hook: "OUTPUT",
        rules,
        jump: rule(&[], "install-proxy-init-output", &["-j", OUTPUT_CHAIN]),
    }
}

/// RETURN rules for the ignored ports, split so no multiport match exceeds its limit.
fn ignore_ports(ports: &[PortRange]) -> Vec<Vec<String>> {
    let mut groups: Vec<Vec<PortRange>> = Vec::new();
    let mut used = MULTIPORT_LIMIT;
    for &range in ports {
        if used + range.slots() > MULTIPORT_LIMIT {
            groups.push(Vec::new());
            used = 0;
        }
        used += range.slots();
        if let Some(group) = groups.last_mut() {
            group.push(range);
        }
    }
    groups
        .into_iter()
        .map(|group| {
            let list = group
                .iter()
                .map(PortRange::to_string)
                .collect::<Vec<_>>()
                .join(",");
            rule(
                &["-p", "tcp", "-m", "multiport", "--dports", &list],
                &format!("ignore-port-{list}"),
                &["-j", "RETURN"],
            )
        })
        .collect()
}

/// Matches, then the comment marker, then the target: iptables-save's order.
fn rule(matches: &[&str], comment: &str, target: &[&str]) -> Vec<String> {
    let comment = format!("proxy-init/{comment}");
    matches
        .iter()
        .copied()
        .chain(["-m", "comment", "--comment", &comment])
        .chain(target.iter().copied())
        .map(str::to_string)
        .collect()
}
