//! The pod and service metadata the destination service reads, as Linkerd names it.

/// The proxy's container name: a pod with it is meshed.
pub const PROXY_CONTAINER: &str = "linkerd-proxy";
/// The label the injector puts on meshed pods, naming their control plane's namespace.
pub const CONTROL_PLANE_NS_LABEL: &str = "linkerd.io/control-plane-ns";
/// Ports (or ranges, or named container ports) whose traffic is opaque TCP, on a pod, a service
/// or a namespace.
pub const OPAQUE_PORTS_ANNOTATION: &str = "config.linkerd.io/opaque-ports";
/// Inbound ports the proxy does not intercept: peers reach them without mTLS or a protocol hint.
pub const SKIP_INBOUND_PORTS_ANNOTATION: &str = "config.linkerd.io/skip-inbound-ports";
/// The proxy's environment variables that hold its inbound, admin and control listen addresses.
pub const INBOUND_LISTEN_ADDR_ENV: &str = "LINKERD2_PROXY_INBOUND_LISTEN_ADDR";
pub const ADMIN_LISTEN_ADDR_ENV: &str = "LINKERD2_PROXY_ADMIN_LISTEN_ADDR";
pub const CONTROL_LISTEN_ADDR_ENV: &str = "LINKERD2_PROXY_CONTROL_LISTEN_ADDR";
/// The EndpointSlice label naming the Service a slice belongs to.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
/// The label a Deployment's ReplicaSet puts on its pods.
pub const POD_TEMPLATE_HASH_LABEL: &str = "pod-template-hash";
/// The weight of each endpoint; the proxy balances by it, and Linkerd sends this value.
pub const ENDPOINT_WEIGHT: u32 = 10_000;
