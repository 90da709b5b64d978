//! The proxy's environment variables that other crates name: the injector writes them, and the
//! destination service reads the listen addresses back from a pod's spec.

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
/// The policy of inbound ports until (or unless) the policy service answers: a
/// [`crate::policy::DefaultInboundPolicy`].
pub const INBOUND_DEFAULT_POLICY: &str = "LINKERD2_PROXY_INBOUND_DEFAULT_POLICY";
/// The networks of the `cluster-*` default policies.
pub const POLICY_CLUSTER_NETWORKS: &str = "LINKERD2_PROXY_POLICY_CLUSTER_NETWORKS";
/// The policy service's `host:port` (the injector writes the `linkerd-policy` Service on
/// [`crate::ports::POLICY_GRPC`]).
pub const POLICY_SVC_ADDR: &str = "LINKERD2_PROXY_POLICY_SVC_ADDR";
/// The identity the policy service must present (its certificate's DNS name, and the SNI the
/// proxy sends), unless its address is on loopback.
pub const POLICY_SVC_NAME: &str = "LINKERD2_PROXY_POLICY_SVC_NAME";
/// The Destination service's `host:port` (the injector writes the `linkerd-dst-headless`
/// Service on [`crate::ports::DESTINATION_GRPC`]; the destination pod's own proxy, loopback).
pub const DESTINATION_SVC_ADDR: &str = "LINKERD2_PROXY_DESTINATION_SVC_ADDR";
/// The identity the Destination service must present, unless its address is on loopback.
pub const DESTINATION_SVC_NAME: &str = "LINKERD2_PROXY_DESTINATION_SVC_NAME";
/// The identity service's `host:port` (the `linkerd-identity-headless` Service on
/// [`crate::ports::IDENTITY_GRPC`]; the identity pod's own proxy, loopback).
pub const IDENTITY_SVC_ADDR: &str = "LINKERD2_PROXY_IDENTITY_SVC_ADDR";
/// The pod the proxy asks the policy service about, sent as each `WatchPort`'s `workload`.
pub const POLICY_WORKLOAD: &str = "LINKERD2_PROXY_POLICY_WORKLOAD";
