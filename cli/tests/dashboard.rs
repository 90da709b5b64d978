//! `mesh dashboard` end to end: the real binary serves the page and the API against the fake
//! API server, whose pod proxy reaches real mesh-proxy processes carrying a known traffic mix
//! (as in `stat.rs`); a real headless Chromium renders the page.
//!
//! The numbers are compared with `mesh stat -o json` run over the same seconds. Both read the
//! same proxies over a 3 s window that may start a few hundred milliseconds apart, so rates are
//! compared within ±15 %, latency percentiles by range, and success rates within ±10 points
//! of each other and both within 84–96 %: each client fails one request every 2 s, so a 3 s
//! window holds 2 to 4 failures of 29 to 32 requests (86.7 % to 93.8 %), and the page's last
//! reading covers later seconds than `stat`'s.
//!
//! The edges view is compared with `mesh edges -o json` over the fake proxies of `edges_dst.rs`,
//! whose counters only grow, so both read the same edges.
//!
//! The screenshot is `$CARGO_TARGET_TMPDIR/dashboard/dashboard.png` (its path is printed).
//!
//! Without a `chromium` binary the browser test says so and passes, unless
//! `MESH_REQUIRE_CHROMIUM=1` (CI) makes that a failure.
#![allow(clippy::unwrap_used)]

mod fake_proxy;
mod stat_support;
mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use mesh_testkube::FakeKube;
use serde_json::Value;
use stat_support::{Backend, Load, Proxy, meshed_deployment, pods_of, stderr, stdout};

const NS: &str = "emojivoto";

/// The cluster of `stat.rs`: Deployment web (2 pods, 10 rps in all, every 10th request fails,
/// 20 ms each, tap on), db (meshed, its proxy unreachable) and legacy (unmeshed).
struct Cluster {
    server: FakeKube,
    _proxies: [Proxy; 2],
    _loads: Vec<Load>,
    _backend: Backend,
}

impl Cluster {
    fn start() -> Cluster {
        let backend = Backend::start();
        let tap = [("MESH_PROXY_TAP_ENABLED", "true")];
        let proxies = [
            Proxy::start(backend.addr, &tap),
            Proxy::start(backend.addr, &tap),
        ];
        let server = FakeKube::builder().kubelet(true).start().unwrap();
        server.apply_yaml(&meshed_deployment(NS, "web", 2)).unwrap();
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
        let loads: Vec<Load> = proxies
            .iter()
            .map(|p| Load::start(p.inbound, "web.emojivoto.svc.cluster.local:8080", 5, 10, 20))
            .collect();
        for load in &loads {
            load.wait_for(2);
        }
        Cluster {
            server,
            _proxies: proxies,
            _loads: loads,
            _backend: backend,
        }
    }

    /// Starts `mesh stat ARGS` in the background.
    fn stat(&self, args: &[&str]) -> (Child, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = self.server.write_kubeconfig(dir.path()).unwrap();
        let child = stat_support::mesh_command(&kubeconfig, dir.path())
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        (child, dir)
    }
}

/// A running `mesh dashboard --no-open --port 0`, killed on drop.
struct Dashboard {
    child: Child,
    /// `http://127.0.0.1:PORT/`, the first line it printed.
    url: String,
    _dir: tempfile::TempDir,
}

impl Dashboard {
    fn start(server: &FakeKube, args: &[&str]) -> Dashboard {
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = server.write_kubeconfig(dir.path()).unwrap();
        let mut child = stat_support::mesh_command(&kubeconfig, dir.path())
            .args(["dashboard", "--no-open", "--port", "0"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(out).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(Duration::from_secs(30)).unwrap_or_default();
        if !line.starts_with("http://127.0.0.1:") {
            let _ = child.kill();
            panic!("mesh dashboard printed {line:?}, not its URL");
        }
        Dashboard {
            child,
            url: line.trim().to_string(),
            _dir: dir,
        }
    }

    fn host(&self) -> &str {
        self.url.trim_start_matches("http://").trim_end_matches('/')
    }

    fn get(&self, path: &str) -> (u16, String) {
        self.request(&format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.host()
        ))
    }

    fn get_json(&self, path: &str) -> Value {
        let (status, body) = self.get(path);
        assert_eq!(status, 200, "GET {path}: {body}");
        serde_json::from_str(&body).unwrap()
    }

    /// Sends `head` as it is and reads the whole answer: (status, body).
    fn request(&self, head: &str) -> (u16, String) {
        let mut conn = TcpStream::connect(self.host()).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        conn.write_all(head.as_bytes()).unwrap();
        let mut answer = String::new();
        conn.read_to_string(&mut answer).unwrap();
        let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        (status, body.to_string())
    }
}

impl Drop for Dashboard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn finished(child: Child, what: &str) -> Output {
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{what} failed:\n{}{}",
        stdout(&out),
        stderr(&out)
    );
    out
}

fn row<'a>(rows: &'a [Value], name: &str) -> &'a Value {
    rows.iter()
        .find(|r| r["kind"] == "deployment" && r["name"] == name)
        .unwrap_or_else(|| panic!("no deployment/{name} row in {rows:#?}"))
}

fn number(value: &Value, what: &str) -> f64 {
    value
        .as_f64()
        .unwrap_or_else(|| panic!("{what} is not a number: {value}"))
}

fn within(value: f64, low: f64, high: f64, what: &str) {
    assert!(
        (low..=high).contains(&value),
        "{what} = {value}, expected {low}..={high}"
    );
}

/// The web row as the dashboard shows it against the one `mesh stat -o json` printed.
fn check_web(shown: &Value, stat: &Value, whose: &str) {
    let rps = number(&shown["rps"], "rps");
    let stat_rps = number(&stat["rps"], "stat rps");
    within(rps, 8.5, 11.5, &format!("{whose} web rps"));
    within(
        rps,
        stat_rps * 0.85,
        stat_rps * 1.15,
        &format!("{whose} web rps against stat's {stat_rps}"),
    );
    let success = number(&shown["success"], "success");
    let stat_success = number(&stat["success"], "stat success");
    within(success, 0.84, 0.96, &format!("{whose} web success"));
    within(
        success,
        stat_success - 0.1,
        stat_success + 0.1,
        &format!("{whose} web success against stat's {stat_success}"),
    );
    // Every request takes the backend's 20 ms, a floor no machine can lower; the ceilings only
    // catch a wrong unit or bucket (a loaded machine adds queueing, so they are not tight: a
    // test must not fail on speed).
    let p50 = number(&shown["latency_ms_p50"], "p50");
    let p99 = number(&shown["latency_ms_p99"], "p99");
    within(p50, 20.0, 200.0, &format!("{whose} web p50"));
    within(
        p99,
        p50,
        1000.0,
        &format!("{whose} web p99 (at least p50 {p50})"),
    );
    assert_eq!(shown["meshed"], stat["meshed"], "{whose} web meshed");
    assert_eq!(
        shown["tcp_open_connections"], stat["tcp_open_connections"],
        "{whose} web connections"
    );
}

#[test]
fn the_api_answers_what_mesh_stat_prints() {
    let cluster = Cluster::start();
    let dashboard = Dashboard::start(&cluster.server, &["-n", NS]);

    let settings = dashboard.get_json("/api/settings");
    assert_eq!(settings["namespace"], NS);
    assert_eq!(settings["window"], "10s");
    let namespaces = dashboard.get_json("/api/namespaces");
    assert!(
        namespaces["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n == NS),
        "{namespaces}"
    );

    // The same query both ways, over the same seconds.
    let (stat, _dir) = cluster.stat(&["stat", "deploy", "-n", NS, "-t", "3s", "-o", "json"]);
    let path = format!("/api/stat?kind=deployment&namespace={NS}&window=3s");
    let started = Instant::now();
    let api = dashboard.get_json(&path);
    let first = started.elapsed();
    assert!(
        first >= Duration::from_secs(3),
        "a first read takes a window"
    );
    let stat: Vec<Value> = serde_json::from_str(&stdout(&finished(stat, "mesh stat"))).unwrap();
    let rows = api["rows"].as_array().unwrap();
    let keys = |rows: &[Value]| -> Vec<String> {
        rows.iter()
            .map(|r| {
                format!(
                    "{} {} {} {}",
                    r["kind"], r["namespace"], r["name"], r["meshed"]
                )
            })
            .collect()
    };
    assert_eq!(keys(rows), keys(&stat), "the same rows in the same order");
    check_web(row(rows, "web"), row(&stat, "web"), "the API's");
    assert_eq!(row(rows, "db"), row(&stat, "db"), "db has no numbers");
    let unread = api["unread"].as_array().unwrap();
    assert_eq!(unread.len(), 1, "{api}");
    assert!(
        unread[0]["pod"]
            .as_str()
            .unwrap()
            .starts_with("emojivoto/db-"),
        "{api}"
    );
    within(number(&api["seconds"], "seconds"), 2.9, 4.5, "seconds");

    // Later reads slide the window instead of waiting a whole one. A reading is answered
    // again for a second, so poll until a new one comes.
    let deadline = Instant::now() + Duration::from_secs(10);
    let (again, later) = loop {
        assert!(Instant::now() < deadline, "no new reading in 10 s");
        let started = Instant::now();
        let again = dashboard.get_json(&path);
        let took = started.elapsed();
        if again["seconds"] != api["seconds"] {
            break (again, took);
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        later < Duration::from_secs(2),
        "a later read took {later:?}"
    );
    println!("a first read took {first:?}, a later one {later:?}");
    within(
        number(&again["seconds"], "seconds"),
        3.0,
        6.0,
        "a later read covers a window",
    );
    within(
        number(&row(again["rows"].as_array().unwrap(), "web")["rps"], "rps"),
        8.5,
        11.5,
        "web rps, read again",
    );

    // The page itself.
    let (status, page) = dashboard.get("/");
    assert_eq!(status, 200);
    assert!(
        page.contains("<script type=\"module\" src=\"/app.js\">"),
        "{page}"
    );
    for asset in ["/app.js", "/table.js", "/chart.js", "/tap.js", "/style.css"] {
        let (status, body) = dashboard.get(asset);
        assert_eq!(status, 200, "{asset}");
        assert!(!body.is_empty(), "{asset}");
    }

    // What it refuses.
    let host = dashboard.host().to_string();
    for (head, expected) in [
        (
            format!(
                "POST /api/stat HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            ),
            405,
        ),
        (
            format!(
                "GET /api/stat HTTP/1.1\r\nHost: {host}\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"
            ),
            413,
        ),
        (
            "GET /api/settings HTTP/1.1\r\nHost: rebound.example\r\nConnection: close\r\n\r\n"
                .to_string(),
            403,
        ),
        (
            format!("GET /api/stat?kind=au HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"),
            400,
        ),
        (
            format!(
                "GET /api/stat?namespace=A HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
            ),
            400,
        ),
        (
            format!("GET /etc/passwd HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"),
            404,
        ),
    ] {
        let (status, body) = dashboard.request(&head);
        assert_eq!(status, expected, "{head:?}: {body}");
        let body: Value = serde_json::from_str(&body).unwrap();
        assert!(body["error"].is_string(), "{body}");
    }
}

#[test]
fn the_tap_api_streams_requests_as_server_sent_events() {
    let cluster = Cluster::start();
    let dashboard = Dashboard::start(&cluster.server, &["-n", NS]);
    let mut conn = TcpStream::connect(dashboard.host()).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        conn,
        "GET /api/tap?kind=deployment&namespace={NS}&name=web HTTP/1.1\r\nHost: {}\r\n\r\n",
        dashboard.host()
    )
    .unwrap();
    let mut reader = BufReader::new(conn);
    let mut head = String::new();
    reader.read_line(&mut head).unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let (mut pods, mut events) = (None, Vec::new());
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut previous = String::new();
    while events.len() < 10 {
        assert!(
            Instant::now() < deadline,
            "only {} events in 30 s",
            events.len()
        );
        let mut line = String::new();
        assert!(reader.read_line(&mut line).unwrap() > 0, "the stream ended");
        if let Some(data) = line.strip_prefix("data: ") {
            let value: Value = serde_json::from_str(data.trim_end()).unwrap();
            if previous == "event: pods" {
                pods = Some(value);
            } else {
                events.push(value);
            }
        }
        previous = line.trim_end().to_string();
    }
    let pods = pods.expect("a first event names the pods");
    assert_eq!(pods.as_array().unwrap().len(), 2, "{pods}");
    for event in &events {
        assert_eq!(event["method"], "GET", "{event}");
        assert_eq!(event["direction"], "inbound", "{event}");
        let expected = match event["path"].as_str().unwrap() {
            "/ok" => 200,
            "/fail" => 500,
            other => panic!("unexpected path {other}"),
        };
        assert_eq!(event["status"], expected, "{event}");
        assert!(
            pods.as_array().unwrap().contains(&event["pod"]),
            "{event} from one of {pods}"
        );
    }

    // A resource none of whose proxies can be tapped, and bad parameters.
    let (status, body) = dashboard.get(&format!("/api/tap?kind=deploy&namespace={NS}&name=db"));
    assert_eq!(status, 502, "{body}");
    assert!(body.contains("no tap stream could be opened"), "{body}");
    let (status, body) = dashboard.get(&format!("/api/tap?kind=deploy&namespace={NS}"));
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("kind, namespace and name are required"),
        "{body}"
    );
    let (status, _) = dashboard.get(&format!("/api/tap?kind=deploy&namespace={NS}&name=a/b"));
    assert_eq!(status, 400);
}

#[test]
fn a_remote_address_is_refused() {
    let server = FakeKube::start().unwrap();
    let out = stat_support::mesh(&server, &["dashboard", "--no-open", "--address", "0.0.0.0"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("--address 0.0.0.0: the dashboard serves only loopback addresses"),
        "{}",
        stderr(&out)
    );
    assert!(stdout(&out).is_empty());
}

/// The `chromium` binary, or `None` (and a note) when it is missing and not required.
fn chromium() -> Option<&'static str> {
    if Command::new("chromium").arg("--version").output().is_ok() {
        return Some("chromium");
    }
    let required = std::env::var("MESH_REQUIRE_CHROMIUM").is_ok_and(|v| v == "1");
    assert!(!required, "chromium is not installed (cargo xtask deps)");
    eprintln!("skipped: chromium is not installed (cargo xtask deps installs it)");
    None
}

/// Runs headless Chromium on `url` with `args`, within a minute.
fn headless(chromium: &str, profile: &Path, args: &[&str], url: &str) -> Output {
    let mut child = Command::new(chromium)
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--disable-extensions",
            "--disable-background-networking",
            "--virtual-time-budget=8000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(url)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("chromium did not finish within 60 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

/// The cells of the page's row for deployment `name`, as the API's JSON fields.
fn shown_row(dom: &str, name: &str) -> Value {
    let start =
        format!("<tr data-kind=\"deployment\" data-namespace=\"{NS}\" data-name=\"{name}\">");
    let at = dom
        .find(&start)
        .unwrap_or_else(|| panic!("no row for {name} in the page:\n{dom}"));
    let rest = &dom[at..];
    let tr = &rest[..rest.find("</tr>").unwrap()];
    let cell =
        regex::Regex::new(r#"<td data-field="([a-z0-9_]+)"(?: data-value="([^"]*)")?>"#).unwrap();
    let mut fields = serde_json::Map::new();
    for found in cell.captures_iter(tr) {
        let value = match found.get(2) {
            None => Value::Null,
            Some(v) => serde_json::from_str(v.as_str())
                .unwrap_or_else(|_| Value::String(v.as_str().to_string())),
        };
        fields.insert(found[1].to_string(), value);
    }
    Value::Object(fields)
}

fn output_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn the_page_fills_its_table_in_headless_chromium() {
    let Some(chromium) = chromium() else { return };
    let cluster = Cluster::start();
    let dashboard = Dashboard::start(&cluster.server, &["-n", NS, "-t", "3s"]);
    let url = format!(
        "{}?namespace={NS}&kind=deployment&window=3s&tap=web",
        dashboard.url
    );
    let profile = tempfile::tempdir().unwrap();

    let (stat, _dir) = cluster.stat(&["stat", "deploy", "-n", NS, "-t", "3s", "-o", "json"]);
    let dom = headless(chromium, profile.path(), &["--dump-dom"], &url);
    let stat: Vec<Value> = serde_json::from_str(&stdout(&finished(stat, "mesh stat"))).unwrap();
    let dom = stdout(&dom);
    assert!(
        dom.contains("<span id=\"status\" role=\"status\" class=\"\">updated "),
        "the page says when it last read:\n{dom}"
    );
    let web = shown_row(&dom, "web");
    check_web(&web, row(&stat, "web"), "the page's");
    let db = shown_row(&dom, "db");
    assert_eq!(db["meshed"], "1/1");
    assert_eq!(db["rps"], Value::Null, "db shows no numbers: {db}");
    assert!(!dom.contains("data-name=\"legacy\""), "unmeshed are hidden");
    assert!(
        dom.contains("could not read 1 pod; its traffic is not counted:\n  emojivoto/db-"),
        "the page names the pod it could not read:\n{dom}"
    );
    // Several refreshes within the virtual time: the charts have lines.
    let lines = regex::Regex::new(r#"<svg [^>]*data-chart="rps" data-points="(\d+)">"#).unwrap();
    let points: Vec<u32> = lines
        .captures_iter(&dom)
        .map(|c| c[1].parse().unwrap())
        .collect();
    assert_eq!(points.len(), 2, "an rps chart per row:\n{dom}");
    assert!(
        points.iter().all(|&p| p >= 2),
        "charts of {points:?} readings"
    );
    assert!(dom.contains("<polyline points="), "{dom}");
    // The live request view of web, opened from the URL.
    assert!(
        dom.contains("<p id=\"tap-status\" class=\"\">tapping 2 pods: web-"),
        "the tap view says what it taps:\n{dom}"
    );
    let tapped = regex::Regex::new(r#"<tr data-path="/(ok|fail)">"#)
        .unwrap()
        .find_iter(&dom)
        .count();
    assert!(tapped >= 3, "{tapped} tapped requests shown:\n{dom}");

    let screenshot = output_dir().join("dashboard.png");
    let _ = std::fs::remove_file(&screenshot);
    let arg = format!("--screenshot={}", screenshot.display());
    let shot = headless(
        chromium,
        profile.path(),
        &[&arg, "--window-size=1280,800"],
        &url,
    );
    let png = std::fs::read(&screenshot).unwrap_or_else(|e| {
        panic!(
            "no screenshot at {} ({e}):\n{}",
            screenshot.display(),
            stderr(&shot)
        )
    });
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    assert!(
        png.len() > 10_000,
        "a {} byte screenshot is blank",
        png.len()
    );
    println!("screenshot: {}", screenshot.display());
}

/// The page's edge rows: each cell's field and raw value, keyed by `src → dst`.
fn shown_edges(dom: &str) -> Vec<(String, serde_json::Map<String, Value>)> {
    let row = regex::Regex::new(r#"<tr data-src="([^"]*)" data-dst="([^"]*)">(.*?)</tr>"#).unwrap();
    let cell = regex::Regex::new(
        r#"<td (?:class="[^"]*" )?data-field="([a-z_]+)" data-value="([^"]*)">([^<]*)</td>"#,
    )
    .unwrap();
    row.captures_iter(dom)
        .map(|r| {
            let mut fields = serde_json::Map::new();
            for c in cell.captures_iter(&r[3]) {
                fields.insert(c[1].to_string(), Value::String(c[2].to_string()));
                fields.insert(format!("{}_text", &c[1]), Value::String(c[3].to_string()));
            }
            (format!("{} → {}", &r[1], &r[2]), fields)
        })
        .collect()
}

/// The edges view shows what `mesh edges deploy -o json` prints, identities included: the API
/// answers the same rows, and the page shows them as `-o wide` does.
#[test]
fn the_edges_view_shows_what_mesh_edges_prints() {
    let server = fake_proxy::scenario::cluster();
    let dashboard = Dashboard::start(&server, &["-n", NS, "-t", "1s"]);
    let out = stat_support::mesh(&server, &["edges", "deploy", "-n", NS, "-o", "json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let printed: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(printed.as_array().unwrap().len(), 4, "{printed:#}");

    let api = dashboard.get_json(&format!("/api/edges?kind=deployment&namespace={NS}"));
    assert_eq!(api["rows"], printed, "the API's rows are mesh edges'");
    assert_eq!(api["unread"], serde_json::json!([]));
    let (status, body) = dashboard.get(&format!("/api/edges?kind=service&namespace={NS}"));
    assert_eq!(status, 400, "{body}");

    let Some(chromium) = chromium() else { return };
    let profile = tempfile::tempdir().unwrap();
    let url = format!("{}?namespace={NS}&kind=deployment&window=1s", dashboard.url);
    let dom = stdout(&headless(chromium, profile.path(), &["--dump-dom"], &url));
    assert!(
        dom.contains("<section id=\"edges\">"),
        "the edges view shows:\n{dom}"
    );
    let shown = shown_edges(&dom);
    assert_eq!(shown.len(), 4, "{dom}");
    for edge in printed.as_array().unwrap() {
        let key = format!(
            "{} → {}",
            edge["src"].as_str().unwrap(),
            edge["dst"].as_str().unwrap()
        );
        let (_, cells) = shown
            .iter()
            .find(|(k, _)| *k == key)
            .unwrap_or_else(|| panic!("no row {key} in the page:\n{dom}"));
        for field in [
            "src",
            "dst",
            "src_namespace",
            "dst_namespace",
            "secured",
            "client_id",
            "server_id",
            "no_tls_reason",
        ] {
            let want = match &edge[field] {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            assert_eq!(cells[field], Value::String(want), "{key} {field}");
        }
    }
    let web_books = &shown.iter().find(|(k, _)| k == "web → books").unwrap().1;
    assert_eq!(web_books["client_id_text"], "web.emojivoto");
    assert_eq!(web_books["server_id_text"], "books.emojivoto");
    assert_eq!(web_books["secured_text"], "√");
    let to_api = &shown.iter().find(|(k, _)| k == "vote-bot → api").unwrap().1;
    assert_eq!(to_api["dst_text"], "svc/api");
    assert_eq!(to_api["client_id_text"], "-");
    assert_eq!(to_api["secured_text"], "×");
}
