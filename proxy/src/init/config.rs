//! Validates [`InitArgs`] into a [`Config`], naming the flag of every bad value.

use std::fmt;
use std::net::IpAddr;

use super::args::InitArgs;

/// What `mesh-proxy init` was asked to do, with every value checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub inbound_proxy_port: u16,
    pub outbound_proxy_port: u16,
    pub proxy_uid: u32,
    pub proxy_gid: Option<u32>,
    pub inbound_redirect: InboundRedirect,
    pub inbound_ports_to_ignore: Vec<PortRange>,
    pub outbound_ports_to_ignore: Vec<PortRange>,
    pub subnets_to_ignore: Vec<Subnet>,
    /// One entry per address family to configure: IPv4 always, IPv6 with `--ipv6=true`.
    pub families: Vec<Family>,
    pub mode: Mode,
    pub netns: Option<String>,
    pub wait_for_lock: bool,
    pub close_wait_timeout_secs: Option<u32>,
    pub verbosity: Verbosity,
}

/// Which inbound connections go to the proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InboundRedirect {
    /// Every port not ignored.
    All,
    /// Only these destination ports.
    Listed(Vec<u16>),
}

/// Whether to apply the rules or only print them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Apply,
    DryRun,
}

/// Whether to echo each command run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verbosity {
    Normal,
    Quiet,
}

/// An IP address family with the binaries that manage its tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Family {
    pub kind: FamilyKind,
    pub bin: String,
    pub save_bin: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FamilyKind {
    Ipv4,
    Ipv6,
}

/// An inclusive port range; a single port when both ends are equal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRange {
    pub first: u16,
    pub last: u16,
}

impl PortRange {
    /// How many of multiport's 15 slots this entry takes: a range takes two.
    pub fn slots(self) -> usize {
        if self.first == self.last { 1 } else { 2 }
    }
}

/// Written as multiport expects: `8000` or `8000:8100`.
impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.first == self.last {
            write!(f, "{}", self.first)
        } else {
            write!(f, "{}:{}", self.first, self.last)
        }
    }
}

/// A CIDR block such as `10.0.0.0/8` or `fd00::/8`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subnet {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl Subnet {
    pub fn kind(self) -> FamilyKind {
        match self.addr {
            IpAddr::V4(_) => FamilyKind::Ipv4,
            IpAddr::V6(_) => FamilyKind::Ipv6,
        }
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// A flag whose value cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid value {value:?} for {flag}: {reason}")]
pub struct UsageError {
    pub flag: &'static str,
    pub value: String,
    pub reason: String,
}

impl Config {
    /// Checks every value, and reports all the bad ones at once.
    pub fn from_args(args: &InitArgs) -> Result<Config, Vec<UsageError>> {
        let mut errors = Errors::default();
        let inbound_proxy_port = errors.check(
            "--incoming-proxy-port",
            &args.incoming_proxy_port,
            parse_port(&args.incoming_proxy_port),
        );
        let outbound_proxy_port = errors.check(
            "--outgoing-proxy-port",
            &args.outgoing_proxy_port,
            parse_port(&args.outgoing_proxy_port),
        );
        let proxy_uid = errors.check("--proxy-uid", &args.proxy_uid, parse_id(&args.proxy_uid));
        let proxy_gid = args
            .proxy_gid
            .as_ref()
            .and_then(|gid| errors.check("--proxy-gid", gid, parse_id(gid)));
        let redirect_ports =
            errors.each("--ports-to-redirect", &args.ports_to_redirect, parse_port);
        let inbound_ports_to_ignore = errors.each(
            "--inbound-ports-to-ignore",
            &args.inbound_ports_to_ignore,
            parse_port_range,
        );
        let outbound_ports_to_ignore = errors.each(
            "--outbound-ports-to-ignore",
            &args.outbound_ports_to_ignore,
            parse_port_range,
        );
        let subnets_to_ignore =
            errors.each("--subnets-to-ignore", &args.subnets_to_ignore, parse_subnet);
        let mut families = vec![Family {
            kind: FamilyKind::Ipv4,
            bin: args.firewall_bin_path.clone(),
            save_bin: args.firewall_save_bin_path.clone(),
        }];
        if args.ipv6 {
            let bin = errors.check(
                "--firewall-bin-path",
                &args.firewall_bin_path,
                ip6_variant(&args.firewall_bin_path),
            );
            let save_bin = errors.check(
                "--firewall-save-bin-path",
                &args.firewall_save_bin_path,
                ip6_variant(&args.firewall_save_bin_path),
            );
            if let (Some(bin), Some(save_bin)) = (bin, save_bin) {
                families.push(Family {
                    kind: FamilyKind::Ipv6,
                    bin,
                    save_bin,
                });
            }
        } else if let Some(v6) = subnets_to_ignore
            .iter()
            .find(|s| s.kind() == FamilyKind::Ipv6)
        {
            errors.check::<()>(
                "--subnets-to-ignore",
                &v6.to_string(),
                Err("an IPv6 subnet needs --ipv6=true".to_string()),
            );
        }
        let close_wait_timeout_secs = args.timeout_close_wait_secs.as_ref().and_then(|secs| {
            errors.check(
                "--timeout-close-wait-secs",
                secs,
                secs.trim()
                    .parse::<u32>()
                    .map_err(|_| "expected a number of seconds".to_string()),
            )
        });
        let verbosity = match args.log_level.to_ascii_lowercase().as_str() {
            "error" | "fatal" | "panic" => Verbosity::Quiet,
            _ => Verbosity::Normal,
        };

        match (inbound_proxy_port, outbound_proxy_port, proxy_uid) {
            (Some(inbound), Some(outbound), Some(uid)) if errors.0.is_empty() => Ok(Config {
                inbound_proxy_port: inbound,
                outbound_proxy_port: outbound,
                proxy_uid: uid,
                proxy_gid,
                inbound_redirect: if redirect_ports.is_empty() {
                    InboundRedirect::All
                } else {
                    InboundRedirect::Listed(redirect_ports)
                },
                inbound_ports_to_ignore,
                outbound_ports_to_ignore,
                subnets_to_ignore,
                families,
                mode: if args.dry_run {
                    Mode::DryRun
                } else {
                    Mode::Apply
                },
                netns: args.netns.clone(),
                wait_for_lock: args.use_wait_flag,
                close_wait_timeout_secs,
                verbosity,
            }),
            _ => Err(errors.0),
        }
    }
}

/// The bad values found so far.
#[derive(Default)]
struct Errors(Vec<UsageError>);

impl Errors {
    fn check<T>(
        &mut self,
        flag: &'static str,
        value: &str,
        parsed: Result<T, String>,
    ) -> Option<T> {
        match parsed {
            Ok(value) => Some(value),
            Err(reason) => {
                self.0.push(UsageError {
                    flag,
                    value: value.to_string(),
                    reason,
                });
                None
            }
        }
    }

    /// Parses each item of a list flag, skipping the empty items Linkerd's templates can write.
    fn each<T>(
        &mut self,
        flag: &'static str,
        values: &[String],
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Vec<T> {
        values
            .iter()
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
            .filter_map(|v| self.check(flag, v, parse(v)))
            .collect()
    }
}

fn parse_port(value: &str) -> Result<u16, String> {
    match value.trim().parse::<u16>() {
        Ok(0) | Err(_) => Err("expected a TCP port from 1 to 65535".to_string()),
        Ok(port) => Ok(port),
    }
}

fn parse_id(value: &str) -> Result<u32, String> {
    value
        .trim()
        .parse::<u32>()
        .map_err(|_| "expected a numeric id".to_string())
}

/// `8080`, or an inclusive range `8000-8100` (`8000:8100` is accepted too).
fn parse_port_range(value: &str) -> Result<PortRange, String> {
    let (first, last) = match value.split_once(['-', ':']) {
        Some((first, last)) => (parse_port(first)?, parse_port(last)?),
        None => {
            let port = parse_port(value)?;
            (port, port)
        }
    };
    if first > last {
        return Err(format!("the range starts above its end ({first} > {last})"));
    }
    Ok(PortRange { first, last })
}

fn parse_subnet(value: &str) -> Result<Subnet, String> {
    let Some((addr, prefix)) = value.split_once('/') else {
        return Err("expected a CIDR such as 10.0.0.0/8".to_string());
    };
    let addr: IpAddr = addr
        .parse()
        .map_err(|_| "expected a CIDR such as 10.0.0.0/8".to_string())?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    match prefix.parse::<u8>() {
        Ok(prefix) if prefix <= max => Ok(Subnet { addr, prefix }),
        _ => Err(format!(
            "the prefix length must be a number from 0 to {max}"
        )),
    }
}

/// `iptables-nft` becomes `ip6tables-nft`, `/usr/sbin/iptables-save` becomes
/// `/usr/sbin/ip6tables-save`: only the file name changes.
fn ip6_variant(bin: &str) -> Result<String, String> {
    let (dir, name) = match bin.rfind('/') {
        Some(i) => bin.split_at(i + 1),
        None => ("", bin),
    };
    match name.strip_prefix("iptables") {
        Some(rest) => Ok(format!("{dir}ip6tables{rest}")),
        None => Err(
            "cannot derive the ip6tables binary from a name not starting with iptables; \
             pass --ipv6=false"
                .to_string(),
        ),
    }
}
