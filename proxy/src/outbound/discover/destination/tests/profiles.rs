//! `GetProfile` answers into profiles: routes, conditions, classes, budgets.

use std::time::Duration;

use http::{Method, StatusCode};
use linkerd2_proxy_api::destination as api;
use linkerd2_proxy_api::destination::request_match::{Match as Req, Seq as ReqSeq};
use linkerd2_proxy_api::destination::response_match::{Match as Rsp, Seq as RspSeq};

use super::super::profile::convert;
use super::*;
use crate::outbound::profile::{MAX_MATCH_NODES, Profile, RetryBudget};

fn method(m: Method) -> api::RequestMatch {
    api::RequestMatch {
        r#match: Some(Req::Method(m.into())),
    }
}

fn path(re: &str) -> api::RequestMatch {
    api::RequestMatch {
        r#match: Some(Req::Path(api::PathMatch { regex: re.into() })),
    }
}

fn all(matches: Vec<api::RequestMatch>) -> api::RequestMatch {
    api::RequestMatch {
        r#match: Some(Req::All(ReqSeq { matches })),
    }
}

fn any(matches: Vec<api::RequestMatch>) -> api::RequestMatch {
    api::RequestMatch {
        r#match: Some(Req::Any(ReqSeq { matches })),
    }
}

fn not(m: api::RequestMatch) -> api::RequestMatch {
    api::RequestMatch {
        r#match: Some(Req::Not(Box::new(m))),
    }
}

fn status(min: u32, max: u32) -> api::ResponseMatch {
    api::ResponseMatch {
        r#match: Some(Rsp::Status(api::HttpStatusRange { min, max })),
    }
}

fn route(name: &str, condition: api::RequestMatch) -> api::Route {
    api::Route {
        condition: Some(condition),
        metrics_labels: map(&[("route", name)]),
        ..Default::default()
    }
}

fn secs(s: i64) -> prost_types::Duration {
    prost_types::Duration {
        seconds: s,
        nanos: 0,
    }
}

fn name_of<'a>(p: &'a Profile, m: Method, path: &str) -> Option<&'a str> {
    p.route_for(&m, path).map(|r| r.name.as_str())
}

#[test]
fn routes_match_in_order_with_their_conditions() {
    let mut books = route(
        "GET /books/{id}",
        all(vec![method(Method::GET), path("/books/[^/]+")]),
    );
    books.is_retryable = true;
    books.timeout = Some(secs(2));
    books.response_classes = vec![
        api::ResponseClass {
            condition: Some(status(404, 0)),
            is_failure: true,
        },
        api::ResponseClass {
            condition: Some(api::ResponseMatch {
                r#match: Some(Rsp::All(RspSeq {
                    matches: vec![
                        status(500, 599),
                        api::ResponseMatch {
                            r#match: Some(Rsp::Not(Box::new(status(503, 503)))),
                        },
                    ],
                })),
            }),
            is_failure: false,
        },
    ];
    let p = api::DestinationProfile {
        fully_qualified_name: "web.ns.svc.cluster.local".into(),
        opaque_protocol: false,
        routes: vec![
            books,
            route(
                "writes",
                any(vec![method(Method::POST), method(Method::PUT)]),
            ),
            route("not-get", not(method(Method::GET))),
            // Refused, and skipped: an invalid expression, a route without a condition.
            route("bad", path("/books/(")),
            api::Route::default(),
            route("rest", path("/.*")),
        ],
        ..Default::default()
    };
    let answer = convert(&p);
    let p = &answer.profile;
    assert_eq!(p.routes.len(), 4, "{:?}", p.routes);
    assert_eq!(
        p.fully_qualified_name.as_deref(),
        Some("web.ns.svc.cluster.local")
    );
    assert_eq!(name_of(p, Method::GET, "/books/7"), Some("GET /books/{id}"));
    assert_eq!(
        name_of(p, Method::GET, "/books/7/pages"),
        Some("rest"),
        "the expression is anchored"
    );
    assert_eq!(name_of(p, Method::GET, "/x/books/7"), Some("rest"));
    assert_eq!(name_of(p, Method::POST, "/books/7"), Some("writes"));
    assert_eq!(name_of(p, Method::DELETE, "/books/7"), Some("not-get"));
    assert_eq!(name_of(p, Method::GET, "books"), None);

    let books = p.route_for(&Method::GET, "/books/1").unwrap();
    assert!(books.is_retryable);
    assert_eq!(books.timeout, Some(Duration::from_secs(2)));
    assert_eq!(
        books.labels,
        [("route".to_string(), "GET /books/{id}".to_string())]
    );
    assert!(
        books.is_failure(StatusCode::NOT_FOUND),
        "a class made 404 a failure"
    );
    assert!(
        !books.is_failure(StatusCode::INTERNAL_SERVER_ERROR),
        "a class made 5xx but 503 successes"
    );
    assert!(
        books.is_failure(StatusCode::SERVICE_UNAVAILABLE),
        "no class: 5xx fails"
    );
    assert!(!books.is_failure(StatusCode::OK));
    let rest = p.route_for(&Method::GET, "/").unwrap();
    assert!(!rest.is_retryable);
    assert_eq!(rest.timeout, None);
    assert_eq!(p.retry_budget, RetryBudget::default());
}

#[test]
fn retry_budget_and_its_defaults() {
    let d = RetryBudget::default();
    assert_eq!(
        (d.retry_ratio, d.min_retries_per_second, d.ttl),
        (0.2, 10, Duration::from_secs(10)),
        "Linkerd's defaults"
    );
    let budget = |b: api::RetryBudget| {
        convert(&api::DestinationProfile {
            retry_budget: Some(b),
            ..Default::default()
        })
        .profile
        .retry_budget
    };
    let b = budget(api::RetryBudget {
        retry_ratio: 0.5,
        min_retries_per_second: 3,
        ttl: Some(secs(30)),
    });
    assert_eq!(
        (b.retry_ratio, b.min_retries_per_second, b.ttl),
        (0.5, 3, Duration::from_secs(30))
    );
    let b = budget(api::RetryBudget {
        retry_ratio: f32::NAN,
        min_retries_per_second: 1,
        ttl: Some(secs(3600)),
    });
    assert_eq!(
        (b.retry_ratio, b.ttl),
        (0.2, Duration::from_secs(10)),
        "out of range: defaults"
    );
}

#[test]
fn opaque_and_known_endpoints() {
    let answer = convert(&api::DestinationProfile {
        opaque_protocol: true,
        endpoint: Some(weighted("10.4.0.1:3306", &[("pod", "db-0")])),
        ..Default::default()
    });
    assert!(answer.profile.opaque_protocol);
    assert_eq!(answer.profile.fully_qualified_name, None);
    let e = answer.endpoint.unwrap();
    assert_eq!(e.addr, sock("10.4.0.1:3306"));
    assert_eq!(&*e.labels[0].0, "dst_pod");
}

#[test]
fn deep_and_wide_conditions_are_bounded() {
    // A chain of nots just under the bound: built and evaluated without recursion.
    let mut deep = method(Method::GET);
    for _ in 0..(MAX_MATCH_NODES - 2) {
        deep = not(deep);
    }
    let p = convert(&api::DestinationProfile {
        routes: vec![route("deep", deep.clone())],
        ..Default::default()
    });
    // 254 negations: even, so the route is GET's.
    assert_eq!(name_of(&p.profile, Method::GET, "/"), Some("deep"));
    assert_eq!(name_of(&p.profile, Method::POST, "/"), None);
    // Past the bound the route is refused.
    let p = convert(&api::DestinationProfile {
        routes: vec![
            route("deeper", not(not(not(deep)))),
            route("wide", all(vec![method(Method::GET); MAX_MATCH_NODES + 1])),
            route("ok", method(Method::GET)),
        ],
        ..Default::default()
    });
    assert_eq!(p.profile.routes.len(), 1);
    assert_eq!(p.profile.routes[0].name, "ok");
}

#[test]
fn status_ranges_are_checked() {
    let class = |m: api::ResponseMatch| api::Route {
        condition: Some(method(Method::GET)),
        response_classes: vec![api::ResponseClass {
            condition: Some(m),
            is_failure: true,
        }],
        ..Default::default()
    };
    let p = convert(&api::DestinationProfile {
        routes: vec![
            class(status(0, 0)),
            class(status(500, 400)),
            class(status(0, 70_000)),
            class(status(0, 429)),
        ],
        ..Default::default()
    });
    assert_eq!(p.profile.routes.len(), 1, "only 0-429 (just 429) is valid");
    let r = &p.profile.routes[0];
    assert!(r.is_failure(StatusCode::TOO_MANY_REQUESTS));
    assert!(!r.is_failure(StatusCode::BAD_REQUEST));
}

#[tokio::test]
async fn profiles_reach_the_receiver() {
    let mut server = Server::start(sock("127.0.0.1:0"));
    let cp = control_plane(&server, WAIT * 10);
    let mut rx = cp.resolve(&web()).unwrap();
    let profiles = server.profile(WEB).await;
    profiles
        .send(Ok(api::DestinationProfile {
            routes: vec![route("all", path(".*"))],
            retry_budget: Some(api::RetryBudget {
                retry_ratio: 0.1,
                min_retries_per_second: 1,
                ttl: Some(secs(5)),
            }),
            ..Default::default()
        }))
        .unwrap();
    let d = until(&mut rx, "a profile", |d| d.profile.is_some()).await;
    let p = d.profile.as_ref().unwrap();
    assert_eq!(name_of(p, Method::GET, "/anything"), Some("all"));
    assert_eq!(p.retry_budget.retry_ratio, 0.1);
    assert!(
        matches!(d.resolution, Resolution::Pending),
        "no endpoints answered yet"
    );
}
