use super::*;

#[test]
fn the_shipped_defaults_are_valid() {
    let values = Values::defaults();
    assert_eq!(values.proxy.ports.admin, 4191);
    assert_eq!(values.proxy.uid, 2102);
    assert!(values.proxy.native_sidecar);
    assert_eq!(values.webhook_failure_policy, "Ignore");
}

#[test]
fn set_takes_the_type_of_the_default() {
    let mut b = ValuesBuilder::new().unwrap();
    b.set("proxy.logLevel=debug").unwrap();
    b.set("proxy.uid=1234").unwrap();
    b.set("proxy.await=false").unwrap();
    b.set("proxyInjector.excludedNamespaces={kube-system,cert-manager}")
        .unwrap();
    let v = b.build().unwrap();
    assert_eq!(v.proxy.log_level, "debug");
    assert_eq!(v.proxy.uid, 1234);
    assert!(!v.proxy.r#await);
    assert_eq!(
        v.proxy_injector.excluded_namespaces,
        ["kube-system", "cert-manager"]
    );
}

#[test]
fn unknown_keys_are_named_with_a_suggestion() {
    let mut b = ValuesBuilder::new().unwrap();
    let err = b.set("proxy.logLevl=debug").unwrap_err();
    assert_eq!(
        err.to_string(),
        "--set proxy.logLevl=debug: unknown value \"proxy.logLevl\" (did you mean \"proxy.logLevel\"?)"
    );
    let err = b
        .merge_file("my.yaml", "proxy:\n  imag:\n    name: x\n")
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "my.yaml: unknown value \"proxy.imag\" (did you mean \"proxy.image\"?)"
    );
    let err = b.set("nothingLikeIt=1").unwrap_err();
    assert_eq!(
        err.to_string(),
        "--set nothingLikeIt=1: unknown value \"nothingLikeIt\""
    );
}

#[test]
fn bad_values_are_refused() {
    let mut b = ValuesBuilder::new().unwrap();
    assert!(
        b.set("proxy.uid=abc")
            .unwrap_err()
            .to_string()
            .contains("expected a number")
    );
    assert!(
        b.set("proxy.await=yes")
            .unwrap_err()
            .to_string()
            .contains("true or false")
    );
    assert!(
        b.set("proxy=1")
            .unwrap_err()
            .to_string()
            .contains("group of values")
    );
    assert!(matches!(
        b.set("proxy.uid").unwrap_err(),
        ValuesError::BadAssignment { .. }
    ));
    let mut b = ValuesBuilder::new().unwrap();
    b.merge_file("f.yaml", "proxy:\n  uid: \"x\"\n").unwrap();
    let err = b.build().unwrap_err();
    assert!(err.to_string().contains("proxy.uid"), "{err}");
}

#[test]
fn files_merge_and_later_overrides_win() {
    let mut b = ValuesBuilder::new().unwrap();
    b.merge_file(
        "a.yaml",
        "clusterDomain: example.com\nproxy:\n  logLevel: info\n",
    )
    .unwrap();
    b.set("proxy.logLevel=trace").unwrap();
    let v = b.build().unwrap();
    assert_eq!(v.cluster_domain, "example.com");
    assert_eq!(v.proxy.log_level, "trace");
    assert_eq!(
        v.proxy.ports.admin, 4191,
        "untouched values keep their defaults"
    );
}

#[test]
fn file_errors_have_positions() {
    let mut b = ValuesBuilder::new().unwrap();
    let err = b
        .merge_file("bad.yaml", "proxy:\n  uid: 1\n bad: 2\n")
        .unwrap_err();
    assert!(err.to_string().starts_with("bad.yaml: line 3:"), "{err}");
    let err = b.merge_file("list.yaml", "- a\n").unwrap_err();
    assert_eq!(
        err.to_string(),
        "list.yaml: expected a mapping of values at the top level"
    );
}
