//! Endpoint propagation through `mesh-controller destination`: 5 000 endpoints in 500 services
//! (one EndpointSlice and ten meshed pods each) in the fake API server, a `Get` stream open on
//! every service; then EndpointSlices change and we time how long each open stream takes to see
//! the change. Prints p50/p99/max and the controller's RSS. Targets: under 100 ms, under 64 MB.
//!
//! Run with `cargo xtask bench destination`; it builds the controller first and finds it beside
//! this example (or at `$MESH_CONTROLLER`).

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
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
    let controller = Controller::start(&kubeconfig, dir.path())?;
    controller.wait_ready(Duration::from_secs(120))?;
    println!(
        "ready (watches synced) after {:.2}s",
        started.elapsed().as_secs_f64()
    );

    // One stream per service over a few connections, as a few proxies would hold them.
    let (seen_tx, mut seen_rx) = mpsc::unbounded_channel::<(usize, Instant)>();
    let mut clients = Vec::new();
    for _ in 0..4 {
        clients.push(DestinationClient::connect(format!("http://{}", controller.grpc)).await?);
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
    let rss_before = controller.rss_kb()?;

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

    // A burst: BURST slices change at once; each stream's latency from the start of the burst.
    let t0 = Instant::now();
    let mut pending: HashMap<usize, ()> = HashMap::new();
    for i in 0..BURST {
        let s = (i * 5 + 1) % SERVICES;
        shrunk[s] = !shrunk[s];
        apply_slice(&kube, s, shrunk[s])?;
        pending.insert(s, ());
    }
    let mut burst = Vec::new();
    while !pending.is_empty() {
        let (got, at) = recv(&mut seen_rx).await?;
        if pending.remove(&got).is_some() {
            burst.push(at - t0);
        }
    }
    report(&format!("burst of {BURST} slice changes"), &mut burst);

    let rss = controller.rss_kb()?;
    let hwm = controller.status_kb("VmHWM")?;
    println!(
        "controller RSS: {:.1} MB after opening streams, {:.1} MB at the end, peak {:.1} MB (target < 64 MB)",
        rss_before as f64 / 1024.0,
        rss as f64 / 1024.0,
        hwm as f64 / 1024.0
    );
    controller.stop();
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

struct Controller {
    child: Child,
    grpc: SocketAddr,
    admin: SocketAddr,
}

impl Controller {
    fn start(kubeconfig: &std::path::Path, cache: &std::path::Path) -> Result<Controller> {
        let binary = match std::env::var_os("MESH_CONTROLLER") {
            Some(path) => PathBuf::from(path),
            None => std::env::current_exe()?
                .parent()
                .and_then(|examples| examples.parent())
                .context("cannot find the target directory")?
                .join("mesh-controller"),
        };
        let mut child = Command::new(&binary)
            .args(["--log-level", "warn,mesh_controller=info", "--kubeconfig"])
            .arg(kubeconfig)
            .args([
                "--admin-addr",
                "127.0.0.1:0",
                "destination",
                "--addr",
                "127.0.0.1:0",
            ])
            .env("KUBECACHEDIR", cache)
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot run {}", binary.display()))?;
        let stderr = child.stderr.take().context("no stderr")?;
        let mut lines = BufReader::new(stderr).lines();
        let (mut grpc, mut admin) = (None, None);
        while grpc.is_none() || admin.is_none() {
            let Some(line) = lines.next().transpose()? else {
                bail!("the controller exited before listening");
            };
            let addr = line
                .split_whitespace()
                .find_map(|w| w.strip_prefix("addr="))
                .and_then(|a| a.parse::<SocketAddr>().ok());
            if line.contains(r#"server="grpc""#) {
                grpc = addr;
            } else if line.contains(r#"server="admin""#) {
                admin = addr;
            }
        }
        // Keep draining stderr so the controller never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines.map_while(Result::ok) {});
        Ok(Controller {
            child,
            grpc: grpc.context("no grpc address")?,
            admin: admin.context("no admin address")?,
        })
    }

    fn wait_ready(&self, limit: Duration) -> Result<()> {
        use std::io::{Read, Write};
        let start = Instant::now();
        loop {
            let mut stream = std::net::TcpStream::connect(self.admin)?;
            write!(stream, "GET /ready HTTP/1.0\r\n\r\n")?;
            let mut text = String::new();
            stream.read_to_string(&mut text)?;
            if text.starts_with("HTTP/1.0 200") || text.starts_with("HTTP/1.1 200") {
                return Ok(());
            }
            if start.elapsed() > limit {
                bail!("the controller was not ready after {limit:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn rss_kb(&self) -> Result<u64> {
        self.status_kb("VmRSS")
    }

    fn status_kb(&self, field: &str) -> Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        status
            .lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .with_context(|| format!("no {field} in /proc/<pid>/status"))
    }

    fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
