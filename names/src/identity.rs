//! The identity name format: what a workload's certificate names and what peers verify.

/// The audience of the projected service-account token a proxy presents to the identity service.
pub const TOKEN_AUDIENCE: &str = "identity.l5d.io";

/// The identity of a workload running as service account `sa` in namespace `ns`, as Linkerd
/// derives it: `<sa>.<ns>.serviceaccount.identity.<control-plane-ns>.<trust-domain>`.
pub fn workload(sa: &str, ns: &str, control_plane_ns: &str, trust_domain: &str) -> String {
    format!("{sa}.{ns}.serviceaccount.identity.{control_plane_ns}.{trust_domain}")
}

/// The service account and namespace a [`workload`] identity names, or `None` for a name of
/// another shape. The trust domain is not checked: peers' proxies verified it.
pub fn workload_parts(identity: &str) -> Option<(&str, &str)> {
    let (sa, rest) = identity.split_once('.')?;
    let (ns, rest) = rest.split_once('.')?;
    let rest = rest.strip_prefix("serviceaccount.identity.")?;
    (!sa.is_empty() && !ns.is_empty() && !rest.is_empty()).then_some((sa, ns))
}

/// What every identity of namespace `ns` ends with: `<ns>.serviceaccount.identity.<control-plane-ns>.<trust-domain>`
/// (policies match `*.` followed by it).
pub fn namespace_suffix(ns: &str, control_plane_ns: &str, trust_domain: &str) -> String {
    format!("{ns}.serviceaccount.identity.{control_plane_ns}.{trust_domain}")
}

/// The name of the identity issuer certificate, `identity.<control-plane-ns>.<trust-domain>`.
pub fn issuer(control_plane_ns: &str, trust_domain: &str) -> String {
    format!("identity.{control_plane_ns}.{trust_domain}")
}

/// The identity service's service account, whose identity name proxies verify the service by
/// (`LINKERD2_PROXY_IDENTITY_SVC_NAME`).
pub const SERVICE_ACCOUNT: &str = "linkerd-identity";

/// The identity service's own identity name.
pub fn service(control_plane_ns: &str, trust_domain: &str) -> String {
    workload(
        SERVICE_ACCOUNT,
        control_plane_ns,
        control_plane_ns,
        trust_domain,
    )
}

/// The files of the `linkerd-identity-issuer` Secret: the issuer certificate and its key.
pub const ISSUER_CRT_FILE: &str = "crt.pem";
pub const ISSUER_KEY_FILE: &str = "key.pem";

/// The Kubernetes user name prefix of a service account: `system:serviceaccount:<ns>:<sa>`.
pub const SERVICE_ACCOUNT_USER_PREFIX: &str = "system:serviceaccount:";

#[cfg(test)]
mod tests {
    #[test]
    fn workload_parts_read_back_what_workload_writes() {
        let id = super::workload("web", "emojivoto", "linkerd", "cluster.local");
        assert_eq!(super::workload_parts(&id), Some(("web", "emojivoto")));
        for other in [
            "identity.linkerd.cluster.local",
            "web.emojivoto.serviceaccount.identity.",
            "web..serviceaccount.identity.linkerd.cluster.local",
            "web.emojivoto.svc.cluster.local",
        ] {
            assert_eq!(super::workload_parts(other), None, "{other}");
        }
    }

    #[test]
    fn workload_names_are_linkerds() {
        assert_eq!(
            super::workload("web", "emojivoto", "linkerd", "cluster.local"),
            "web.emojivoto.serviceaccount.identity.linkerd.cluster.local"
        );
    }
}
