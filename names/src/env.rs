//! The proxy's environment variables that more than the proxy reads: the injector writes them and
//! the destination service reads the listen addresses back from a pod's spec.

/// Where the proxy accepts inbound connections.
pub const INBOUND_LISTEN_ADDR: &str = "LINKERD2_PROXY_INBOUND_LISTEN_ADDR";
/// Where the proxy serves `/metrics`, `/ready` and `/live`.
pub const ADMIN_LISTEN_ADDR: &str = "LINKERD2_PROXY_ADMIN_LISTEN_ADDR";
/// The proxy's control (tap) listener.
pub const CONTROL_LISTEN_ADDR: &str = "LINKERD2_PROXY_CONTROL_LISTEN_ADDR";
/// Whether the proxy serves its tap stream (`GET /tap`); the injector sets it to `true` when a pod
/// asks for tap, and `mesh tap` names it in its hints.
pub const TAP_ENABLED: &str = "MESH_PROXY_TAP_ENABLED";
/// Inbound ports whose default policy asks for a client identity; the injector writes it from
/// the `config.linkerd.io/proxy-require-identity-inbound-ports` annotation.
pub const INBOUND_PORTS_REQUIRE_IDENTITY: &str = "LINKERD2_PROXY_INBOUND_PORTS_REQUIRE_IDENTITY";
