//! The injector's latency per review: AdmissionReviews for pods of a Deployment in a namespace
//! annotated `linkerd.io/inject: enabled`, sent at a fixed rate over one HTTPS keep-alive
//! connection to the release `mesh-controller proxy-injector`, which runs against the fake API
//! server (it reads the pod's ReplicaSet there and records an Event per injection). Latency is
//! measured from the moment each review is sent to its answer; reviews are sent on schedule
//! whether or not earlier ones were answered, so a slow answer shows in the ones behind it.
//! It also prints the latency from each review's scheduled time, which adds the bench's own
//! timer lateness (tokio's timer has 1 ms granularity), and the injector's own histogram.
//! Target: p99 under 5 ms at 200 reviews/s. It prints figures; it never fails on speed.
//!
//! `cargo xtask bench injector [--rate N] [--seconds N]` builds and runs it.

#[path = "../tests/support/mod.rs"]
mod support;

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use mesh_testkube::FakeKube;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde_json::json;

use support::injector::HOST;
const TARGET_P99: Duration = Duration::from_millis(5);

fn main() -> Result<()> {
    let mut rate = 200u32;
    let mut seconds = 5u32;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut number = |flag: &str| -> Result<u32> {
            args.next()
                .and_then(|n| n.parse().ok())
                .filter(|&n| n > 0)
                .with_context(|| format!("{flag} needs a positive number"))
        };
        match arg.as_str() {
            "--rate" => rate = number("--rate")?,
            "--seconds" => seconds = number("--seconds")?,
            other => {
                bail!("unknown argument {other:?}; usage: bench_injector [--rate N] [--seconds N]")
            }
        }
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    let binary = support::bench_binary();
    if !binary.is_file() {
        bail!(
            "{} not found; build it with cargo build --release -p mesh-controller",
            binary.display()
        );
    }

    let kube = FakeKube::builder()
        .fixture_yaml(
            r#"
apiVersion: v1
kind: Namespace
metadata: {name: shop, annotations: {linkerd.io/inject: enabled}}
---
apiVersion: apps/v1
kind: ReplicaSet
metadata:
  name: web-7c9d
  namespace: shop
  ownerReferences: [{apiVersion: apps/v1, kind: Deployment, name: web, uid: deploy-uid, controller: true}]
spec:
  replicas: 0
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: nginx}]}
"#,
        )
        .start()?;
    let dir = tempfile::tempdir()?;
    let support::injector::Certs {
        ca_pem,
        crt_pem,
        key_pem,
    } = support::injector::certs();
    let tls = dir.path().join("tls");
    std::fs::create_dir(&tls)?;
    std::fs::write(tls.join("tls.crt"), &crt_pem)?;
    std::fs::write(tls.join("tls.key"), &key_pem)?;
    let values = mesh_inject::values::to_tree(&mesh_inject::values::Values::defaults());
    std::fs::write(dir.path().join("values"), serde_json::to_string(&values)?)?;
    std::fs::write(dir.path().join("anchors.pem"), &ca_pem)?;
    let kubeconfig = kube.write_kubeconfig(dir.path())?;

    // Pinned to CPU 0 when taskset exists, as the identity bench does: the clients and the
    // fake API server in this process (on CPU 1 under `cargo xtask bench injector`) then do
    // not take the injector's core, as on a cluster where the API server runs elsewhere.
    let mut command = if Command::new("taskset").arg("-V").output().is_ok() {
        let mut taskset = Command::new("taskset");
        taskset.args(["-c", "0"]).arg(&binary);
        taskset
    } else {
        eprintln!("note: not pinned (no taskset); clients and injector share the CPUs");
        Command::new(&binary)
    };
    command
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args(["--admin-addr", "127.0.0.1:0", "--log-level", "info"])
        .args(["proxy-injector", "--addr", "127.0.0.1:0"])
        .arg("--config")
        .arg(dir.path().join("values"))
        .arg("--trust-anchors")
        .arg(dir.path().join("anchors.pem"))
        .arg("--tls-dir")
        .arg(&tls);
    let controller = support::start(command, "webhook").map_err(|(status, log)| {
        anyhow::anyhow!("the injector did not start ({status:?}):\n{log}")
    })?;
    run(controller.addr, &ca_pem, rate, seconds)?;
    // The injector's own view: from a body read to its answer, without TLS, HTTP and the
    // client's scheduling.
    let (_, metrics) = controller.admin_get("/metrics");
    let value = |name: &str| -> f64 {
        metrics
            .lines()
            .filter(|l| l.starts_with(name))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    let buckets: Vec<String> = metrics
        .lines()
        .filter_map(|l| l.strip_prefix("proxy_injector_review_duration_seconds_bucket{le=\""))
        .filter_map(|l| {
            let (le, n) = l.split_once("\"} ")?;
            Some(format!("≤{le}s: {n}"))
        })
        .collect();
    let (sum, count) = (
        value("proxy_injector_review_duration_seconds_sum"),
        value("proxy_injector_review_duration_seconds_count"),
    );
    if count > 0.0 {
        println!(
            "  inside the injector: mean {:.3} ms over {count} reviews ({})",
            sum / count * 1000.0,
            buckets.join(", ")
        );
    }
    Ok(())
}

fn run(addr: SocketAddr, ca_pem: &str, rate: u32, seconds: u32) -> Result<()> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert?)?;
    }
    let tls = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let client = reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .tcp_nodelay(true)
        .resolve(HOST, addr)
        .pool_max_idle_per_host(4)
        .timeout(Duration::from_secs(10))
        .build()?;
    let url = format!("https://{HOST}:{}/", addr.port());
    let body = review_body();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        // Wait until the injector answers (the namespace reflector has synced), then warm up.
        let ready = Instant::now();
        loop {
            let injected = match client.post(&url).body(body.clone()).send().await {
                Ok(r) => r
                    .bytes()
                    .await
                    .map(|b| contains(&b, b"\"patch\""))
                    .unwrap_or(false),
                Err(_) => false,
            };
            if injected {
                break;
            }
            if ready.elapsed() > Duration::from_secs(20) {
                bail!("the injector never injected a pod");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        for _ in 0..100 {
            client
                .post(&url)
                .body(body.clone())
                .send()
                .await?
                .bytes()
                .await?;
        }

        let total = (rate * seconds) as usize;
        let period = Duration::from_secs(1) / rate;
        let mut interval = tokio::time::interval(period);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        let mut tasks = Vec::with_capacity(total);
        let began = Instant::now();
        for _ in 0..total {
            let scheduled = interval.tick().await.into_std();
            let (client, url, body) = (client.clone(), url.clone(), body.clone());
            tasks.push(tokio::spawn(async move {
                let sent = Instant::now();
                let response = client.post(&url).body(body).send().await?;
                let bytes = response.bytes().await?;
                if !contains(&bytes, b"\"patch\"") {
                    bail!("a review came back without a patch");
                }
                Ok::<_, anyhow::Error>((sent.elapsed(), scheduled.elapsed()))
            }));
        }
        let mut latencies = Vec::with_capacity(total);
        let mut from_schedule = Vec::with_capacity(total);
        for task in tasks {
            let (latency, scheduled) = task.await??;
            latencies.push(latency);
            from_schedule.push(scheduled);
        }
        let wall = began.elapsed();
        latencies.sort();
        from_schedule.sort();
        let quantile = |v: &[Duration], p: f64| {
            v[((v.len() as f64 * p).ceil() as usize).clamp(1, v.len()) - 1]
        };
        let q = |p: f64| quantile(&latencies, p);
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!(
            "injector: {total} pod reviews at {rate}/s over HTTPS keep-alive in {:.2} s",
            wall.as_secs_f64()
        );
        println!(
            "  per review: p50 {:.3} ms  p99 {:.3} ms  max {:.3} ms  (target p99 < {} ms: {})",
            ms(q(0.50)),
            ms(q(0.99)),
            ms(q(1.0)),
            TARGET_P99.as_millis(),
            if q(0.99) < TARGET_P99 {
                "met"
            } else {
                "missed"
            }
        );
        println!(
            "  from the scheduled time: p50 {:.3} ms  p99 {:.3} ms  max {:.3} ms",
            ms(quantile(&from_schedule, 0.50)),
            ms(quantile(&from_schedule, 0.99)),
            ms(quantile(&from_schedule, 1.0)),
        );
        Ok(())
    })
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// A review of a pod the Deployment's ReplicaSet creates, as the API server sends it.
fn review_body() -> Vec<u8> {
    let pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "generateName": "web-7c9d-",
            "namespace": "shop",
            "labels": {"app": "web", "pod-template-hash": "7c9d"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-7c9d", "uid": "rs-uid", "controller": true, "blockOwnerDeletion": true}],
        },
        "spec": {
            "containers": [{
                "name": "web", "image": "nginx:1.27", "imagePullPolicy": "IfNotPresent",
                "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                "resources": {}, "terminationMessagePath": "/dev/termination-log",
                "terminationMessagePolicy": "File",
                "volumeMounts": [{"name": "kube-api-access", "readOnly": true, "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}],
            }],
            "volumes": [{"name": "kube-api-access", "projected": {"sources": [{"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}}]}}],
            "restartPolicy": "Always", "dnsPolicy": "ClusterFirst", "serviceAccountName": "default",
            "securityContext": {}, "schedulerName": "default-scheduler",
        },
    });
    serde_json::to_vec(&json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "bench",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": "shop",
            "operation": "CREATE",
            "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller"},
            "object": pod,
            "dryRun": false,
        },
    }))
    .unwrap_or_default()
}
