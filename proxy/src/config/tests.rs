use std::collections::BTreeMap;
use std::time::Duration;

use super::*;

fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn defaults_match_linkerd() {
    let c = Config::from_env(&env(&[])).unwrap();
    assert_eq!(c.inbound.listen, vec!["0.0.0.0:4143".parse().unwrap()]);
    assert_eq!(c.outbound.listen, vec!["127.0.0.1:4140".parse().unwrap()]);
    assert_eq!(c.admin.listen, "127.0.0.1:4191".parse().unwrap());
    assert_eq!(
        c.inbound.detect_timeout,
        DetectTimeout(Duration::from_secs(10))
    );
    assert_eq!(
        c.outbound.detect_timeout,
        DetectTimeout(Duration::from_secs(10))
    );
    assert_eq!(
        c.inbound.connect_timeout,
        ConnectTimeout(Duration::from_millis(300))
    );
    assert_eq!(
        c.outbound.connect_timeout,
        ConnectTimeout(Duration::from_secs(1))
    );
    assert_eq!(c.shutdown_grace_period, Duration::from_secs(120));
    assert_eq!(c.cores, 1);
    for port in [25, 587, 3306, 4444, 5432, 6379, 9300, 11211] {
        assert!(c.inbound.opaque_ports.0.contains(port), "{port}");
    }
    assert!(!c.inbound.opaque_ports.0.contains(80));
    assert_eq!(
        c.inbound.server_speaks_first,
        ServerSpeaksFirst(Some(Duration::from_millis(50)))
    );
    assert_eq!(c.admin.shutdown_endpoint, ShutdownEndpoint::Enabled);
    assert!(c.unsupported.is_empty());
}

#[test]
fn linkerd_durations() {
    assert_eq!(parse::duration("100ms"), Some(Duration::from_millis(100)));
    assert_eq!(parse::duration(" 10s\t"), Some(Duration::from_secs(10)));
    assert_eq!(parse::duration("5m"), Some(Duration::from_secs(300)));
    assert_eq!(parse::duration("1h"), Some(Duration::from_secs(3600)));
    assert_eq!(parse::duration("2d"), Some(Duration::from_secs(172_800)));
    assert_eq!(parse::duration("0"), Some(Duration::ZERO));
    for bad in [
        "1",
        "1.5s",
        "1 ms",
        "ms",
        "",
        "12moons",
        "-1s",
        "99999999999999999999s",
    ] {
        assert_eq!(parse::duration(bad), None, "{bad:?}");
    }
}

#[test]
fn port_lists_and_ranges() {
    let set = parse::ports("3000, 5000-6000,,25").unwrap();
    assert!(set.contains(25) && set.contains(3000) && set.contains(5500));
    assert!(!set.contains(4000) && !set.contains(6001));
    assert_eq!(set.ranges(), &[25..=25, 3000..=3000, 5000..=6000]);
    assert_eq!(parse::ports("1-3,2-5").unwrap().ranges(), &[1..=5]);
    assert!(parse::ports("").unwrap().is_empty());
    for bad in ["http", "80-79", "-1", "1-", "70000", "mysql"] {
        assert!(parse::ports(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn every_bad_value_is_reported_with_its_variable() {
    let errors = Config::from_env(&env(&[
        ("LINKERD2_PROXY_INBOUND_DETECT_TIMEOUT", "10"),
        ("LINKERD2_PROXY_ADMIN_LISTEN_ADDR", "localhost:4191"),
        (
            "LINKERD2_PROXY_INBOUND_PORTS_DISABLE_PROTOCOL_DETECTION",
            "3000,mysql",
        ),
        ("LINKERD2_PROXY_CORES", "0"),
        ("LINKERD2_PROXY_SHUTDOWN_ENDPOINT_ENABLED", "yes"),
        ("LINKERD2_PROXY_LOG", "info,a=b=c"),
        ("LINKERD2_PROXY_LOG_FORMAT", "xml"),
        ("MESH_PROXY_MAX_HEADER_BYTES", "10"),
    ]))
    .unwrap_err();
    let text = errors.to_string();
    for name in [
        "LINKERD2_PROXY_INBOUND_DETECT_TIMEOUT",
        "LINKERD2_PROXY_ADMIN_LISTEN_ADDR",
        "LINKERD2_PROXY_INBOUND_PORTS_DISABLE_PROTOCOL_DETECTION",
        "LINKERD2_PROXY_CORES",
        "LINKERD2_PROXY_SHUTDOWN_ENDPOINT_ENABLED",
        "LINKERD2_PROXY_LOG=",
        "LINKERD2_PROXY_LOG_FORMAT",
        "MESH_PROXY_MAX_HEADER_BYTES",
    ] {
        assert!(text.contains(name), "{name} missing from:\n{text}");
    }
    assert_eq!(errors.0.len(), 8, "{text}");
}

#[test]
fn mesh_knobs() {
    let c = Config::from_env(&env(&[
        ("MESH_PROXY_SERVER_SPEAKS_FIRST_WINDOW", "0"),
        ("MESH_PROXY_INBOUND_FORWARD_ADDR", "127.0.0.1:8080"),
        ("MESH_PROXY_MAX_HEADER_BYTES", "16Ki"),
        ("MESH_PROXY_RESPONSE_TIMEOUT", "2s"),
        (
            "LINKERD2_PROXY_OUTBOUND_LISTEN_ADDRS",
            "127.0.0.1:4140,[::1]:4140",
        ),
        ("LINKERD2_PROXY_CORES", "2"),
        ("LINKERD2_PROXY_SHUTDOWN_ENDPOINT_ENABLED", "false"),
    ]))
    .unwrap();
    assert_eq!(c.inbound.server_speaks_first, ServerSpeaksFirst(None));
    assert_eq!(c.inbound.forward, Some("127.0.0.1:8080".parse().unwrap()));
    assert_eq!(c.limits.max_header_bytes, 16 * 1024);
    assert_eq!(c.limits.response_timeout, Some(Duration::from_secs(2)));
    assert_eq!(c.outbound.listen.len(), 2);
    assert_eq!(c.cores, 2);
    assert_eq!(c.admin.shutdown_endpoint, ShutdownEndpoint::Disabled);
}

/// Every variable in the env block of a Linkerd `--manual` injection must be accepted.
#[test]
fn linkerd_injected_env_is_accepted() {
    let Some(dir) = crate::conformance::linkerd_testdata() else {
        return;
    };
    let path = dir.join("inject_emojivoto_deployment.golden.yml");
    let yaml = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut vars = env_block(&yaml);
    assert!(vars.len() > 30, "found only {} variables", vars.len());
    // The token the kubelet would have projected into the pod.
    let token = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(token.path(), "a-token").unwrap();
    vars.insert(
        "LINKERD2_PROXY_IDENTITY_TOKEN_FILE".into(),
        token.path().display().to_string(),
    );
    let c = Config::from_env(&vars).unwrap_or_else(|e| panic!("rejected Linkerd's env:\n{e}"));
    assert_eq!(c.cores, 1);
    assert_eq!(c.admin.listen, "0.0.0.0:4191".parse().unwrap());
    assert_eq!(
        c.inbound.connect_timeout,
        ConnectTimeout(Duration::from_millis(100))
    );
    assert_eq!(c.admin.shutdown_endpoint, ShutdownEndpoint::Disabled);
    let dst = c
        .destination
        .expect("the destination service is configured");
    assert_eq!(
        dst.addr.to_string(),
        "linkerd-dst-headless.linkerd.svc.cluster.local.:8086"
    );
    assert!(dst.context.starts_with("{\"ns\":"), "{}", dst.context);
    assert_eq!(dst.profile_suffixes.as_slice(), ["svc.cluster.local."]);
    assert!(dst.profile_networks.contains("10.1.2.3".parse().unwrap()));
    assert!(!dst.profile_networks.contains("8.8.8.8".parse().unwrap()));
    assert_eq!(
        dst.identity.as_deref(),
        Some("linkerd-destination.linkerd.serviceaccount.identity.linkerd.cluster.local")
    );
    assert!(
        !c.unsupported
            .contains(&"LINKERD2_PROXY_DESTINATION_SVC_ADDR".to_string())
    );
    let certify = c.certify.expect("the identity service is configured");
    assert_eq!(
        certify.addr.to_string(),
        "linkerd-identity-headless.linkerd.svc.cluster.local.:8080"
    );
    assert_eq!(
        certify.server_name,
        "linkerd-identity.linkerd.serviceaccount.identity.linkerd.cluster.local"
    );
    // `$(_pod_sa).$(_pod_ns)` as the kubelet expands them (both are field references here).
    assert_eq!(
        certify.local_name,
        "from-field.from-field.serviceaccount.identity.linkerd.cluster.local"
    );
    assert_eq!(certify.trust_anchors.len(), 1);
    assert!(
        !c.unsupported
            .iter()
            .any(|v| v.starts_with("LINKERD2_PROXY_IDENTITY_")),
        "{:?}",
        c.unsupported
    );
    assert!(
        !c.unsupported
            .contains(&"LINKERD2_PROXY_INBOUND_CONNECT_TIMEOUT".to_string())
    );
}

/// Pulls `name`/`value` pairs out of the proxy container's env list, as the kubelet would
/// set them: values that come from `valueFrom` get a placeholder, block scalars keep all
/// their lines, and `$(NAME)` references to earlier variables are expanded.
fn env_block(yaml: &str) -> BTreeMap<String, String> {
    let mut vars: BTreeMap<String, String> = BTreeMap::new();
    let lines: Vec<&str> = yaml.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let Some(name) = line.trim().strip_prefix("- name: ") else {
            continue;
        };
        if !(name.starts_with("LINKERD2_PROXY_") || name.starts_with('_')) {
            continue;
        }
        let next = lines.get(i + 1).copied().unwrap_or("");
        let mut value = match next.trim().strip_prefix("value: ") {
            Some("|") => {
                let indent = |l: &str| l.len() - l.trim_start().len();
                let outer = indent(next);
                let block: Vec<&str> = lines[i + 2..]
                    .iter()
                    .take_while(|l| indent(l) > outer)
                    .map(|l| l.trim())
                    .collect();
                block.join("\n") + "\n"
            }
            Some(v) => v.trim_matches('"').to_string(),
            None => "from-field".to_string(),
        };
        for (k, v) in &vars {
            value = value.replace(&format!("$({k})"), v);
        }
        vars.insert(name.to_string(), value);
    }
    vars
}

#[test]
fn metric_series_limits() {
    let c = Config::from_env(&env(&[])).unwrap();
    assert_eq!(c.metrics.max_series, 1000);
    assert_eq!(c.metrics.retain_idle, Duration::from_secs(600));
    let c = Config::from_env(&env(&[
        ("MESH_PROXY_METRICS_MAX_SERIES", "50"),
        ("LINKERD2_PROXY_METRICS_RETAIN_IDLE", "30s"),
    ]))
    .unwrap();
    assert_eq!(c.metrics.max_series, 50);
    assert_eq!(c.metrics.retain_idle, Duration::from_secs(30));
    // Linkerd's variable is read, not reported as unsupported.
    assert!(c.unsupported.is_empty(), "{:?}", c.unsupported);
    let errors = Config::from_env(&env(&[
        ("MESH_PROXY_METRICS_MAX_SERIES", "0"),
        ("LINKERD2_PROXY_METRICS_RETAIN_IDLE", "10"),
    ]))
    .unwrap_err();
    assert_eq!(errors.0.len(), 2, "{errors}");
}

#[test]
fn destination_service() {
    let c = Config::from_env(&env(&[])).unwrap();
    assert_eq!(c.destination, None, "no control plane unless configured");
    let c = Config::from_env(&env(&[("LINKERD2_PROXY_DESTINATION_SVC_ADDR", " ")])).unwrap();
    assert_eq!(c.destination, None);

    let c = Config::from_env(&env(&[(
        "LINKERD2_PROXY_DESTINATION_SVC_ADDR",
        "linkerd-dst-headless.linkerd.svc.cluster.local.:8086",
    )]))
    .unwrap();
    let dst = c.destination.unwrap();
    assert_eq!(
        dst.addr.host,
        "linkerd-dst-headless.linkerd.svc.cluster.local."
    );
    assert_eq!(dst.addr.port, 8086);
    assert_eq!(dst.context, "");
    assert_eq!(dst.identity, None);
    assert_eq!(dst.profile_suffixes.as_slice(), ["svc.cluster.local."]);
    assert!(
        dst.profile_networks
            .contains("203.0.113.9".parse().unwrap())
    );

    let c = Config::from_env(&env(&[
        ("LINKERD2_PROXY_DESTINATION_SVC_ADDR", "[::1]:8086"),
        (
            "LINKERD2_PROXY_DESTINATION_PROFILE_SUFFIXES",
            "Example.COM, svc.cluster.local.,,",
        ),
        (
            "LINKERD2_PROXY_DESTINATION_PROFILE_NETWORKS",
            "10.0.0.0/8, fd00::/8",
        ),
        (
            "LINKERD2_PROXY_DESTINATION_CONTEXT",
            r#"{"ns":"emojivoto"}"#,
        ),
    ]))
    .unwrap();
    let dst = c.destination.unwrap();
    assert_eq!(dst.addr.to_string(), "[::1]:8086");
    assert_eq!(dst.context, r#"{"ns":"emojivoto"}"#);
    assert_eq!(
        dst.profile_suffixes.as_slice(),
        ["example.com.", "svc.cluster.local."]
    );
    assert!(dst.profile_networks.contains("10.255.0.1".parse().unwrap()));
    assert!(dst.profile_networks.contains("fd00::1".parse().unwrap()));
    assert!(!dst.profile_networks.contains("11.0.0.1".parse().unwrap()));
    assert!(!dst.profile_networks.contains("fe80::1".parse().unwrap()));
}

#[test]
fn destination_bad_values_name_their_variable() {
    for (name, value) in [
        ("LINKERD2_PROXY_DESTINATION_SVC_ADDR", "linkerd-dst"),
        ("LINKERD2_PROXY_DESTINATION_SVC_ADDR", "linkerd-dst:0"),
        ("LINKERD2_PROXY_DESTINATION_SVC_ADDR", "linkerd-dst:http"),
        ("LINKERD2_PROXY_DESTINATION_SVC_ADDR", "::1:8086"),
        ("LINKERD2_PROXY_DESTINATION_SVC_ADDR", "bad name:8086"),
        ("LINKERD2_PROXY_DESTINATION_PROFILE_SUFFIXES", "svc..local"),
        ("LINKERD2_PROXY_DESTINATION_PROFILE_SUFFIXES", "svc/cluster"),
        ("LINKERD2_PROXY_DESTINATION_PROFILE_NETWORKS", "10.0.0.0"),
        ("LINKERD2_PROXY_DESTINATION_PROFILE_NETWORKS", "10.0.0.0/33"),
    ] {
        let mut vars = env(&[(name, value)]);
        vars.entry("LINKERD2_PROXY_DESTINATION_SVC_ADDR".into())
            .or_insert_with(|| "localhost:8086".into());
        let errors = Config::from_env(&vars).unwrap_err();
        assert_eq!(errors.0.len(), 1, "{name}={value}: {errors}");
        let text = errors.to_string();
        assert!(
            text.starts_with(&format!("{name}={value:?}: ")),
            "{name}={value}: {text}"
        );
    }
}

#[test]
fn suffixes_match_at_label_boundaries() {
    let s = parse_suffixes("svc.cluster.local.").unwrap();
    assert!(s.contains("web.ns.svc.cluster.local"));
    assert!(s.contains("web.ns.svc.cluster.local."));
    assert!(s.contains("WEB.ns.SVC.cluster.local"));
    assert!(s.contains("svc.cluster.local"));
    assert!(!s.contains("websvc.cluster.local"));
    assert!(!s.contains("web.ns"));
    assert!(!s.contains("cluster.local"));
    assert!(!s.contains(""));
    let all = parse_suffixes(".").unwrap();
    assert!(all.contains("example.com") && all.contains("web"));
    let none = parse_suffixes("").unwrap();
    assert!(!none.contains("web.ns.svc.cluster.local"));
}

#[test]
fn namer_variables() {
    let dir = tempfile::tempdir().unwrap();
    let dir_s = dir.path().to_str().unwrap();
    let c = Config::from_env(&env(&[])).unwrap();
    assert_eq!(c.namer, None);

    // The directory alone: Linkerd's usual `/svc => /#/io.l5d.fs`.
    let c = Config::from_env(&env(&[("MESH_PROXY_FS_NAMER_DIR", dir_s)])).unwrap();
    let namer = c.namer.unwrap();
    assert_eq!(namer.dtab.to_string(), DEFAULT_DTAB);
    assert_eq!(namer.dir, dir.path());

    let c = Config::from_env(&env(&[
        ("MESH_PROXY_FS_NAMER_DIR", dir_s),
        ("MESH_PROXY_DTAB", "/svc => /#/io.l5d.fs/a | $"),
    ]))
    .unwrap();
    assert_eq!(
        c.namer.unwrap().dtab.to_string(),
        "/svc => /#/io.l5d.fs/a | $"
    );

    let file = dir.path().join("dtab");
    std::fs::write(&file, "# comment\n/svc => /#/io.l5d.fs/b;\n").unwrap();
    let c = Config::from_env(&env(&[
        ("MESH_PROXY_FS_NAMER_DIR", dir_s),
        ("MESH_PROXY_DTAB_FILE", file.to_str().unwrap()),
    ]))
    .unwrap();
    assert_eq!(c.namer.unwrap().dtab.to_string(), "/svc => /#/io.l5d.fs/b");
}

#[test]
fn bad_namer_variables_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let dir_s = dir.path().to_str().unwrap();
    let errors = |pairs: &[(&str, &str)]| -> Vec<String> {
        match Config::from_env(&env(pairs)) {
            Ok(c) => panic!("{pairs:?} should fail, got {:?}", c.namer),
            Err(e) => e.0.iter().map(|e| e.to_string()).collect(),
        }
    };
    assert_eq!(
        errors(&[
            ("MESH_PROXY_FS_NAMER_DIR", dir_s),
            ("MESH_PROXY_DTAB", "/svc => /a;\n/b =>> /c")
        ]),
        [
            "MESH_PROXY_DTAB: not a dtab: at 2:6: expected a path, '!', '~', '$', '(' or a weight, found '>'"
        ]
    );
    let file = dir.path().join("dtab");
    std::fs::write(&file, "/svc => /a &").unwrap();
    let file_s = file.to_str().unwrap();
    assert_eq!(
        errors(&[
            ("MESH_PROXY_FS_NAMER_DIR", dir_s),
            ("MESH_PROXY_DTAB_FILE", file_s)
        ]),
        [format!(
            "MESH_PROXY_DTAB_FILE={file_s:?}: not a dtab: at 1:13: expected a path, '!', '~', '$', '(' or a weight, found end of input"
        )]
    );
    assert_eq!(
        errors(&[
            ("MESH_PROXY_FS_NAMER_DIR", dir_s),
            ("MESH_PROXY_DTAB", "/svc => ~"),
            ("MESH_PROXY_DTAB_FILE", file_s),
        ]),
        ["MESH_PROXY_DTAB and MESH_PROXY_DTAB_FILE are both set; set one of them"]
    );
    assert_eq!(
        errors(&[("MESH_PROXY_DTAB", "/svc => ~")]),
        ["MESH_PROXY_DTAB is set but MESH_PROXY_FS_NAMER_DIR is not; it needs both"]
    );
    let missing = dir.path().join("missing");
    let missing_s = missing.to_str().unwrap();
    let e = errors(&[("MESH_PROXY_FS_NAMER_DIR", missing_s)]);
    assert!(
        e[0].starts_with(&format!("MESH_PROXY_FS_NAMER_DIR={missing_s:?}: ")),
        "{e:?}"
    );
    let e = errors(&[("MESH_PROXY_FS_NAMER_DIR", file_s)]);
    assert_eq!(
        e,
        [format!(
            "MESH_PROXY_FS_NAMER_DIR={file_s:?}: not a directory"
        )]
    );
    let e = errors(&[
        ("MESH_PROXY_FS_NAMER_DIR", dir_s),
        ("MESH_PROXY_DTAB_FILE", missing_s),
    ]);
    assert!(
        e[0].starts_with(&format!("MESH_PROXY_DTAB_FILE={missing_s:?}: ")),
        "{e:?}"
    );
    std::fs::write(&file, "#".repeat(crate::dtab::MAX_DTAB_LEN + 1)).unwrap();
    let e = errors(&[
        ("MESH_PROXY_FS_NAMER_DIR", dir_s),
        ("MESH_PROXY_DTAB_FILE", file_s),
    ]);
    assert!(e[0].ends_with("longer than 65536 bytes"), "{e:?}");
}

#[test]
fn inbound_policy_variables() {
    use mesh_names::policy::DefaultInboundPolicy;
    let c = Config::from_env(&env(&[])).unwrap();
    assert_eq!(c.policy.default, DefaultInboundPolicy::AllUnauthenticated);
    assert_eq!(
        c.policy.cluster_networks.len(),
        5,
        "Linkerd's cluster networks"
    );
    assert!(c.policy.control.is_none());
    assert!(c.policy.require_identity.is_empty());

    let c = Config::from_env(&env(&[
        (
            "LINKERD2_PROXY_INBOUND_DEFAULT_POLICY",
            "cluster-authenticated",
        ),
        (
            "LINKERD2_PROXY_POLICY_CLUSTER_NETWORKS",
            "10.0.0.0/8, fd00::/8",
        ),
        (
            "LINKERD2_PROXY_INBOUND_PORTS_REQUIRE_IDENTITY",
            "8080,9000-9001",
        ),
        ("LINKERD2_PROXY_INBOUND_PORTS", "8080,8081"),
        (
            "LINKERD2_PROXY_POLICY_SVC_ADDR",
            "linkerd-policy.linkerd.svc.cluster.local.:8090",
        ),
        (
            "LINKERD2_PROXY_POLICY_WORKLOAD",
            "{\"ns\":\"shop\", \"pod\":\"web-1\"}\n",
        ),
        (
            "LINKERD2_PROXY_POLICY_SVC_NAME",
            "linkerd-destination.linkerd.serviceaccount.identity.linkerd.cluster.local",
        ),
    ]))
    .unwrap();
    assert_eq!(c.policy.default, DefaultInboundPolicy::ClusterAuthenticated);
    let nets: Vec<String> = c
        .policy
        .cluster_networks
        .iter()
        .map(|n| n.to_string())
        .collect();
    assert_eq!(nets, ["10.0.0.0/8", "fd00::/8"]);
    assert!(c.policy.require_identity.contains(9001));
    assert!(!c.policy.require_identity.contains(8081));
    assert!(c.policy.inbound_ports.contains(8081));
    let control = c.policy.control.unwrap();
    assert_eq!(control.addr.port, 8090);
    assert_eq!(control.workload, "{\"ns\":\"shop\", \"pod\":\"web-1\"}\n");
    assert_eq!(
        control.identity.as_deref(),
        Some("linkerd-destination.linkerd.serviceaccount.identity.linkerd.cluster.local")
    );
    assert!(!control.addr.is_loopback());
    assert!(c.unsupported.is_empty(), "{:?}", c.unsupported);

    let errors = Config::from_env(&env(&[
        ("LINKERD2_PROXY_INBOUND_DEFAULT_POLICY", "allow"),
        ("LINKERD2_PROXY_POLICY_CLUSTER_NETWORKS", "10.0.0.0"),
        ("LINKERD2_PROXY_POLICY_SVC_ADDR", "policy:8090"),
    ]))
    .unwrap_err()
    .to_string();
    assert!(
        errors.contains(
            "LINKERD2_PROXY_INBOUND_DEFAULT_POLICY=\"allow\": expected one of all-unauthenticated"
        ),
        "{errors}"
    );
    assert!(
        errors.contains("LINKERD2_PROXY_POLICY_CLUSTER_NETWORKS=\"10.0.0.0\""),
        "{errors}"
    );
    assert!(
        errors.contains(
            "LINKERD2_PROXY_POLICY_SVC_ADDR is set but LINKERD2_PROXY_POLICY_WORKLOAD is not"
        ),
        "{errors}"
    );
}

#[test]
fn control_plane_service_names_must_be_identity_names() {
    let errors = Config::from_env(&env(&[
        ("LINKERD2_PROXY_DESTINATION_SVC_ADDR", "dst:8086"),
        ("LINKERD2_PROXY_DESTINATION_SVC_NAME", "dst.example.com."),
        ("LINKERD2_PROXY_POLICY_SVC_ADDR", "policy:8090"),
        ("LINKERD2_PROXY_POLICY_WORKLOAD", "{}"),
        ("LINKERD2_PROXY_POLICY_SVC_NAME", "not a name"),
    ]))
    .unwrap_err()
    .to_string();
    for expected in [
        "LINKERD2_PROXY_DESTINATION_SVC_NAME=\"dst.example.com.\": not an identity name",
        "LINKERD2_PROXY_POLICY_SVC_NAME=\"not a name\": not an identity name",
    ] {
        assert!(errors.contains(expected), "{errors}");
    }

    // Loopback as Linkerd sees it: the absolute `localhost.` and loopback IPs.
    let c = Config::from_env(&env(&[
        ("LINKERD2_PROXY_DESTINATION_SVC_ADDR", "localhost.:8086"),
        ("LINKERD2_PROXY_POLICY_SVC_ADDR", "[::1]:8090"),
        ("LINKERD2_PROXY_POLICY_WORKLOAD", "{}"),
    ]))
    .unwrap();
    assert!(c.destination.unwrap().addr.is_loopback());
    assert!(c.policy.control.unwrap().addr.is_loopback());
}
