//! Ports: the proxy's (Linkerd's) and the control plane's.

/// The proxy's outbound listener.
pub const PROXY_OUTBOUND: u16 = 4140;
/// The proxy's inbound listener.
pub const PROXY_INBOUND: u16 = 4143;
/// The proxy's control port (tap in Linkerd).
pub const PROXY_CONTROL: u16 = 4190;
/// The proxy's admin server: `/metrics`, `/ready`, `/live`.
pub const PROXY_ADMIN: u16 = 4191;

/// The identity service's gRPC port (TLS) and its admin port.
pub const IDENTITY_GRPC: u16 = 8080;
pub const IDENTITY_ADMIN: u16 = 9990;
/// The destination service's gRPC port, the policy port beside it, and its admin port.
pub const DESTINATION_GRPC: u16 = 8086;
pub const POLICY_GRPC: u16 = 8090;
pub const DESTINATION_ADMIN: u16 = 9996;
/// The proxy injector's webhook port (HTTPS) and its admin port.
pub const INJECTOR_WEBHOOK: u16 = 8443;
pub const INJECTOR_ADMIN: u16 = 9995;
