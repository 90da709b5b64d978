use std::path::{Path, PathBuf};

use super::compute::{Stats, Window, aggregate, windows};
use super::render::{Format, Row, render};
use super::resource::{Kind, Target, parse_one, parse_targets};
use super::sample::{Destination, Direction, GroupBy, PodSample, View, reduce};

fn testdata(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata/stat")
        .join(name)
}

fn page(name: &str) -> String {
    std::fs::read_to_string(testdata(name)).unwrap()
}

fn sample(name: &str, view: &View) -> PodSample {
    reduce(&crate::metrics::parse(&page(name)).unwrap(), view)
}

fn inbound() -> View {
    View {
        direction: Direction::Inbound,
        group: GroupBy::Whole,
        only: None,
        service_ips: Default::default(),
    }
}

/// The window of `fixture` (its `-before` and `-after` pages, 10 s apart) under `view`.
fn window_of(fixture: &str, view: &View) -> std::collections::HashMap<String, Window> {
    let before = sample(&format!("{fixture}-before.prom"), view);
    let after = sample(&format!("{fixture}-after.prom"), view);
    windows(&before, &after, 10.0)
}

/// Compares with testdata/stat/`name`, or rewrites it under UPDATE_GOLDENS=1.
fn golden(name: &str, actual: &str) {
    let path = testdata(name);
    if std::env::var_os("UPDATE_GOLDENS").is_some_and(|v| v != "0") {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "missing golden {}; run with UPDATE_GOLDENS=1",
            path.display()
        )
    });
    if expected != actual {
        let diff = similar::TextDiff::from_lines(&expected, actual);
        panic!(
            "{} differs (- golden, + actual):\n{}",
            path.display(),
            diff.unified_diff().context_radius(3)
        );
    }
}

fn close(actual: f64, expected: f64) -> bool {
    (actual - expected).abs() < 1e-9
}

#[test]
fn a_mesh_proxy_window_uses_the_fine_histogram() {
    let w = window_of("mesh-proxy", &inbound());
    let w = &w[""];
    assert_eq!((w.success, w.failure), (40.0, 4.0));
    assert!(w.fine_us.is_some());
    let stats = aggregate(&[w]).unwrap();
    assert!(close(stats.rps, 4.4));
    assert!(close(stats.success, 40.0 / 44.0));
    // The fine p50 lies inside one ≤3.2 %-wide bucket; Linkerd's buckets only know it is
    // somewhere in (50, 100] ms.
    let coarse = w.latency_ms.quantile(0.5).unwrap();
    let fine = stats.latency_ms[0].unwrap();
    assert!((50.0..=100.0).contains(&coarse), "{coarse}");
    assert!((50.0..=80.0).contains(&fine), "{fine}");
    let p50_bucket = w.fine_us.as_ref().unwrap().quantile(0.5).unwrap();
    assert!(close(fine, p50_bucket / 1000.0));
}

#[test]
fn quantiles_fall_back_to_linkerd_buckets_when_a_proxy_lacks_the_fine_histogram() {
    let fine = window_of("mesh-proxy", &inbound()).remove("").unwrap();
    let coarse = window_of("outbound-dst", &inbound()).remove("").unwrap();
    assert!(coarse.fine_us.is_none());
    let both = aggregate(&[&fine, &coarse]).unwrap();
    let merged = crate::metrics::Buckets::sum([&fine.latency_ms, &coarse.latency_ms]);
    for (i, q) in [0.5, 0.95, 0.99].into_iter().enumerate() {
        assert_eq!(both.latency_ms[i], merged.quantile(q));
    }
    // 44 + 200 requests in 10 s.
    assert!(close(both.rps, 24.4));
    assert!(close(both.success, (40.0 + 190.0) / 244.0));
    assert_eq!(
        both.tcp_open, 3,
        "mesh-proxy's fixture has no open inbound connection"
    );
}

#[test]
fn counter_resets_count_from_the_restart() {
    let view = inbound();
    let before = sample("outbound-dst-after.prom", &view);
    let after = sample("outbound-dst-before.prom", &view);
    // Counters went down: the later page is what happened since the restart.
    let w = windows(&before, &after, 10.0).remove("").unwrap();
    assert_eq!((w.success, w.failure), (190.0, 10.0));
    assert_eq!(w.latency_ms.count(), 200.0);
    assert_eq!(w.read_bytes, 40000.0);
    // A new start time alone also means a restart, even if counters happen to grow.
    let mut restarted = sample("outbound-dst-after.prom", &view);
    restarted.start_time = restarted.start_time.map(|t| t + 60.0);
    let earlier = sample("outbound-dst-before.prom", &view);
    let w = windows(&earlier, &restarted, 10.0).remove("").unwrap();
    assert_eq!((w.success, w.failure), (380.0, 20.0));
    // Without a restart, the difference.
    let w = windows(&earlier, &before, 10.0).remove("").unwrap();
    assert_eq!((w.success, w.failure), (190.0, 10.0));
}

#[test]
fn a_window_with_no_requests_has_no_stats() {
    let view = inbound();
    let same = sample("mesh-proxy-after.prom", &view);
    let w = windows(&same, &same, 10.0).remove("").unwrap();
    assert_eq!(aggregate(&[&w]), None);
    assert_eq!(aggregate(&[]), None);
}

#[test]
fn from_splits_outbound_traffic_by_destination() {
    let view = View {
        direction: Direction::Outbound,
        group: GroupBy::Destination {
            kind: Kind::Deployment,
            namespace: "emojivoto".into(),
        },
        only: None,
        service_ips: Default::default(),
    };
    let w = window_of("outbound-dst", &view);
    let mut keys: Vec<&String> = w.keys().collect();
    keys.sort();
    assert_eq!(keys, ["emojivoto/emoji", "emojivoto/voting"]);
    let emoji = aggregate(&[&w["emojivoto/emoji"]]).unwrap();
    assert!(close(emoji.rps, 30.0) && close(emoji.success, 1.0));
    assert_eq!(emoji.tcp_open, 1);
    let voting = aggregate(&[&w["emojivoto/voting"]]).unwrap();
    assert!(close(voting.rps, 10.0) && close(voting.success, 0.8));
    // 80 at 15 ms, 20 at 150 ms: p50 is 50/80 into (10, 20], p95 3/4 into (100, 200].
    assert!(close(
        voting.latency_ms[0].unwrap(),
        10.0 + 10.0 * 50.0 / 80.0
    ));
    assert!(close(voting.latency_ms[1].unwrap(), 175.0));
}

#[test]
fn to_keeps_only_traffic_to_the_destination() {
    let view = View {
        direction: Direction::Outbound,
        group: GroupBy::Whole,
        only: Some(Destination {
            kind: Kind::Service,
            namespace: "emojivoto".into(),
            name: "voting-svc".into(),
        }),
        service_ips: Default::default(),
    };
    let w = window_of("outbound-dst", &view);
    let stats = aggregate(&[&w[""]]).unwrap();
    assert!(close(stats.rps, 10.0) && close(stats.success, 0.8));
}

#[test]
fn services_are_recognised_by_authority_without_dst_labels() {
    let text = "response_total{direction=\"outbound\",authority=\"api.shop.svc.cluster.local:8080\",classification=\"success\"} 5\n\
                response_total{direction=\"outbound\",authority=\"cache:6379\",classification=\"success\"} 2\n\
                response_total{direction=\"outbound\",authority=\"db.store\",classification=\"failure\"} 1\n\
                response_total{direction=\"outbound\",authority=\"10.0.0.1:80\",classification=\"success\"} 9\n";
    let view = View {
        direction: Direction::Outbound,
        group: GroupBy::Destination {
            kind: Kind::Service,
            namespace: "shop".into(),
        },
        only: None,
        service_ips: Default::default(),
    };
    let s = reduce(&crate::metrics::parse(text).unwrap(), &view);
    let mut keys: Vec<(&String, f64)> = s
        .groups
        .iter()
        .map(|(k, c)| (k, c.success + c.failure))
        .collect();
    keys.sort_by(|a, b| a.0.cmp(b.0));
    assert_eq!(
        keys,
        [
            (&"shop/api".to_string(), 5.0),
            (&"shop/cache".to_string(), 2.0),
            (&"store/db".to_string(), 1.0)
        ]
    );
}

#[test]
fn cluster_ips_count_as_their_service() {
    let text = "response_total{direction=\"outbound\",authority=\"10.96.0.10:8080\",classification=\"success\"} 7\n\
                response_total{direction=\"outbound\",authority=\"[fd00::a]:8080\",classification=\"success\"} 3\n\
                response_total{direction=\"outbound\",authority=\"10.96.0.99:8080\",classification=\"success\"} 4\n";
    let ips = [
        ("10.96.0.10", ("shop", "api")),
        ("fd00::a", ("shop", "api")),
    ]
    .into_iter()
    .map(|(ip, (ns, name))| (ip.parse().unwrap(), (ns.to_string(), name.to_string())))
    .collect();
    let view = View {
        direction: Direction::Outbound,
        group: GroupBy::Whole,
        only: Some(Destination {
            kind: Kind::Service,
            namespace: "shop".into(),
            name: "api".into(),
        }),
        service_ips: ips,
    };
    let s = reduce(&crate::metrics::parse(text).unwrap(), &view);
    assert_eq!(
        s.groups[""].success, 10.0,
        "both of api's IPs, not the unknown one"
    );
}

fn stats_of(fixture: &str) -> Stats {
    aggregate(&[&window_of(fixture, &inbound())[""]]).unwrap()
}

fn rows() -> Vec<Row> {
    let row = |kind, namespace: &str, name: &str, meshed, status: Option<&str>, stats| Row {
        kind,
        namespace: namespace.into(),
        name: name.into(),
        meshed,
        status: status.map(String::from),
        stats,
    };
    vec![
        row(
            Kind::Deployment,
            "emojivoto",
            "web",
            Some((1, 1)),
            None,
            Some(stats_of("mesh-proxy")),
        ),
        row(
            Kind::Deployment,
            "emojivoto",
            "emoji",
            Some((1, 2)),
            None,
            Some(stats_of("outbound-dst")),
        ),
        row(
            Kind::Deployment,
            "default",
            "vote-bot",
            Some((1, 1)),
            None,
            None,
        ),
    ]
}

#[test]
fn table_wide_and_json_layouts() {
    let rows = rows();
    golden("deploy.golden.txt", &render(&rows, Format::Table, false));
    golden(
        "deploy-all-namespaces.golden.txt",
        &render(&rows, Format::Table, true),
    );
    golden(
        "deploy-wide.golden.txt",
        &render(&rows, Format::Wide, false),
    );
    golden("deploy.golden.json", &render(&rows, Format::Json, false));
    let mut mixed = rows;
    mixed.push(Row {
        kind: Kind::Pod,
        namespace: "emojivoto".into(),
        name: "web-5f8d9c7b6-x2x9q".into(),
        meshed: Some((1, 1)),
        status: Some("Running".into()),
        stats: Some(stats_of("mesh-proxy")),
    });
    mixed.push(Row {
        kind: Kind::Authority,
        namespace: String::new(),
        name: "web.emojivoto.svc.cluster.local:8080".into(),
        meshed: None,
        status: None,
        stats: Some(stats_of("mesh-proxy")),
    });
    golden(
        "mixed-wide.golden.txt",
        &render(&mixed, Format::Wide, false),
    );
    golden("mixed.golden.json", &render(&mixed, Format::Json, false));
    assert_eq!(render(&[], Format::Table, false), "");
    assert_eq!(render(&[], Format::Json, false), "[]\n");
}

#[test]
fn one_row_matches_linkerds_layout() {
    // Linkerd's stat_one_output.golden, with the numbers it uses.
    let row = Row {
        kind: Kind::Namespace,
        namespace: "emojivoto1".into(),
        name: "emoji".into(),
        meshed: Some((1, 2)),
        status: None,
        stats: Some(Stats {
            success: 1.0,
            rps: 2.05,
            latency_ms: [Some(123.0); 3],
            tcp_open: 123,
            read_rate: 2.05,
            write_rate: 2.05,
        }),
    };
    let table = render(std::slice::from_ref(&row), Format::Table, false);
    let expected = "NAME    MESHED   SUCCESS      RPS   LATENCY_P50   LATENCY_P95   LATENCY_P99   TCP_CONN\n\
                    emoji      1/2   100.00%   2.0rps         123ms         123ms         123ms        123\n";
    assert_eq!(table, expected);
    let wide = render(std::slice::from_ref(&row), Format::Wide, false);
    let expected_wide = "NAME    MESHED   SUCCESS      RPS   LATENCY_P50   LATENCY_P95   LATENCY_P99   TCP_CONN   READ_BYTES/SEC   WRITE_BYTES/SEC\n\
                         emoji      1/2   100.00%   2.0rps         123ms         123ms         123ms        123           2.0B/s            2.0B/s\n";
    assert_eq!(wide, expected_wide);
    let all = render(
        &[
            row.clone(),
            Row {
                namespace: "emojivoto2".into(),
                ..row
            },
        ],
        Format::Table,
        true,
    );
    let expected_all = "NAMESPACE    NAME    MESHED   SUCCESS      RPS   LATENCY_P50   LATENCY_P95   LATENCY_P99   TCP_CONN\n\
                        emojivoto1   emoji      1/2   100.00%   2.0rps         123ms         123ms         123ms        123\n\
                        emojivoto2   emoji      1/2   100.00%   2.0rps         123ms         123ms         123ms        123\n";
    assert_eq!(all, expected_all);
}

#[test]
fn resource_arguments() {
    let s = |args: &[&str]| parse_targets(&args.iter().map(|a| a.to_string()).collect::<Vec<_>>());
    let t = |kind, names: &[&str]| Target {
        kind,
        names: names.iter().map(|n| n.to_string()).collect(),
    };
    assert_eq!(s(&["deploy"]), Ok(vec![t(Kind::Deployment, &[])]));
    assert_eq!(
        s(&["po", "a", "b", "a"]),
        Ok(vec![t(Kind::Pod, &["a", "b"])])
    );
    assert_eq!(
        s(&["deploy/web", "svc/api", "deployments/db"]),
        Ok(vec![
            t(Kind::Deployment, &["web", "db"]),
            t(Kind::Service, &["api"])
        ])
    );
    assert_eq!(
        s(&["deploy/", "deploy/web"]),
        Ok(vec![t(Kind::Deployment, &[])])
    );
    assert_eq!(s(&["all"]).unwrap().len(), Kind::ALL.len());
    assert!(s(&[]).unwrap_err().contains("name a resource type"));
    assert!(
        s(&["widgets"])
            .unwrap_err()
            .contains("unknown resource type \"widgets\"")
    );
    assert!(s(&["deploy/web", "po"]).is_err());
    assert!(s(&["deploy", "po/x"]).is_err());
    assert!(s(&["all", "x"]).is_err());
    assert_eq!(
        parse_one("sts/db"),
        Ok((Kind::StatefulSet, "db".to_string()))
    );
    assert!(parse_one("sts").is_err());
    assert!(parse_one("sts/").is_err());
}
