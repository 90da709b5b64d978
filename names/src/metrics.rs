//! The proxy's metric names, label keys and the label values readers match on: the proxy
//! writes them on `/metrics`, the CLI (`stat`, `edges`, `routes`, `diagnostics`) reads them,
//! and the controller's destination service sends the endpoint labels the proxy writes as
//! `dst_*`. They are Linkerd's, so Linkerd's dashboards and tooling read a mesh proxy's
//! metrics (mesh's own additions are marked).

// HTTP families.

/// Counter: requests, per `direction`, `authority`, target and TLS labels (and `dst_*`).
pub const REQUEST_TOTAL: &str = "request_total";
/// Counter: responses, with the request's labels and `status_code`, `classification`,
/// `grpc_status` and `error`.
pub const RESPONSE_TOTAL: &str = "response_total";
/// Histogram (milliseconds): request headers to the end of the response stream, per
/// `status_code`.
pub const RESPONSE_LATENCY_MS: &str = "response_latency_ms";
/// Histogram (microseconds, narrow buckets): mesh's finer `response_latency_ms`.
pub const RESPONSE_LATENCY_FINE_US: &str = "response_latency_fine_us";

// Transport families.

/// Counter: connections opened, per `direction`, `peer`, target and TLS labels.
pub const TCP_OPEN_TOTAL: &str = "tcp_open_total";
/// Gauge: connections open now.
pub const TCP_OPEN_CONNECTIONS: &str = "tcp_open_connections";
/// Counter: bytes read from peers.
pub const TCP_READ_BYTES_TOTAL: &str = "tcp_read_bytes_total";
/// Counter: bytes written to peers.
pub const TCP_WRITE_BYTES_TOTAL: &str = "tcp_write_bytes_total";
/// Counter: connections closed, per `errno` (empty for a clean close).
pub const TCP_CLOSE_TOTAL: &str = "tcp_close_total";

// ServiceProfile route families (labels `direction`, `dst`, `rt_route`).

/// Counter: requests that matched a profile route.
pub const ROUTE_REQUEST_TOTAL: &str = "route_request_total";
/// Counter: the responses clients got on a route, after retries.
pub const ROUTE_RESPONSE_TOTAL: &str = "route_response_total";
/// Counter: the responses to every attempt on a route, retries included.
pub const ROUTE_ACTUAL_RESPONSE_TOTAL: &str = "route_actual_response_total";
/// Histogram (milliseconds): a route request's headers to the response headers the client got.
pub const ROUTE_RESPONSE_LATENCY_MS: &str = "route_response_latency_ms";
/// Counter (mesh's): requests sent again after a retryable failure.
pub const ROUTE_RETRY_TOTAL: &str = "route_retry_total";
/// Counter (mesh's): retryable failures not sent again because the retry budget was spent.
pub const ROUTE_RETRY_BUDGET_EXHAUSTED_TOTAL: &str = "route_retry_budget_exhausted_total";

// Inbound authorization families.

/// Counter: inbound HTTP requests that were authorized.
pub const INBOUND_HTTP_AUTHZ_ALLOW_TOTAL: &str = "inbound_http_authz_allow_total";
/// Counter: inbound HTTP requests refused by authorization policy.
pub const INBOUND_HTTP_AUTHZ_DENY_TOTAL: &str = "inbound_http_authz_deny_total";
/// Counter: inbound HTTP requests that matched no route of their server's policy.
pub const INBOUND_HTTP_ROUTE_NOT_FOUND_TOTAL: &str = "inbound_http_route_not_found_total";
/// Counter: inbound TCP connections that were authorized.
pub const INBOUND_TCP_AUTHZ_ALLOW_TOTAL: &str = "inbound_tcp_authz_allow_total";
/// Counter: inbound TCP connections refused by authorization policy.
pub const INBOUND_TCP_AUTHZ_DENY_TOTAL: &str = "inbound_tcp_authz_deny_total";
/// Counter: inbound TCP connections closed because a policy change no longer authorized them.
pub const INBOUND_TCP_AUTHZ_TERMINATE_TOTAL: &str = "inbound_tcp_authz_terminate_total";

// Process families.

/// Gauge: when the proxy started, in seconds since the Unix epoch; a change means its counters
/// restarted.
pub const PROCESS_START_TIME_SECONDS: &str = "process_start_time_seconds";

// Label keys.

/// `inbound` or `outbound`: which side of the pod the traffic is on.
pub const DIRECTION: &str = "direction";
/// The request's `:authority` or `Host`, as the client sent it.
pub const AUTHORITY: &str = "authority";
/// Transport metrics: `src` for accepted connections, `dst` for opened ones.
pub const PEER: &str = "peer";
/// The address the connection or request went to, `ip:port`.
pub const TARGET_ADDR: &str = "target_addr";
/// The target's IP (mesh's, next to `target_addr`).
pub const TARGET_IP: &str = "target_ip";
/// The target's port (mesh's, next to `target_addr`).
pub const TARGET_PORT: &str = "target_port";
/// `true` for mesh TLS, else `no_identity` with a `no_tls_reason`.
pub const TLS: &str = "tls";
/// The identity the client presented to an inbound proxy.
pub const CLIENT_ID: &str = "client_id";
/// The identity an outbound proxy verified on the server.
pub const SERVER_ID: &str = "server_id";
/// Why a connection is not mesh TLS.
pub const NO_TLS_REASON: &str = "no_tls_reason";
/// The response's HTTP status; empty on an overflow series.
pub const STATUS_CODE: &str = "status_code";
/// `success` or `failure`, by Linkerd's rule.
pub const CLASSIFICATION: &str = "classification";
/// The response's `grpc-status`, empty for plain HTTP.
pub const GRPC_STATUS: &str = "grpc_status";
/// Why the proxy answered itself or the stream failed, e.g. `connect`; empty otherwise.
pub const ERROR: &str = "error";
/// `tcp_close_total`: the error a connection closed with, empty for a clean close.
pub const ERRNO: &str = "errno";
/// Route families: the request's authority.
pub const DST: &str = "dst";
/// Route families: the ServiceProfile route's name.
pub const RT_ROUTE: &str = "rt_route";
/// `true` on the series that counts label sets a full family could not hold (mesh's).
pub const OVERFLOW: &str = "overflow";
/// Prometheus's histogram bucket bound.
pub const LE: &str = "le";

// Label values readers match on.

/// [`DIRECTION`] of traffic a pod receives.
pub const INBOUND: &str = "inbound";
/// [`DIRECTION`] of traffic a pod sends.
pub const OUTBOUND: &str = "outbound";
/// [`PEER`] of an accepted connection.
pub const PEER_SRC: &str = "src";
/// [`PEER`] of an opened connection.
pub const PEER_DST: &str = "dst";
/// [`TLS`] of mesh TLS.
pub const TLS_TRUE: &str = "true";
/// [`TLS`] of plaintext.
pub const TLS_NO_IDENTITY: &str = "no_identity";
/// [`CLASSIFICATION`] of a success.
pub const SUCCESS: &str = "success";
/// [`CLASSIFICATION`] of a failure.
pub const FAILURE: &str = "failure";

// Endpoint labels: the destination service sends them in `metric_labels` (per address and
// per update); the proxy writes each as `dst_<key>` on its outbound HTTP metrics.

/// What the proxy puts before each endpoint label key from discovery.
pub const DST_PREFIX: &str = "dst_";
/// The endpoint's namespace.
pub const ENDPOINT_NAMESPACE: &str = "namespace";
/// The Service discovery resolved.
pub const ENDPOINT_SERVICE: &str = "service";
/// The endpoint's pod.
pub const ENDPOINT_POD: &str = "pod";
/// The endpoint pod's service account.
pub const ENDPOINT_SERVICEACCOUNT: &str = "serviceaccount";
/// The endpoint node's topology zone (empty when unknown).
pub const ENDPOINT_ZONE: &str = "zone";
/// The endpoint pod's `pod-template-hash`.
pub const ENDPOINT_POD_TEMPLATE_HASH: &str = "pod_template_hash";
/// The control plane namespace of a meshed endpoint pod.
pub const ENDPOINT_CONTROL_PLANE_NS: &str = "control_plane_ns";
/// The endpoint pod's Deployment (its ReplicaSet's owner); other owners are keyed by their
/// kind, lowercased, as [`crate::labels::WORKLOAD_KINDS`] spells them.
pub const ENDPOINT_DEPLOYMENT: &str = "deployment";

/// `dst_namespace`: [`ENDPOINT_NAMESPACE`] as the proxy writes it.
pub const DST_NAMESPACE: &str = "dst_namespace";
/// `dst_service`: [`ENDPOINT_SERVICE`] as the proxy writes it.
pub const DST_SERVICE: &str = "dst_service";
/// `dst_pod`: [`ENDPOINT_POD`] as the proxy writes it.
pub const DST_POD: &str = "dst_pod";
/// `dst_deployment`: [`ENDPOINT_DEPLOYMENT`] as the proxy writes it.
pub const DST_DEPLOYMENT: &str = "dst_deployment";
/// `dst_statefulset`: the endpoint pod's StatefulSet.
pub const DST_STATEFULSET: &str = "dst_statefulset";
/// `dst_daemonset`: the endpoint pod's DaemonSet.
pub const DST_DAEMONSET: &str = "dst_daemonset";
/// `dst_replicaset`: the endpoint pod's ReplicaSet, when no Deployment owns it.
pub const DST_REPLICASET: &str = "dst_replicaset";
/// `dst_replicationcontroller`: the endpoint pod's ReplicationController.
pub const DST_REPLICATIONCONTROLLER: &str = "dst_replicationcontroller";
/// `dst_job`: the endpoint pod's Job.
pub const DST_JOB: &str = "dst_job";
/// `dst_cronjob`: the endpoint pod's CronJob (when it owns the pod directly).
pub const DST_CRONJOB: &str = "dst_cronjob";

/// The label the proxy writes for endpoint label `key` from discovery: `dst_<key>`.
pub fn dst_label(key: &str) -> String {
    let mut out = String::with_capacity(DST_PREFIX.len() + key.len());
    out.push_str(DST_PREFIX);
    out.push_str(key);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dst_labels_are_the_prefixed_endpoint_keys() {
        assert_eq!(dst_label(ENDPOINT_NAMESPACE), DST_NAMESPACE);
        assert_eq!(dst_label(ENDPOINT_SERVICE), DST_SERVICE);
        assert_eq!(dst_label(ENDPOINT_POD), DST_POD);
        assert_eq!(dst_label(ENDPOINT_DEPLOYMENT), DST_DEPLOYMENT);
        let workloads: Vec<String> = crate::labels::WORKLOAD_KINDS
            .iter()
            .map(|k| dst_label(k))
            .collect();
        for dst in [
            DST_DEPLOYMENT,
            DST_STATEFULSET,
            DST_DAEMONSET,
            DST_REPLICASET,
            DST_REPLICATIONCONTROLLER,
            DST_JOB,
            DST_CRONJOB,
        ] {
            assert!(workloads.iter().any(|w| w == dst), "{dst}");
        }
    }
}
