//! The containers, ports and volumes injection adds to a pod, which uninject removes and `check`,
//! `stat`, `tap` and `install` look for.

/// The proxy container, also the name of its inbound port.
pub const PROXY: &str = "linkerd-proxy";
/// The init container that sets up the pod's iptables redirection.
pub const INIT: &str = "linkerd-init";
/// The name of the proxy's admin port (`/metrics`, `/ready`, `/live`, `/tap`).
pub const ADMIN_PORT: &str = "linkerd-admin";

/// The volume the init container's `xtables` lock lives on.
pub const XTABLES_VOLUME: &str = "linkerd-proxy-init-xtables-lock";
/// The in-memory volume that holds the proxy's private key and certificate.
pub const IDENTITY_VOLUME: &str = "linkerd-identity-end-entity";
/// The projected service-account token the proxy presents to the identity service.
pub const TOKEN_VOLUME: &str = "linkerd-identity-token";
/// Where [`IDENTITY_VOLUME`] and [`TOKEN_VOLUME`] are mounted in the proxy.
pub const IDENTITY_DIR: &str = "/var/run/linkerd/identity/end-entity";
pub const TOKEN_DIR: &str = "/var/run/secrets/tokens";

/// Containers injection adds.
pub const INJECTED: &[&str] = &[PROXY, INIT];
/// Volumes injection adds.
pub const VOLUMES: &[&str] = &[XTABLES_VOLUME, IDENTITY_VOLUME, TOKEN_VOLUME];

/// Containers of other meshes; a pod carrying one is not injected.
pub const FOREIGN_SIDECARS: &[&str] = &["istio-proxy", "istio-init"];
