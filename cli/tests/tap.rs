//! `mesh tap` and `mesh top` against a real mesh-proxy carrying traffic, through the fake API
//! server's pod proxy.
#![allow(clippy::unwrap_used)]

mod stat_support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use mesh_testkube::FakeKube;
use stat_support::{Backend, Load, Proxy, mesh, mesh_command, meshed_deployment, pods_of, stderr};

const NS: &str = "emojivoto";

struct Cluster {
    server: FakeKube,
    dir: tempfile::TempDir,
    pod: String,
    // Kept alive for the test's length.
    _proxy: Proxy,
    _backend: Backend,
    _load: Load,
}

/// One meshed pod whose proxy (tap on or off) carries 20 rps of `GET /ok`, with every 4th
/// request a `GET /fail`.
fn cluster(tap: bool) -> Cluster {
    let backend = Backend::start();
    let env: &[(&str, &str)] = if tap {
        &[("MESH_PROXY_TAP_ENABLED", "true")]
    } else {
        &[]
    };
    let proxy = Proxy::start(backend.addr, env);
    let server = FakeKube::builder().kubelet(true).start().unwrap();
    server.apply_yaml(&meshed_deployment(NS, "web", 1)).unwrap();
    let pod = pods_of(&server, NS, "web").remove(0);
    server.set_pod_proxy(NS, &pod, 4191, proxy.admin);
    let load = Load::start(proxy.inbound, "web:8080", 20, 4, 2);
    let dir = tempfile::tempdir().unwrap();
    server.write_kubeconfig(dir.path()).unwrap();
    Cluster {
        server,
        dir,
        pod,
        _proxy: proxy,
        _backend: backend,
        _load: load,
    }
}

/// A running `mesh tap`, its stdout read line by line.
struct Tap {
    child: Child,
    lines: mpsc::Receiver<String>,
    errors: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Tap {
    fn start(cluster: &Cluster, args: &[&str]) -> Tap {
        let mut child = mesh_command(&cluster.dir.path().join("kubeconfig"), cluster.dir.path())
            .args(["tap", "deploy/web", "-n", NS])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        let errors = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let sink = errors.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut errors = sink.lock().unwrap();
                errors.push_str(&line);
                errors.push('\n');
            }
        });
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Tap {
            child,
            lines,
            errors,
        }
    }

    /// What `mesh tap` said on stderr so far.
    fn errors(&self) -> String {
        self.errors.lock().unwrap().clone()
    }

    /// The next `n` lines, or fewer if none arrive for `quiet`.
    /// Every line that arrives within `window`: a rate is measured over a fixed time.
    fn take_for(&self, window: Duration) -> Vec<String> {
        let end = Instant::now() + window;
        let mut out = Vec::new();
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) => out.push(line),
                Err(_) => break,
            }
        }
        out
    }

    fn take(&self, n: usize, quiet: Duration) -> Vec<String> {
        let mut out = Vec::new();
        while out.len() < n {
            match self.lines.recv_timeout(quiet) {
                Ok(line) => out.push(line),
                Err(_) => break,
            }
        }
        out
    }
}

impl Drop for Tap {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn tap_prints_linkerd_style_lines_for_live_requests() {
    let cluster = cluster(true);
    let tap = Tap::start(&cluster, &[]);
    let lines = tap.take(30, Duration::from_secs(10));
    assert_eq!(lines.len(), 30, "{lines:#?}\nstderr: {}", tap.errors());
    // Events are whole requests: req, rsp and end, in that order, with one id.
    let start = lines.iter().position(|l| l.starts_with("req ")).unwrap();
    let (req, rsp, end) = (&lines[start], &lines[start + 1], &lines[start + 2]);
    let id = req.split_whitespace().nth(1).unwrap();
    assert!(id.starts_with("id=0:"), "{req}");
    for line in [req, rsp, end] {
        assert!(
            line.contains(&format!(" {id} proxy=in src=127.0.0.1:")),
            "{line}"
        );
        assert!(line.contains(" tls=no_identity"), "{line}");
    }
    assert!(
        req.ends_with(":method=GET :authority=web:8080 :path=/ok")
            || req.ends_with(":method=GET :authority=web:8080 :path=/fail"),
        "{req}"
    );
    assert!(
        rsp.contains(" :status=200 latency=") || rsp.contains(" :status=500 latency="),
        "{rsp}"
    );
    assert!(rsp.ends_with("µs"), "{rsp}");
    assert!(
        end.contains(" duration=") && end.contains("µs response-length="),
        "{end}"
    );
    let failures = lines.iter().filter(|l| l.contains(":status=500")).count();
    assert!(failures >= 1, "every 4th request fails: {lines:#?}");
}

#[test]
fn tap_filters_and_formats() {
    let cluster = cluster(true);
    // By path prefix.
    let only_fail = Tap::start(&cluster, &["--path", "/fail"]);
    let lines = only_fail.take(9, Duration::from_secs(10));
    assert_eq!(lines.len(), 9, "{lines:#?}");
    for line in lines.iter().filter(|l| l.starts_with("req ")) {
        assert!(line.ends_with(":path=/fail"), "{line}");
    }
    // By method: nothing here is a POST.
    let posts = Tap::start(&cluster, &["--method", "POST"]);
    assert_eq!(posts.take(1, Duration::from_secs(2)), Vec::<String>::new());
    // By authority.
    let other = Tap::start(&cluster, &["--authority", "api:8080"]);
    assert_eq!(other.take(1, Duration::from_secs(1)), Vec::<String>::new());
    // The rate limit: 20 rps offered, 2 a second kept.
    let slow = Tap::start(&cluster, &["--max-rps", "2", "-o", "json"]);
    let events = slow.take_for(Duration::from_millis(2800));
    assert!((2..=6).contains(&events.len()), "{events:#?}");
    // JSON: one object per request, with the pod.
    let json: serde_json::Value = serde_json::from_str(&events[0]).unwrap();
    assert_eq!(json["pod"], cluster.pod.as_str());
    assert_eq!(json["method"], "GET");
    assert_eq!(json["authority"], "web:8080");
    assert_eq!(json["direction"], "inbound");
    assert!(json["latency_us"].as_u64().unwrap() >= 2000, "{json}");
    assert_eq!(
        json["response_bytes"].as_u64(),
        Some(
            json["status"]
                .as_u64()
                .map_or(0, |s| if s == 200 { 2 } else { 4 })
        )
    );
    // Wide adds the pod.
    let wide = Tap::start(&cluster, &["-o", "wide"]);
    let lines = wide.take(3, Duration::from_secs(10));
    assert!(
        lines[0].ends_with(&format!(" dst_pod={}", cluster.pod)),
        "{lines:#?}"
    );
}

#[test]
fn tap_is_off_unless_the_proxy_enables_it() {
    let cluster = cluster(false);
    let out = mesh(&cluster.server, &["tap", "deploy/web", "-n", NS]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("tap is disabled"), "{err}");
    // How to turn it on in a cluster, for the workload asked about and its namespace.
    for hint in [
        "kubectl get deployment/web -n emojivoto -o yaml | mesh inject --enable-tap - | kubectl apply -f -",
        "kubectl annotate namespace emojivoto config.linkerd.io/enable-tap=true",
        "proxy.enableTap=true",
        "MESH_PROXY_TAP_ENABLED=true",
    ] {
        assert!(err.contains(hint), "{hint:?} not in {err}");
    }
}

/// A tmux server of its own, so parallel tests never meet.
struct Tmux(String);

impl Tmux {
    fn run(&self, args: &[&str]) -> std::process::Output {
        std::process::Command::new("tmux")
            .arg("-L")
            .arg(&self.0)
            .args(args)
            .output()
            .expect("tmux is installed (cargo xtask ci installs it)")
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.run(&["capture-pane", "-p", "-t", "top"]).stdout).into_owned()
    }

    fn wait_for(&self, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let screen = self.screen();
            if ok(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
    }
}

fn count_of(screen: &str, path: &str) -> Option<u64> {
    let line = screen
        .lines()
        .find(|l| l.split_whitespace().nth(3) == Some(path))?;
    line.split_whitespace().nth(4)?.parse().ok()
}

#[test]
fn top_shows_a_live_table_and_quits_on_q() {
    let cluster = cluster(true);
    let tmux = Tmux(format!("mesh-top-{}", std::process::id()));
    let quote = |s: &str| format!("'{}'", s.replace('\'', "'\\''"));
    let command = format!(
        "env -u KUBECONFIG KUBECACHEDIR={} {} --kubeconfig {} top deploy/web -n {NS}",
        quote(&cluster.dir.path().join("cache").display().to_string()),
        quote(env!("CARGO_BIN_EXE_mesh")),
        quote(&cluster.dir.path().join("kubeconfig").display().to_string()),
    );
    let started = tmux.run(&[
        "new-session",
        "-d",
        "-s",
        "top",
        "-x",
        "160",
        "-y",
        "20",
        &command,
    ]);
    assert!(started.status.success(), "{}", stderr(&started));
    let first = tmux.wait_for("the table", |s| {
        s.contains("Success Rate") && count_of(s, "/ok").is_some_and(|n| n > 0)
    });
    let header: Vec<&str> = first
        .lines()
        .find(|l| l.starts_with("Source"))
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        [
            "Source",
            "Destination",
            "Method",
            "Path",
            "Count",
            "Best",
            "Worst",
            "Last",
            "Success",
            "Rate"
        ]
    );
    let before = count_of(&first, "/ok").unwrap();
    let later = tmux.wait_for("the counts to grow", |s| {
        count_of(s, "/ok").is_some_and(|n| n > before + 5)
    });
    // Sorted by count: /ok (3 in 4 requests) above /fail.
    let ok_row = later.lines().position(|l| l.contains(" /ok ")).unwrap();
    let fail_row = later.lines().position(|l| l.contains(" /fail ")).unwrap();
    assert!(ok_row < fail_row, "{later}");
    let ok_line = &later.lines().nth(ok_row).unwrap();
    assert!(ok_line.starts_with("127.0.0.1 "), "{later}");
    assert!(ok_line.contains(&cluster.pod), "{later}");
    assert!(ok_line.trim_end().ends_with("100.00%"), "{later}");
    assert!(
        later
            .lines()
            .nth(fail_row)
            .unwrap()
            .trim_end()
            .ends_with("0.00%"),
        "{later}"
    );
    // Redrawn in place: one header.
    assert_eq!(later.matches("Success Rate").count(), 1, "{later}");
    tmux.run(&["send-keys", "-t", "top", "q"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while tmux.run(&["has-session", "-t", "top"]).status.success() {
        assert!(Instant::now() < deadline, "q did not quit mesh top");
        std::thread::sleep(Duration::from_millis(100));
    }
}
