//! The pod proxy subresource: `/api/v1/namespaces/NS/pods/NAME[:PORT]/proxy/PATH` forwards to the
//! local address the test registered for that pod and port.

use std::net::SocketAddr;
use std::sync::Arc;

use http::{Request, Response, Uri, header};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

use crate::server::{Body, BoxError, Shared, Target, error, lock};
use crate::status::ApiError;
use crate::store::core;

pub type Client = hyper_util::client::legacy::Client<HttpConnector, Incoming>;

pub fn client() -> Client {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(std::time::Duration::from_secs(5)));
    hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build(connector)
}

/// `name`, `name:port` or `scheme:name:port`, as in the proxy URL.
fn split_name(raw: &str) -> (String, Option<u16>) {
    let parts: Vec<&str> = raw.split(':').collect();
    match parts.as_slice() {
        [name] => (name.to_string(), None),
        ["http" | "https", name] => (name.to_string(), None),
        [name, port] | [_, name, port] => (name.to_string(), port.parse().ok()),
        _ => (raw.to_string(), None),
    }
}

pub async fn forward(
    shared: &Arc<Shared>,
    client: &Client,
    target: &Target,
    req: Request<Incoming>,
) -> Response<Body> {
    let ns = target.namespace.clone().unwrap_or_default();
    let (pod, port) = split_name(target.name.as_deref().unwrap_or(""));
    let pod_ip = {
        let state = shared.state();
        match state.get(&core("pods"), &ns, &pod) {
            Some(obj) => obj
                .value
                .pointer("/status/podIP")
                .and_then(Value::as_str)
                .unwrap_or("<none>")
                .to_string(),
            None => return error(&ApiError::not_found("", "pods", &pod)),
        }
    };
    let addr = {
        let proxies = lock(&shared.proxies);
        proxies
            .get(&(ns.clone(), pod.clone()))
            .and_then(|targets| match port {
                Some(port) => targets.iter().find(|(p, _)| *p == port).map(|(_, a)| *a),
                None => targets.first().map(|(_, a)| *a),
            })
    };
    let shown_port = port.map_or_else(|| "80".to_string(), |p| p.to_string());
    let unreachable = |why: &str| {
        error(&ApiError::new(
            503,
            "ServiceUnavailable",
            format!("error trying to reach service: dial tcp {pod_ip}:{shown_port}: {why}"),
        ))
    };
    let Some(addr) = addr else {
        return unreachable("connect: connection refused");
    };
    forward_to(client, addr, &target.rest, req)
        .await
        .unwrap_or_else(|e| unreachable(&e.to_string()))
}

async fn forward_to(
    client: &Client,
    addr: SocketAddr,
    rest: &str,
    req: Request<Incoming>,
) -> Result<Response<Body>, BoxError> {
    let (mut parts, body) = req.into_parts();
    let path_and_query = match parts.uri.query() {
        Some(q) => format!("/{rest}?{q}"),
        None => format!("/{rest}"),
    };
    parts.uri = Uri::builder()
        .scheme("http")
        .authority(addr.to_string())
        .path_and_query(path_and_query)
        .build()?;
    parts.headers.remove(header::HOST);
    parts.headers.remove(header::AUTHORIZATION);
    let resp = client.request(Request::from_parts(parts, body)).await?;
    let (mut parts, body) = resp.into_parts();
    parts.headers.remove(header::CONNECTION);
    parts.headers.remove(header::TRANSFER_ENCODING);
    Ok(Response::from_parts(
        parts,
        body.map_err(|e| Box::new(e) as BoxError).boxed(),
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn proxy_names_carry_an_optional_port() {
        assert_eq!(super::split_name("web-0"), ("web-0".into(), None));
        assert_eq!(
            super::split_name("web-0:4191"),
            ("web-0".into(), Some(4191))
        );
        assert_eq!(
            super::split_name("https:web-0:4191"),
            ("web-0".into(), Some(4191))
        );
        assert_eq!(super::split_name("http:web-0"), ("web-0".into(), None));
    }
}
