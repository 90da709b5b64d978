//! The traffic the `dst_*` tests read: an emojivoto-like namespace where vote-bot and web send
//! and books only receives.
//!
//! Each series's latency sits in a bucket 100 ms or more wide, and the rates are chosen, so that
//! no quantile falls on a half millisecond, where float noise would flip the rounding; rates stay
//! small so that a few tens of milliseconds of scheduling in a 4 s window cannot change the
//! tenth of a request per second a table shows.

use mesh_testkube::FakeKube;

use super::{Http, Page, Route, inbound_tls, outbound, outbound_tls};
use crate::stat_support::{meshed_deployment, pods_of};

pub const NS: &str = "emojivoto";

/// What vote-bot's proxy sent: to web-svc's two pods over mTLS (labels and identity from the
/// control plane), to `books` (named by the file namer, which gives only `dst_service` and no
/// identity), and to `api` by a name discovery did not know (no `dst_*` labels at all, no
/// mTLS); and what it received.
pub fn vote_bot() -> Page {
    let web = |pod: &str, ip: &str| {
        outbound_tls(
            WEB_SVC,
            &format!("{ip}:8080"),
            Some(WEB_ID),
            &[
                ("namespace", NS),
                ("service", "web-svc"),
                ("deployment", "web"),
                ("pod", pod),
                ("serviceaccount", "web"),
            ],
        )
    };
    let series = |labels: String, rps, failures, latency_ms| Http {
        labels,
        rps,
        failures,
        latency_ms,
    };
    Page {
        http: vec![
            series(web("web-5d9f-x", "10.0.0.7"), 1.0, 0.0, 150.0),
            series(web("web-5d9f-y", "10.0.0.8"), 1.0, 0.25, 250.0),
            series(
                outbound("books:7000", "10.0.0.9:7000", &[("service", "books")]),
                0.5,
                0.0,
                1500.0,
            ),
            series(
                outbound(
                    "api.emojivoto.svc.cluster.local:8080",
                    "10.96.0.20:8080",
                    &[],
                ),
                0.4,
                0.5,
                700.0,
            ),
            series(
                "direction=\"inbound\",authority=\"vote-bot:8080\",target_addr=\"127.0.0.1:8080\",target_ip=\"127.0.0.1\",target_port=\"8080\",tls=\"no_identity\",no_tls_reason=\"no_tls_from_remote\"".into(),
                3.0,
                0.0,
                1.0,
            ),
        ],
        routes: vec![
            // Every failed attempt of GET /api/list is retried and then succeeds.
            route(WEB_SVC, "GET /api/list", (0.5, 0.0), (0.6, 1.0 / 6.0), 150.0),
            route(WEB_SVC, "POST /api/vote", (1.0, 0.1), (1.0, 0.1), 250.0),
            route("books:7000", "GET /books", (0.5, 0.0), (0.5, 0.0), 1500.0),
        ],
    }
}

/// vote-bot's authority for web-svc.
pub const WEB_SVC: &str = "web-svc.emojivoto.svc.cluster.local:80";

/// The identities of web's and books' pods, as discovery names them.
pub const WEB_ID: &str = "web.emojivoto.serviceaccount.identity.linkerd.cluster.local";
pub const BOOKS_ID: &str = "books.emojivoto.serviceaccount.identity.linkerd.cluster.local";
/// vote-bot's identity, as web's proxy verified it.
pub const VOTE_BOT_ID: &str = "vote-bot.emojivoto.serviceaccount.identity.linkerd.cluster.local";
/// A client of books that runs as no Deployment here.
pub const OTHER_ID: &str = "reporter.emojivoto.serviceaccount.identity.linkerd.cluster.local";

/// A route: (rps, failure share) the clients got, the same of every attempt, and the latency.
fn route(
    dst: &str,
    name: &str,
    effective: (f64, f64),
    actual: (f64, f64),
    latency_ms: f64,
) -> Route {
    Route {
        dst: dst.to_string(),
        route: name.to_string(),
        rps: effective.0,
        failures: effective.1,
        actual_rps: actual.0,
        actual_failures: actual.1,
        latency_ms,
    }
}

/// What web's proxy sent: to the books Deployment over mTLS, named by the control plane; and
/// what it received from vote-bot over mTLS.
pub fn web() -> Page {
    Page {
        http: vec![
            Http {
                labels: inbound_tls(WEB_SVC, VOTE_BOT_ID),
                rps: 2.0,
                failures: 0.125,
                latency_ms: 150.0,
            },
            Http {
                labels: outbound_tls(
                    "books.emojivoto.svc.cluster.local:7000",
                    "10.0.0.12:7000",
                    Some(BOOKS_ID),
                    &[
                        ("namespace", NS),
                        ("service", "books"),
                        ("deployment", "books"),
                        ("pod", "books-7c-z"),
                    ],
                ),
                rps: 1.5,
                failures: 0.1,
                latency_ms: 350.0,
            },
        ],
        routes: Vec::new(),
    }
}

/// What books's proxy received over mTLS: web's requests, and a client of another service
/// account, which edges must not take for web.
pub fn books() -> Page {
    let from = |client_id, rps| Http {
        labels: inbound_tls("books.emojivoto.svc.cluster.local:7000", client_id),
        rps,
        failures: 0.0,
        latency_ms: 350.0,
    };
    Page {
        http: vec![from(WEB_ID, 1.5), from(OTHER_ID, 0.5)],
        routes: Vec::new(),
    }
}

/// A cluster of three meshed Deployments: vote-bot and web send, books only receives.
pub fn cluster() -> FakeKube {
    let server = FakeKube::builder().kubelet(true).start().unwrap();
    for name in ["vote-bot", "web", "books"] {
        server.apply_yaml(&meshed_deployment(NS, name, 1)).unwrap();
    }
    for (name, app, ip) in [
        ("web-svc", "web", "10.96.0.10"),
        ("books", "books", "10.96.0.11"),
        ("api", "api", "10.96.0.20"),
    ] {
        server
            .apply_yaml(&format!(
                "apiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: {NS}}}\nspec:\n  clusterIP: {ip}\n  selector: {{app: {app}}}\n  ports: [{{port: 80}}]\n"
            ))
            .unwrap();
    }
    for (name, page) in [("vote-bot", vote_bot()), ("web", web()), ("books", books())] {
        let pod = pods_of(&server, NS, name).remove(0);
        server.set_pod_proxy(NS, &pod, 4191, page.serve());
    }
    server
}
