//! Endpoint propagation through `mesh-controller destination`: 5 000 endpoints in 500 services
//! (one EndpointSlice and ten meshed pods each) in the fake API server, a `Get` stream open on
//! every service; then EndpointSlices change and we time how long each open stream takes to see
//! the change. Prints p50/p99/max and the controller's RSS. Targets: under 100 ms, under 64 MB.
//!
//! Run with `cargo xtask bench destination`; it builds the controller first and finds it beside
//! this example (or at `$MESH_CONTROLLER`).

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::HashMap;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use linkerd2_proxy_api::destination as pb;
use linkerd2_proxy_api::destination::destination_client::DestinationClient;
use mesh_testkube::FakeKube;
use serde_json::json;
use tokio::sync::mpsc;

const SERVICES: usize = 500;
const PODS_PER_SERVICE: usize = 10;
const SEQUENTIAL_CHANGES: usize = 200;
const BURST: usize = 100;

#[tokio::main]
async fn main() -> Result<()> {
    let kube = FakeKube::start()?;
    let setup = Instant::now();
    kube.apply_yaml(support::CRDS)?;
    for s in 0..SERVICES {
        seed_service(&kube, s)?;
    }
    println!(
        "fixture: {SERVICES} services, {} endpoints, in {:.1}s",
        SERVICES * PODS_PER_SERVICE,
        setup.elapsed().as_secs_f64()
    );

    let dir = tempfile::tempdir()?;
    let kubeconfig = kube.write_kubeconfig(dir.path())?;
    let started = Instant::now();
    let mut command = Command::new(support::bench_binary());
    command
        .args(["--log-level", "warn,mesh_controller=info", "--kubeconfig"])
        .arg(&kubeconfig)
        .args(["--admin-addr", "127.0.0.1:0"])
        .args(["destination", "--addr", "127.0.0.1:0"])
        .args(["--policy-addr", "127.0.0.1:0"])
        .env("KUBECACHEDIR", dir.path());
    let controller = support::start(command, "grpc").map_err(|(status, log)| {
        anyhow::anyhow!("the controller did not start ({status:?}):\n{log}")
    })?;
    if !controller.wait_ready(Duration::from_secs(120)) {
        bail!(
            "the controller was not ready after 120 s:\n{}",
            controller.stderr()
        );
    }
    println!(
        "ready (watches synced) after {:.2}s",
        started.elapsed().as_secs_f64()
    );

    // One stream per service over a few connections, as a few proxies would hold them.
    let (seen_tx, mut seen_rx) = mpsc::unbounded_channel::<(usize, Instant)>();
    let mut clients = Vec::new();
    for _ in 0..4 {
        clients.push(DestinationClient::connect(format!("http://{}", controller.addr)).await?);
    }
    let opened = Instant::now();
    for s in 0..SERVICES {
        let mut client = clients[s % clients.len()].clone();
        let mut stream = client
            .get(pb::GetDestination {
                path: format!("svc-{s}.bench.svc.cluster.local:80"),
                ..Default::default()
            })
            .await?
            .into_inner();
        let tx = seen_tx.clone();
        tokio::spawn(async move {
            while let Ok(Some(_update)) = stream.message().await {
                if tx.send((s, Instant::now())).is_err() {
                    return;
                }
            }
        });
    }
    // Every stream's first message (the initial Add).
    let mut initial = 0;
    while initial < SERVICES {
        recv(&mut seen_rx).await?;
        initial += 1;
    }
    println!(
        "{SERVICES} streams opened and answered in {:.2}s",
        opened.elapsed().as_secs_f64()
    );
    let rss_before = controller.status_kb("VmRSS").context("no RSS")?;

    // Sequential changes: one slice at a time loses (or regains) an endpoint.
    let mut latencies = Vec::new();
    let mut shrunk = vec![false; SERVICES];
    for i in 0..SEQUENTIAL_CHANGES {
        let s = (i * 37) % SERVICES;
        shrunk[s] = !shrunk[s];
        let t0 = Instant::now();
        apply_slice(&kube, s, shrunk[s])?;
        loop {
            let (got, at) = recv(&mut seen_rx).await?;
            if got == s {
                latencies.push(at - t0);
                break;
            }
        }
    }
    report("sequential changes", &mut latencies);

    // A burst: BURST slices change back to back, without waiting for the streams; each latency
    // runs from the moment its own change was accepted by the API server.
    let t0 = Instant::now();
    let mut pending: HashMap<usize, Instant> = HashMap::new();
    for i in 0..BURST {
        let s = (i * 5 + 1) % SERVICES;
        shrunk[s] = !shrunk[s];
        apply_slice(&kube, s, shrunk[s])?;
        pending.insert(s, Instant::now());
    }
    let applied = t0.elapsed();
    let mut burst = Vec::new();
    while !pending.is_empty() {
        let (got, at) = recv(&mut seen_rx).await?;
        if let Some(accepted) = pending.remove(&got) {
            burst.push(at.saturating_duration_since(accepted));
        }
    }
    println!(
        "burst: {BURST} changes accepted by the API server in {:.1} ms, all seen after {:.1} ms",
        applied.as_secs_f64() * 1000.0,
        t0.elapsed().as_secs_f64() * 1000.0
    );
    report(&format!("burst of {BURST} slice changes"), &mut burst);

    let rss = controller.status_kb("VmRSS").context("no RSS")?;
    let hwm = controller.status_kb("VmHWM").context("no peak RSS")?;
    println!(
        "controller RSS: {:.1} MB after opening streams, {:.1} MB at the end, peak {:.1} MB (target < 64 MB)",
        rss_before as f64 / 1024.0,
        rss as f64 / 1024.0,
        hwm as f64 / 1024.0
    );
    Ok(())
}

async fn recv(rx: &mut mpsc::UnboundedReceiver<(usize, Instant)>) -> Result<(usize, Instant)> {
    tokio::time::timeout(Duration::from_secs(30), rx.recv())
        .await
        .context("no update within 30s")?
        .context("every stream ended")
}

fn report(what: &str, latencies: &mut [Duration]) {
    latencies.sort();
    let at = |q: f64| {
        let i = ((latencies.len() as f64 * q).ceil() as usize).clamp(1, latencies.len()) - 1;
        latencies[i].as_secs_f64() * 1000.0
    };
    println!(
        "{what}: n={} p50={:.2}ms p99={:.2}ms max={:.2}ms (target < 100 ms)",
        latencies.len(),
        at(0.50),
        at(0.99),
        at(1.0)
    );
}

fn pod_ip(s: usize, p: usize) -> String {
    let n = s * PODS_PER_SERVICE + p;
    format!("10.{}.{}.{}", 100 + n / 65536, (n / 256) % 256, n % 256)
}

fn seed_service(kube: &FakeKube, s: usize) -> Result<()> {
    kube.create(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": format!("svc-{s}"), "namespace": "bench"},
        "spec": {"selector": {"app": format!("svc-{s}")},
                 "ports": [{"name": "http", "port": 80, "targetPort": "http"}]},
    }))?;
    for p in 0..PODS_PER_SERVICE {
        let name = format!("svc-{s}-{p}");
        kube.create(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "bench",
                         "labels": {"app": format!("svc-{s}"), "pod-template-hash": "abc12",
                                    "linkerd.io/control-plane-ns": "linkerd"},
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                             "name": format!("svc-{s}-abc12"), "uid": "u", "controller": true}]},
            "spec": {"serviceAccountName": format!("svc-{s}"), "containers": [
                {"name": "app", "image": "app", "ports": [{"name": "http", "containerPort": 8080}]},
                {"name": "linkerd-proxy", "image": "proxy"}]},
        }))?;
        let ip = pod_ip(s, p);
        kube.edit_status("Pod", "bench", &name, |status| {
            status["podIP"] = json!(ip);
            status["podIPs"] = json!([{"ip": ip}]);
        })?;
    }
    apply_slice(kube, s, false)
}

/// The service's slice with all its endpoints, or without the last one.
fn apply_slice(kube: &FakeKube, s: usize, shrunk: bool) -> Result<()> {
    let count = if shrunk {
        PODS_PER_SERVICE - 1
    } else {
        PODS_PER_SERVICE
    };
    let endpoints: Vec<_> = (0..count)
        .map(|p| {
            json!({"addresses": [pod_ip(s, p)], "conditions": {"ready": true},
                   "targetRef": {"kind": "Pod", "name": format!("svc-{s}-{p}"), "namespace": "bench"}})
        })
        .collect();
    kube.apply_yaml(&serde_json::to_string(&json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": format!("svc-{s}-x"), "namespace": "bench",
                     "labels": {"kubernetes.io/service-name": format!("svc-{s}")}},
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
        "endpoints": endpoints,
    }))?)?;
    Ok(())
}
