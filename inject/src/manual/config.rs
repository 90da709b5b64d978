//! The proxy configuration of one pod: the values, overridden by the pod's `config.linkerd.io/*`
//! annotations.

use serde_json::{Map, Value};

use mesh_names::annotations;

use super::{ManualError, keys};
use crate::Setting;
use crate::overrides::boolean;
use crate::values::{RequestLimit, Values};

/// The resolved settings of one pod's proxy.
#[derive(Debug, Clone, PartialEq)]
pub struct ProxyConfig {
    pub image: String,
    pub version: String,
    pub pull_policy: String,
    pub admin_port: u16,
    pub control_port: u16,
    pub inbound_port: u16,
    pub outbound_port: u16,
    pub uid: i64,
    pub log_level: String,
    pub log_format: String,
    pub r#await: bool,
    pub native_sidecar: bool,
    pub opaque_ports: String,
    pub default_inbound_policy: String,
    pub inbound_connect_timeout: String,
    pub outbound_connect_timeout: String,
    pub shutdown_grace_period: String,
    pub cpu: RequestLimit,
    pub memory: RequestLimit,
    pub skip_inbound_ports: String,
    pub skip_outbound_ports: String,
    pub skip_subnets: String,
    /// Ports whose default policy asks for a mesh identity (empty: none).
    pub require_identity_inbound_ports: String,
    /// `nft` or `legacy`.
    pub iptables_mode: String,
    pub ingress: bool,
    /// Whether the proxy serves its tap stream (`MESH_PROXY_TAP_ENABLED`).
    pub tap: bool,
}

impl ProxyConfig {
    /// Resolves the settings: values first, then each annotation present on the pod.
    pub fn resolve(
        values: &Values,
        cli_version: &str,
        annotations: &Map<String, Value>,
    ) -> Result<ProxyConfig, ManualError> {
        let p = &values.proxy;
        let version = values.version(cli_version);
        let mut c = ProxyConfig {
            image: p.image.name.clone(),
            version: if p.image.version.is_empty() {
                version.to_owned()
            } else {
                p.image.version.clone()
            },
            pull_policy: if p.image.pull_policy.is_empty() {
                values.image_pull_policy.clone()
            } else {
                p.image.pull_policy.clone()
            },
            admin_port: p.ports.admin,
            control_port: p.ports.control,
            inbound_port: p.ports.inbound,
            outbound_port: p.ports.outbound,
            uid: p.uid,
            log_level: p.log_level.clone(),
            log_format: p.log_format.clone(),
            r#await: p.r#await,
            native_sidecar: p.native_sidecar,
            opaque_ports: p.opaque_ports.clone(),
            default_inbound_policy: p.default_inbound_policy.clone(),
            inbound_connect_timeout: p.inbound_connect_timeout.clone(),
            outbound_connect_timeout: p.outbound_connect_timeout.clone(),
            shutdown_grace_period: p.shutdown_grace_period.clone(),
            cpu: p.resources.cpu.clone(),
            memory: p.resources.memory.clone(),
            skip_inbound_ports: values.proxy_init.ignore_inbound_ports.clone(),
            skip_outbound_ports: values.proxy_init.ignore_outbound_ports.clone(),
            skip_subnets: values.proxy_init.skip_subnets.clone(),
            require_identity_inbound_ports: String::new(),
            iptables_mode: values.proxy_init.iptables_mode.clone(),
            ingress: false,
            tap: p.enable_tap,
        };
        let get = |key: &str| annotations.get(key).and_then(Value::as_str);
        let setting = |s: Setting| -> Result<Option<String>, ManualError> {
            let key = s.annotation();
            match annotations.get(&key).and_then(Value::as_str) {
                None => Ok(None),
                Some(v) => s
                    .validate(v)
                    .map(Some)
                    .map_err(|reason| ManualError::BadAnnotation {
                        annotation: key,
                        reason,
                    }),
            }
        };
        let port = |key: &str| -> Result<Option<u16>, ManualError> {
            match get(key) {
                None => Ok(None),
                Some(v) => Setting::AdminPort
                    .validate(v)
                    .ok()
                    .and_then(|p| p.parse().ok())
                    .map(Some)
                    .ok_or_else(|| ManualError::BadAnnotation {
                        annotation: key.to_owned(),
                        reason: format!("{v:?} is not a port number"),
                    }),
            }
        };
        if let Some(v) = get(keys::PROXY_IMAGE) {
            c.image = v.to_owned();
        }
        if let Some(v) = get(keys::PROXY_VERSION) {
            c.version = v.to_owned();
        }
        if let Some(v) = get(keys::PULL_POLICY) {
            c.pull_policy = v.to_owned();
        }
        if let Some(v) = setting(Setting::AdminPort)? {
            c.admin_port = v.parse().unwrap_or(c.admin_port);
        }
        c.control_port = port(keys::CONTROL_PORT)?.unwrap_or(c.control_port);
        c.inbound_port = port(keys::INBOUND_PORT)?.unwrap_or(c.inbound_port);
        c.outbound_port = port(keys::OUTBOUND_PORT)?.unwrap_or(c.outbound_port);
        if let Some(v) = get(keys::PROXY_UID) {
            c.uid = v.parse().map_err(|_| ManualError::BadAnnotation {
                annotation: keys::PROXY_UID.to_owned(),
                reason: format!("{v:?} is not a user id"),
            })?;
        }
        if let Some(v) = setting(Setting::ProxyLogLevel)? {
            c.log_level = v;
        }
        if let Some(v) = get(keys::LOG_FORMAT) {
            c.log_format = v.to_owned();
        }
        if let Some(v) = setting(Setting::ProxyAwait)? {
            c.r#await = v == "enabled";
        }
        if let Some(v) = get(keys::NATIVE_SIDECAR) {
            c.native_sidecar = v == "true" || v == "enabled";
        }
        if let Some(v) = setting(Setting::OpaquePorts)? {
            c.opaque_ports = v;
        }
        if let Some(v) = setting(Setting::DefaultInboundPolicy)? {
            c.default_inbound_policy = v;
        }
        if let Some(v) = get(keys::INBOUND_CONNECT_TIMEOUT) {
            c.inbound_connect_timeout = v.to_owned();
        }
        if let Some(v) = get(keys::OUTBOUND_CONNECT_TIMEOUT) {
            c.outbound_connect_timeout = v.to_owned();
        }
        if let Some(v) = get(keys::SHUTDOWN_GRACE_PERIOD) {
            c.shutdown_grace_period = v.to_owned();
        }
        if let Some(v) = setting(Setting::ProxyCpuRequest)? {
            c.cpu.request = canonical_cpu(&v);
        }
        if let Some(v) = setting(Setting::ProxyCpuLimit)? {
            c.cpu.limit = canonical_cpu(&v);
        }
        if let Some(v) = setting(Setting::ProxyMemoryRequest)? {
            c.memory.request = v;
        }
        if let Some(v) = setting(Setting::ProxyMemoryLimit)? {
            c.memory.limit = v;
        }
        if let Some(v) = setting(Setting::SkipInboundPorts)? {
            c.skip_inbound_ports = v;
        }
        if let Some(v) = setting(Setting::SkipOutboundPorts)? {
            c.skip_outbound_ports = v;
        }
        if let Some(v) = get(keys::SKIP_SUBNETS) {
            c.skip_subnets = v.to_owned();
        }
        if let Some(v) = get(keys::REQUIRE_IDENTITY_INBOUND_PORTS) {
            // The same form as the skipped ports: numbers and ranges.
            c.require_identity_inbound_ports =
                Setting::SkipInboundPorts.validate(v).map_err(|reason| {
                    ManualError::BadAnnotation {
                        annotation: keys::REQUIRE_IDENTITY_INBOUND_PORTS.to_owned(),
                        reason,
                    }
                })?;
        }
        if let Some(tap) = tap(annotations)? {
            c.tap = tap;
        }
        Ok(c)
    }

    /// Worker threads: the configured number, but no more than the whole cores of the CPU limit.
    pub fn cores(&self, default: u32) -> u32 {
        let cores = default.max(1);
        self.max_cores().map_or(cores, |max| cores.min(max))
    }

    /// The whole cores of the CPU limit, when that is at least one: a proxy limited to 1.5 cores
    /// runs one worker rather than being throttled running two.
    pub fn max_cores(&self) -> Option<u32> {
        match crate::quantity(&self.cpu.limit) {
            Ok(limit) if limit >= 1.0 => Some(limit.floor() as u32),
            _ => None,
        }
    }
}

/// The pod's own say on tap: the first of [`annotations::TAP`] present decides, and Linkerd's
/// `disable-tap` keys mean the opposite of mesh's `enable-tap`.
fn tap(annotations: &Map<String, Value>) -> Result<Option<bool>, ManualError> {
    let Some((key, value)) = annotations::TAP
        .iter()
        .find_map(|k| Some((*k, annotations.get(*k)?.as_str()?)))
    else {
        return Ok(None);
    };
    let on = boolean(value.trim()).map_err(|reason| ManualError::BadAnnotation {
        annotation: key.to_owned(),
        reason,
    })?;
    Ok(Some(if key == annotations::ENABLE_TAP {
        on
    } else {
        !on
    }))
}

/// A CPU quantity as Kubernetes writes it back: `0.5` is `500m`, `1.0` is `1`.
fn canonical_cpu(value: &str) -> String {
    if !value.contains('.') || value.ends_with(|c: char| c.is_ascii_alphabetic()) {
        return value.to_owned();
    }
    match crate::quantity(value) {
        Ok(cores) if (cores * 1000.0).fract() == 0.0 => {
            let millis = (cores * 1000.0) as u64;
            if millis.is_multiple_of(1000) {
                (millis / 1000).to_string()
            } else {
                format!("{millis}m")
            }
        }
        _ => value.to_owned(),
    }
}
