use std::time::Duration;

use http::{Method, Request, StatusCode};

use super::api::{Settings, parse_query, window};
use super::server::{allowed_hosts, refuse};
use crate::cmd::stat::Kind;

fn settings() -> Settings {
    Settings {
        namespace: "emojivoto".to_owned(),
        window: Duration::from_secs(10),
        scrape_timeout: Duration::from_secs(5),
        api_timeout: Duration::from_secs(30),
    }
}

#[test]
fn a_query_defaults_to_deployments_in_the_first_namespace_over_the_window() {
    let query = parse_query("", &settings()).unwrap();
    assert_eq!(query.kind, Kind::Deployment);
    assert_eq!(query.namespace, "emojivoto");
    assert_eq!(query.window, Duration::from_secs(10));
    let query = parse_query("kind=po&namespace=web-1&window=3s", &settings()).unwrap();
    assert_eq!(query.kind, Kind::Pod);
    assert_eq!(query.namespace, "web-1");
    assert_eq!(query.window, Duration::from_secs(3));
}

#[test]
fn a_bad_query_names_the_parameter() {
    for (text, expected) in [
        (
            "kind=authority",
            "kind: unknown resource type \"authority\"",
        ),
        ("kind=ns", "kind: unknown resource type \"ns\""),
        (
            "namespace=Web",
            "namespace: \"Web\" is not a namespace name",
        ),
        ("namespace=-a", "namespace: \"-a\" is not a namespace name"),
        ("namespace=", "namespace: \"\" is not a namespace name"),
        (
            "window=0s",
            "window: the sampling window must be between 1s and 600s",
        ),
        (
            "window=11m",
            "window: the sampling window must be between 1s and 600s",
        ),
        ("window=soon", "window: "),
        ("color=red", "unknown parameter \"color\""),
    ] {
        let error = parse_query(text, &settings()).unwrap_err();
        assert!(error.starts_with(expected), "{text}: {error}");
    }
    assert!(window("500ms").is_err());
    assert_eq!(window("1m"), Ok(Duration::from_secs(60)));
}

fn request(method: Method, host: &str, headers: &[(&str, &str)]) -> Request<()> {
    let mut builder = Request::builder()
        .method(method)
        .uri("/api/stat")
        .header("host", host);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(()).unwrap()
}

#[test]
fn only_bodiless_gets_that_name_this_server_are_served() {
    let hosts = allowed_hosts("127.0.0.1:50750".parse().unwrap());
    assert_eq!(hosts, ["127.0.0.1:50750", "localhost:50750"]);
    for host in ["127.0.0.1:50750", "localhost:50750", "LOCALHOST:50750"] {
        assert!(
            refuse(&hosts, &request(Method::GET, host, &[])).is_none(),
            "{host}"
        );
    }
    assert!(refuse(&hosts, &request(Method::HEAD, "127.0.0.1:50750", &[])).is_none());
    assert!(
        refuse(
            &hosts,
            &request(Method::GET, "127.0.0.1:50750", &[("content-length", "0")])
        )
        .is_none()
    );
    let status = |method, host, headers| {
        refuse(&hosts, &request(method, host, headers))
            .map(|(status, _)| status)
            .unwrap()
    };
    assert_eq!(
        status(Method::POST, "127.0.0.1:50750", &[]),
        StatusCode::METHOD_NOT_ALLOWED
    );
    assert_eq!(
        status(Method::GET, "127.0.0.1:50750", &[("content-length", "5")]),
        StatusCode::PAYLOAD_TOO_LARGE
    );
    assert_eq!(
        status(
            Method::GET,
            "127.0.0.1:50750",
            &[("transfer-encoding", "chunked")]
        ),
        StatusCode::PAYLOAD_TOO_LARGE
    );
    // DNS rebinding: another name that resolves to loopback, or another port.
    assert_eq!(
        status(Method::GET, "attacker.example:50750", &[]),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        status(Method::GET, "127.0.0.1:80", &[]),
        StatusCode::FORBIDDEN
    );
    let v6 = allowed_hosts("[::1]:8000".parse().unwrap());
    assert_eq!(v6, ["[::1]:8000", "localhost:8000"]);
}

#[test]
fn a_tap_names_one_resource() {
    use super::tap::parse;
    assert_eq!(
        parse("kind=deploy&namespace=emojivoto&name=web.v2").unwrap(),
        (
            Kind::Deployment,
            "emojivoto".to_owned(),
            "web.v2".to_owned()
        )
    );
    for (text, expected) in [
        (
            "kind=deploy&namespace=emojivoto",
            "kind, namespace and name are required",
        ),
        (
            "kind=au&namespace=a&name=b",
            "kind: unknown resource type \"au\"",
        ),
        (
            "kind=po&namespace=a&name=a/b",
            "name: \"a/b\" is not a resource name",
        ),
        (
            "kind=po&namespace=a&name=a..b",
            "name: \"a..b\" is not a resource name",
        ),
        (
            "kind=po&namespace=a&name=b&path=/x",
            "unknown parameter \"path\"",
        ),
    ] {
        assert_eq!(parse(text).unwrap_err(), expected, "{text}");
    }
}
