use super::report::{Check, Format, Report, render};

fn sample() -> Report {
    let mut report = Report::default();
    report.push(
        "category",
        vec![
            Check::pass("check1").detail("seen 3 things"),
            Check::fail(
                "check2",
                "This should contain instructions for fail",
                "https://linkerd.io/2/checks/#hint-anchor",
            ),
        ],
    );
    report.push(
        "other",
        vec![Check::warn("check3", "line one\nline two", "do this")],
    );
    report
}

fn rendered(report: &Report, format: Format, verbose: bool) -> String {
    let mut out = Vec::new();
    render(report, format, verbose, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

#[test]
fn table_matches_linkerd_layout() {
    let text = rendered(&sample(), Format::Table, false);
    assert_eq!(
        text,
        "category\n--------\n√ check1\n× check2\n    This should contain instructions for fail\n    \
         see https://linkerd.io/2/checks/#hint-anchor for hints\n\nother\n-----\n‼ check3\n    line one\n    \
         line two\n    do this\n\nStatus check results are ×\n"
    );
    let verbose = rendered(&sample(), Format::Table, true);
    assert!(verbose.contains("√ check1\n    seen 3 things\n"));
}

/// Linkerd's own golden for the table and JSON layouts, when the shared fixtures are present.
#[test]
fn layouts_match_linkerd_goldens() {
    let Some(dir) = crate::conformance::linkerd_testdata() else {
        return;
    };
    let mut report = Report::default();
    report.push(
        "category",
        vec![
            Check::pass("check1"),
            Check::fail(
                "check2",
                "This should contain instructions for fail",
                "https://linkerd.io/2/checks/#hint-anchor",
            ),
        ],
    );
    let table = rendered(&report, Format::Table, false);
    let golden = std::fs::read_to_string(dir.join("check_output.golden")).unwrap();
    assert!(table.starts_with(&golden), "{table}");
    let json = rendered(&report, Format::Json, false);
    let golden = std::fs::read_to_string(dir.join("check_output_json.golden")).unwrap();
    let ours: serde_json::Value = serde_json::from_str(&json).unwrap();
    let theirs: serde_json::Value = serde_json::from_str(&golden).unwrap();
    assert_eq!(ours, theirs);
    assert_eq!(
        json.trim_end(),
        golden.trim_end(),
        "same key order and indentation"
    );
}

#[test]
fn short_prints_only_problems() {
    let mut report = Report::default();
    report.push("fine", vec![Check::pass("a")]);
    report.push(
        "mixed",
        vec![Check::pass("b"), Check::warn("c", "soon", "renew")],
    );
    assert_eq!(
        rendered(&report, Format::Short, false),
        "mixed\n-----\n‼ c\n    soon\n    renew\n\nStatus check results are √\n"
    );
}

#[test]
fn only_retryable_failures_are_worth_waiting_for() {
    let mut report = Report::default();
    report.push("a", vec![Check::fail("x", "e", "h").retryable()]);
    assert!(report.worth_retrying());
    report.push("b", vec![Check::fail("y", "e", "h")]);
    assert!(!report.worth_retrying());
    assert!(!Report::default().worth_retrying());
}

mod data_plane_rules {
    use k8s_openapi::api::core::v1::{Namespace, Pod};
    use serde_json::json;

    use super::super::pods;

    fn pod(value: serde_json::Value) -> Pod {
        serde_json::from_value(value).unwrap()
    }

    fn namespace(annotations: serde_json::Value, labels: serde_json::Value) -> Namespace {
        serde_json::from_value(
            json!({ "metadata": { "name": "ns", "annotations": annotations, "labels": labels } }),
        )
        .unwrap()
    }

    #[test]
    fn who_should_be_meshed() {
        let enabled = namespace(json!({ "linkerd.io/inject": "enabled" }), json!({}));
        let plain = namespace(json!({}), json!({}));
        let webhooks_off = namespace(
            json!({ "linkerd.io/inject": "enabled" }),
            json!({ "config.linkerd.io/admission-webhooks": "disabled" }),
        );
        let bare = pod(json!({ "metadata": { "name": "p", "namespace": "ns" } }));
        assert_eq!(
            pods::injection_reason(&bare, Some(&enabled)),
            Some("linkerd.io/inject on the namespace")
        );
        assert_eq!(pods::injection_reason(&bare, Some(&plain)), None);
        assert_eq!(pods::injection_reason(&bare, Some(&webhooks_off)), None);
        let opted_out = pod(
            json!({ "metadata": { "name": "p", "namespace": "ns", "annotations": { "linkerd.io/inject": "disabled" } } }),
        );
        assert_eq!(pods::injection_reason(&opted_out, Some(&enabled)), None);
        let ingress = pod(
            json!({ "metadata": { "name": "p", "namespace": "ns", "annotations": { "linkerd.io/inject": "ingress" } } }),
        );
        assert_eq!(
            pods::injection_reason(&ingress, Some(&plain)),
            Some("linkerd.io/inject on the pod")
        );
        let host = pod(
            json!({ "metadata": { "name": "p", "namespace": "ns" }, "spec": { "hostNetwork": true, "containers": [] } }),
        );
        assert_eq!(
            pods::injection_reason(&host, Some(&enabled)),
            None,
            "hostNetwork pods cannot be meshed"
        );
        let system = pod(
            json!({ "metadata": { "name": "p", "namespace": "kube-system", "annotations": { "linkerd.io/inject": "enabled" } } }),
        );
        assert_eq!(pods::injection_reason(&system, None), None);
    }

    #[test]
    fn only_what_rollout_restart_accepts_is_restarted() {
        use pods::Recreate::{ByHand, Delete, Restart};
        let owned = |kind: &str, name: &str, labels: serde_json::Value| {
            pod(json!({ "metadata": { "name": "p", "labels": labels,
                "ownerReferences": [{ "apiVersion": "apps/v1", "kind": kind, "name": name, "uid": "u", "controller": true }] } }))
        };
        let rs = owned(
            "ReplicaSet",
            "web-5f86686c4d",
            json!({ "pod-template-hash": "5f86686c4d" }),
        );
        assert_eq!(pods::recreate(&rs), Restart("deployment/web".into()));
        // kubectl refuses `rollout restart replicaset/...`: a lone ReplicaSet's pods are deleted.
        let lone_rs = owned("ReplicaSet", "web-abc", json!({}));
        assert_eq!(pods::recreate(&lone_rs), Delete);
        let odd_hash = owned(
            "ReplicaSet",
            "web-abc",
            json!({ "pod-template-hash": "xyz" }),
        );
        assert_eq!(pods::recreate(&odd_hash), Delete);
        assert_eq!(
            pods::recreate(&owned("StatefulSet", "db", json!({}))),
            Restart("statefulset/db".into())
        );
        assert_eq!(
            pods::recreate(&owned("DaemonSet", "agent", json!({}))),
            Restart("daemonset/agent".into())
        );
        assert_eq!(pods::recreate(&owned("Job", "migrate", json!({}))), Delete);
        let bare = pod(json!({ "metadata": { "name": "p" } }));
        assert_eq!(pods::recreate(&bare), ByHand);
    }

    #[test]
    fn proxies_are_found_where_inject_puts_them() {
        let sidecar = pod(json!({
            "metadata": { "name": "p" },
            "spec": {
                "initContainers": [{ "name": "linkerd-proxy", "image": "ghcr.io/mesh-project/mesh-proxy:0.1.0", "restartPolicy": "Always" }],
                "containers": [{ "name": "app" }],
            },
            "status": { "initContainerStatuses": [{ "name": "linkerd-proxy", "ready": true, "restartCount": 0, "image": "", "imageID": "" }] },
        }));
        assert!(pods::proxy(&sidecar).is_some());
        assert!(pods::proxy_ready(&sidecar));
        assert_eq!(
            pods::proxy_version(&sidecar).as_deref(),
            Some("0.1.0"),
            "from the image tag"
        );
        let plain_init = pod(json!({
            "metadata": { "name": "p" },
            "spec": { "initContainers": [{ "name": "linkerd-proxy" }], "containers": [{ "name": "app" }] },
        }));
        assert!(
            pods::proxy(&plain_init).is_none(),
            "an init container that exits is no proxy"
        );
        let done = pod(json!({
            "metadata": { "name": "p" },
            "status": { "phase": "Running", "containerStatuses": [
                { "name": "app", "ready": false, "restartCount": 0, "image": "", "imageID": "", "state": { "terminated": { "exitCode": 0 } } }
            ] },
        }));
        assert!(pods::finished(&done), "every container exited: completed");
    }
}

mod trust_anchor_rules {
    use serde_json::json;

    use super::super::data_plane;
    use super::super::gather::DataPlane;
    use super::super::report::Outcome;

    fn meshed(name: &str, sha: Option<&str>) -> serde_json::Value {
        let annotations = sha.map_or(json!({}), |s| json!({ "linkerd.io/trust-root-sha256": s }));
        json!({
            "metadata": { "name": name, "namespace": "app", "annotations": annotations,
                "labels": { "pod-template-hash": "5f86686c4d" },
                "ownerReferences": [{ "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-5f86686c4d", "uid": "u", "controller": true }] },
            "spec": { "containers": [{ "name": "app" }, { "name": "linkerd-proxy" }] },
        })
    }

    fn data_plane(pods: Vec<serde_json::Value>) -> DataPlane {
        DataPlane {
            namespace: None,
            namespaces: Ok(Vec::new()),
            pods: Ok(pods
                .into_iter()
                .map(|p| serde_json::from_value(p).unwrap())
                .collect()),
        }
    }

    #[test]
    fn pods_injected_with_other_anchors_are_named_with_a_restart() {
        let current = mesh_inject::manual::trust_anchors_sha256("new anchors");
        let old = mesh_inject::manual::trust_anchors_sha256("old anchors");
        let dp = data_plane(vec![
            meshed("web-1", Some(&current)),
            meshed("web-2", Some(&old)),
            meshed("web-3", None),
        ]);
        let check = data_plane::trust_anchors(&dp, &current);
        assert_eq!(check.outcome, Outcome::Warning);
        let error = check.error.unwrap();
        assert!(
            error.starts_with("1 pod does not trust the current trust anchors"),
            "{error}"
        );
        assert!(
            error.contains("app/web-2") && !error.contains("web-1"),
            "{error}"
        );
        assert_eq!(
            check.hint.as_deref(),
            Some(
                "restart the workloads to trust the current anchors, e.g. kubectl rollout restart -n app deployment/web"
            )
        );
        let same = data_plane(vec![meshed("web-1", Some(&current))]);
        assert_eq!(
            data_plane::trust_anchors(&same, &current).outcome,
            Outcome::Success
        );
    }
}

mod control_plane_rules {
    use k8s_openapi::api::core::v1::Pod;
    use serde_json::json;

    use super::super::gather::{AdminRead, ControlPlane};
    use super::super::pods;
    use super::super::running::{self, Injector};

    fn pod(value: serde_json::Value) -> Pod {
        serde_json::from_value(value).expect("pod")
    }

    /// A control plane pod of `component`, with `controller` as its controller's status and a
    /// ready native-sidecar proxy.
    fn component_pod(component: &str, phase: &str, controller: serde_json::Value) -> Pod {
        let ready = controller["ready"] == json!(true);
        pod(json!({
            "metadata": {
                "name": format!("linkerd-{component}-1"),
                "namespace": "linkerd",
                "labels": { "linkerd.io/control-plane-component": component },
            },
            "spec": {
                "initContainers": [{ "name": "linkerd-proxy", "image": "proxy:v1", "restartPolicy": "Always" }],
                "containers": [{ "name": component, "image": "ghcr.io/x/mesh-controller:v9.9.9" }],
            },
            "status": {
                "phase": phase,
                "conditions": [{ "type": "Ready", "status": if ready { "True" } else { "False" } }],
                "initContainerStatuses": [{ "name": "linkerd-proxy", "ready": true, "restartCount": 0, "image": "proxy", "imageID": "", "state": { "running": {} } }],
                "containerStatuses": [controller],
            },
        }))
    }

    fn running_ok(component: &str) -> Pod {
        component_pod(
            component,
            "Running",
            json!({ "name": component, "ready": true, "restartCount": 0, "image": "c", "imageID": "", "state": { "running": {} } }),
        )
    }

    fn image_pull_backoff(component: &str) -> Pod {
        component_pod(
            component,
            "Pending",
            json!({ "name": component, "ready": false, "restartCount": 0, "image": "c", "imageID": "",
                    "state": { "waiting": { "reason": "ImagePullBackOff", "message": "Back-off pulling image \"c\"\nmore" } } }),
        )
    }

    fn control_plane(pods: Vec<Pod>, admin: Vec<AdminRead>) -> ControlPlane {
        let webhook =
            serde_json::from_value(json!({ "metadata": { "name": "w" } })).expect("webhook");
        ControlPlane {
            namespace: Ok(None),
            config: Ok(None),
            trust_roots: Ok(None),
            issuer: Ok(None),
            injector_tls: Ok(None),
            webhook: Ok(Some(webhook)),
            crds: Vec::new(),
            cluster_roles: Ok(Vec::new()),
            cluster_role_bindings: Ok(Vec::new()),
            service_accounts: Ok(Vec::new()),
            deployments: Ok(Vec::new()),
            pods: Ok(pods),
            admin,
        }
    }

    fn read(component: &'static str, pod: &str, ready: Result<(), String>) -> AdminRead {
        AdminRead {
            component,
            pod: format!("linkerd/{pod}"),
            port: 9995,
            ready,
        }
    }

    #[test]
    fn a_waiting_container_is_named_with_its_reason() {
        let reasons = pods::not_ready_reasons(&image_pull_backoff("identity"));
        assert_eq!(
            reasons,
            ["container identity is waiting: ImagePullBackOff: Back-off pulling image \"c\""]
        );
        let crashed = component_pod(
            "destination",
            "Running",
            json!({ "name": "destination", "ready": false, "restartCount": 3, "image": "c", "imageID": "",
                    "state": { "waiting": { "reason": "CrashLoopBackOff" } },
                    "lastState": { "terminated": { "exitCode": 2, "reason": "Error" } } }),
        );
        assert_eq!(
            pods::not_ready_reasons(&crashed),
            ["container destination is waiting: CrashLoopBackOff (last exit code 2: Error)"]
        );
        let unscheduled = pod(json!({
            "metadata": { "name": "p" },
            "status": { "phase": "Pending", "conditions": [
                { "type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "0/3 nodes are available" }
            ] },
        }));
        assert_eq!(
            pods::not_ready_reasons(&unscheduled),
            ["PodScheduled is False: Unschedulable: 0/3 nodes are available"]
        );
    }

    #[test]
    fn proxies_are_not_healthy_without_running_pods() {
        let checks = running::proxies(&Ok(Vec::new()), "linkerd", "v1");
        assert_eq!(checks[0].outcome, super::super::report::Outcome::Error);
        let error = checks[0].error.clone().unwrap_or_default();
        assert!(
            error.contains("deployment linkerd/linkerd-identity has no pods"),
            "{error}"
        );

        // A ready proxy in a pod whose controller cannot start is not a healthy control plane.
        let pods = vec![
            running_ok("destination"),
            image_pull_backoff("identity"),
            running_ok("proxy-injector"),
        ];
        let checks = running::proxies(&Ok(pods), "linkerd", "v1");
        let error = checks[0].error.clone().unwrap_or_default();
        assert!(
            error.contains("no linkerd-identity pod runs with a ready proxy"),
            "{error}"
        );
        assert!(error.contains("ImagePullBackOff"), "{error}");
        assert!(!error.contains("linkerd-destination"), "{error}");
    }

    #[test]
    fn the_version_comes_from_ready_pods() {
        let cp = control_plane(vec![image_pull_backoff("identity")], Vec::new());
        let why = running::version(&cp, "linkerd").unwrap_err();
        assert!(
            why.contains("no control plane pod is running and ready"),
            "{why}"
        );
        assert!(why.contains("ImagePullBackOff"), "{why}");
        let cp = control_plane(vec![running_ok("identity")], Vec::new());
        assert_eq!(running::version(&cp, "linkerd"), Ok("v9.9.9".to_string()));
    }

    #[test]
    fn the_injector_runs_only_when_a_ready_pod_answers() {
        let pod = "linkerd-proxy-injector-1";
        let up = control_plane(
            vec![running_ok("proxy-injector")],
            vec![read("linkerd-proxy-injector", pod, Ok(()))],
        );
        assert_eq!(running::injector(&up, "linkerd"), Injector::Running);

        let refusing = control_plane(
            vec![running_ok("proxy-injector")],
            vec![read(
                "linkerd-proxy-injector",
                pod,
                Err("HTTP 503: not ready".into()),
            )],
        );
        assert_eq!(
            running::injector(&refusing, "linkerd"),
            Injector::Down(format!("linkerd/{pod}:9995/ready: HTTP 503: not ready"))
        );

        let pending = control_plane(vec![image_pull_backoff("proxy-injector")], Vec::new());
        let Injector::Down(why) = running::injector(&pending, "linkerd") else {
            panic!("a pending injector is not running");
        };
        assert!(
            why.contains("container proxy-injector is waiting: ImagePullBackOff"),
            "{why}"
        );

        let mut unhooked = up.clone();
        unhooked.webhook = Ok(None);
        assert!(matches!(
            running::injector(&unhooked, "linkerd"),
            Injector::Down(_)
        ));
    }
}

#[test]
fn certificate_names_match_as_tls_does() {
    use super::webhook::name_matches;
    let host = "linkerd-proxy-injector.linkerd.svc";
    assert!(name_matches("linkerd-proxy-injector.linkerd.svc", host));
    assert!(name_matches("LINKERD-proxy-injector.linkerd.svc", host));
    assert!(name_matches("*.linkerd.svc", host));
    assert!(!name_matches("*.svc", host));
    assert!(!name_matches("linkerd-proxy-injector.other.svc", host));
    assert!(!name_matches("linkerd-proxy-injector", host));
}
