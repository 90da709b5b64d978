//! The containers, volumes, annotations and labels that make up the sidecar.

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::config::ProxyConfig;
use mesh_names::{annotations, containers, labels, ports, resources};

use super::{Context, Owner};

/// Everything manual injection adds to a pod template.
#[derive(Debug, Clone, PartialEq)]
pub struct Sidecar {
    /// Added to `metadata.annotations`, in this order.
    pub annotations: Vec<(String, String)>,
    /// Added to `metadata.labels`, in this order.
    pub labels: Vec<(String, String)>,
    /// Put first in `spec.initContainers`: `linkerd-init`, then the proxy when it runs as a native
    /// sidecar.
    pub init_containers: Vec<Value>,
    /// Put first in `spec.containers`: the proxy, when it does not run as a native sidecar.
    pub containers: Vec<Value>,
    /// Put last in `spec.volumes`.
    pub volumes: Vec<Value>,
}

pub(super) fn build(
    config: &ProxyConfig,
    spec: &Value,
    owner: Owner<'_>,
    context: &Context<'_>,
) -> Sidecar {
    let values = context.values;
    let ns = context.control_plane_namespace;
    let mut annotations = vec![
        (
            annotations::CREATED_BY.to_owned(),
            format!("mesh/cli {}", context.cli_version),
        ),
        (
            annotations::PROXY_VERSION.to_owned(),
            config.version.clone(),
        ),
        (
            annotations::TRUST_ROOT_SHA256.to_owned(),
            trust_anchors_sha256(context.trust_anchors_pem),
        ),
    ];
    annotations.dedup();
    let mut labels = vec![(labels::CONTROL_PLANE_NS.to_owned(), ns.to_owned())];
    if owner.kind != "Pod" && !owner.name.is_empty() {
        labels.push((labels::workload(owner.kind), owner.name.to_owned()));
    }
    if !owner.namespace.is_empty() {
        labels.push((labels::WORKLOAD_NS.to_owned(), owner.namespace.to_owned()));
    }
    let token_projection = values.identity.service_account_token_projection;
    let proxy = proxy_container(config, spec, context, token_projection);
    let init = init_container(config);
    let (init_containers, containers) = if config.native_sidecar {
        (vec![init, proxy], vec![])
    } else {
        (vec![init], vec![proxy])
    };
    let mut volumes = vec![
        json!({"name": containers::XTABLES_VOLUME, "emptyDir": {}}),
        json!({"name": containers::IDENTITY_VOLUME, "emptyDir": {"medium": "Memory"}}),
    ];
    if token_projection {
        volumes.push(json!({
            "name": containers::TOKEN_VOLUME,
            "projected": {"sources": [{"serviceAccountToken": {
                "audience": mesh_names::identity::TOKEN_AUDIENCE,
                "expirationSeconds": 86400,
                "path": containers::TOKEN_VOLUME,
            }}]},
        }));
    }
    Sidecar {
        annotations,
        labels,
        init_containers,
        containers,
        volumes,
    }
}

fn image(config: &ProxyConfig) -> String {
    format!("{}:{}", config.image, config.version)
}

fn resources(config: &ProxyConfig) -> Option<Value> {
    let mut requests = Map::new();
    let mut limits = Map::new();
    for (name, rl) in [("cpu", &config.cpu), ("memory", &config.memory)] {
        if !rl.request.is_empty() {
            requests.insert(name.to_owned(), Value::String(rl.request.clone()));
        }
        if !rl.limit.is_empty() {
            limits.insert(name.to_owned(), Value::String(rl.limit.clone()));
        }
    }
    let mut out = Map::new();
    if !limits.is_empty() {
        out.insert("limits".to_owned(), Value::Object(limits));
    }
    if !requests.is_empty() {
        out.insert("requests".to_owned(), Value::Object(requests));
    }
    (!out.is_empty()).then_some(Value::Object(out))
}

/// `linkerd-init`: runs `mesh-proxy init` with Linkerd's proxy-init flags.
fn init_container(config: &ProxyConfig) -> Value {
    let (iptables, iptables_save) = match config.iptables_mode.as_str() {
        "legacy" => ("iptables-legacy", "iptables-legacy-save"),
        _ => ("iptables-nft", "iptables-nft-save"),
    };
    let mut ignore_inbound = vec![
        config.control_port.to_string(),
        config.admin_port.to_string(),
    ];
    ignore_inbound.extend(
        config
            .skip_inbound_ports
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(str::to_owned),
    );
    let mut args = vec![
        "--firewall-bin-path".to_owned(),
        iptables.to_owned(),
        "--firewall-save-bin-path".to_owned(),
        iptables_save.to_owned(),
        "--ipv6=false".to_owned(),
        "--incoming-proxy-port".to_owned(),
        config.inbound_port.to_string(),
        "--outgoing-proxy-port".to_owned(),
        config.outbound_port.to_string(),
        "--proxy-uid".to_owned(),
        config.uid.to_string(),
        "--inbound-ports-to-ignore".to_owned(),
        ignore_inbound.join(","),
    ];
    if !config.skip_outbound_ports.is_empty() {
        args.push("--outbound-ports-to-ignore".to_owned());
        args.push(config.skip_outbound_ports.clone());
    }
    if !config.skip_subnets.is_empty() {
        args.push("--subnets-to-ignore".to_owned());
        args.push(config.skip_subnets.clone());
    }
    let mut c = json!({
        "name": containers::INIT,
        "image": image(config),
        "imagePullPolicy": config.pull_policy,
        "command": ["mesh-proxy", "init"],
        "args": args,
        "securityContext": {
            "allowPrivilegeEscalation": false,
            "capabilities": {"add": ["NET_ADMIN", "NET_RAW"]},
            "privileged": false,
            "readOnlyRootFilesystem": true,
            "runAsGroup": 65534,
            "runAsNonRoot": true,
            "runAsUser": 65534,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "volumeMounts": [{"mountPath": "/run", "name": containers::XTABLES_VOLUME}],
    });
    if let (Some(r), Some(obj)) = (resources(config), c.as_object_mut()) {
        obj.insert("resources".to_owned(), r);
    }
    c
}

/// The env var `name` with a literal value.
fn env(name: &str, value: impl Into<String>) -> Value {
    json!({"name": name, "value": value.into()})
}

/// The env var `name` from a field of the pod.
fn env_field(name: &str, path: &str) -> Value {
    json!({"name": name, "valueFrom": {"fieldRef": {"fieldPath": path}}})
}

fn proxy_container(
    config: &ProxyConfig,
    spec: &Value,
    context: &Context<'_>,
    token_projection: bool,
) -> Value {
    let values = context.values;
    let ns = context.control_plane_namespace;
    let domain = &values.cluster_domain;
    let trust = &values.identity_trust_domain;
    let svc = |name: &str, port: u16| format!("{name}.{ns}.svc.{domain}.:{port}");
    let identity = |sa: &str| format!("{sa}.{ns}.serviceaccount.identity.{ns}.{trust}");
    let ports = container_ports(spec);
    let opaque = resolve_named_ports(&config.opaque_ports, spec);
    let mut envs = vec![
        env_field("_pod_name", "metadata.name"),
        env_field("_pod_ns", "metadata.namespace"),
        env_field("_pod_uid", "metadata.uid"),
        env_field("_pod_ip", "status.podIP"),
        env_field("_pod_nodeName", "spec.nodeName"),
        env("_pod_containerName", containers::PROXY),
        env(
            "LINKERD2_PROXY_CORES",
            config.cores(values.proxy.cores).to_string(),
        ),
        env("LINKERD2_PROXY_CORES_MIN", "1"),
    ];
    if let Some(max) = config.max_cores() {
        envs.push(env("LINKERD2_PROXY_CORES_MAX", max.to_string()));
    }
    envs.extend([
        env(
            "LINKERD2_PROXY_SHUTDOWN_ENDPOINT_ENABLED",
            values.proxy.enable_shutdown_endpoint.to_string(),
        ),
        env("LINKERD2_PROXY_LOG", config.log_level.clone()),
        env("LINKERD2_PROXY_LOG_FORMAT", config.log_format.clone()),
        env(
            mesh_names::env::DESTINATION_SVC_ADDR,
            svc(
                resources::DESTINATION_HEADLESS_SERVICE,
                ports::DESTINATION_GRPC,
            ),
        ),
        env(
            "LINKERD2_PROXY_DESTINATION_PROFILE_NETWORKS",
            values.cluster_networks.clone(),
        ),
        env(
            mesh_names::env::POLICY_SVC_ADDR,
            svc(resources::POLICY_SERVICE, ports::POLICY_GRPC),
        ),
        env(
            mesh_names::env::POLICY_WORKLOAD,
            "{\"ns\":\"$(_pod_ns)\", \"pod\":\"$(_pod_name)\"}\n",
        ),
        env(
            mesh_names::env::INBOUND_DEFAULT_POLICY,
            config.default_inbound_policy.clone(),
        ),
        env(
            mesh_names::env::POLICY_CLUSTER_NETWORKS,
            values.cluster_networks.clone(),
        ),
        env("LINKERD2_PROXY_CONTROL_STREAM_INITIAL_TIMEOUT", "3s"),
        env("LINKERD2_PROXY_CONTROL_STREAM_IDLE_TIMEOUT", "5m"),
        env("LINKERD2_PROXY_CONTROL_STREAM_LIFETIME", "1h"),
        env(
            "LINKERD2_PROXY_INBOUND_CONNECT_TIMEOUT",
            config.inbound_connect_timeout.clone(),
        ),
        env(
            "LINKERD2_PROXY_OUTBOUND_CONNECT_TIMEOUT",
            config.outbound_connect_timeout.clone(),
        ),
        env("LINKERD2_PROXY_OUTBOUND_DISCOVERY_IDLE_TIMEOUT", "5s"),
        env("LINKERD2_PROXY_INBOUND_DISCOVERY_IDLE_TIMEOUT", "90s"),
        env(
            mesh_names::env::CONTROL_LISTEN_ADDR,
            format!("0.0.0.0:{}", config.control_port),
        ),
        env(
            mesh_names::env::ADMIN_LISTEN_ADDR,
            format!("0.0.0.0:{}", config.admin_port),
        ),
        env(
            "LINKERD2_PROXY_OUTBOUND_LISTEN_ADDR",
            format!("127.0.0.1:{}", config.outbound_port),
        ),
        env(
            "LINKERD2_PROXY_OUTBOUND_LISTEN_ADDRS",
            format!("127.0.0.1:{}", config.outbound_port),
        ),
        env(
            mesh_names::env::INBOUND_LISTEN_ADDR,
            format!("0.0.0.0:{}", config.inbound_port),
        ),
        env_field("LINKERD2_PROXY_INBOUND_IPS", "status.podIPs"),
    ]);
    if ports.is_empty() {
        envs.push(json!({"name": "LINKERD2_PROXY_INBOUND_PORTS"}));
    } else {
        envs.push(env("LINKERD2_PROXY_INBOUND_PORTS", ports.join(",")));
    }
    envs.extend([
        env(
            "LINKERD2_PROXY_DESTINATION_PROFILE_SUFFIXES",
            format!("svc.{domain}."),
        ),
        env("LINKERD2_PROXY_INBOUND_ACCEPT_KEEPALIVE", "10000ms"),
        env("LINKERD2_PROXY_OUTBOUND_CONNECT_KEEPALIVE", "10000ms"),
        env("LINKERD2_PROXY_INBOUND_ACCEPT_USER_TIMEOUT", "30s"),
        env("LINKERD2_PROXY_OUTBOUND_CONNECT_USER_TIMEOUT", "30s"),
        env("LINKERD2_PROXY_OUTBOUND_METRICS_HOSTNAME_LABELS", "false"),
        env(
            "LINKERD2_PROXY_INBOUND_SERVER_HTTP2_KEEP_ALIVE_INTERVAL",
            "10s",
        ),
        env(
            "LINKERD2_PROXY_INBOUND_SERVER_HTTP2_KEEP_ALIVE_TIMEOUT",
            "3s",
        ),
        env(
            "LINKERD2_PROXY_OUTBOUND_SERVER_HTTP2_KEEP_ALIVE_INTERVAL",
            "10s",
        ),
        env(
            "LINKERD2_PROXY_OUTBOUND_SERVER_HTTP2_KEEP_ALIVE_TIMEOUT",
            "3s",
        ),
        env(
            "LINKERD2_PROXY_INBOUND_PORTS_DISABLE_PROTOCOL_DETECTION",
            opaque,
        ),
    ]);
    if !config.require_identity_inbound_ports.is_empty() {
        envs.push(env(
            mesh_names::env::INBOUND_PORTS_REQUIRE_IDENTITY,
            config.require_identity_inbound_ports.clone(),
        ));
    }
    envs.extend([env(
        "LINKERD2_PROXY_DESTINATION_CONTEXT",
        "{\"ns\":\"$(_pod_ns)\", \"nodeName\":\"$(_pod_nodeName)\", \"pod\":\"$(_pod_name)\"}\n",
    )]);
    if !config.shutdown_grace_period.is_empty() {
        envs.push(env(
            "LINKERD2_PROXY_SHUTDOWN_GRACE_PERIOD",
            config.shutdown_grace_period.clone(),
        ));
    }
    if config.ingress {
        envs.push(env("LINKERD2_PROXY_INGRESS_MODE", "true"));
    }
    if config.tap {
        envs.push(env(mesh_names::env::TAP_ENABLED, "true"));
    }
    envs.extend([
        env_field("_pod_sa", "spec.serviceAccountName"),
        env("_l5d_ns", ns),
        env("_l5d_trustdomain", trust.clone()),
        env("LINKERD2_PROXY_IDENTITY_DIR", containers::IDENTITY_DIR),
        env(
            "LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS",
            context.trust_anchors_pem,
        ),
        env(
            "LINKERD2_PROXY_IDENTITY_TOKEN_FILE",
            format!("{}/{}", containers::TOKEN_DIR, containers::TOKEN_VOLUME),
        ),
        env(
            mesh_names::env::IDENTITY_SVC_ADDR,
            svc(resources::IDENTITY_HEADLESS_SERVICE, ports::IDENTITY_GRPC),
        ),
        env(
            "LINKERD2_PROXY_IDENTITY_LOCAL_NAME",
            format!("$(_pod_sa).$(_pod_ns).serviceaccount.identity.{ns}.{trust}"),
        ),
        env(
            "LINKERD2_PROXY_IDENTITY_SVC_NAME",
            identity(resources::IDENTITY),
        ),
        env(
            mesh_names::env::DESTINATION_SVC_NAME,
            identity(resources::DESTINATION),
        ),
        env(
            mesh_names::env::POLICY_SVC_NAME,
            identity(resources::DESTINATION),
        ),
    ]);
    let probe = |path: &str, p: &crate::values::Probe| {
        let mut probe = json!({"httpGet": {"path": path, "port": config.admin_port}});
        if let Some(obj) = probe.as_object_mut() {
            for (key, value) in [
                (
                    "initialDelaySeconds",
                    p.initial_delay_seconds.filter(|v| *v > 0),
                ),
                ("timeoutSeconds", p.timeout_seconds),
                ("failureThreshold", p.failure_threshold),
                ("periodSeconds", p.period_seconds),
            ] {
                if let Some(v) = value {
                    obj.insert(key.to_owned(), json!(v));
                }
            }
        }
        probe
    };
    let mut mounts =
        vec![json!({"mountPath": containers::IDENTITY_DIR, "name": containers::IDENTITY_VOLUME})];
    if token_projection {
        mounts.push(json!({"mountPath": containers::TOKEN_DIR, "name": containers::TOKEN_VOLUME}));
    }
    let mut c = json!({
        "name": containers::PROXY,
        "image": image(config),
        "imagePullPolicy": config.pull_policy,
        "env": envs,
        "ports": [
            {"containerPort": config.inbound_port, "name": containers::PROXY},
            {"containerPort": config.admin_port, "name": containers::ADMIN_PORT},
        ],
        "livenessProbe": probe("/live", &values.proxy.liveness_probe),
        "readinessProbe": probe("/ready", &values.proxy.readiness_probe),
        "securityContext": {
            "allowPrivilegeEscalation": false,
            "readOnlyRootFilesystem": true,
            "runAsNonRoot": true,
            "runAsUser": config.uid,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "volumeMounts": mounts,
    });
    if let Some(obj) = c.as_object_mut() {
        if let Some(r) = resources(config) {
            obj.insert("resources".to_owned(), r);
        }
        if config.native_sidecar {
            obj.insert("restartPolicy".to_owned(), json!("Always"));
            obj.insert(
                "startupProbe".to_owned(),
                probe("/ready", &values.proxy.startup_probe),
            );
        } else if config.r#await {
            obj.insert(
                "lifecycle".to_owned(),
                json!({"postStart": {"exec": {"command": ["mesh-proxy", "await", "--timeout=2m"]}}}),
            );
        }
    }
    c
}

/// Every container port of the pod, in order, without duplicates.
fn container_ports(spec: &Value) -> Vec<String> {
    let mut ports: Vec<String> = Vec::new();
    for list in ["containers", "initContainers"] {
        for container in spec[list].as_array().into_iter().flatten() {
            if container["name"] == containers::PROXY {
                continue;
            }
            for port in container["ports"].as_array().into_iter().flatten() {
                if let Some(p) = port["containerPort"].as_u64().map(|p| p.to_string())
                    && !ports.contains(&p)
                {
                    ports.push(p);
                }
            }
        }
    }
    ports
}

/// Replaces named ports (`mysql`) with the numbers the pod's containers give them; names no
/// container declares are kept, as Linkerd keeps them.
fn resolve_named_ports(list: &str, spec: &Value) -> String {
    let named = |name: &str| {
        ["containers", "initContainers"].iter().find_map(|l| {
            spec[*l].as_array().into_iter().flatten().find_map(|c| {
                c["ports"].as_array().into_iter().flatten().find_map(|p| {
                    (p["name"] == name)
                        .then(|| p["containerPort"].as_u64())
                        .flatten()
                })
            })
        })
    };
    list.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            if p.bytes().all(|b| b.is_ascii_digit() || b == b'-') {
                p.to_owned()
            } else {
                named(p).map_or_else(|| p.to_owned(), |n| n.to_string())
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// The `linkerd.io/trust-root-sha256` of a pod injected with `trust_anchors_pem`.
pub fn trust_anchors_sha256(trust_anchors_pem: &str) -> String {
    let digest = Sha256::digest(trust_anchors_pem.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}
