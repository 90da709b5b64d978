//! What the index keeps of Pods and of the `policy.linkerd.io` resources, read once per event
//! into small values so that an update that changes nothing is noticed. Reading follows
//! Linkerd's policy controller; an object that cannot be read is left out of every answer.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{Container, Pod};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::DynamicObject;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use mesh_names::policy::DefaultInboundPolicy;

use super::answer::{Authentication, DETECT_TIMEOUT, IdentityMatch, Protocol};
use super::net::{Net, NetworkMatch};
use super::routes::{RouteKind, RouteRef};
use super::selector::Selector;
use crate::destination::ports::PortSet;

/// Why an object is left out.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

pub(super) fn invalid(message: impl Into<String>) -> Invalid {
    Invalid(message.into())
}

/// How identities are named in this cluster, for references to service accounts and namespaces.
#[derive(Clone, Debug)]
pub struct IdentityDomain {
    pub control_plane_ns: String,
    pub trust_domain: String,
}

impl IdentityDomain {
    fn service_account(&self, ns: &str, sa: &str) -> IdentityMatch {
        IdentityMatch::Exact(mesh_names::identity::workload(
            sa,
            ns,
            &self.control_plane_ns,
            &self.trust_domain,
        ))
    }

    fn namespace(&self, ns: &str) -> IdentityMatch {
        let suffix =
            mesh_names::identity::namespace_suffix(ns, &self.control_plane_ns, &self.trust_domain);
        IdentityMatch::Suffix(suffix.split('.').map(str::to_string).collect())
    }
}

/// What the index keeps of a Pod.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PolicyPod {
    pub labels: BTreeMap<String, String>,
    /// `config.linkerd.io/default-inbound-policy`.
    pub default_policy: Option<DefaultInboundPolicy>,
    /// `config.linkerd.io/opaque-ports`, if set (even to nothing).
    pub opaque_ports: Option<PortSet>,
    /// `config.linkerd.io/proxy-require-identity-inbound-ports`.
    pub require_identity_ports: PortSet,
    /// Named TCP container ports; one name may stand for a port in each of several containers.
    pub port_names: BTreeMap<String, BTreeSet<u16>>,
    /// The paths of the HTTP probes on each port.
    pub probes: BTreeMap<u16, BTreeSet<String>>,
}

impl PolicyPod {
    /// The pod's namespace, name and policy settings; `None` without a namespace or name.
    pub fn from_pod(pod: &Pod) -> Option<(String, String, PolicyPod)> {
        let meta = &pod.metadata;
        let (namespace, name) = (meta.namespace.clone()?, meta.name.clone()?);
        let annotations = meta.annotations.clone().unwrap_or_default();
        let containers = pod.spec.as_ref().map_or(&[][..], |s| &s.containers[..]);
        let mut port_names: BTreeMap<String, BTreeSet<u16>> = BTreeMap::new();
        for (port, name) in containers
            .iter()
            .flat_map(|c| c.ports.iter().flatten())
            .filter_map(named_tcp_port)
        {
            port_names.entry(name.to_string()).or_default().insert(port);
        }
        let mut probes: BTreeMap<u16, BTreeSet<String>> = BTreeMap::new();
        for (port, path) in containers.iter().flat_map(http_probes) {
            probes.entry(port).or_default().insert(path);
        }
        let named = |name: &str| port_names.get(name).and_then(|p| p.first().copied());
        let ports = |key: &str| {
            annotations.get(key).map(|text| {
                PortSet::parse(text, named).unwrap_or_else(|err| {
                    tracing::debug!(%namespace, pod = %name, annotation = key, %err, "ignoring port list");
                    PortSet::default()
                })
            })
        };
        let opaque_ports = ports(mesh_names::annotations::OPAQUE_PORTS);
        let require_identity_ports =
            ports(mesh_names::annotations::REQUIRE_IDENTITY_INBOUND_PORTS).unwrap_or_default();
        let default_policy = annotations
            .get(mesh_names::annotations::DEFAULT_INBOUND_POLICY)
            .and_then(|text| match text.trim().parse() {
                Ok(policy) => Some(policy),
                Err(err) => {
                    tracing::debug!(%namespace, pod = %name, %err, "ignoring default-inbound-policy");
                    None
                }
            });
        let policy = PolicyPod {
            labels: meta.labels.clone().unwrap_or_default(),
            default_policy,
            opaque_ports,
            require_identity_ports,
            port_names,
            probes,
        };
        Some((namespace, name, policy))
    }
}

fn named_tcp_port(port: &k8s_openapi::api::core::v1::ContainerPort) -> Option<(u16, &str)> {
    if port
        .protocol
        .as_deref()
        .is_some_and(|p| !p.eq_ignore_ascii_case("TCP"))
    {
        return None;
    }
    let number = u16::try_from(port.container_port)
        .ok()
        .filter(|&p| p != 0)?;
    Some((number, port.name.as_deref()?))
}

/// The port and path of each HTTP probe of a container; a named port resolves among that
/// container's own ports, as the kubelet resolves it.
fn http_probes(container: &Container) -> impl Iterator<Item = (u16, String)> + '_ {
    let probes = [
        &container.liveness_probe,
        &container.readiness_probe,
        &container.startup_probe,
    ];
    probes.into_iter().flatten().filter_map(move |probe| {
        let get = probe.http_get.as_ref()?;
        let port = match &get.port {
            IntOrString::Int(n) => u16::try_from(*n).ok().filter(|&p| p != 0)?,
            IntOrString::String(name) => {
                container
                    .ports
                    .iter()
                    .flatten()
                    .filter_map(named_tcp_port)
                    .find(|(_, n)| n.eq_ignore_ascii_case(name))?
                    .0
            }
        };
        let uri: http::Uri = get.path.as_deref().unwrap_or("/").parse().ok()?;
        Some((port, uri.path().to_string()))
    })
}

/// What the index keeps of a `Server`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Server {
    pub labels: BTreeMap<String, String>,
    /// `None` for a Server of external workloads, which selects no pod.
    pub pod_selector: Option<Selector>,
    pub port: PortRef,
    pub protocol: Protocol,
    /// What its `accessPolicy` admits besides its authorizations; `deny` (the CRD's default)
    /// admits nobody.
    pub access_policy: Option<DefaultInboundPolicy>,
}

/// A container port by number or by name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PortRef {
    Number(u16),
    Name(String),
}

impl Server {
    pub fn from_object(obj: &DynamicObject) -> Result<Server, Invalid> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Spec {
            pod_selector: Option<Selector>,
            port: serde_json::Value,
            proxy_protocol: Option<String>,
            access_policy: Option<String>,
        }
        let spec: Spec = spec(obj)?;
        let port = match &spec.port {
            serde_json::Value::Number(n) => PortRef::Number(
                n.as_u64()
                    .and_then(|n| u16::try_from(n).ok())
                    .filter(|&p| p != 0)
                    .ok_or_else(|| invalid(format!("invalid port {n}")))?,
            ),
            serde_json::Value::String(name) if !name.is_empty() => PortRef::Name(name.clone()),
            other => return Err(invalid(format!("invalid port {other}"))),
        };
        let protocol = match spec.proxy_protocol.as_deref() {
            None | Some("unknown") => Protocol::Detect(DETECT_TIMEOUT),
            Some("HTTP/1") => Protocol::Http1,
            Some("HTTP/2") => Protocol::Http2,
            Some("gRPC") => Protocol::Grpc,
            Some("opaque") => Protocol::Opaque,
            Some("TLS") => Protocol::Tls,
            Some(other) => return Err(invalid(format!("unknown proxyProtocol {other:?}"))),
        };
        let access_policy = spec
            .access_policy
            .map(|p| p.parse().map_err(|e| invalid(format!("accessPolicy: {e}"))))
            .transpose()?;
        Ok(Server {
            labels: obj.metadata.labels.clone().unwrap_or_default(),
            pod_selector: spec.pod_selector,
            port,
            protocol,
            access_policy,
        })
    }
}

/// What the index keeps of a `ServerAuthorization`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerAuthz {
    pub server: ServerSelector,
    /// Empty: the cluster's networks.
    pub networks: Vec<NetworkMatch>,
    pub authentication: Authentication,
}

/// The `Server`s a `ServerAuthorization` applies to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServerSelector {
    Name(String),
    Selector(Selector),
}

impl ServerSelector {
    pub fn selects(&self, name: &str, labels: &BTreeMap<String, String>) -> bool {
        match self {
            ServerSelector::Name(n) => n == name,
            ServerSelector::Selector(s) => s.matches(labels),
        }
    }
}

#[derive(Deserialize)]
struct NetworkSpec {
    cidr: String,
    #[serde(default)]
    except: Vec<String>,
}

fn networks(specs: Vec<NetworkSpec>) -> Result<Vec<NetworkMatch>, Invalid> {
    let parse = |text: &str| text.parse::<Net>().map_err(|e| invalid(e.to_string()));
    specs
        .into_iter()
        .map(|n| {
            Ok(NetworkMatch {
                net: parse(&n.cidr)?,
                except: n
                    .except
                    .iter()
                    .map(|e| parse(e))
                    .collect::<Result<_, _>>()?,
            })
        })
        .collect()
}

impl ServerAuthz {
    pub fn from_object(obj: &DynamicObject, ids: &IdentityDomain) -> Result<ServerAuthz, Invalid> {
        #[derive(Deserialize)]
        struct Spec {
            server: ServerSpec,
            client: Client,
        }
        #[derive(Deserialize)]
        struct ServerSpec {
            name: Option<String>,
            selector: Option<Selector>,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Client {
            #[serde(default)]
            networks: Vec<NetworkSpec>,
            #[serde(default)]
            unauthenticated: bool,
            #[serde(rename = "meshTLS")]
            mesh_tls: Option<MeshTls>,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct MeshTls {
            #[serde(default, rename = "unauthenticatedTLS")]
            unauthenticated_tls: bool,
            #[serde(default)]
            identities: Vec<String>,
            #[serde(default)]
            service_accounts: Vec<ServiceAccount>,
        }
        #[derive(Deserialize)]
        struct ServiceAccount {
            name: String,
            namespace: Option<String>,
        }
        let spec: Spec = spec(obj)?;
        let own_ns = obj.metadata.namespace.as_deref().unwrap_or_default();
        let server = match (spec.server.name, spec.server.selector) {
            (Some(name), _) => ServerSelector::Name(name),
            (None, Some(selector)) => ServerSelector::Selector(selector),
            (None, None) => return Err(invalid("server: a name or a selector is required")),
        };
        let authentication = if spec.client.unauthenticated {
            Authentication::Unauthenticated
        } else if let Some(tls) = spec.client.mesh_tls {
            if tls.unauthenticated_tls {
                Authentication::TlsUnauthenticated
            } else {
                let identities: Vec<IdentityMatch> = tls
                    .identities
                    .iter()
                    .map(|id| IdentityMatch::parse(id))
                    .chain(tls.service_accounts.iter().map(|sa| {
                        ids.service_account(sa.namespace.as_deref().unwrap_or(own_ns), &sa.name)
                    }))
                    .collect();
                if identities.is_empty() {
                    return Err(invalid("client.meshTLS authorizes no clients"));
                }
                Authentication::TlsAuthenticated(identities)
            }
        } else {
            return Err(invalid("client: no authentication configured"));
        };
        Ok(ServerAuthz {
            server,
            networks: networks(spec.client.networks)?,
            authentication,
        })
    }
}

/// A reference to another object, as `targetRef` and `requiredAuthenticationRefs` write it.
#[derive(Clone, Debug, Deserialize)]
struct ObjectRef {
    group: Option<String>,
    kind: String,
    name: Option<String>,
    namespace: Option<String>,
}

impl ObjectRef {
    /// Whether it names `group`/`kind`: case-insensitive, and an empty group or `core` is the
    /// core group, as Linkerd compares them.
    fn is(&self, group: &str, kind: &str) -> bool {
        let core = |g: &str| {
            if g.is_empty() {
                "core".to_string()
            } else {
                g.to_string()
            }
        };
        core(self.group.as_deref().unwrap_or_default()).eq_ignore_ascii_case(&core(group))
            && self.kind.eq_ignore_ascii_case(kind)
    }

    fn name(&self) -> Result<String, Invalid> {
        self.name
            .clone()
            .filter(|n| !n.is_empty())
            .ok_or_else(|| invalid(format!("a {} reference needs a name", self.kind)))
    }
}

const POLICY_GROUP: &str = "policy.linkerd.io";

/// What the index keeps of an `AuthorizationPolicy`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthzPolicy {
    pub target: Target,
    pub authentications: Vec<AuthnRef>,
}

/// What an `AuthorizationPolicy` applies to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// A `Server` of the policy's namespace.
    Server(String),
    /// Every `Server` of the policy's namespace.
    Namespace,
    /// An HTTPRoute or GRPCRoute of the policy's namespace: it applies to that route's
    /// requests only.
    Route(RouteRef),
}

/// An authentication a client must satisfy; `None` namespaces are the policy's own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthnRef {
    MeshTls {
        namespace: Option<String>,
        name: String,
    },
    Network {
        namespace: Option<String>,
        name: String,
    },
    ServiceAccount {
        namespace: Option<String>,
        name: String,
    },
}

impl AuthzPolicy {
    pub fn from_object(obj: &DynamicObject) -> Result<AuthzPolicy, Invalid> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Spec {
            target_ref: ObjectRef,
            #[serde(default)]
            required_authentication_refs: Vec<ObjectRef>,
        }
        let spec: Spec = spec(obj)?;
        let t = &spec.target_ref;
        let target = if t.is(POLICY_GROUP, "Server") {
            Target::Server(t.name()?)
        } else if t.is("", "Namespace") {
            Target::Namespace
        } else if let Some(kind) = RouteKind::named(t.group.as_deref().unwrap_or_default(), &t.kind)
        {
            Target::Route(RouteRef {
                kind,
                name: t.name()?,
            })
        } else {
            return Err(invalid(format!("unsupported targetRef kind {}", t.kind)));
        };
        let authentications = spec
            .required_authentication_refs
            .iter()
            .map(|r| {
                let (namespace, name) = (r.namespace.clone().filter(|n| !n.is_empty()), r.name()?);
                if r.is(POLICY_GROUP, "MeshTLSAuthentication") {
                    Ok(AuthnRef::MeshTls { namespace, name })
                } else if r.is(POLICY_GROUP, "NetworkAuthentication") {
                    Ok(AuthnRef::Network { namespace, name })
                } else if r.is("", "ServiceAccount") {
                    Ok(AuthnRef::ServiceAccount { namespace, name })
                } else {
                    Err(invalid(format!(
                        "unsupported authentication kind {}",
                        r.kind
                    )))
                }
            })
            .collect::<Result<_, _>>()?;
        Ok(AuthzPolicy {
            target,
            authentications,
        })
    }
}

/// The identities a `MeshTLSAuthentication` accepts: its `identities`, and its `identityRefs`
/// (a ServiceAccount's identity, or every identity of a Namespace or, for a ServiceAccount
/// reference without a name, of its namespace).
pub fn mesh_tls_authentication(
    obj: &DynamicObject,
    ids: &IdentityDomain,
) -> Result<Vec<IdentityMatch>, Invalid> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Spec {
        #[serde(default)]
        identities: Vec<String>,
        #[serde(default)]
        identity_refs: Vec<ObjectRef>,
    }
    let spec: Spec = spec(obj)?;
    let own_ns = obj.metadata.namespace.as_deref().unwrap_or_default();
    let mut matches: Vec<IdentityMatch> = spec
        .identities
        .iter()
        .map(|id| IdentityMatch::parse(id))
        .collect();
    for r in &spec.identity_refs {
        let name = r.name.as_deref().filter(|n| !n.is_empty());
        let ns = r
            .namespace
            .as_deref()
            .filter(|n| !n.is_empty())
            .unwrap_or(own_ns);
        let id = if r.is("", "ServiceAccount") {
            match name {
                Some(sa) => ids.service_account(ns, sa),
                None => ids.namespace(ns),
            }
        } else if r.is("", "Namespace") {
            ids.namespace(name.unwrap_or(own_ns))
        } else {
            return Err(invalid(format!("unsupported identityRefs kind {}", r.kind)));
        };
        matches.push(id);
    }
    if matches.is_empty() {
        return Err(invalid("no identities configured"));
    }
    Ok(matches)
}

/// The client networks a `NetworkAuthentication` accepts.
pub fn network_authentication(obj: &DynamicObject) -> Result<Vec<NetworkMatch>, Invalid> {
    #[derive(Deserialize)]
    struct Spec {
        networks: Vec<NetworkSpec>,
    }
    let spec: Spec = spec(obj)?;
    let nets = networks(spec.networks)?;
    if nets.is_empty() {
        return Err(invalid("no networks configured"));
    }
    Ok(nets)
}

pub(super) fn spec<T: DeserializeOwned>(obj: &DynamicObject) -> Result<T, Invalid> {
    let spec = obj
        .data
        .get("spec")
        .ok_or_else(|| invalid("spec is missing"))?;
    T::deserialize(spec).map_err(|e| invalid(format!("spec: {e}")))
}
