//! `mesh check` against the fake API server: healthy and broken clusters, every data plane
//! failure, certificates, pagination, waiting, and the exit codes.
//!
//! Goldens live in testdata/check/; `UPDATE_GOLDENS=1 cargo test -p mesh-cli --test check`
//! rewrites them.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use mesh_testkube::FakeKube;

mod support;

const VERSION: &str = env!("CARGO_PKG_VERSION");
const DAY: i64 = 24 * 3600;

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/check")
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

/// A certificate and its key, PEM.
struct Pem {
    cert: String,
    key: String,
}

/// The identity and webhook certificates a control plane carries.
struct Pki {
    anchors: String,
    issuer: Pem,
    webhook_ca: String,
    webhook: Pem,
}

/// Validity periods, as (not before, not after) in Unix seconds.
struct Validity {
    anchor: (i64, i64),
    issuer: (i64, i64),
}

/// 2025-01-01 to 2045-01-01: fixed, so messages that name dates stay the same.
const LONG: (i64, i64) = (1_735_689_600, 2_366_841_600);

fn params(
    cn: &str,
    sans: Vec<String>,
    (from, until): (i64, i64),
    ca: bool,
) -> rcgen::CertificateParams {
    let mut params = rcgen::CertificateParams::new(sans).expect("certificate params");
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, cn);
    let epoch = rcgen::date_time_ymd(1970, 1, 1);
    params.not_before = epoch + Duration::from_secs(from as u64);
    params.not_after = epoch + Duration::from_secs(until as u64);
    if ca {
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    }
    params
}

/// Generates the certificates; `chained: false` signs the issuer with a stranger's key.
fn make_pki(validity: &Validity, chained: bool) -> Pki {
    let anchor_key = rcgen::KeyPair::generate().expect("key");
    let anchor_params = params("root.linkerd.cluster.local", vec![], validity.anchor, true);
    let anchor = anchor_params.self_signed(&anchor_key).expect("anchor");
    let signer = if chained {
        rcgen::Issuer::new(anchor_params, anchor_key)
    } else {
        let stranger = params("root.linkerd.cluster.local", vec![], validity.anchor, true);
        rcgen::Issuer::new(stranger, rcgen::KeyPair::generate().expect("key"))
    };
    let issuer_key = rcgen::KeyPair::generate().expect("key");
    let issuer = params(
        "identity.linkerd.cluster.local",
        vec![],
        validity.issuer,
        true,
    )
    .signed_by(&issuer_key, &signer)
    .expect("issuer");

    let (webhook_ca, webhook) = webhook_pki("linkerd-proxy-injector.linkerd.svc");
    Pki {
        anchors: anchor.pem(),
        issuer: Pem {
            cert: issuer.pem(),
            key: issuer_key.serialize_pem(),
        },
        webhook_ca,
        webhook,
    }
}

/// The injector's CA and its serving certificate for `name`.
fn webhook_pki(name: &str) -> (String, Pem) {
    let ca_key = rcgen::KeyPair::generate().expect("key");
    let ca_params = params("webhook.linkerd.cluster.local", vec![], LONG, true);
    let ca = ca_params.self_signed(&ca_key).expect("webhook ca");
    let ca_issuer = rcgen::Issuer::new(ca_params, ca_key);
    let webhook_key = rcgen::KeyPair::generate().expect("key");
    let webhook = params(name, vec![name.to_string()], LONG, false)
        .signed_by(&webhook_key, &ca_issuer)
        .expect("webhook cert");
    let serving = Pem {
        cert: webhook.pem(),
        key: webhook_key.serialize_pem(),
    };
    (ca.pem(), serving)
}

/// A fixture file with its placeholders filled in.
fn fixture(name: &str, pki: &Pki) -> String {
    let text = std::fs::read_to_string(testdata().join(name)).expect("fixture");
    text.replace("{{version}}", VERSION)
        .replace(
            "{{anchors}}",
            &serde_json::to_string(&pki.anchors).expect("json"),
        )
        .replace("{{issuer_crt}}", &STANDARD.encode(&pki.issuer.cert))
        .replace("{{issuer_key}}", &STANDARD.encode(&pki.issuer.key))
        .replace("{{webhook_crt}}", &STANDARD.encode(&pki.webhook.cert))
        .replace("{{webhook_key}}", &STANDARD.encode(&pki.webhook.key))
        .replace("{{webhook_ca}}", &STANDARD.encode(&pki.webhook_ca))
}

/// The committed certificates in testdata/check/certs, which `cargo xtask bench check` uses
/// too (xtask generates no certificates). Created when absent.
fn committed_pki() -> Pki {
    let dir = testdata().join("certs");
    let read = |name: &str| std::fs::read_to_string(dir.join(name));
    if let (
        Ok(anchors),
        Ok(issuer_crt),
        Ok(issuer_key),
        Ok(webhook_ca),
        Ok(webhook_crt),
        Ok(webhook_key),
    ) = (
        read("anchors.pem"),
        read("issuer.crt"),
        read("issuer.key"),
        read("webhook-ca.crt"),
        read("webhook.crt"),
        read("webhook.key"),
    ) {
        return Pki {
            anchors,
            issuer: Pem {
                cert: issuer_crt,
                key: issuer_key,
            },
            webhook_ca,
            webhook: Pem {
                cert: webhook_crt,
                key: webhook_key,
            },
        };
    }
    let pki = healthy_pki();
    std::fs::create_dir_all(&dir).expect("create certs dir");
    for (name, text) in [
        ("anchors.pem", &pki.anchors),
        ("issuer.crt", &pki.issuer.cert),
        ("issuer.key", &pki.issuer.key),
        ("webhook-ca.crt", &pki.webhook_ca),
        ("webhook.crt", &pki.webhook.cert),
        ("webhook.key", &pki.webhook.key),
    ] {
        std::fs::write(dir.join(name), text).expect("write certificate");
    }
    pki
}

fn healthy_pki() -> Pki {
    make_pki(
        &Validity {
            anchor: LONG,
            issuer: LONG,
        },
        true,
    )
}

/// A cluster from fixture files, with the kubelet running its workloads and every controller's
/// admin server answering ready.
fn cluster(files: &[&str], pki: &Pki) -> FakeKube {
    let mut builder = FakeKube::builder().kubelet(true);
    for file in files {
        builder = builder.fixture_yaml(fixture(file, pki));
    }
    let server = builder.start().expect("fake API server");
    support::route_control_plane_admin(&server, "linkerd", support::admin_server(200, "ready\n"));
    server
}

/// Runs `mesh` against `server` with a private kubeconfig.
fn mesh(server: &FakeKube, args: &[&str]) -> Output {
    let dir = tempfile::tempdir().expect("temp dir");
    let kubeconfig = server.write_kubeconfig(dir.path()).expect("kubeconfig");
    run_mesh(&kubeconfig, args)
}

fn run_mesh(kubeconfig: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mesh"))
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .env_remove("KUBECONFIG")
        .output()
        .expect("mesh runs")
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).expect("utf-8 stdout")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Compares `actual` with testdata/check/`name`, or rewrites it under UPDATE_GOLDENS=1.
fn golden(name: &str, actual: &str) {
    // The CLI's version changes with every release; the goldens name it as a placeholder.
    let actual = actual.replace(VERSION, "{{version}}");
    let path = testdata().join(name);
    if std::env::var_os("UPDATE_GOLDENS").is_some() {
        std::fs::write(&path, &actual).expect("write golden");
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "missing golden {}; run with UPDATE_GOLDENS=1",
            path.display()
        )
    });
    if expected != actual {
        let diff = similar::TextDiff::from_lines(&expected, &actual);
        panic!(
            "{} differs from the output (- golden, + actual):\n{}",
            path.display(),
            diff.unified_diff().context_radius(3)
        );
    }
}

fn code(out: &Output) -> i32 {
    out.status.code().expect("exit code")
}

#[test]
fn a_healthy_cluster_passes() {
    let pki = healthy_pki();
    let server = cluster(&["control-plane.yaml", "data-plane.yaml"], &pki);
    for (format, file) in [
        ("table", "healthy.golden.txt"),
        ("json", "healthy.golden.json"),
        ("short", "healthy.golden.short"),
    ] {
        let out = mesh(&server, &["check", "--proxy", "--wait=0s", "-o", format]);
        assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
        golden(file, &stdout(&out));
    }
    let verbose = mesh(&server, &["check", "--proxy", "--wait=0s", "--verbose"]);
    let text = stdout(&verbose);
    assert!(
        text.contains("    7 meshed pods ready, 1 finished pods skipped\n"),
        "{text}"
    );
    assert!(
        text.contains(&format!("    control plane version {VERSION}\n")),
        "{text}"
    );
}

#[test]
fn the_committed_certificates_are_healthy() {
    let server = cluster(&["control-plane.yaml"], &committed_pki());
    let out = mesh(&server, &["check", "--wait=0s", "-o", "short"]);
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    assert_eq!(stdout(&out), "Status check results are √\n");
}

#[test]
fn data_plane_checks_run_without_a_control_plane() {
    let pki = healthy_pki();
    let server = cluster(&["data-plane.yaml"], &pki);
    let out = mesh(&server, &["check", "--proxy", "--wait=0s"]);
    assert_eq!(code(&out), 1);
    golden("no-control-plane.golden.txt", &stdout(&out));
    let text = stdout(&out);
    assert!(text.contains("× control plane namespace exists"));
    assert!(text.contains("√ data plane proxies are ready"));
}

#[test]
fn data_plane_failures_are_named() {
    let pki = healthy_pki();
    let server = cluster(&["control-plane.yaml", "data-plane-problems.yaml"], &pki);
    let out = mesh(&server, &["check", "--proxy", "--wait=0s"]);
    assert_eq!(code(&out), 1);
    let text = stdout(&out);
    golden("data-plane-problems.golden.txt", &text);
    for expected in [
        "    emojivoto/web-5f86686c4d-x7kqp (linkerd.io/inject on the namespace)",
        "    tools/debug (linkerd.io/inject on the pod)",
        "    kubectl rollout restart -n emojivoto deployment/web",
        "    delete and recreate: tools/debug",
        "    emojivoto/vote-bot-0 (Running)",
        "    emojivoto/emoji-7d4b9c8f5-2xq9z runs 0.0.1",
        "‼ data plane proxies certificate match CA\n    1 pod does not trust the current trust anchors (linkerd-identity-trust-roots) and must be restarted:\n        emojivoto/emoji-7d4b9c8f5-2xq9z",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    for skipped in ["migrate-8sl2d", "crashed", "tools/plain"] {
        assert!(
            !text.contains(skipped),
            "{skipped} should be skipped:\n{text}"
        );
    }
    let json = mesh(&server, &["check", "--proxy", "--wait=0s", "-o", "json"]);
    assert_eq!(code(&json), 1);
    golden("data-plane-problems.golden.json", &stdout(&json));
    let short = mesh(&server, &["check", "--proxy", "--wait=0s", "-o", "short"]);
    golden("data-plane-problems.golden.short", &stdout(&short));

    let one = mesh(
        &server,
        &[
            "check",
            "--proxy",
            "--wait=0s",
            "-n",
            "tools",
            "-o",
            "short",
        ],
    );
    let text = stdout(&one);
    assert!(
        text.contains("tools/debug") && !text.contains("emojivoto/"),
        "{text}"
    );
    let missing = mesh(
        &server,
        &["check", "--proxy", "--wait=0s", "-n", "nope", "-o", "short"],
    );
    assert!(
        stdout(&missing)
            .contains("× data plane namespace exists\n    The \"nope\" namespace does not exist")
    );
}

#[test]
fn pods_rollout_restart_cannot_restart_are_deleted() {
    let pki = healthy_pki();
    let server = cluster(&["control-plane.yaml", "unrestartable.yaml"], &pki);
    let out = mesh(&server, &["check", "--proxy", "--wait=0s"]);
    assert_eq!(code(&out), 1);
    let text = stdout(&out);
    for expected in [
        "    kubectl delete pod -n batch report-x2k9q worker-abcde\n",
        "    recreate the pods to pick up the current proxy, e.g. kubectl delete pod -n batch cache-7qv2m\n",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    for refused in ["rollout restart", "replicaset/", "job/"] {
        assert!(
            !text.contains(refused),
            "kubectl refuses {refused:?}:\n{text}"
        );
    }
}

#[test]
fn certificates_are_checked() {
    let t = now();
    // Anchors expiring in 30 days, an issuer that expired yesterday.
    let pki = make_pki(
        &Validity {
            anchor: (t - 400 * DAY, t + 30 * DAY),
            issuer: (t - 10 * DAY, t - DAY),
        },
        true,
    );
    let server = cluster(&["control-plane.yaml"], &pki);
    let out = mesh(&server, &["check", "--wait=0s"]);
    assert_eq!(code(&out), 1);
    let text = stdout(&out);
    assert!(text.contains("‼ trust anchors are valid for at least 60 days\n    Anchors expiring soon:\n    * CN=root.linkerd.cluster.local will expire on "), "{text}");
    assert!(text.contains("× issuer cert is within its validity period\n    issuer certificate CN=identity.linkerd.cluster.local not valid anymore. Expired on "), "{text}");
    assert!(
        text.contains("√ issuer cert is issued by the trust anchor"),
        "{text}"
    );

    // An issuer expiring soon is a warning only; one signed by another key is an error.
    let pki_soon = make_pki(
        &Validity {
            anchor: LONG,
            issuer: (t - DAY, t + 20 * DAY),
        },
        true,
    );
    let out = mesh(
        &cluster(&["control-plane.yaml"], &pki_soon),
        &["check", "--wait=0s", "-o", "short"],
    );
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    assert!(stdout(&out).contains("‼ issuer cert is valid for at least 60 days"));
    let stranger = make_pki(
        &Validity {
            anchor: LONG,
            issuer: LONG,
        },
        false,
    );
    let out = mesh(
        &cluster(&["control-plane.yaml"], &stranger),
        &["check", "--wait=0s", "-o", "short"],
    );
    assert_eq!(code(&out), 1);
    assert!(stdout(&out).contains("× issuer cert is issued by the trust anchor\n    CN=identity.linkerd.cluster.local is not signed by any of the trust anchors"));
}

fn meshed_pods(namespaces: usize, per_namespace: usize) -> String {
    let mut out = String::new();
    for n in 0..namespaces {
        out.push_str(&format!("---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: app-{n}\n  annotations: {{linkerd.io/inject: enabled}}\n"));
        for p in 0..per_namespace {
            out.push_str(&format!(
                "---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: pod-{p}\n  namespace: app-{n}\n  annotations: {{linkerd.io/proxy-version: \"{VERSION}\"}}\n\
                 spec:\n  initContainers: [{{name: linkerd-proxy, image: proxy, restartPolicy: Always}}]\n  containers: [{{name: app, image: app}}]\n\
                 status:\n  phase: Running\n  conditions: [{{type: Ready, status: \"True\"}}]\n  \
                 initContainerStatuses: [{{name: linkerd-proxy, ready: true, restartCount: 0, image: proxy, imageID: \"\"}}]\n"
            ));
        }
    }
    out
}

#[test]
fn pods_are_listed_in_pages() {
    let pki = healthy_pki();
    let server = FakeKube::builder()
        .kubelet(true)
        .fixture_yaml(fixture("control-plane.yaml", &pki))
        .fixture_yaml(meshed_pods(3, 400))
        .start()
        .expect("fake API server");
    support::route_control_plane_admin(&server, "linkerd", support::admin_server(200, "ready\n"));
    server.clear_requests();
    let out = mesh(&server, &["check", "--proxy", "--wait=0s", "--verbose"]);
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    assert!(
        stdout(&out).contains("    1203 meshed pods ready"),
        "{}",
        stdout(&out)
    );
    let pages: Vec<String> = server
        .requests()
        .into_iter()
        .filter(|r| r.starts_with("GET /api/v1/pods?"))
        .collect();
    assert_eq!(
        pages.len(),
        3,
        "1203 pods (3 of them the control plane's) in pages of 500: {pages:?}"
    );
    assert!(pages.iter().all(|p| p.contains("limit=500")));
    assert!(pages[1].contains("continue=") && pages[2].contains("continue="));
}

#[test]
fn wait_retries_until_proxies_are_ready() {
    let pki = healthy_pki();
    let server = cluster(&["control-plane.yaml", "data-plane-problems.yaml"], &pki);
    for doomed in [("emojivoto", "web-5f86686c4d-x7kqp"), ("tools", "debug")] {
        server.delete("Pod", doomed.0, doomed.1).expect("delete");
    }
    // Only the unready proxy is left, which time can fix.
    let failing = mesh(&server, &["check", "--proxy", "--wait=0s", "-o", "short"]);
    assert_eq!(code(&failing), 1);
    assert!(stdout(&failing).contains("× data plane proxies are ready"));

    server.clear_requests();
    std::thread::scope(|s| {
        let handle = s.spawn(|| mesh(&server, &["check", "--proxy", "--wait=30s", "-o", "short"]));
        wait_for_second_round(&server);
        server
            .set_pod_ready("emojivoto", "vote-bot-0", true)
            .expect("ready");
        let out = handle.join().expect("check thread");
        assert_eq!(code(&out), 0, "{}", stdout(&out));
        // No spinner when stderr is not a terminal: progress lines instead.
        let progress = stderr(&out);
        assert!(
            progress.starts_with(
                "waiting for data plane proxies are ready: 1 proxy is not ready (0s of 30s)\n"
            ),
            "{progress}"
        );
        assert!(
            progress.lines().all(|l| l.starts_with("waiting for ")),
            "{progress}"
        );
    });
}

#[test]
fn wait_prints_progress_lines_when_not_on_a_terminal() {
    let pki = healthy_pki();
    let server = cluster(&["control-plane.yaml", "data-plane-problems.yaml"], &pki);
    for doomed in [("emojivoto", "web-5f86686c4d-x7kqp"), ("tools", "debug")] {
        server.delete("Pod", doomed.0, doomed.1).expect("delete");
    }
    // The proxy never becomes ready: the check retries every second for 3 s, then fails.
    let out = mesh(&server, &["check", "--proxy", "--wait=3s", "-o", "short"]);
    assert_eq!(code(&out), 1, "{}", stdout(&out));
    assert!(
        stdout(&out).contains("× data plane proxies are ready"),
        "{}",
        stdout(&out)
    );
    // One line at once, then one every 5 s: not one per retry.
    assert_eq!(
        stderr(&out),
        "waiting for data plane proxies are ready: 1 proxy is not ready (0s of 3s)\n"
    );
}

/// Waits until a running `mesh check --wait` has finished a round and started the next, so
/// that it has seen the cluster as it was; every round lists the webhook configurations once.
fn wait_for_second_round(server: &FakeKube) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let rounds = || {
        server
            .requests()
            .iter()
            .filter(|r| r.starts_with("GET ") && r.contains("/mutatingwebhookconfigurations"))
            .count()
    };
    while rounds() < 2 {
        assert!(
            Instant::now() < deadline,
            "mesh check made no second round in 30 s: {:#?}",
            server.requests()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn wait_shows_a_spinner_on_a_terminal() {
    // `script` (bsdutils, essential in Debian) runs mesh under a pseudo-terminal.
    let script = Path::new("/usr/bin/script");
    assert!(
        script.is_file(),
        "/usr/bin/script is missing; install bsdutils"
    );
    let pki = healthy_pki();
    let server = cluster(&["control-plane.yaml", "data-plane-problems.yaml"], &pki);
    for doomed in [("emojivoto", "web-5f86686c4d-x7kqp"), ("tools", "debug")] {
        server.delete("Pod", doomed.0, doomed.1).expect("delete");
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let kubeconfig = server.write_kubeconfig(dir.path()).expect("kubeconfig");
    let command = format!(
        "{} --kubeconfig {} check --proxy --wait=30s",
        env!("CARGO_BIN_EXE_mesh"),
        kubeconfig.display()
    );
    server.clear_requests();
    std::thread::scope(|s| {
        let handle = s.spawn(|| {
            Command::new(script)
                .args(["-qec", &command, "/dev/null"])
                .env_remove("KUBECONFIG")
                .output()
                .expect("script runs")
        });
        wait_for_second_round(&server);
        server
            .set_pod_ready("emojivoto", "vote-bot-0", true)
            .expect("ready");
        let out = handle.join().expect("check thread");
        let screen = String::from_utf8_lossy(&out.stdout);
        assert_eq!(code(&out), 0, "{screen}");
        assert!(
            screen.contains("waiting for check: data plane proxies are ready"),
            "{screen}"
        );
        assert!(screen.contains("Status check results are √"), "{screen}");
    });
}

#[test]
fn pre_install_checks() {
    let server = FakeKube::builder()
        .kubelet(true)
        .start()
        .expect("fake API server");
    let out = mesh(&server, &["check", "--pre"]);
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    golden("pre.golden.txt", &stdout(&out));

    server.deny_access(
        "create",
        "apiextensions.k8s.io",
        "customresourcedefinitions",
    );
    server
        .apply_yaml("apiVersion: v1\nkind: Namespace\nmetadata: {name: linkerd}\n")
        .expect("namespace");
    let out = mesh(&server, &["check", "--pre", "-o", "short"]);
    assert_eq!(code(&out), 1);
    golden("pre-denied.golden.short", &stdout(&out));

    // A node whose last heartbeat is an hour off means skewed clocks: a warning.
    let hour_ago = now() - 3600;
    let stamp = k8s_openapi::jiff::Timestamp::from_second(hour_ago).expect("timestamp");
    server
        .edit_status("Node", "", mesh_testkube::NODE, |status| {
            status["conditions"][0]["lastHeartbeatTime"] = serde_json::json!(stamp.to_string());
        })
        .expect("node status");
    let out = mesh(&server, &["check", "--pre", "-o", "short"]);
    let text = stdout(&out);
    assert!(
        text.contains(&format!(
            "‼ no clock skew detected\n    clock skew detected:\n    node {} last reported ",
            mesh_testkube::NODE
        )),
        "{text}"
    );
}

#[test]
fn old_kubernetes_fails() {
    let server = FakeKube::builder()
        .version(1, 27)
        .start()
        .expect("fake API server");
    let out = mesh(&server, &["check", "--pre", "-o", "short"]);
    assert_eq!(code(&out), 1);
    assert!(stdout(&out).starts_with(
        "kubernetes-version\n------------------\n× is running the minimum Kubernetes API version\n    \
         Kubernetes is on version [v1.27.0], but version [1.29.0] or more recent is required\n"
    ));
}

#[test]
fn a_missing_kubeconfig_is_named_once() {
    let home = tempfile::tempdir().expect("temp dir");
    let missing = home.path().join("missing");
    let run = |kubeconfig: Option<&Path>| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_mesh"));
        command
            .args(["check", "--wait=0s"])
            .env("HOME", home.path())
            .env_remove("KUBECONFIG")
            .env_remove("KUBERNETES_SERVICE_HOST");
        if let Some(path) = kubeconfig {
            command.env("KUBECONFIG", path);
        }
        command.output().expect("mesh runs")
    };
    let out = run(Some(&missing));
    assert_eq!(code(&out), 2);
    assert_eq!(
        stderr(&out),
        format!(
            "Error: no kubeconfig: --kubeconfig is not given and $KUBECONFIG names {}, which does not \
             exist (with $KUBECONFIG set, ~/.kube/config and the in-cluster service account are not tried)\n",
            missing.display()
        )
    );
    let out = run(None);
    assert_eq!(code(&out), 2);
    assert_eq!(
        stderr(&out),
        format!(
            "Error: no kubeconfig: --kubeconfig and $KUBECONFIG are not set, {} does not exist, and \
             mesh is not running in a cluster ($KUBERNETES_SERVICE_HOST is not set)\n",
            home.path().join(".kube/config").display()
        )
    );
}

#[test]
fn an_unreachable_api_exits_2() {
    let dir = tempfile::tempdir().expect("temp dir");
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {{server: \"http://127.0.0.1:{port}\"}}\n\
             contexts:\n- name: c\n  context: {{cluster: c, user: u}}\ncurrent-context: c\nusers:\n- name: u\n  user: {{}}\n"
        ),
    )
    .expect("write kubeconfig");
    let out = run_mesh(&kubeconfig, &["check", "--wait=0s"]);
    assert_eq!(code(&out), 2);
    assert!(
        stdout(&out).contains("× can query the Kubernetes API"),
        "{}",
        stdout(&out)
    );
    assert!(
        stderr(&out).starts_with(&format!(
            "Error: cannot reach the Kubernetes API at http://127.0.0.1:{port}: "
        )),
        "{}",
        stderr(&out)
    );

    let out = run_mesh(&dir.path().join("missing"), &["check"]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).starts_with("Error: cannot read kubeconfig "),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_failing_api_is_reported_per_check() {
    let pki = healthy_pki();
    let server = cluster(&["control-plane.yaml", "data-plane.yaml"], &pki);
    server.fail_requests("/api/v1/pods");
    let out = mesh(&server, &["check", "--proxy", "--wait=0s", "-o", "short"]);
    assert_eq!(code(&out), 1);
    assert!(
        stdout(&out).contains(
            "× data plane proxies are ready\n    cannot list pods: injected fault: 500\n"
        ),
        "{}",
        stdout(&out)
    );
    server.clear_faults();
    server.inject_fault("/api/v1/pods", mesh_testkube::Fault::Hang);
    let out = mesh(
        &server,
        &[
            "check",
            "--proxy",
            "--wait=0s",
            "--api-timeout=1s",
            "-o",
            "short",
        ],
    );
    assert_eq!(code(&out), 1);
    assert!(
        stdout(&out).contains("× data plane proxies are ready\n    cannot list pods: "),
        "{}",
        stdout(&out)
    );
}

/// `text` with what differs between runs replaced: the control plane pods' generated names (by
/// `{{<component>-pod}}`) and pod IPs (by `{{pod-ip}}`).
fn normalize(server: &FakeKube, text: &str) -> String {
    let mut text = text.to_string();
    for (component, _) in support::CONTROL_PLANE_ADMIN {
        for pod in support::component_pods(server, "linkerd", component) {
            text = text.replace(&pod, &format!("{{{{{component}-pod}}}}"));
        }
    }
    let mut out = String::new();
    let mut rest = text.as_str();
    while let Some(at) = rest.find("dial tcp ") {
        let (head, tail) = rest.split_at(at + "dial tcp ".len());
        out.push_str(head);
        out.push_str("{{pod-ip}}");
        rest = &tail[tail.find(':').unwrap_or(0)..];
    }
    out.push_str(rest);
    out
}

/// The one pod of a control plane component.
fn component_pod(server: &FakeKube, component: &str) -> String {
    let pods = support::component_pods(server, "linkerd", component);
    assert_eq!(pods.len(), 1, "{component}: {pods:?}");
    pods[0].clone()
}

/// Makes a component's controller container fail as the kubelet reports it: `phase` for the pod,
/// `waiting` as the container's state, and `last_exit` as its previous termination.
fn break_controller(
    server: &FakeKube,
    component: &str,
    phase: &str,
    waiting: serde_json::Value,
    last_exit: Option<serde_json::Value>,
) {
    let pod = component_pod(server, component);
    server
        .edit_status("Pod", "linkerd", &pod, |status| {
            status["phase"] = serde_json::json!(phase);
            for list in ["containerStatuses"] {
                for c in status[list].as_array_mut().expect("container statuses") {
                    if c["name"] == component {
                        c["ready"] = serde_json::json!(false);
                        c["started"] = serde_json::json!(false);
                        c["state"] = serde_json::json!({ "waiting": waiting.clone() });
                        if let Some(exit) = &last_exit {
                            c["lastState"] = serde_json::json!({ "terminated": exit });
                        }
                    }
                }
            }
            for c in status["conditions"].as_array_mut().expect("conditions") {
                if c["type"] == "Ready" || c["type"] == "ContainersReady" {
                    c["status"] = serde_json::json!("False");
                    c["reason"] = serde_json::json!("ContainersNotReady");
                }
            }
        })
        .expect("pod status");
}

/// A local address nothing listens on, as a crashed controller's admin port.
fn refused() -> std::net::SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
}

#[test]
fn a_controller_that_cannot_pull_its_image_is_named() {
    let server = cluster(&["control-plane.yaml"], &healthy_pki());
    break_controller(
        &server,
        "identity",
        "Pending",
        serde_json::json!({
            "reason": "ImagePullBackOff",
            "message": "Back-off pulling image \"ghcr.io/mesh-project/mesh-controller:nope\"",
        }),
        None,
    );
    let out = mesh(&server, &["check", "--wait=0s"]);
    assert_eq!(code(&out), 1);
    let text = stdout(&out);
    golden("image-pull-backoff.golden.txt", &normalize(&server, &text));
    let pod = component_pod(&server, "identity");
    for expected in [
        format!("× control plane pods are ready\n    pod linkerd/{pod} is not ready (Pending): container identity is waiting: ImagePullBackOff: Back-off pulling image \"ghcr.io/mesh-project/mesh-controller:nope\"\n"),
        "× linkerd-identity answers ready on its admin port\n    no linkerd-identity pod is running to ask:\n".to_string(),
        "× control plane proxies are healthy\n".to_string(),
        "√ linkerd-destination answers ready on its admin port\n".to_string(),
    ] {
        assert!(text.contains(&expected), "missing {expected:?} in:\n{text}");
    }
}

#[test]
fn a_crash_looping_controller_is_named() {
    let server = cluster(&["control-plane.yaml"], &healthy_pki());
    let pod = component_pod(&server, "destination");
    server.set_pod_proxy("linkerd", &pod, 9996, refused());
    break_controller(
        &server,
        "destination",
        "Running",
        serde_json::json!({
            "reason": "CrashLoopBackOff",
            "message": format!("back-off 5m0s restarting failed container=destination pod={pod}"),
        }),
        Some(serde_json::json!({ "exitCode": 1, "reason": "Error" })),
    );
    let out = mesh(&server, &["check", "--wait=0s"]);
    assert_eq!(code(&out), 1);
    let text = stdout(&out);
    golden("crash-loop-backoff.golden.txt", &normalize(&server, &text));
    for expected in [
        format!(
            "container destination is waiting: CrashLoopBackOff: back-off 5m0s restarting failed container=destination pod={pod} (last exit code 1: Error)"
        ),
        format!(
            "× linkerd-destination answers ready on its admin port\n    linkerd/{pod}:9996/ready: HTTP 503: error trying to reach service: dial tcp "
        ),
    ] {
        assert!(text.contains(&expected), "missing {expected:?} in:\n{text}");
    }
}

#[test]
fn an_identity_that_is_not_ready_fails_its_check() {
    let server = cluster(&["control-plane.yaml"], &healthy_pki());
    let pod = component_pod(&server, "identity");
    server.set_pod_proxy(
        "linkerd",
        &pod,
        9990,
        support::admin_server(503, "not ready\n"),
    );
    let out = mesh(&server, &["check", "--wait=0s"]);
    assert_eq!(code(&out), 1);
    let text = stdout(&out);
    golden("identity-not-ready.golden.txt", &normalize(&server, &text));
    let expected = format!(
        "× linkerd-identity answers ready on its admin port\n    linkerd/{pod}:9990/ready: HTTP 503: not ready\n"
    );
    assert!(text.contains(&expected), "missing {expected:?} in:\n{text}");
}

/// With the injector down, pods that should have a proxy are blamed on it, not on their age.
#[test]
fn uninjected_pods_name_a_down_injector_as_the_cause() {
    let pki = healthy_pki();
    let server = cluster(&["control-plane.yaml", "data-plane-problems.yaml"], &pki);
    break_controller(
        &server,
        "proxy-injector",
        "Pending",
        serde_json::json!({ "reason": "ImagePullBackOff", "message": "Back-off pulling image" }),
        None,
    );
    let out = mesh(&server, &["check", "--proxy", "--wait=0s"]);
    assert_eq!(code(&out), 1);
    let text = stdout(&out);
    golden("injector-down.golden.txt", &normalize(&server, &text));
    assert!(
        !text.contains("started before injection was enabled"),
        "{text}"
    );
    assert!(
        text.contains("the proxy injector is not running, so no new pod is injected either:\n        pod linkerd/"),
        "{text}"
    );

    // Running but not answering ready is down too.
    let server = cluster(&["control-plane.yaml", "data-plane-problems.yaml"], &pki);
    let pod = component_pod(&server, "proxy-injector");
    server.set_pod_proxy(
        "linkerd",
        &pod,
        9995,
        support::admin_server(503, "not ready\n"),
    );
    let text = stdout(&mesh(
        &server,
        &["check", "--proxy", "--wait=0s", "-o", "short"],
    ));
    assert!(
        text.contains(&format!("the proxy injector is not running, so no new pod is injected either:\n        linkerd/{pod}:9995/ready: HTTP 503: not ready")),
        "{text}"
    );
}

#[test]
fn the_injector_certificate_must_name_its_service() {
    let mut pki = healthy_pki();
    let (ca, serving) = webhook_pki("linkerd-proxy-injector.elsewhere.svc");
    pki.webhook_ca = ca;
    pki.webhook = serving;
    let server = cluster(&["control-plane.yaml"], &pki);
    let out = mesh(&server, &["check", "--wait=0s", "-o", "short"]);
    assert_eq!(code(&out), 1);
    let text = stdout(&out);
    assert!(
        text.contains("× proxy-injector cert is valid for linkerd-proxy-injector.linkerd.svc\n    CN=linkerd-proxy-injector.elsewhere.svc names linkerd-proxy-injector.elsewhere.svc but the API server dials linkerd-proxy-injector.linkerd.svc\n"),
        "{text}"
    );
    assert!(
        text.contains("√ proxy-injector webhook has valid cert")
            || !text.contains("× proxy-injector webhook has valid cert"),
        "{text}"
    );

    // No serving certificate at all is a failure, not a pass on the caBundle alone.
    let server = cluster(&["control-plane.yaml"], &healthy_pki());
    server
        .delete("Secret", "linkerd", "linkerd-proxy-injector-k8s-tls")
        .expect("delete secret");
    let text = stdout(&mesh(&server, &["check", "--wait=0s", "-o", "short"]));
    assert!(
        text.contains("× proxy-injector webhook has valid cert\n    secret linkerd/linkerd-proxy-injector-k8s-tls does not exist or has no tls.crt\n"),
        "{text}"
    );
}

/// No controller running at all: nothing about the control plane passes, and the data plane
/// checks still run.
#[test]
fn nothing_passes_for_a_control_plane_that_does_not_run() {
    let pki = healthy_pki();
    let server = cluster(&["control-plane.yaml", "data-plane.yaml"], &pki);
    for component in ["destination", "identity", "proxy-injector"] {
        break_controller(
            &server,
            component,
            "Pending",
            serde_json::json!({ "reason": "ImagePullBackOff", "message": "Back-off pulling image" }),
            None,
        );
    }
    let out = mesh(&server, &["check", "--proxy", "--wait=0s", "-o", "short"]);
    assert_eq!(code(&out), 1);
    let text = stdout(&out);
    for failed in [
        "× control plane pods are ready",
        "× linkerd-destination answers ready on its admin port",
        "× linkerd-identity answers ready on its admin port",
        "× linkerd-proxy-injector answers ready on its admin port",
        "× control plane proxies are healthy",
        "× can retrieve the control plane version\n    no control plane pod is running and ready to report a version:",
    ] {
        assert!(text.contains(failed), "missing {failed:?} in:\n{text}");
    }
    assert!(!text.contains("data plane proxies are ready"), "{text}");
}

/// `mesh version` reads the control plane's version from its ready pods and counts the proxies'
/// versions, as `check` judges them.
#[test]
fn version_reads_the_control_plane_and_the_proxies() {
    let pki = healthy_pki();
    let server = cluster(&["control-plane.yaml", "data-plane-problems.yaml"], &pki);
    for (args, file) in [
        (&["version", "--proxy"][..], "version/proxy.golden.txt"),
        (
            &["version", "--proxy", "-o", "json"][..],
            "version/proxy.golden.json",
        ),
        (
            &["version", "--proxy", "-n", "tools"][..],
            "version/proxy-tools.golden.txt",
        ),
        (&["version", "--short"][..], "version/short.golden.txt"),
    ] {
        let out = mesh(&server, args);
        assert_eq!(code(&out), 0, "{args:?}: {}", stderr(&out));
        golden(&format!("../{file}"), &stdout(&out));
    }
    let text = stdout(&mesh(&server, &["version", "--proxy"]));
    assert!(text.contains("\t0.0.1 (1 pod)\n"), "{text}");

    // No control plane: the server's version is unavailable, which is no error.
    let empty = FakeKube::builder().start().expect("fake API server");
    let out = mesh(&empty, &["version", "-o", "json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert!(json["serverVersion"].is_null(), "{json}");
    assert!(
        json["serverUnavailable"]
            .as_str()
            .unwrap()
            .starts_with("no control plane pod is running and ready"),
        "{json}"
    );

    // An unreachable API server: the client's version, then the error, exit 2.
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = empty.write_kubeconfig(dir.path()).unwrap();
    drop(empty);
    let out = run_mesh(&kubeconfig, &["version"]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert_eq!(stdout(&out), format!("Client version: {VERSION}\n"));
    assert!(
        stderr(&out).contains("cannot read the versions in the cluster"),
        "{}",
        stderr(&out)
    );
}
