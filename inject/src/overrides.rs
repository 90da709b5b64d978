//! Proxy settings given as flags, validated, and written as `config.linkerd.io/*` annotations.

use std::fmt;

use mesh_names::annotations::CONFIG_PREFIX;
use mesh_names::policy::DefaultInboundPolicy;

/// One proxy setting that can be given as a flag and is stored as an annotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Setting {
    SkipInboundPorts,
    SkipOutboundPorts,
    OpaquePorts,
    ProxyLogLevel,
    ProxyCpuRequest,
    ProxyCpuLimit,
    ProxyMemoryRequest,
    ProxyMemoryLimit,
    AdminPort,
    ProxyAwait,
    DefaultInboundPolicy,
    EnableTap,
}

impl Setting {
    pub const ALL: [Setting; 12] = [
        Setting::SkipInboundPorts,
        Setting::SkipOutboundPorts,
        Setting::OpaquePorts,
        Setting::ProxyLogLevel,
        Setting::ProxyCpuRequest,
        Setting::ProxyCpuLimit,
        Setting::ProxyMemoryRequest,
        Setting::ProxyMemoryLimit,
        Setting::AdminPort,
        Setting::ProxyAwait,
        Setting::DefaultInboundPolicy,
        Setting::EnableTap,
    ];

    /// The setting's name: its flag without the dashes and its annotation without the prefix.
    pub fn name(self) -> &'static str {
        match self {
            Setting::SkipInboundPorts => "skip-inbound-ports",
            Setting::SkipOutboundPorts => "skip-outbound-ports",
            Setting::OpaquePorts => "opaque-ports",
            Setting::ProxyLogLevel => "proxy-log-level",
            Setting::ProxyCpuRequest => "proxy-cpu-request",
            Setting::ProxyCpuLimit => "proxy-cpu-limit",
            Setting::ProxyMemoryRequest => "proxy-memory-request",
            Setting::ProxyMemoryLimit => "proxy-memory-limit",
            Setting::AdminPort => "admin-port",
            Setting::ProxyAwait => "proxy-await",
            Setting::DefaultInboundPolicy => "default-inbound-policy",
            Setting::EnableTap => "enable-tap",
        }
    }

    /// The annotation that carries the setting, e.g. `config.linkerd.io/admin-port`.
    pub fn annotation(self) -> String {
        format!("{CONFIG_PREFIX}{}", self.name())
    }

    /// Checks a value and returns it in canonical form, or says what is wrong with it.
    pub fn validate(self, value: &str) -> Result<String, String> {
        let value = value.trim();
        match self {
            Setting::SkipInboundPorts | Setting::SkipOutboundPorts => port_list(value, false),
            Setting::OpaquePorts => port_list(value, true),
            Setting::AdminPort => port(value).map(|p| p.to_string()),
            Setting::ProxyLogLevel => log_level(value),
            Setting::ProxyCpuRequest
            | Setting::ProxyCpuLimit
            | Setting::ProxyMemoryRequest
            | Setting::ProxyMemoryLimit => quantity(value).map(|_| value.to_owned()),
            Setting::ProxyAwait => one_of(value, &["enabled", "disabled"]),
            Setting::DefaultInboundPolicy => one_of(value, POLICIES),
            Setting::EnableTap => boolean(value).map(|b| b.to_string()),
        }
    }
}

impl fmt::Display for Setting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "--{}", self.name())
    }
}

/// The policies a proxy may apply to inbound connections that no policy resource covers.
pub const POLICIES: &[&str] = &DefaultInboundPolicy::NAMES;

/// A flag value that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid value {value:?} for {setting}: {reason}")]
pub struct FlagError {
    pub setting: Setting,
    pub value: String,
    pub reason: String,
}

/// The settings given for one run, in a fixed order so output is deterministic.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    values: std::collections::BTreeMap<Setting, String>,
}

impl Overrides {
    /// Validates and records `value` for `setting`.
    pub fn set(&mut self, setting: Setting, value: &str) -> Result<(), FlagError> {
        let canonical = setting.validate(value).map_err(|reason| FlagError {
            setting,
            value: value.to_owned(),
            reason,
        })?;
        self.values.insert(setting, canonical);
        self.check_request_within_limit(setting)
    }

    pub fn get(&self, setting: Setting) -> Option<&str> {
        self.values.get(&setting).map(String::as_str)
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The annotations to write on a pod template, as (key, value).
    pub fn pod_annotations(&self) -> Vec<(String, String)> {
        self.values
            .iter()
            .map(|(s, v)| (s.annotation(), v.clone()))
            .collect()
    }

    fn check_request_within_limit(&self, changed: Setting) -> Result<(), FlagError> {
        let pairs = [
            (Setting::ProxyCpuRequest, Setting::ProxyCpuLimit),
            (Setting::ProxyMemoryRequest, Setting::ProxyMemoryLimit),
        ];
        for (request, limit) in pairs {
            if changed != request && changed != limit {
                continue;
            }
            let (Some(r), Some(l)) = (self.get(request), self.get(limit)) else {
                continue;
            };
            if let (Ok(rq), Ok(lq)) = (quantity(r), quantity(l))
                && rq > lq
            {
                return Err(FlagError {
                    setting: request,
                    value: r.to_owned(),
                    reason: format!("the request is larger than {limit} {l}"),
                });
            }
        }
        Ok(())
    }
}

fn port(s: &str) -> Result<u16, String> {
    match s.parse::<u32>() {
        Ok(p) if (1..=65535).contains(&p) => Ok(p as u16),
        Ok(_) => Err(format!("port {s} is out of range 1-65535")),
        Err(_) => Err(format!("{s:?} is not a port number")),
    }
}

/// `22,8000-8100` (and, for opaque ports, named ports such as `mysql`), separated by commas.
fn port_list(s: &str, allow_names: bool) -> Result<String, String> {
    let mut out = Vec::new();
    for item in s.split(',').map(str::trim) {
        if item.is_empty() {
            return Err("empty entry in the port list".to_owned());
        }
        if let Some((lo, hi)) = item.split_once('-')
            && lo.bytes().all(|b| b.is_ascii_digit())
        {
            let (lo, hi) = (port(lo)?, port(hi)?);
            if lo > hi {
                return Err(format!("range {item} runs backwards"));
            }
        } else if item.bytes().all(|b| b.is_ascii_digit()) {
            port(item)?;
        } else if !allow_names {
            return Err(format!(
                "{item:?} is neither a port nor a range like 8000-8100"
            ));
        } else if !is_port_name(item) {
            return Err(format!(
                "{item:?} is neither a port, a range like 8000-8100, nor a port name"
            ));
        }
        out.push(item);
    }
    Ok(out.join(","))
}

/// A Kubernetes port name: at most 15 lowercase letters, digits and inner dashes, with a letter.
fn is_port_name(s: &str) -> bool {
    s.len() <= 15
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && s.bytes().any(|b| b.is_ascii_lowercase())
        && !s.starts_with('-')
        && !s.ends_with('-')
        && !s.contains("--")
}

/// A tracing filter: comma-separated `level` or `target=level` directives.
fn log_level(s: &str) -> Result<String, String> {
    const LEVELS: &[&str] = &["trace", "debug", "info", "warn", "error", "off"];
    if s.is_empty() {
        return Err("the log level is empty".to_owned());
    }
    for directive in s.split(',') {
        let level = directive.rsplit_once('=').map_or(directive, |(_, l)| l);
        if !LEVELS.contains(&level.to_ascii_lowercase().as_str()) {
            return Err(format!(
                "{directive:?} does not end in a level ({})",
                LEVELS.join(", ")
            ));
        }
    }
    Ok(s.to_owned())
}

/// A boolean as Go's `strconv.ParseBool` reads it, since Linkerd reads its `disable-tap`
/// annotations so and manifests written for Linkerd carry them.
pub(crate) fn boolean(s: &str) -> Result<bool, String> {
    match s {
        "true" | "True" | "TRUE" | "t" | "T" | "1" => Ok(true),
        "false" | "False" | "FALSE" | "f" | "F" | "0" => Ok(false),
        _ => Err(format!("{s:?} is neither true nor false")),
    }
}

fn one_of(s: &str, allowed: &[&str]) -> Result<String, String> {
    if allowed.contains(&s) {
        Ok(s.to_owned())
    } else {
        Err(format!("expected one of {}", allowed.join(", ")))
    }
}

/// Parses a Kubernetes resource quantity (`100m`, `0.5`, `64Mi`, `1e3`) into its value.
pub fn quantity(s: &str) -> Result<f64, String> {
    let bad = || format!("{s:?} is not a Kubernetes quantity such as 100m, 0.5 or 64Mi");
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+'))
        .unwrap_or(s.len());
    let (number, suffix) = s.split_at(split);
    if number.is_empty() || number.starts_with('.') && number.len() == 1 {
        return Err(bad());
    }
    let number: f64 = number.parse().map_err(|_| bad())?;
    let scale = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        exp if exp.starts_with(['e', 'E']) => {
            let e: i32 = exp[1..].parse().map_err(|_| bad())?;
            10f64.powi(e)
        }
        _ => return Err(bad()),
    };
    Ok(number * scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_and_ranges() {
        let s = Setting::SkipInboundPorts;
        assert_eq!(s.validate("22, 8000-8100").unwrap(), "22,8000-8100");
        assert!(s.validate("0").unwrap_err().contains("out of range"));
        assert!(s.validate("65536").is_err());
        assert!(s.validate("9-1").unwrap_err().contains("backwards"));
        assert!(s.validate("mysql").is_err());
        assert!(s.validate("22,,23").is_err());
        assert_eq!(
            Setting::OpaquePorts
                .validate("3000,5000-6000,mysql")
                .unwrap(),
            "3000,5000-6000,mysql"
        );
        assert!(Setting::OpaquePorts.validate("My_Port").is_err());
    }

    #[test]
    fn quantities() {
        assert_eq!(quantity("100m").unwrap(), 0.1);
        assert_eq!(quantity("64Mi").unwrap(), 64.0 * 1024.0 * 1024.0);
        assert_eq!(quantity("1e3").unwrap(), 1000.0);
        assert_eq!(quantity("0.5").unwrap(), 0.5);
        for bad in ["", "m", "-1", "1x", "abc", "1.2.3"] {
            assert!(quantity(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn request_above_limit_is_refused() {
        let mut o = Overrides::default();
        o.set(Setting::ProxyCpuLimit, "100m").unwrap();
        let err = o.set(Setting::ProxyCpuRequest, "1").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid value \"1\" for --proxy-cpu-request: the request is larger than --proxy-cpu-limit 100m"
        );
    }

    #[test]
    fn log_levels_and_policies() {
        assert!(Setting::ProxyLogLevel.validate("warn,linkerd=info").is_ok());
        assert!(Setting::ProxyLogLevel.validate("loud").is_err());
        assert!(Setting::DefaultInboundPolicy.validate("deny").is_ok());
        assert!(Setting::DefaultInboundPolicy.validate("allow").is_err());
        assert!(Setting::ProxyAwait.validate("enabled").is_ok());
    }

    #[test]
    fn tap_is_a_boolean_written_as_true_or_false() {
        assert_eq!(Setting::EnableTap.validate("True").unwrap(), "true");
        assert_eq!(Setting::EnableTap.validate("0").unwrap(), "false");
        assert_eq!(
            Setting::EnableTap.validate("yes").unwrap_err(),
            "\"yes\" is neither true nor false"
        );
        assert_eq!(
            Setting::EnableTap.annotation(),
            mesh_names::annotations::ENABLE_TAP
        );
    }

    #[test]
    fn annotations_are_ordered_and_named() {
        let mut o = Overrides::default();
        o.set(Setting::AdminPort, "1234").unwrap();
        o.set(Setting::SkipInboundPorts, "22").unwrap();
        assert_eq!(
            o.pod_annotations(),
            vec![
                (
                    mesh_names::annotations::SKIP_INBOUND_PORTS.to_owned(),
                    "22".to_owned()
                ),
                ("config.linkerd.io/admin-port".to_owned(), "1234".to_owned()),
            ]
        );
    }
}
