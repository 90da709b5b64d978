//! The pod and service metadata the destination service reads, as Linkerd names it.

/// Opaque ports on a pod, a service or a namespace.
pub use mesh_names::annotations::OPAQUE_PORTS as OPAQUE_PORTS_ANNOTATION;
/// Inbound ports the proxy does not intercept: peers reach them without mTLS or a protocol hint.
pub use mesh_names::annotations::SKIP_INBOUND_PORTS as SKIP_INBOUND_PORTS_ANNOTATION;
/// The proxy's container name: a pod with it is meshed.
pub use mesh_names::containers::PROXY as PROXY_CONTAINER;
/// The proxy's environment variables that hold its inbound, admin and control listen addresses.
pub use mesh_names::env::{
    ADMIN_LISTEN_ADDR as ADMIN_LISTEN_ADDR_ENV, CONTROL_LISTEN_ADDR as CONTROL_LISTEN_ADDR_ENV,
    INBOUND_LISTEN_ADDR as INBOUND_LISTEN_ADDR_ENV,
};
/// The label the injector puts on meshed pods, naming their control plane's namespace.
pub use mesh_names::labels::CONTROL_PLANE_NS as CONTROL_PLANE_NS_LABEL;
/// The EndpointSlice label naming the Service a slice belongs to.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
/// The label a Deployment's ReplicaSet puts on its pods.
pub const POD_TEMPLATE_HASH_LABEL: &str = "pod-template-hash";
/// The weight of each endpoint; the proxy balances by it, and Linkerd sends this value.
pub const ENDPOINT_WEIGHT: u32 = 10_000;
