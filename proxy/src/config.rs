//! The proxy's configuration, read from environment variables.
//!
//! Variable names are Linkerd's wherever Linkerd has one, so a pod spec written for
//! linkerd2-proxy configures mesh-proxy unchanged. Knobs only mesh-proxy has use the
//! `MESH_PROXY_` prefix. The full list, with defaults, is in the crate documentation.

mod balance;
mod certify;
mod destination;
mod identity;
mod namer;
mod parse;
mod policy;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

pub use certify::{
    CertifyConfig, DEFAULT_MAX_REFRESH, DEFAULT_MIN_REFRESH, MAX_TOKEN_BYTES, read_token,
};
pub use destination::{
    ControlAddr, DEFAULT_PROFILE_SUFFIXES, DestinationConfig, Networks, Suffixes,
    control_addr as parse_control_addr, networks as parse_networks, suffixes as parse_suffixes,
};
pub use identity::{IdentityConfig, IdentitySource};
pub use namer::{DEFAULT_DTAB, NamerConfig};
pub use parse::{PortSet, duration as parse_duration, socket_addr as parse_socket_addr};
pub use policy::{DEFAULT_CLUSTER_NETWORKS, PolicyConfig, PolicyControl};

/// Where configuration values come from. Tests pass a map instead of touching the process
/// environment.
pub trait Env {
    /// The value of `name`, or `None` when it is unset. A value that is not valid UTF-8
    /// counts as set, and fails to parse with a message naming the variable.
    fn var(&self, name: &str) -> Option<String>;

    /// Every variable name that is set, so that unknown Linkerd variables can be reported.
    fn names(&self) -> Vec<String>;
}

/// The real process environment.
#[derive(Clone, Copy, Debug, Default)]
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var_os(name).map(|v| v.to_string_lossy().into_owned())
    }

    fn names(&self) -> Vec<String> {
        std::env::vars_os()
            .map(|(k, _)| k.to_string_lossy().into_owned())
            .collect()
    }
}

impl<K: AsRef<str> + Ord, V: AsRef<str>> Env for BTreeMap<K, V> {
    fn var(&self, name: &str) -> Option<String> {
        self.iter()
            .find(|(k, _)| k.as_ref() == name)
            .map(|(_, v)| v.as_ref().to_owned())
    }

    fn names(&self) -> Vec<String> {
        self.keys().map(|k| k.as_ref().to_owned()).collect()
    }
}

impl<K: AsRef<str> + std::hash::Hash + Eq, V: AsRef<str>> Env for HashMap<K, V> {
    fn var(&self, name: &str) -> Option<String> {
        self.iter()
            .find(|(k, _)| k.as_ref() == name)
            .map(|(_, v)| v.as_ref().to_owned())
    }

    fn names(&self) -> Vec<String> {
        self.keys().map(|k| k.as_ref().to_owned()).collect()
    }
}

/// One malformed variable. Each variant names the variable and quotes its value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// Not Linkerd's duration format.
    #[error("{name}={value:?}: not a duration (use a whole number and a unit: 100ms, 10s, 5m, 1h)")]
    Duration { name: &'static str, value: String },
    /// Not `IP:PORT`.
    #[error("{name}={value:?}: not a socket address (use IP:PORT, like 127.0.0.1:4140)")]
    SocketAddr { name: &'static str, value: String },
    /// Not a list of ports and port ranges.
    #[error("{name}={value:?}: not a port list: {reason}")]
    Ports {
        name: &'static str,
        value: String,
        reason: String,
    },
    /// Not a whole number in the allowed range.
    #[error("{name}={value:?}: not a whole number from {min} to {max}")]
    Number {
        name: &'static str,
        value: String,
        min: u64,
        max: u64,
    },
    /// Not `true` or `false`.
    #[error("{name}={value:?}: not a boolean (use true or false)")]
    Bool { name: &'static str, value: String },
    /// Not a byte size.
    #[error("{name}={value:?}: not a byte size (use a number, optionally with Ki or Mi)")]
    Bytes { name: &'static str, value: String },
    /// A log filter the tracing filter syntax rejects.
    #[error("{name}={value:?}: not a log filter: {reason}")]
    LogFilter {
        name: &'static str,
        value: String,
        reason: String,
    },
    /// Not `host:port`.
    #[error(
        "{name}={value:?}: not a host and port (use NAME:PORT or IP:PORT, like linkerd-dst-headless.linkerd.svc.cluster.local.:8086)"
    )]
    HostPort { name: &'static str, value: String },
    /// Not a list of IP networks.
    #[error(
        "{name}={value:?}: not a list of IP networks (use comma-separated IP/PREFIX, like 10.0.0.0/8,fd00::/8)"
    )]
    Networks { name: &'static str, value: String },
    /// Not a list of DNS suffixes.
    #[error(
        "{name}={value:?}: not a list of DNS suffixes (use comma-separated names like svc.cluster.local., or . for every name)"
    )]
    Suffixes { name: &'static str, value: String },
    /// A value outside the set of accepted words.
    #[error("{name}={value:?}: expected one of {}", .expected.join(", "))]
    OneOf {
        name: &'static str,
        value: String,
        expected: &'static [&'static str],
    },
    /// A dtab that does not parse; the error says where (`at line:column`). The value is
    /// not quoted: it may be long, and the position points into it.
    #[error("{name}: not a dtab: {error}")]
    Dtab {
        name: &'static str,
        error: crate::dtab::DtabError,
    },
    /// A dtab file whose contents do not parse.
    #[error("{name}={path:?}: not a dtab: {error}")]
    DtabFile {
        name: &'static str,
        path: String,
        error: crate::dtab::DtabError,
    },
    /// A file or directory that cannot be used.
    #[error("{name}={value:?}: {reason}")]
    File {
        name: &'static str,
        value: String,
        reason: String,
    },
    /// Trust anchors that cannot be used. The value is not quoted: it is long.
    #[error("{name}: not usable trust anchors: {reason}")]
    TrustAnchors { name: &'static str, reason: String },
    /// Not an identity name.
    #[error(
        "{name}={value:?}: not an identity name (use a DNS name without a trailing dot, like web.shop.serviceaccount.identity.linkerd.cluster.local)"
    )]
    IdentityName { name: &'static str, value: String },
    /// Identity certificate and key files that cannot be used.
    #[error(
        "MESH_PROXY_IDENTITY_CERT_FILE={cert:?} and MESH_PROXY_IDENTITY_KEY_FILE={key:?}: {reason}"
    )]
    IdentityFiles {
        cert: String,
        key: String,
        reason: String,
    },
    /// Two variables that exclude each other.
    #[error("{name} and {other} are both set; set one of them")]
    Conflict {
        name: &'static str,
        other: &'static str,
    },
    /// A variable that means nothing without another.
    #[error("{name} is set but {needs} is not; it needs both")]
    Requires {
        name: &'static str,
        needs: &'static str,
    },
}

/// Every malformed variable found, reported together so one run shows them all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// How long to wait for a client's first bytes before giving up on protocol detection and
/// forwarding the connection as opaque TCP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DetectTimeout(pub Duration);

/// How long to wait for a TCP connection to an upstream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectTimeout(pub Duration);

/// How long a silent client may wait before the proxy connects upstream to see whether the
/// server speaks first. `None` turns the check off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerSpeaksFirst(pub Option<Duration>);

/// Ports whose connections skip protocol detection and are forwarded as opaque TCP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpaquePorts(pub PortSet);

/// How long an idle pooled HTTP/1 upstream connection is kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolIdleTimeout(pub Duration);

/// TCP socket options applied to accepted or opened connections.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SocketOptions {
    /// SO_KEEPALIVE with this idle time.
    pub keepalive: Option<Duration>,
    /// TCP_USER_TIMEOUT.
    pub user_timeout: Option<Duration>,
}

/// HTTP/2 PING keep-alive on served connections.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct H2KeepAlive {
    pub interval: Option<Duration>,
    pub timeout: Option<Duration>,
}

/// Protection limits. They are shared by both directions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Concurrent connections per direction; more are accepted and closed at once.
    pub max_connections: usize,
    /// Largest HTTP/1 request head (request line and headers), and HTTP/2 header list.
    pub max_header_bytes: usize,
    /// Time allowed to send a request head; also bounds HTTP/1 keep-alive idleness.
    pub header_read_timeout: Duration,
    /// Time a client has to send each further KiB of a request body the proxy forwards
    /// (408 after it); see `http::h1::pace`.
    pub request_body_timeout: Duration,
    /// An opaque TCP connection with no bytes either way for this long is closed.
    pub tcp_idle_timeout: Duration,
    /// Time allowed for an upstream to send response headers. `None` waits forever.
    pub response_timeout: Option<Duration>,
    /// HTTP/2 streams per served connection.
    pub h2_max_concurrent_streams: u32,
    /// HTTP/2 streams a client may reset before the proxy accepted them (rapid reset); past
    /// this the connection is closed with GOAWAY.
    pub h2_max_pending_accept_resets: usize,
    /// HTTP/2 streams the proxy may reset for protocol errors before closing the connection.
    pub h2_max_local_error_resets: usize,
}

/// Settings for one traffic direction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxyConfig {
    pub listen: Vec<SocketAddr>,
    pub detect_timeout: DetectTimeout,
    pub connect_timeout: ConnectTimeout,
    pub opaque_ports: OpaquePorts,
    pub server_speaks_first: ServerSpeaksFirst,
    pub accept: SocketOptions,
    pub connect: SocketOptions,
    pub pool_idle_timeout: PoolIdleTimeout,
    pub pool_max_idle_per_endpoint: usize,
    pub h2_keepalive: H2KeepAlive,
    /// Inbound only: where connections that were not redirected by iptables go.
    pub forward: Option<SocketAddr>,
}

/// How logs are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Plain,
    Json,
}

/// Whether `POST /shutdown` on the admin server is honoured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShutdownEndpoint {
    Enabled,
    Disabled,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdminConfig {
    pub listen: SocketAddr,
    pub shutdown_endpoint: ShutdownEndpoint,
    /// `MESH_PROXY_TAP_ENABLED`: whether `GET /tap` streams request metadata.
    pub tap: TapEndpoint,
}

/// Whether the admin server's `/tap` stream is on. Off by default: it reveals who calls what.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TapEndpoint {
    Enabled,
    Disabled,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct H2Windows {
    pub stream: u32,
    pub connection: u32,
}

/// The whole configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub inbound: ProxyConfig,
    pub outbound: ProxyConfig,
    pub admin: AdminConfig,
    pub log_filter: String,
    pub log_format: LogFormat,
    pub shutdown_grace_period: Duration,
    /// Worker threads. One runs the proxy on a current-thread runtime.
    pub cores: usize,
    pub limits: Limits,
    pub h2_windows: H2Windows,
    /// `MESH_PROXY_METRICS_MAX_SERIES` and `LINKERD2_PROXY_METRICS_RETAIN_IDLE`.
    pub metrics: crate::metrics::SeriesLimits,
    /// How outbound balancers pick and eject endpoints.
    pub balance: crate::balance::BalanceSettings,
    /// The control plane's Destination service; `None` when
    /// `LINKERD2_PROXY_DESTINATION_SVC_ADDR` is unset or empty (no control plane).
    pub destination: Option<DestinationConfig>,
    /// `MESH_PROXY_DTAB` (or `…_DTAB_FILE`) and `MESH_PROXY_FS_NAMER_DIR`: discovery
    /// through a Linkerd 1 dtab over a file namer, when the directory is set.
    pub namer: Option<NamerConfig>,
    /// The identity service the proxy asks for its certificate; `None` when
    /// `LINKERD2_PROXY_IDENTITY_SVC_ADDR` is unset or empty, or when
    /// `MESH_PROXY_IDENTITY_CERT_FILE` gives the certificate instead.
    pub certify: Option<CertifyConfig>,
    /// Inbound authorization policy.
    pub policy: PolicyConfig,
    /// The proxy's identity, when a source of certificates is configured; `None` runs
    /// plaintext.
    pub identity: Option<IdentityConfig>,
    /// Linkerd variables that are set but not used yet, sorted.
    pub unsupported: Vec<String>,
}

/// Linkerd's default opaque ports: SMTP, MySQL, Galera, PostgreSQL, Redis, Elasticsearch
/// and memcached, all protocols where the server speaks first.
pub const DEFAULT_OPAQUE_PORTS: &str = "25,587,3306,4444,5432,6379,9300,11211";

/// The default server-speaks-first window.
pub const DEFAULT_SERVER_SPEAKS_FIRST: Duration = Duration::from_millis(50);

/// The Linkerd variables mesh-proxy reads. Any other `LINKERD2_PROXY_*` variable is logged
/// once at debug level and otherwise ignored.
pub const SUPPORTED: &[&str] = &[
    "LINKERD2_PROXY_ADMIN_LISTEN_ADDR",
    "LINKERD2_PROXY_CORES",
    "LINKERD2_PROXY_CORES_MIN",
    "LINKERD2_PROXY_DESTINATION_CONTEXT",
    "LINKERD2_PROXY_DESTINATION_PROFILE_NETWORKS",
    "LINKERD2_PROXY_DESTINATION_PROFILE_SUFFIXES",
    "LINKERD2_PROXY_DESTINATION_SVC_ADDR",
    "LINKERD2_PROXY_DESTINATION_SVC_NAME",
    "LINKERD2_PROXY_HTTP2_INITIAL_CONNECTION_WINDOW_SIZE",
    "LINKERD2_PROXY_HTTP2_INITIAL_STREAM_WINDOW_SIZE",
    "LINKERD2_PROXY_IDENTITY_DIR",
    "LINKERD2_PROXY_IDENTITY_LOCAL_NAME",
    "LINKERD2_PROXY_IDENTITY_MAX_REFRESH",
    "LINKERD2_PROXY_IDENTITY_MIN_REFRESH",
    "LINKERD2_PROXY_IDENTITY_SVC_ADDR",
    "LINKERD2_PROXY_IDENTITY_SVC_NAME",
    "LINKERD2_PROXY_IDENTITY_TOKEN_FILE",
    "LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS",
    "LINKERD2_PROXY_INBOUND_ACCEPT_KEEPALIVE",
    "LINKERD2_PROXY_INBOUND_ACCEPT_USER_TIMEOUT",
    "LINKERD2_PROXY_INBOUND_CONNECT_KEEPALIVE",
    "LINKERD2_PROXY_INBOUND_CONNECT_TIMEOUT",
    "LINKERD2_PROXY_INBOUND_CONNECT_USER_TIMEOUT",
    "LINKERD2_PROXY_INBOUND_DEFAULT_POLICY",
    "LINKERD2_PROXY_INBOUND_DETECT_TIMEOUT",
    "LINKERD2_PROXY_INBOUND_HTTP1_CONNECTION_POOL_IDLE_TIMEOUT",
    "LINKERD2_PROXY_INBOUND_LISTEN_ADDR",
    "LINKERD2_PROXY_INBOUND_PORTS",
    "LINKERD2_PROXY_INBOUND_PORTS_DISABLE_PROTOCOL_DETECTION",
    "LINKERD2_PROXY_INBOUND_PORTS_REQUIRE_IDENTITY",
    "LINKERD2_PROXY_INBOUND_SERVER_HTTP2_KEEP_ALIVE_INTERVAL",
    "LINKERD2_PROXY_INBOUND_SERVER_HTTP2_KEEP_ALIVE_TIMEOUT",
    "LINKERD2_PROXY_LOG",
    "LINKERD2_PROXY_LOG_FORMAT",
    "LINKERD2_PROXY_MAX_IDLE_CONNS_PER_ENDPOINT",
    "LINKERD2_PROXY_METRICS_RETAIN_IDLE",
    "LINKERD2_PROXY_OUTBOUND_ACCEPT_KEEPALIVE",
    "LINKERD2_PROXY_OUTBOUND_ACCEPT_USER_TIMEOUT",
    "LINKERD2_PROXY_OUTBOUND_CONNECT_KEEPALIVE",
    "LINKERD2_PROXY_OUTBOUND_CONNECT_TIMEOUT",
    "LINKERD2_PROXY_OUTBOUND_CONNECT_USER_TIMEOUT",
    "LINKERD2_PROXY_OUTBOUND_DETECT_TIMEOUT",
    "LINKERD2_PROXY_OUTBOUND_HTTP1_CONNECTION_POOL_IDLE_TIMEOUT",
    "LINKERD2_PROXY_OUTBOUND_LISTEN_ADDR",
    "LINKERD2_PROXY_OUTBOUND_LISTEN_ADDRS",
    "LINKERD2_PROXY_OUTBOUND_MAX_IDLE_CONNS_PER_ENDPOINT",
    "LINKERD2_PROXY_OUTBOUND_SERVER_HTTP2_KEEP_ALIVE_INTERVAL",
    "LINKERD2_PROXY_OUTBOUND_SERVER_HTTP2_KEEP_ALIVE_TIMEOUT",
    "LINKERD2_PROXY_POLICY_CLUSTER_NETWORKS",
    "LINKERD2_PROXY_POLICY_SVC_ADDR",
    "LINKERD2_PROXY_POLICY_SVC_NAME",
    "LINKERD2_PROXY_POLICY_WORKLOAD",
    "LINKERD2_PROXY_SHUTDOWN_ENDPOINT_ENABLED",
    "LINKERD2_PROXY_SHUTDOWN_GRACE_PERIOD",
];

impl Config {
    /// Reads the configuration, collecting every malformed value.
    pub fn from_env(env: &dyn Env) -> Result<Config, ConfigErrors> {
        let mut r = Reader {
            env,
            errors: Vec::new(),
        };
        let config = r.config();
        if r.errors.is_empty() {
            Ok(config)
        } else {
            Err(ConfigErrors(r.errors))
        }
    }
}

struct Reader<'a> {
    env: &'a dyn Env,
    errors: Vec<ConfigError>,
}

impl Reader<'_> {
    fn config(&mut self) -> Config {
        let default_opaque = parse::ports(DEFAULT_OPAQUE_PORTS).unwrap_or_default();
        let limits = Limits {
            max_connections: self.number("MESH_PROXY_MAX_CONNECTIONS", 10_000, 1, 1 << 24),
            max_header_bytes: self.bytes("MESH_PROXY_MAX_HEADER_BYTES", 64 * 1024, 8 * 1024),
            header_read_timeout: self
                .duration("MESH_PROXY_HEADER_READ_TIMEOUT", Duration::from_secs(30)),
            request_body_timeout: self
                .duration("MESH_PROXY_REQUEST_BODY_TIMEOUT", Duration::from_secs(60)),
            tcp_idle_timeout: self
                .duration("MESH_PROXY_TCP_IDLE_TIMEOUT", Duration::from_secs(3600)),
            response_timeout: self.duration_opt("MESH_PROXY_RESPONSE_TIMEOUT"),
            h2_max_concurrent_streams: self.number(
                "MESH_PROXY_HTTP2_MAX_CONCURRENT_STREAMS",
                1000,
                1,
                u32::MAX.into(),
            ),
            h2_max_pending_accept_resets: self.number(
                "MESH_PROXY_HTTP2_MAX_PENDING_ACCEPT_RESETS",
                20,
                1,
                1 << 20,
            ),
            h2_max_local_error_resets: self.number(
                "MESH_PROXY_HTTP2_MAX_LOCAL_ERROR_RESETS",
                1024,
                1,
                1 << 20,
            ),
        };
        let ssf = ServerSpeaksFirst(
            Some(self.duration(
                "MESH_PROXY_SERVER_SPEAKS_FIRST_WINDOW",
                DEFAULT_SERVER_SPEAKS_FIRST,
            ))
            .filter(|d| !d.is_zero()),
        );
        let inbound = ProxyConfig {
            listen: vec![self.addr("LINKERD2_PROXY_INBOUND_LISTEN_ADDR", "0.0.0.0:4143")],
            detect_timeout: DetectTimeout(self.duration(
                "LINKERD2_PROXY_INBOUND_DETECT_TIMEOUT",
                Duration::from_secs(10),
            )),
            connect_timeout: ConnectTimeout(self.duration(
                "LINKERD2_PROXY_INBOUND_CONNECT_TIMEOUT",
                Duration::from_millis(300),
            )),
            opaque_ports: OpaquePorts(self.ports(
                "LINKERD2_PROXY_INBOUND_PORTS_DISABLE_PROTOCOL_DETECTION",
                &default_opaque,
            )),
            server_speaks_first: ssf,
            accept: SocketOptions {
                keepalive: self.duration_opt("LINKERD2_PROXY_INBOUND_ACCEPT_KEEPALIVE"),
                user_timeout: self.duration_opt("LINKERD2_PROXY_INBOUND_ACCEPT_USER_TIMEOUT"),
            },
            connect: SocketOptions {
                keepalive: self.duration_opt("LINKERD2_PROXY_INBOUND_CONNECT_KEEPALIVE"),
                user_timeout: self.duration_opt("LINKERD2_PROXY_INBOUND_CONNECT_USER_TIMEOUT"),
            },
            pool_idle_timeout: PoolIdleTimeout(self.duration(
                "LINKERD2_PROXY_INBOUND_HTTP1_CONNECTION_POOL_IDLE_TIMEOUT",
                Duration::from_secs(3),
            )),
            pool_max_idle_per_endpoint: self.number(
                "LINKERD2_PROXY_MAX_IDLE_CONNS_PER_ENDPOINT",
                10_000,
                0,
                u64::MAX,
            ),
            h2_keepalive: H2KeepAlive {
                interval: self
                    .duration_opt("LINKERD2_PROXY_INBOUND_SERVER_HTTP2_KEEP_ALIVE_INTERVAL"),
                timeout: self
                    .duration_opt("LINKERD2_PROXY_INBOUND_SERVER_HTTP2_KEEP_ALIVE_TIMEOUT"),
            },
            forward: self.addr_opt("MESH_PROXY_INBOUND_FORWARD_ADDR"),
        };
        let outbound_listen = match self.env.var("LINKERD2_PROXY_OUTBOUND_LISTEN_ADDRS") {
            Some(v) => match parse::socket_addrs(&v) {
                Some(addrs) => addrs,
                None => {
                    self.errors.push(ConfigError::SocketAddr {
                        name: "LINKERD2_PROXY_OUTBOUND_LISTEN_ADDRS",
                        value: v,
                    });
                    Vec::new()
                }
            },
            None => vec![self.addr("LINKERD2_PROXY_OUTBOUND_LISTEN_ADDR", "127.0.0.1:4140")],
        };
        let outbound = ProxyConfig {
            listen: outbound_listen,
            detect_timeout: DetectTimeout(self.duration(
                "LINKERD2_PROXY_OUTBOUND_DETECT_TIMEOUT",
                Duration::from_secs(10),
            )),
            connect_timeout: ConnectTimeout(self.duration(
                "LINKERD2_PROXY_OUTBOUND_CONNECT_TIMEOUT",
                Duration::from_secs(1),
            )),
            opaque_ports: OpaquePorts(self.ports(
                "MESH_PROXY_OUTBOUND_PORTS_DISABLE_PROTOCOL_DETECTION",
                &default_opaque,
            )),
            server_speaks_first: ssf,
            accept: SocketOptions {
                keepalive: self.duration_opt("LINKERD2_PROXY_OUTBOUND_ACCEPT_KEEPALIVE"),
                user_timeout: self.duration_opt("LINKERD2_PROXY_OUTBOUND_ACCEPT_USER_TIMEOUT"),
            },
            connect: SocketOptions {
                keepalive: self.duration_opt("LINKERD2_PROXY_OUTBOUND_CONNECT_KEEPALIVE"),
                user_timeout: self.duration_opt("LINKERD2_PROXY_OUTBOUND_CONNECT_USER_TIMEOUT"),
            },
            pool_idle_timeout: PoolIdleTimeout(self.duration(
                "LINKERD2_PROXY_OUTBOUND_HTTP1_CONNECTION_POOL_IDLE_TIMEOUT",
                Duration::from_secs(3),
            )),
            pool_max_idle_per_endpoint: self.number(
                "LINKERD2_PROXY_OUTBOUND_MAX_IDLE_CONNS_PER_ENDPOINT",
                10_000,
                0,
                u64::MAX,
            ),
            h2_keepalive: H2KeepAlive {
                interval: self
                    .duration_opt("LINKERD2_PROXY_OUTBOUND_SERVER_HTTP2_KEEP_ALIVE_INTERVAL"),
                timeout: self
                    .duration_opt("LINKERD2_PROXY_OUTBOUND_SERVER_HTTP2_KEEP_ALIVE_TIMEOUT"),
            },
            forward: None,
        };
        let admin = AdminConfig {
            listen: self.addr("LINKERD2_PROXY_ADMIN_LISTEN_ADDR", "127.0.0.1:4191"),
            shutdown_endpoint: if self.boolean("LINKERD2_PROXY_SHUTDOWN_ENDPOINT_ENABLED", true) {
                ShutdownEndpoint::Enabled
            } else {
                ShutdownEndpoint::Disabled
            },
            tap: if self.boolean("MESH_PROXY_TAP_ENABLED", false) {
                TapEndpoint::Enabled
            } else {
                TapEndpoint::Disabled
            },
        };
        let log_filter = self.log_filter();
        let log_format = match self.env.var("LINKERD2_PROXY_LOG_FORMAT") {
            None => LogFormat::Plain,
            Some(v) => match v.trim().to_ascii_lowercase().as_str() {
                "plain" => LogFormat::Plain,
                "json" => LogFormat::Json,
                _ => {
                    self.errors.push(ConfigError::OneOf {
                        name: "LINKERD2_PROXY_LOG_FORMAT",
                        value: v,
                        expected: &["plain", "json"],
                    });
                    LogFormat::Plain
                }
            },
        };
        let cores: usize = self.number("LINKERD2_PROXY_CORES", 1, 1, 1024);
        let cores_min: usize = self.number("LINKERD2_PROXY_CORES_MIN", 1, 1, 1024);
        let h2_windows = H2Windows {
            stream: self.number(
                "LINKERD2_PROXY_HTTP2_INITIAL_STREAM_WINDOW_SIZE",
                65_535,
                1,
                (1 << 31) - 1,
            ),
            connection: self.number(
                "LINKERD2_PROXY_HTTP2_INITIAL_CONNECTION_WINDOW_SIZE",
                1 << 20,
                1,
                (1 << 31) - 1,
            ),
        };
        let metrics = crate::metrics::SeriesLimits {
            max_series: self.number(
                "MESH_PROXY_METRICS_MAX_SERIES",
                crate::metrics::DEFAULT_MAX_SERIES,
                1,
                1 << 20,
            ),
            retain_idle: self.duration(
                "LINKERD2_PROXY_METRICS_RETAIN_IDLE",
                crate::metrics::DEFAULT_RETAIN_IDLE,
            ),
        };
        let shutdown_grace_period = self.duration(
            "LINKERD2_PROXY_SHUTDOWN_GRACE_PERIOD",
            Duration::from_secs(120),
        );
        let balance = self.balance();
        let destination = self.destination();
        let namer = namer::read(self.env, &mut self.errors);
        let certify = self.certify();
        let policy = self.policy();
        let identity = identity::read(self.env, &mut self.errors);
        let mut unsupported: Vec<String> = self
            .env
            .names()
            .into_iter()
            .filter(|n| n.starts_with("LINKERD2_PROXY_") && !SUPPORTED.contains(&n.as_str()))
            .collect();
        unsupported.sort();
        unsupported.dedup();
        Config {
            inbound,
            outbound,
            admin,
            log_filter,
            log_format,
            shutdown_grace_period,
            cores: cores.max(cores_min),
            limits,
            h2_windows,
            metrics,
            balance,
            destination,
            namer,
            certify,
            policy,
            identity,
            unsupported,
        }
    }

    fn log_filter(&mut self) -> String {
        const NAME: &str = "LINKERD2_PROXY_LOG";
        let value = self
            .env
            .var(NAME)
            .unwrap_or_else(|| crate::log::DEFAULT_FILTER.to_owned());
        if let Err(reason) = crate::log::check_filter(&value) {
            self.errors.push(ConfigError::LogFilter {
                name: NAME,
                value: value.clone(),
                reason,
            });
        }
        value
    }

    fn duration(&mut self, name: &'static str, default: Duration) -> Duration {
        self.duration_opt(name).unwrap_or(default)
    }

    fn duration_opt(&mut self, name: &'static str) -> Option<Duration> {
        let value = self.env.var(name)?;
        if value.trim().is_empty() {
            return None;
        }
        let parsed = parse::duration(&value);
        if parsed.is_none() {
            self.errors.push(ConfigError::Duration { name, value });
        }
        parsed
    }

    fn addr(&mut self, name: &'static str, default: &str) -> SocketAddr {
        let fallback = || parse::socket_addr(default).unwrap_or_else(|| ([127, 0, 0, 1], 0).into());
        self.addr_opt(name).unwrap_or_else(fallback)
    }

    fn addr_opt(&mut self, name: &'static str) -> Option<SocketAddr> {
        let value = self.env.var(name)?;
        let parsed = parse::socket_addr(&value);
        if parsed.is_none() {
            self.errors.push(ConfigError::SocketAddr { name, value });
        }
        parsed
    }

    fn ports(&mut self, name: &'static str, default: &PortSet) -> PortSet {
        let Some(value) = self.env.var(name) else {
            return default.clone();
        };
        match parse::ports(&value) {
            Ok(set) => set,
            Err(reason) => {
                self.errors.push(ConfigError::Ports {
                    name,
                    value,
                    reason,
                });
                default.clone()
            }
        }
    }

    fn number<T>(&mut self, name: &'static str, default: T, min: u64, max: u64) -> T
    where
        T: TryFrom<u64> + Copy,
    {
        let Some(value) = self.env.var(name) else {
            return default;
        };
        let parsed = value
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|n| (min..=max).contains(n))
            .and_then(|n| T::try_from(n).ok());
        match parsed {
            Some(n) => n,
            None => {
                self.errors.push(ConfigError::Number {
                    name,
                    value,
                    min,
                    max,
                });
                default
            }
        }
    }

    fn bytes(&mut self, name: &'static str, default: usize, min: usize) -> usize {
        let Some(value) = self.env.var(name) else {
            return default;
        };
        match parse::bytes(&value).filter(|n| *n >= min) {
            Some(n) => n,
            None => {
                self.errors.push(ConfigError::Bytes { name, value });
                default
            }
        }
    }

    fn boolean(&mut self, name: &'static str, default: bool) -> bool {
        let Some(value) = self.env.var(name) else {
            return default;
        };
        match parse::boolean(&value) {
            Some(b) => b,
            None => {
                self.errors.push(ConfigError::Bool { name, value });
                default
            }
        }
    }
}
