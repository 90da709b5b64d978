//! The first thing every user runs, exactly as they run it: shell pipelines through `mesh inject`
//! into the real `kubectl apply`, against the fake API server.

#![allow(clippy::unwrap_used)] // Tests fail loudly; helpers outside #[test] functions too.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use mesh_testkube::FakeKube;
use support::{testdata, text};

struct Cluster {
    _server: FakeKube,
    dir: tempfile::TempDir,
    kubeconfig: PathBuf,
}

impl Cluster {
    fn start() -> Cluster {
        let server = FakeKube::builder().kubelet(true).start().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = server.write_kubeconfig(dir.path()).unwrap();
        Cluster {
            _server: server,
            dir,
            kubeconfig,
        }
    }

    /// Runs a shell pipeline with `mesh` and `kubectl` pointed at this cluster; returns stdout.
    fn sh(&self, pipeline: &str) -> String {
        let mesh_dir = Path::new(env!("CARGO_BIN_EXE_mesh")).parent().unwrap();
        let path = format!(
            "{}:{}",
            mesh_dir.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let out = Command::new("bash")
            .args(["-o", "pipefail", "-c", pipeline])
            .current_dir(testdata())
            .env("PATH", path)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("KUBECACHEDIR", self.dir.path().join("cache"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "`{pipeline}` failed:\n{}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        text(&out.stdout)
    }
}

fn require_kubectl() {
    let found = Command::new("kubectl")
        .arg("version")
        .arg("--client")
        .output();
    assert!(
        found.is_ok_and(|o| o.status.success()),
        "kubectl is not installed; this test needs the real kubectl"
    );
}

#[test]
fn cat_inject_apply_and_get_inject_apply() {
    require_kubectl();
    let cluster = Cluster::start();
    let applied = cluster.sh("cat examples/emojivoto.yml | mesh inject - | kubectl apply -f -");
    assert!(applied.contains("deployment.apps/web created"), "{applied}");

    let annotations = cluster.sh(
        "kubectl get deploy -n emojivoto -o jsonpath='{range .items[*]}{.metadata.name}={.spec.template.metadata.annotations.linkerd\\.io/inject} {end}'",
    );
    assert_eq!(
        annotations.trim(),
        "emoji=enabled vote-bot=enabled voting=enabled web=enabled"
    );

    // What is running, through inject and back. It is injected already, so mesh changes nothing
    // (kubectl may still say "configured": applying `get -o yaml` output rewrites its
    // last-applied annotation).
    let live = cluster.sh("kubectl get deploy web -n emojivoto -o yaml");
    let reinjected = cluster.sh("kubectl get deploy web -n emojivoto -o yaml | mesh inject -");
    assert_eq!(
        reinjected, live,
        "injecting an injected object changes nothing"
    );
    let again = cluster
        .sh("kubectl get deploy web -n emojivoto -o yaml | mesh inject - | kubectl apply -f -");
    assert!(again.contains("deployment.apps/web"), "{again}");

    // A `kind: List` too. kubectl validates a List against the server's protobuf OpenAPI v2
    // document, which the fake API server does not serve, so this leg skips client validation.
    let listed = cluster.sh(
        "kubectl get deploy -n emojivoto -o yaml | mesh inject - | kubectl apply --validate=false -f -",
    );
    assert!(listed.contains("deployment.apps/emoji"), "{listed}");

    // And out again.
    let removed = cluster.sh(
        "kubectl get deploy -n emojivoto -o yaml | mesh uninject - | kubectl apply --validate=false -f -",
    );
    assert!(
        removed.contains("deployment.apps/web configured"),
        "{removed}"
    );
    let annotations = cluster.sh(
        "kubectl get deploy web -n emojivoto -o jsonpath='{.spec.template.metadata.annotations}'",
    );
    assert!(!annotations.contains("linkerd.io/inject"), "{annotations}");
}

#[test]
fn manual_injection_applies_and_its_pods_get_the_sidecar() {
    require_kubectl();
    let cluster = Cluster::start();
    cluster.sh(
        "mesh inject --manual --identity-trust-anchors-file inject/trust-anchors.pem examples/emojivoto.yml | kubectl apply -f -",
    );
    let containers = cluster.sh(
        "kubectl get deploy web -n emojivoto -o jsonpath='{.spec.template.spec.initContainers[*].name}'",
    );
    assert_eq!(containers.trim(), "linkerd-init linkerd-proxy");
    let policy = cluster.sh(
        "kubectl get deploy web -n emojivoto -o jsonpath='{.spec.template.spec.initContainers[1].restartPolicy}'",
    );
    assert_eq!(policy.trim(), "Always");
}
