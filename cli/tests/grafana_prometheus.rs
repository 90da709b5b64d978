//! The dashboards in a real Prometheus: it scrapes two real mesh-proxy processes carrying
//! HTTP and TCP traffic, each labelled as the scrape config labels a meshed pod, and every
//! panel's query must run and return series (which labels they carry is `grafana.rs`'s
//! check), every variable's query the value it is set to here.
//!
//! Debian's Prometheus is built without Kubernetes discovery, so the pod's labels come from
//! the relabelling `grafana.rs` checks (`grafana_support::relabel`), given to Prometheus as
//! static target labels. Without a `prometheus` binary the test says so and passes, unless
//! `MESH_REQUIRE_PROMETHEUS=1` (CI) makes that a failure.
#![allow(clippy::unwrap_used)]

mod grafana_support;
mod stat_support;

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use grafana_support::pods::{injected_deployment, target_labels};
use grafana_support::traffic::{Traffic, http_get};
use grafana_support::{QueryKind, dashboards, promql, queries};

/// Panels whose query selects only failures this traffic does not cause: they must run, and
/// may be empty.
const MAY_BE_EMPTY: &[&str] = &["\"Connection errors\""];

/// What the template variables are set to.
const VARIABLES: &[(&str, &str)] = &[
    ("job", "linkerd-proxy"),
    ("namespace", "emojivoto"),
    ("deployment", "web"),
];

struct Prometheus {
    child: Child,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    /// Starts Prometheus with `config`, or returns `None` if it is not installed.
    fn start(config: &Value) -> Option<Prometheus> {
        if Command::new("prometheus")
            .arg("--version")
            .output()
            .is_err()
        {
            let required = std::env::var("MESH_REQUIRE_PROMETHEUS").is_ok_and(|v| v == "1");
            assert!(!required, "prometheus is not installed (cargo xtask deps)");
            eprintln!("skipped: prometheus is not installed (cargo xtask deps installs it)");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("prometheus.yml");
        // JSON is YAML.
        std::fs::write(&file, config.to_string()).unwrap();
        let addr = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", file.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let prometheus = Prometheus {
            child,
            addr,
            _dir: dir,
        };
        let ready = poll(Duration::from_secs(30), || {
            std::net::TcpStream::connect(addr).is_ok() && http_get(addr, "/-/ready").0 == 200
        });
        assert!(ready, "prometheus did not become ready on {addr}");
        Some(prometheus)
    }

    fn api(&self, path: &str) -> Value {
        let (status, body) = http_get(self.addr, path);
        assert_eq!(status, 200, "{path}: {body}");
        serde_json::from_str(&body).unwrap()
    }

    /// An instant query's series, or Prometheus' error.
    fn query(&self, expr: &str) -> Result<Vec<Value>, String> {
        let (_, body) = http_get(self.addr, &format!("/api/v1/query?query={}", encode(expr)));
        let v: Value = serde_json::from_str(&body).map_err(|e| format!("{e}: {body}"))?;
        if v["status"] != "success" {
            return Err(format!("{}: {}", v["errorType"], v["error"]));
        }
        Ok(v["data"]["result"].as_array().cloned().unwrap_or_default())
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Percent-encodes a query parameter.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Polls `f` every 100 ms until it holds or `timeout` passes.
fn poll(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    f()
}

/// The query with the template variables set, as Grafana would send it.
fn expand(expr: &str) -> String {
    let mut out = promql::substitute(expr);
    for (name, value) in VARIABLES {
        out = out
            .replace(&format!("${{{name}}}"), value)
            .replace(&format!("${name}"), value);
    }
    out
}

/// Grafana's `label_values(SELECTOR, LABEL)` as a query whose series carry LABEL's values.
fn label_values_query(q: &str) -> (String, String) {
    let inner = q
        .trim()
        .strip_prefix("label_values(")
        .and_then(|q| q.strip_suffix(')'))
        .unwrap();
    let (selector, label) = inner.rsplit_once(',').unwrap();
    let label = label.trim().to_string();
    (format!("count by ({label}) ({selector})"), label)
}

#[test]
fn every_panel_has_data_in_a_real_prometheus() {
    let traffic = Traffic::start();
    let deployment = injected_deployment();
    let pods = [
        (&traffic.http, "web-5d9c7b6f4-x2x7k", "10.244.0.7"),
        (&traffic.tcp, "web-5d9c7b6f4-b8k2p", "10.244.0.9"),
    ];
    let static_configs: Vec<Value> = pods
        .iter()
        .map(|(proxy, name, ip)| {
            let mut labels = target_labels(&deployment, name, ip);
            // Prometheus sets these two itself.
            labels.remove("job");
            labels.remove("instance");
            json!({"targets": [proxy.admin.to_string()], "labels": labels})
        })
        .collect();
    let config = json!({
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [{
            "job_name": "linkerd-proxy",
            "static_configs": static_configs,
        }],
    });
    let Some(prometheus) = Prometheus::start(&config) else {
        return;
    };
    let up = poll(Duration::from_secs(30), || {
        let targets = prometheus.api("/api/v1/targets");
        let active = targets["data"]["activeTargets"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        active.len() == 2 && active.iter().all(|t| t["health"] == "up")
    });
    assert!(up, "targets: {:#}", prometheus.api("/api/v1/targets"));

    // Rates need two scrapes of every series; poll until every query has data.
    let mut results: BTreeMap<String, Result<String, String>> = BTreeMap::new();
    let all_have_data = |results: &mut BTreeMap<String, Result<String, String>>| {
        results.clear();
        for (file, d) in dashboards() {
            for q in queries(&file, &d) {
                results.insert(q.place.clone(), run(&prometheus, &q));
            }
        }
        results.iter().all(|(place, r)| match r {
            Ok(_) => true,
            Err(e) => e == "no data" && MAY_BE_EMPTY.iter().any(|m| place.contains(m)),
        })
    };
    let done = poll(Duration::from_secs(60), || all_have_data(&mut results));
    let failed: Vec<String> = results
        .iter()
        .filter(|(place, r)| {
            r.is_err()
                && !(r.as_ref().err().is_some_and(|e| e == "no data")
                    && MAY_BE_EMPTY.iter().any(|m| place.contains(m)))
        })
        .map(|(place, r)| format!("{place}: {}", r.as_ref().err().unwrap()))
        .collect();
    assert!(done && failed.is_empty(), "{}", failed.join("\n"));
    assert!(results.len() >= 30, "only {} queries", results.len());
}

/// Runs one dashboard query: `Ok` with a description of the data, or why not.
fn run(prometheus: &Prometheus, q: &grafana_support::Query) -> Result<String, String> {
    match q.kind {
        QueryKind::Variable => {
            let (expr, label) = label_values_query(&q.expr);
            let series = prometheus.query(&expand(&expr))?;
            let values: Vec<&str> = series
                .iter()
                .filter_map(|s| s["metric"][&label].as_str())
                .collect();
            let want = VARIABLES.iter().find(|(n, _)| *n == label).map(|(_, v)| *v);
            match want {
                Some(v) if !values.contains(&v) => {
                    Err(format!("{label} values {values:?} lack {v}"))
                }
                _ if values.is_empty() => Err("no data".into()),
                _ => Ok(format!("{values:?}")),
            }
        }
        QueryKind::Panel => {
            let series = prometheus.query(&expand(&q.expr))?;
            if series.is_empty() {
                return Err("no data".into());
            }
            Ok(format!("{} series", series.len()))
        }
    }
}
