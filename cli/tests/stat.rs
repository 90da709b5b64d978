//! `mesh stat` end to end: real mesh-proxy processes on loopback carry a known traffic mix,
//! and the fake API server's pod proxy reaches each proxy's admin port.
//!
//! Tolerances: the client sends on a fixed schedule, so a 3 s window holds 30 ± 1 requests
//! per 10 rps; rates are checked within ±15 %, the success rate within ±6 points, and
//! latency percentiles between the backend's 20 ms and 20 ms plus a generous allowance for
//! a debug-build proxy on a busy 2-core machine.
#![allow(clippy::unwrap_used)]

mod stat_support;

use serde_json::Value;
use stat_support::{Backend, Load, Proxy, mesh, meshed_deployment, pods_of, stderr, stdout};

use mesh_testkube::FakeKube;

const NS: &str = "emojivoto";

fn row<'a>(rows: &'a [Value], kind: &str, name: &str) -> &'a Value {
    rows.iter()
        .find(|r| r["kind"] == kind && r["name"] == name)
        .unwrap_or_else(|| panic!("no {kind}/{name} row in {rows:#?}"))
}

fn within(value: &Value, low: f64, high: f64, what: &str) {
    let v = value
        .as_f64()
        .unwrap_or_else(|| panic!("{what} is not a number: {value}"));
    assert!(
        (low..=high).contains(&v),
        "{what} = {v}, expected {low}..={high}"
    );
}

#[test]
fn stat_reports_rate_success_and_latency_of_real_traffic() {
    let backend = Backend::start();
    let proxies = [
        Proxy::start(backend.addr, &[]),
        Proxy::start(backend.addr, &[]),
    ];
    let server = FakeKube::builder().kubelet(true).start().unwrap();
    server.apply_yaml(&meshed_deployment(NS, "web", 2)).unwrap();
    // A meshed pod whose proxy cannot be reached, and a workload with no proxy at all.
    server.apply_yaml(&meshed_deployment(NS, "db", 1)).unwrap();
    server
        .apply_yaml(
            &meshed_deployment(NS, "legacy", 1)
                .replace("      - name: linkerd-proxy\n", "      - name: sidecar\n"),
        )
        .unwrap();
    let web = pods_of(&server, NS, "web");
    assert_eq!(web.len(), 2);
    for (pod, proxy) in web.iter().zip(&proxies) {
        server.set_pod_proxy(NS, pod, 4191, proxy.admin);
    }
    // 10 rps in all, every 10th request fails, every request takes 20 ms at the backend.
    let loads: Vec<Load> = proxies
        .iter()
        .map(|p| Load::start(p.inbound, "web.emojivoto.svc.cluster.local:8080", 5, 10, 20))
        .collect();
    // Both proxies have traffic before the first read.
    for load in &loads {
        load.wait_for(2);
    }

    let runs: Vec<_> = [
        vec!["stat", "deploy", "-n", NS, "-t", "3s", "-o", "json"],
        vec![
            "stat",
            "deploy",
            "-n",
            NS,
            "-t",
            "3s",
            "-o",
            "wide",
            "--unmeshed",
        ],
        vec!["stat", "po", "-n", NS, "-t", "3s", "-o", "json"],
    ]
    .into_iter()
    .map(|args| {
        let server = &server;
        let args: Vec<String> = args.into_iter().map(String::from).collect();
        let kubeconfig_dir = tempfile::tempdir().unwrap();
        let kubeconfig = server.write_kubeconfig(kubeconfig_dir.path()).unwrap();
        let child = stat_support::mesh_command(&kubeconfig, kubeconfig_dir.path())
            .args(&args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        (args, child, kubeconfig_dir)
    })
    .collect();
    let outputs: Vec<_> = runs
        .into_iter()
        .map(|(args, child, _dir)| (args, child.wait_with_output().unwrap()))
        .collect();
    for (args, out) in &outputs {
        assert!(
            out.status.success(),
            "mesh {args:?} failed:\n{}{}",
            stdout(out),
            stderr(out)
        );
        // The unreachable pod is a footnote, not a failure.
        let err = stderr(out);
        assert!(
            err.contains("could not read 1 of 3 pods") && err.contains("emojivoto/db-"),
            "mesh {args:?} should name the unreachable pod on stderr:\n{err}"
        );
    }

    let deployments: Vec<Value> = serde_json::from_str(&stdout(&outputs[0].1)).unwrap();
    let web_row = row(&deployments, "deployment", "web");
    assert_eq!(web_row["namespace"], NS);
    assert_eq!(web_row["meshed"], "2/2");
    within(&web_row["rps"], 8.5, 11.5, "web rps");
    within(&web_row["success"], 0.84, 0.96, "web success");
    // Each request takes the backend's 20 ms, a floor; the ceilings only catch a wrong unit or
    // bucket, loose enough that queueing on a loaded machine cannot fail the test.
    within(&web_row["latency_ms_p50"], 20.0, 200.0, "web p50");
    within(&web_row["latency_ms_p95"], 20.0, 1000.0, "web p95");
    within(&web_row["latency_ms_p99"], 20.0, 1000.0, "web p99");
    let quantile = |q: &str| web_row[q].as_f64().unwrap();
    assert!(
        quantile("latency_ms_p50") <= quantile("latency_ms_p95")
            && quantile("latency_ms_p95") <= quantile("latency_ms_p99"),
        "quantiles in order: {web_row}"
    );
    assert_eq!(
        web_row["tcp_open_connections"], 2,
        "one client connection per proxy"
    );
    assert!(web_row["tcp_read_bytes_rate"].as_f64().unwrap() > 0.0);
    let db_row = row(&deployments, "deployment", "db");
    assert_eq!(db_row["meshed"], "1/1");
    for field in ["success", "rps", "latency_ms_p50", "tcp_open_connections"] {
        assert_eq!(db_row[field], Value::Null, "db has no data: {field}");
    }
    assert!(
        deployments.iter().all(|r| r["name"] != "legacy"),
        "unmeshed deployments are hidden without --unmeshed"
    );

    let wide = stdout(&outputs[1].1);
    let lines: Vec<&str> = wide.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        [
            "NAME",
            "MESHED",
            "SUCCESS",
            "RPS",
            "LATENCY_P50",
            "LATENCY_P95",
            "LATENCY_P99",
            "TCP_CONN",
            "READ_BYTES/SEC",
            "WRITE_BYTES/SEC"
        ],
        "{wide}"
    );
    let legacy = lines.iter().find(|l| l.starts_with("legacy")).expect(&wide);
    assert_eq!(
        legacy.split_whitespace().collect::<Vec<_>>(),
        ["legacy", "0/1", "-", "-", "-", "-", "-", "-", "-", "-"]
    );
    let web_line: Vec<&str> = lines
        .iter()
        .find(|l| l.starts_with("web"))
        .expect(&wide)
        .split_whitespace()
        .collect();
    assert_eq!(web_line[1], "2/2");
    assert!(
        web_line[2].ends_with('%') && web_line[3].ends_with("rps"),
        "{wide}"
    );
    assert!(
        web_line[4].ends_with("ms") && web_line[8].ends_with("B/s"),
        "{wide}"
    );

    let pods: Vec<Value> = serde_json::from_str(&stdout(&outputs[2].1)).unwrap();
    for name in &web {
        let pod = row(&pods, "pod", name);
        assert_eq!(pod["meshed"], "1/1");
        within(&pod["rps"], 4.0, 6.0, "pod rps");
    }
}

#[test]
fn stat_reads_proxies_directly_and_groups_by_authority() {
    let backend = Backend::start();
    let proxy = Proxy::start(backend.addr, &[]);
    let web = Load::start(proxy.inbound, "web.example:8080", 8, 0, 1);
    let api = Load::start(proxy.inbound, "api.example:9090", 4, 2, 1);
    web.wait_for(2);
    api.wait_for(2);
    let admin = proxy.admin.to_string();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mesh"))
        .args(["stat", "--proxy", &admin, "-t", "2s", "-o", "json"])
        .env_remove("KUBECONFIG")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let rows: Vec<Value> = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(rows.len(), 2, "{rows:#?}");
    let web = row(&rows, "authority", "web.example:8080");
    within(&web["rps"], 6.5, 9.5, "web rps");
    assert_eq!(web["success"], 1);
    assert_eq!(web["meshed"], "-");
    assert_eq!(web["tcp_open_connections"], Value::Null);
    let api = row(&rows, "authority", "api.example:9090");
    within(&api["rps"], 3.0, 5.0, "api rps");
    within(&api["success"], 0.3, 0.7, "api success");
}

/// With no proxy to read at all there is nothing to report: a runtime error (exit 2), as the
/// README promises for an unreachable target, not "No traffic found." and exit 0.
#[test]
fn no_reachable_proxy_is_an_error() {
    // Nothing listens on this port once the listener is dropped.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mesh"))
        .args(["stat", "--proxy", &addr, "-t", "100ms"])
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(!err.contains("No traffic found."), "{err}");
    assert!(
        err.contains("could not read any of the 1 proxies") && err.contains(&addr),
        "{err}"
    );
    assert!(stdout(&out).is_empty());
}

#[test]
fn missing_resources_and_bad_arguments_are_errors() {
    let server = FakeKube::builder().kubelet(true).start().unwrap();
    server.apply_yaml(&meshed_deployment(NS, "web", 1)).unwrap();
    let out = mesh(&server, &["stat", "deploy/nope", "-n", NS, "-t", "1s"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("deployment \"nope\" not found in namespace \"emojivoto\""),
        "{}",
        stderr(&out)
    );
    let out = mesh(&server, &["stat", "widgets"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("unknown resource type \"widgets\""),
        "{}",
        stderr(&out)
    );
    let out = mesh(&server, &["stat", "deploy", "-A", "-n", NS]);
    assert_eq!(out.status.code(), Some(2));
    let out = mesh(
        &server,
        &["stat", "deploy", "--to", "svc/web", "--from", "deploy/web"],
    );
    assert_eq!(out.status.code(), Some(2));
}

/// An empty window has no rates, and one too long for a duration is refused rather than a panic.
#[test]
fn windows_that_are_empty_or_too_long_are_usage_errors() {
    for (window, says) in [
        ("0s", "the sampling window must be longer than 0s"),
        ("0", "the sampling window must be longer than 0s"),
        ("99999999999999999999s", "is too long"),
        ("9223372036854775807h9223372036854775807h", "is too long"),
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_mesh"))
            .args(["stat", "deploy", "-t", window])
            .env("KUBECONFIG", "/nonexistent")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{window}: {}", stderr(&out));
        assert!(stderr(&out).contains(says), "{window}: {}", stderr(&out));
        assert!(stderr(&out).contains("--time-window"), "{}", stderr(&out));
    }
}

/// A tmux server of its own, so parallel tests and other users' sessions never meet.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn new(name: &str) -> Tmux {
        Tmux {
            socket: format!("mesh-{name}-{}", std::process::id()),
        }
    }

    fn run(&self, args: &[&str]) -> std::process::Output {
        std::process::Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("tmux is installed (cargo xtask ci installs it)")
    }

    /// Starts `mesh --kubeconfig KUBECONFIG ARGS` (ARGS split on spaces) in a 150×30 window of
    /// session `test`, with its cache in `dir`.
    fn start_mesh(&self, dir: &std::path::Path, kubeconfig: &std::path::Path, args: &str) {
        let command = format!(
            "env -u KUBECONFIG KUBECACHEDIR={} {} --kubeconfig {} {args}",
            shell_quote(&dir.join("cache").display().to_string()),
            shell_quote(env!("CARGO_BIN_EXE_mesh")),
            shell_quote(&kubeconfig.display().to_string()),
        );
        let started = self.run(&[
            "new-session",
            "-d",
            "-s",
            "test",
            "-x",
            "150",
            "-y",
            "30",
            &command,
        ]);
        assert!(started.status.success(), "{}", stderr(&started));
    }

    fn screen(&self) -> String {
        stdout(&self.run(&["capture-pane", "-p", "-t", "test"]))
    }

    fn alive(&self) -> bool {
        self.run(&["has-session", "-t", "test"]).status.success()
    }

    /// Waits until the screen satisfies `ok`, returning it.
    fn wait_for(&self, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let screen = self.screen();
            if ok(&screen) {
                return screen;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "timed out waiting for {what}; the screen:\n{screen}"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
    }
}

fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

#[test]
fn watch_redraws_the_table_in_place() {
    let backend = Backend::start();
    let proxy = Proxy::start(backend.addr, &[]);
    let server = FakeKube::builder().kubelet(true).start().unwrap();
    server.apply_yaml(&meshed_deployment(NS, "web", 1)).unwrap();
    let pod = pods_of(&server, NS, "web").remove(0);
    server.set_pod_proxy(NS, &pod, 4191, proxy.admin);
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = server.write_kubeconfig(dir.path()).unwrap();
    let _load = Load::start(proxy.inbound, "web:8080", 20, 0, 1);

    let tmux = Tmux::new("watch");
    tmux.start_mesh(
        dir.path(),
        &kubeconfig,
        &format!("stat deploy -n {NS} -t 1s --watch"),
    );
    let first = tmux.wait_for("the first table", |s| {
        s.contains("refresh 1")
            && s.lines()
                .any(|l| l.starts_with("web ") && l.contains("rps"))
    });
    let second = tmux.wait_for("a later refresh", |s| s.contains("refresh 3"));
    // Redrawn in place: one header, one table, never stacked copies.
    for screen in [&first, &second] {
        assert_eq!(screen.matches("LATENCY_P50").count(), 1, "{screen}");
        assert!(screen.starts_with("Every 1s: mesh stat deploy"), "{screen}");
    }
    let web = second
        .lines()
        .find(|l| l.starts_with("web "))
        .unwrap()
        .to_string();
    let cells: Vec<&str> = web.split_whitespace().collect();
    assert_eq!(cells[1], "1/1", "{second}");
    assert_eq!(cells[2], "100.00%", "{second}");
    let rps: f64 = cells[3].trim_end_matches("rps").parse().unwrap();
    assert!((15.0..=25.0).contains(&rps), "{second}");
    tmux.run(&["send-keys", "-t", "test", "C-c"]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while tmux.alive() {
        assert!(
            std::time::Instant::now() < deadline,
            "Ctrl-C did not stop --watch"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn diagnostics_prints_each_pods_metrics() {
    let backend = Backend::start();
    let proxies = [
        Proxy::start(backend.addr, &[]),
        Proxy::start(backend.addr, &[]),
    ];
    let server = FakeKube::builder().kubelet(true).start().unwrap();
    server.apply_yaml(&meshed_deployment(NS, "web", 3)).unwrap();
    let pods = pods_of(&server, NS, "web");
    // The third pod's proxy cannot be reached.
    for (pod, proxy) in pods.iter().zip(&proxies) {
        server.set_pod_proxy(NS, pod, 4191, proxy.admin);
    }
    {
        let load = Load::start(
            proxies[0].inbound,
            "web.emojivoto.svc.cluster.local:8080",
            50,
            0,
            0,
        );
        load.wait_for(10);
    }
    let out = mesh(
        &server,
        &["diagnostics", "proxy-metrics", "-n", NS, "deploy/web"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    for (i, pod) in pods.iter().enumerate() {
        let header = format!("#\n# POD {pod} ({} of 3)\n#\n", i + 1);
        assert!(text.contains(&header), "no header for {pod}:\n{text}");
    }
    assert!(text.contains("# ERROR "), "{text}");
    assert!(
        text.contains("authority=\"web.emojivoto.svc.cluster.local:8080\""),
        "{text}"
    );
    assert!(text.contains("process_start_time_seconds"), "{text}");

    let out = mesh(
        &server,
        &[
            "diagnostics",
            "proxy-metrics",
            "-n",
            NS,
            "deploy/web",
            "--obfuscate",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let hidden = stdout(&out);
    assert!(
        !hidden.contains("web.emojivoto.svc.cluster.local"),
        "{hidden}"
    );
    assert!(!hidden.contains("target_addr=\"127.0.0.1"), "{hidden}");
    assert!(hidden.contains("direction=\"inbound\""), "{hidden}");
    let out = mesh(
        &server,
        &["diagnostics", "proxy-metrics", "-n", NS, "deploy/nope"],
    );
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn a_proxy_that_never_answers_times_out_as_a_footnote() {
    let server = FakeKube::builder().kubelet(true).start().unwrap();
    server.apply_yaml(&meshed_deployment(NS, "web", 2)).unwrap();
    let pods = pods_of(&server, NS, "web");
    let backend = Backend::start();
    let proxy = Proxy::start(backend.addr, &[]);
    server.set_pod_proxy(NS, &pods[0], 4191, proxy.admin);
    server.inject_fault(
        &format!("/pods/{}:4191/proxy", pods[1]),
        mesh_testkube::Fault::Hang,
    );
    let _load = Load::start(proxy.inbound, "web:8080", 10, 0, 1);
    let started = std::time::Instant::now();
    let out = mesh(
        &server,
        &[
            "stat",
            "deploy",
            "-n",
            NS,
            "-t",
            "1s",
            "--scrape-timeout",
            "500ms",
            "-o",
            "json",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "the timeout bounds the run"
    );
    let err = stderr(&out);
    assert!(
        err.contains(&format!("{NS}/{}: timed out after 500ms", pods[1])),
        "{err}"
    );
    let rows: Vec<Value> = serde_json::from_str(&stdout(&out)).unwrap();
    let web = row(&rows, "deployment", "web");
    assert_eq!(web["meshed"], "2/2");
    within(&web["rps"], 7.0, 13.0, "the answering pod's rps");
}

#[test]
fn a_proxy_restart_inside_the_window_counts_from_the_restart() {
    let backend = Backend::start();
    let server = FakeKube::builder().kubelet(true).start().unwrap();
    server.apply_yaml(&meshed_deployment(NS, "web", 1)).unwrap();
    let pod = pods_of(&server, NS, "web").remove(0);
    let first = Proxy::start(backend.addr, &[]);
    server.set_pod_proxy(NS, &pod, 4191, first.admin);
    // Ten seconds' worth of requests before the window, so the restarted proxy's counters
    // are well below the old ones.
    let burst = Load::start(first.inbound, "web:8080", 200, 0, 0);
    burst.wait_for(300);
    drop(burst);
    server.clear_requests();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = server.write_kubeconfig(dir.path()).unwrap();
    let run = stat_support::mesh_command(&kubeconfig, dir.path())
        .args(["stat", "deploy", "-n", NS, "-t", "3s", "-o", "json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Only after mesh's first read, through the pod proxy, of the first proxy's metrics.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !server
        .requests()
        .iter()
        .any(|r| r.contains(&format!("/pods/{pod}:4191/proxy/metrics")))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "mesh never read the proxy: {:#?}",
            server.requests()
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    // The proxy restarts: a new process, new counters, the same pod. The old process stays up
    // until the end, so that the read already on its way to it completes.
    let second = Proxy::start(backend.addr, &[]);
    server.set_pod_proxy(NS, &pod, 4191, second.admin);
    let _load = Load::start(second.inbound, "web:8080", 10, 5, 1);
    let out = run.wait_with_output().unwrap();
    drop(first);
    assert!(out.status.success(), "{}", stderr(&out));
    let rows: Vec<Value> = serde_json::from_str(&stdout(&out)).unwrap();
    let web = row(&rows, "deployment", "web");
    // 10 rps from just after the first read, over a 3 s window. Without reset handling the
    // counters would have gone down and the row would have no data.
    within(&web["rps"], 7.0, 11.0, "rps since the restart");
    within(&web["success"], 0.7, 0.9, "success since the restart");
}

/// Nothing found at a proxy: stat says which direction it read and how to read the other.
#[test]
fn an_empty_proxy_read_names_the_direction_and_the_other_one() {
    let backend = Backend::start();
    let proxy = Proxy::start(backend.addr, &[]);
    let web = Load::start(proxy.inbound, "web.example:8080", 20, 0, 1);
    web.wait_for(2);
    let admin = proxy.admin.to_string();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mesh"))
        .args([
            "stat",
            "--proxy",
            &admin,
            "-t",
            "1s",
            "--direction",
            "outbound",
        ])
        .env_remove("KUBECONFIG")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "");
    assert!(
        stderr(&out).contains(
            "No traffic found. Read outbound traffic of 1 proxy for 1s; --direction inbound reads the inbound side.\n"
        ),
        "{}",
        stderr(&out)
    );
}

/// Workloads without a meshed pod are left out as Linkerd leaves them out, but stat says so, and
/// --unmeshed lists them as 0/N.
#[test]
fn unmeshed_workloads_left_out_are_counted() {
    let backend = Backend::start();
    let proxy = Proxy::start(backend.addr, &[]);
    let server = FakeKube::builder().kubelet(true).start().unwrap();
    server.apply_yaml(&meshed_deployment(NS, "web", 1)).unwrap();
    let plain = meshed_deployment(NS, "legacy", 1);
    let plain = &plain[..plain.find("      - name: linkerd-proxy").unwrap()];
    server.apply_yaml(plain).unwrap();
    let pod = pods_of(&server, NS, "web").remove(0);
    server.set_pod_proxy(NS, &pod, 4191, proxy.admin);

    let out = mesh(&server, &["stat", "deploy", "-n", NS, "-t", "1s"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("\nweb "), "{}", stdout(&out));
    assert!(!stdout(&out).contains("legacy"), "{}", stdout(&out));
    assert!(
        stderr(&out).contains(
            "Not shown: 1 deployment with no meshed pod (--unmeshed lists them as 0/N).\n"
        ),
        "{}",
        stderr(&out)
    );
    let out = mesh(
        &server,
        &["stat", "deploy", "-n", NS, "-t", "1s", "--unmeshed"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let legacy = stdout(&out)
        .lines()
        .find(|l| l.starts_with("legacy "))
        .map(str::to_string)
        .unwrap_or_else(|| panic!("no legacy row:\n{}", stdout(&out)));
    assert_eq!(legacy.split_whitespace().nth(1), Some("0/1"), "{legacy}");
    assert!(!stderr(&out).contains("Not shown"), "{}", stderr(&out));
}

/// A long window is never a blank screen: --watch draws its header and "sampling…" at once,
/// and a one-shot run counts down on a terminal's stderr.
#[test]
fn a_long_window_shows_that_it_is_sampling() {
    let server = FakeKube::builder().kubelet(true).start().unwrap();
    server.apply_yaml(&meshed_deployment(NS, "web", 1)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = server.write_kubeconfig(dir.path()).unwrap();
    for (name, extra, expect) in [
        ("watch", "--watch", "sampling… 30s"),
        ("once", "", "sampling traffic… "),
    ] {
        let tmux = Tmux::new(&format!("sampling-{name}"));
        tmux.start_mesh(
            dir.path(),
            &kubeconfig,
            &format!("stat deploy -n {NS} -t 30s {extra}"),
        );
        let screen = tmux.wait_for(expect, |s| s.contains(expect));
        if name == "watch" {
            assert!(
                screen.starts_with("Every 30s: mesh stat deploy"),
                "{screen}"
            );
        }
        tmux.run(&["send-keys", "-t", "test", "C-c"]);
    }
}

/// `--from` a workload groups outbound traffic by the destination's workload, which only the
/// `dst_*` labels from the control plane's discovery name; a proxy with no control plane has
/// none, and the empty cells are explained instead of left as "-".
#[test]
fn traffic_that_cannot_be_matched_to_a_workload_is_explained() {
    let backend = Backend::start();
    let proxy = Proxy::start(backend.addr, &[]);
    let server = FakeKube::builder().kubelet(true).start().unwrap();
    server.apply_yaml(&meshed_deployment(NS, "web", 1)).unwrap();
    let pod = pods_of(&server, NS, "web").remove(0);
    server.set_pod_proxy(NS, &pod, 4191, proxy.admin);
    // Outbound, through the proxy's HTTP proxy port, to the backend.
    let load = Load::start(proxy.outbound, &backend.addr.to_string(), 20, 0, 1);
    load.wait_for(2);
    let out = mesh(
        &server,
        &[
            "stat",
            "deploy",
            "-n",
            NS,
            "--from",
            "deploy/web",
            "-t",
            "1s",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("\nweb "), "{}", stdout(&out));
    assert!(
        stderr(&out)
            .contains("No traffic matched: no outbound request carried a dst_deployment label"),
        "{}",
        stderr(&out)
    );
}

/// `mesh edges`: a workload's proxy sent traffic to a Service (here by its cluster IP, which
/// stands on loopback so the traffic stays on this machine).
#[test]
fn edges_name_the_services_a_workload_talks_to() {
    let backend = Backend::start();
    let proxy = Proxy::start(backend.addr, &[]);
    let server = FakeKube::builder().kubelet(true).start().unwrap();
    server.apply_yaml(&meshed_deployment(NS, "web", 1)).unwrap();
    server
        .apply_yaml(&meshed_deployment(NS, "idle", 1))
        .unwrap();
    server
        .apply_yaml(&format!(
            "apiVersion: v1\nkind: Service\nmetadata: {{name: api, namespace: {NS}}}\nspec:\n  clusterIP: 127.0.0.1\n  selector: {{app: api}}\n  ports: [{{port: {}}}]\n",
            backend.addr.port()
        ))
        .unwrap();
    let pod = pods_of(&server, NS, "web").remove(0);
    server.set_pod_proxy(NS, &pod, 4191, proxy.admin);
    let idle_backend = Backend::start();
    let idle_proxy = Proxy::start(idle_backend.addr, &[]);
    let idle = pods_of(&server, NS, "idle").remove(0);
    server.set_pod_proxy(NS, &idle, 4191, idle_proxy.admin);
    let load = Load::start(proxy.outbound, &backend.addr.to_string(), 20, 0, 1);
    load.wait_for(2);

    let out = mesh(&server, &["edges", "deploy", "-n", NS]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        format!(
            "SRC   DST       SRC_NS      DST_NS      SECURED\nweb   svc/api   {NS}   {NS}   ×\n"
        )
    );
    let out = mesh(&server, &["edges", "deploy", "-n", NS, "-o", "json"]);
    let rows: Vec<Value> = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["src"], "web");
    assert_eq!(rows[0]["dst"], "api");
    assert_eq!(
        rows[0]["no_tls_reason"],
        "not_provided_by_service_discovery"
    );
    assert_eq!(rows[0]["server_id"], "");
    let out = mesh(&server, &["edges", "svc", "-n", NS]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}
