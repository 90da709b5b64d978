//! Settings of inbound authorization policy: the default policy, the cluster networks,
//! require-identity ports, and the control plane's policy service.

use super::destination::{ControlAddr, control_addr, networks};
use super::{ConfigError, PortSet, Reader};
use crate::inbound::policy::IpNet;
use mesh_names::policy::DefaultInboundPolicy;

/// What a port allows, and who to ask.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyConfig {
    /// `LINKERD2_PROXY_INBOUND_DEFAULT_POLICY`.
    pub default: DefaultInboundPolicy,
    /// `LINKERD2_PROXY_POLICY_CLUSTER_NETWORKS`: the networks of `cluster-*` policies.
    pub cluster_networks: Vec<IpNet>,
    /// `LINKERD2_PROXY_INBOUND_PORTS_REQUIRE_IDENTITY`: ports whose default policy asks
    /// for a client identity.
    pub require_identity: PortSet,
    /// `LINKERD2_PROXY_INBOUND_PORTS`: the pod's ports, watched from start-up.
    pub inbound_ports: PortSet,
    /// The policy service, when `LINKERD2_PROXY_POLICY_SVC_ADDR` is set.
    pub control: Option<PolicyControl>,
}

/// Where the policy service is and who the proxy says it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyControl {
    /// `LINKERD2_PROXY_POLICY_SVC_ADDR`.
    pub addr: ControlAddr,
    /// `LINKERD2_PROXY_POLICY_WORKLOAD`, sent as it is (Linkerd's injector writes
    /// `{"ns":…, "pod":…}`).
    pub workload: String,
    /// `LINKERD2_PROXY_POLICY_SVC_NAME`: the identity the policy service must present; the
    /// connection is mesh TLS when the proxy has an identity and the address is not loopback
    /// (`control::Transport`).
    pub identity: Option<String>,
}

/// Linkerd's default cluster networks (its `clusterNetworks` value), used when
/// `LINKERD2_PROXY_POLICY_CLUSTER_NETWORKS` is unset.
pub use mesh_names::policy::DEFAULT_CLUSTER_NETWORKS;

impl Reader<'_> {
    pub(super) fn policy(&mut self) -> PolicyConfig {
        use mesh_names::env::{
            INBOUND_DEFAULT_POLICY as DEFAULT, POLICY_CLUSTER_NETWORKS as NETWORKS,
            POLICY_SVC_ADDR as ADDR, POLICY_SVC_NAME as NAME, POLICY_WORKLOAD as WORKLOAD,
        };
        let default = match self.env.var(DEFAULT).filter(|v| !v.trim().is_empty()) {
            None => DefaultInboundPolicy::default(),
            Some(value) => match value.parse() {
                Ok(p) => p,
                Err(_) => {
                    self.errors.push(ConfigError::OneOf {
                        name: DEFAULT,
                        value,
                        expected: &DefaultInboundPolicy::NAMES,
                    });
                    DefaultInboundPolicy::default()
                }
            },
        };
        let value = self
            .env
            .var(NETWORKS)
            .unwrap_or_else(|| DEFAULT_CLUSTER_NETWORKS.to_owned());
        let cluster_networks = match networks(&value) {
            Some(n) => n
                .list()
                .iter()
                .filter_map(|(ip, len)| IpNet::new(*ip, *len))
                .collect(),
            None => {
                self.errors.push(ConfigError::Networks {
                    name: NETWORKS,
                    value,
                });
                Vec::new()
            }
        };
        let require_identity = self.ports(
            "LINKERD2_PROXY_INBOUND_PORTS_REQUIRE_IDENTITY",
            &PortSet::default(),
        );
        let inbound_ports = self.ports("LINKERD2_PROXY_INBOUND_PORTS", &PortSet::default());
        let workload = self.env.var(WORKLOAD).filter(|v| !v.trim().is_empty());
        let control = match self.env.var(ADDR).filter(|v| !v.trim().is_empty()) {
            None => None,
            Some(value) => match (control_addr(&value), workload) {
                (None, _) => {
                    self.errors
                        .push(ConfigError::HostPort { name: ADDR, value });
                    None
                }
                (Some(_), None) => {
                    self.errors.push(ConfigError::Requires {
                        name: ADDR,
                        needs: WORKLOAD,
                    });
                    None
                }
                (Some(addr), Some(workload)) => Some(PolicyControl {
                    addr,
                    workload,
                    identity: self.service_identity(NAME),
                }),
            },
        };
        PolicyConfig {
            default,
            cluster_networks,
            require_identity,
            inbound_ports,
            control,
        }
    }
}
