use super::{Plaintext, decide};
use crate::config::ControlAddr;

const NAME: &str = "linkerd-destination.linkerd.serviceaccount.identity.linkerd.cluster.local";

fn addr(host: &str) -> ControlAddr {
    ControlAddr {
        host: host.to_owned(),
        port: 8086,
    }
}

#[test]
fn loopback_addresses_stay_plaintext_as_linkerd_decides() {
    for host in [
        "localhost.",
        "LocalHost.",
        "127.0.0.1",
        "127.3.2.1",
        "[::1]",
    ] {
        assert_eq!(
            decide(&addr(host), Some(NAME), true),
            Err(Plaintext::Loopback),
            "{host}"
        );
    }
    // A relative name may be tried under the pod's search domains first: not loopback.
    for host in [
        "localhost",
        "localhost1.",
        "mylocalhost.",
        "10.0.0.1",
        "[fd00::1]",
    ] {
        assert_eq!(decide(&addr(host), Some(NAME), true), Ok(NAME), "{host}");
    }
}

#[test]
fn mesh_tls_needs_an_identity_and_the_service_name() {
    let dst = addr("linkerd-dst-headless.linkerd.svc.cluster.local.");
    assert_eq!(decide(&dst, Some(NAME), true), Ok(NAME));
    assert_eq!(decide(&dst, Some(NAME), false), Err(Plaintext::NoIdentity));
    assert_eq!(decide(&dst, None, true), Err(Plaintext::NoName));
    assert_eq!(decide(&dst, None, false), Err(Plaintext::NoIdentity));
}
