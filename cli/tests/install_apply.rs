//! The two-phase install as a user runs it, with the real kubectl against the fake API server:
//! `mesh install --crds | kubectl apply -f -`, then `mesh install | kubectl apply -f -`, a
//! second apply that changes nothing, custom resources of the new CRDs, and
//! `mesh uninstall --crds | kubectl delete --ignore-not-found -f -`.

#![allow(clippy::unwrap_used)] // Tests fail loudly; helpers outside #[test] functions too.

mod support;

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use mesh_testkube::FakeKube;
use support::{INSTALL_CERTS, mesh, testdata, text};

fn find_kubectl() -> PathBuf {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("kubectl"))
        .chain([PathBuf::from("/usr/bin/kubectl")])
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("kubectl is not installed (looked on PATH and in /usr/bin); this test needs it")
        })
}

struct Kubectl {
    bin: PathBuf,
    kubeconfig: PathBuf,
    dir: tempfile::TempDir,
}

impl Kubectl {
    fn new(server: &FakeKube) -> Kubectl {
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = server.write_kubeconfig(dir.path()).unwrap();
        Kubectl {
            bin: find_kubectl(),
            kubeconfig,
            dir,
        }
    }

    /// Runs kubectl with `stdin`, failing the test with its stderr if it fails.
    fn ok(&self, args: &[&str], stdin: &str) -> String {
        let cache = self.dir.path().join("cache");
        let mut child = Command::new(&self.bin)
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--cache-dir")
            .arg(&cache)
            .args(args)
            .env("KUBECACHEDIR", &cache)
            .env_remove("KUBECONFIG")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "kubectl {args:?} failed: {}",
            text(&out.stderr)
        );
        text(&out.stdout)
    }
}

/// Runs mesh in testdata/install with the fixture certificates, returning stdout.
fn mesh_ok(args: &[&str]) -> String {
    let out = support::mesh_offline()
        .current_dir(testdata().join("install"))
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "mesh {args:?}: {}", text(&out.stderr));
    text(&out.stdout)
}

#[test]
fn two_phase_install_applies_and_uninstall_deletes() {
    let server = FakeKube::builder().start().unwrap();
    let kubectl = Kubectl::new(&server);

    // Phase 1: the CRDs.
    let crds = mesh_ok(&["install", "--crds"]);
    let applied = kubectl.ok(&["apply", "-f", "-"], &crds);
    assert_eq!(applied.lines().count(), 7, "{applied}");
    assert!(applied.contains(
        "customresourcedefinition.apiextensions.k8s.io/servers.policy.linkerd.io created"
    ));
    assert_eq!(server.objects("CustomResourceDefinition", None).len(), 7);

    // Phase 2: the control plane.
    let args: Vec<&str> = ["install"].iter().chain(INSTALL_CERTS).copied().collect();
    let control_plane = mesh_ok(&args);
    let applied = kubectl.ok(&["apply", "-f", "-"], &control_plane);
    assert!(!applied.contains("unchanged"), "{applied}");
    let deployments = server.objects("Deployment", Some("linkerd"));
    let mut names: Vec<&str> = deployments
        .iter()
        .map(|d| d["metadata"]["name"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "linkerd-destination",
            "linkerd-identity",
            "linkerd-proxy-injector"
        ]
    );
    assert!(
        server
            .get("Secret", "linkerd", "linkerd-identity-issuer")
            .is_some()
    );

    // The same flags give the same bytes, so applying again changes nothing.
    let again = kubectl.ok(&["apply", "-f", "-"], &mesh_ok(&args));
    for line in again.lines() {
        assert!(line.ends_with(" unchanged"), "{line}");
    }

    // The CRDs are served: custom resources of each group can be created.
    let resources = "\
apiVersion: policy.linkerd.io/v1beta3
kind: Server
metadata: {name: web-http, namespace: linkerd}
spec:
  podSelector: {matchLabels: {app: web}}
  port: http
  proxyProtocol: HTTP/1
---
apiVersion: policy.linkerd.io/v1beta3
kind: HTTPRoute
metadata: {name: web-root, namespace: linkerd}
spec:
  parentRefs: [{name: web-http, kind: Server, group: policy.linkerd.io}]
  rules: [{matches: [{path: {type: PathPrefix, value: /}}]}]
---
apiVersion: linkerd.io/v1alpha2
kind: ServiceProfile
metadata: {name: web.linkerd.svc.cluster.local, namespace: linkerd}
spec:
  routes: [{name: root, condition: {method: GET, pathRegex: /}}]
";
    let created = kubectl.ok(&["apply", "-f", "-"], resources);
    assert_eq!(created.matches(" created").count(), 3, "{created}");

    // Uninstall: the webhook goes first, the CRDs last, and nothing is left.
    let uninstall = mesh_ok(&["uninstall", "--crds"]);
    let deleted = kubectl.ok(&["delete", "--ignore-not-found", "-f", "-"], &uninstall);
    let first = deleted.lines().next().unwrap();
    assert!(
        first.starts_with("mutatingwebhookconfiguration"),
        "{deleted}"
    );
    assert!(
        deleted
            .lines()
            .last()
            .unwrap()
            .starts_with("customresourcedefinition"),
        "{deleted}"
    );
    assert!(server.objects("Deployment", Some("linkerd")).is_empty());
    assert!(server.objects("CustomResourceDefinition", None).is_empty());
    assert!(
        server
            .objects("MutatingWebhookConfiguration", None)
            .is_empty()
    );
    assert!(server.objects("ClusterRole", None).is_empty());
}

/// Runs mesh in testdata/install against `kubectl`'s cluster.
fn mesh_at(kubectl: &Kubectl, args: &[&str]) -> std::process::Output {
    mesh()
        .current_dir(testdata().join("install"))
        .arg("--kubeconfig")
        .arg(&kubectl.kubeconfig)
        .args(args)
        .env_remove("KUBECONFIG")
        .output()
        .unwrap()
}

fn stdout_ok(out: std::process::Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what}: {:?} {}",
        out.status,
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// The lines only in `a` and the lines only in `b`, in order, as a small unified listing.
fn changed_lines(a: &str, b: &str) -> String {
    similar::TextDiff::from_lines(a, b)
        .iter_all_changes()
        .filter_map(|c| match c.tag() {
            similar::ChangeTag::Equal => None,
            similar::ChangeTag::Delete => Some(format!("-{c}")),
            similar::ChangeTag::Insert => Some(format!("+{c}")),
        })
        .collect()
}

#[test]
fn install_refuses_to_replace_a_control_plane_and_upgrade_keeps_it() {
    let server = FakeKube::builder().start().unwrap();
    let kubectl = Kubectl::new(&server);
    let install: Vec<&str> = ["install"].iter().chain(INSTALL_CERTS).copied().collect();

    // Nothing installed: upgrade has nothing to start from.
    let out = mesh_at(&kubectl, &["upgrade"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains(
            "no control plane in namespace linkerd: ConfigMap linkerd/linkerd-config does not exist"
        ),
        "{}",
        text(&out.stderr)
    );

    // The first install looks at the cluster, finds nothing, and is applied.
    let crds = stdout_ok(mesh_at(&kubectl, &["install", "--crds"]), "install --crds");
    kubectl.ok(&["apply", "-f", "-"], &crds);
    let installed = stdout_ok(mesh_at(&kubectl, &install), "first install");
    kubectl.ok(&["apply", "-f", "-"], &installed);

    // A second install is refused: it would replace the trust anchor under the running proxies.
    let out = mesh_at(&kubectl, &install);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty(), "nothing is written on refusal");
    let err = text(&out.stderr);
    assert!(
        err.contains("mesh is already installed in namespace linkerd")
            && err.contains("mesh upgrade | kubectl apply -f -")
            && err.contains("--ignore-cluster"),
        "{err}"
    );
    let mut ignoring = install.clone();
    ignoring.push("--ignore-cluster");
    assert_eq!(
        stdout_ok(mesh_at(&kubectl, &ignoring), "install --ignore-cluster"),
        installed
    );

    // Upgrade without changes renders what is installed, byte for byte: the same values and
    // the same certificates, read back from the cluster. As JSON too.
    assert_eq!(
        stdout_ok(mesh_at(&kubectl, &["upgrade"]), "upgrade"),
        installed
    );
    let mut json = install.clone();
    json.extend(["-o", "json", "--ignore-cluster"]);
    assert_eq!(
        stdout_ok(
            mesh_at(&kubectl, &["upgrade", "-o", "json"]),
            "upgrade -o json"
        ),
        stdout_ok(mesh_at(&kubectl, &json), "install -o json")
    );
    assert_eq!(
        stdout_ok(mesh_at(&kubectl, &["upgrade", "--crds"]), "upgrade --crds"),
        crds
    );

    // A --set changes only what it names (and the checksum of the values the pods carry).
    let debug = stdout_ok(
        mesh_at(&kubectl, &["upgrade", "--set", "proxy.logLevel=debug"]),
        "upgrade --set",
    );
    let changes = changed_lines(&installed, &debug);
    // The checksum of the values changes with any value a release adds; the golden shows where.
    let changes: String = changes
        .lines()
        .map(|l| match l.split_once("checksum/config: ") {
            Some((head, _)) => format!("{head}checksum/config: <sha256 of the values>\n"),
            None => format!("{l}\n"),
        })
        .collect();
    support::check_golden(
        &testdata().join("upgrade/set-proxy-log-level.diff"),
        &changes,
    )
    .unwrap();
    for line in changes.lines() {
        assert!(
            line.contains("debug")
                || line.contains("warn,linkerd=info")
                || line.contains("checksum"),
            "unexpected change: {line}"
        );
    }
    let applied = kubectl.ok(&["apply", "-f", "-"], &debug);
    assert!(
        applied.contains("configmap/linkerd-config configured"),
        "{applied}"
    );
    assert!(
        applied.contains("secret/linkerd-identity-issuer unchanged"),
        "{applied}"
    );

    // The next upgrade starts from the values the last one applied.
    assert_eq!(
        stdout_ok(mesh_at(&kubectl, &["upgrade"]), "second upgrade"),
        debug
    );
}

#[test]
fn upgrade_needs_a_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("absent");
    let out = mesh()
        .args(["upgrade"])
        .env("KUBECONFIG", &missing)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("no kubeconfig"),
        "{}",
        text(&out.stderr)
    );
}
