//! The HTTP side: accepting connections, routing paths, and shaping responses.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::Value;

use crate::resources::ResourceType;
use crate::status::ApiError;
use crate::store::State;
use crate::{admission, api, discovery, portforward, proxy, watch};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub type Body = BoxBody<Bytes, BoxError>;

/// What a test can make the server do wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this HTTP status and a `Status` body.
    Status(u16),
    /// Never answer.
    Hang,
    /// Answer late.
    Delay(Duration),
}

#[derive(Debug, Clone)]
pub struct FaultRule {
    pub path_contains: String,
    pub fault: Fault,
}

/// Pod proxy targets: (namespace, pod) to each registered (port, address).
pub type ProxyTargets = HashMap<(String, String), Vec<(u16, SocketAddr)>>;

/// State shared by every connection and by the test's handle.
#[derive(Debug)]
pub struct Shared {
    pub state: Mutex<State>,
    /// Pod proxy targets: (namespace, pod) to (port, address).
    pub proxies: Mutex<ProxyTargets>,
    pub faults: Mutex<Vec<FaultRule>>,
    pub requests: Mutex<Vec<String>>,
    pub addr: SocketAddr,
    /// Where the server's own calls to a Service go: (namespace, name, port) to an address.
    pub routes: Mutex<HashMap<(String, String, u16), SocketAddr>>,
    /// Every `AdmissionReview` sent to a webhook, oldest first.
    pub admission_calls: Mutex<Vec<Value>>,
    /// Numbers admission request uids.
    pub admission_ids: AtomicU64,
}

impl Shared {
    pub fn new(state: State, addr: SocketAddr) -> Shared {
        Shared {
            state: Mutex::new(state),
            proxies: Mutex::new(HashMap::new()),
            faults: Mutex::new(Vec::new()),
            requests: Mutex::new(Vec::new()),
            addr,
            routes: Mutex::new(HashMap::new()),
            admission_calls: Mutex::new(Vec::new()),
            admission_ids: AtomicU64::new(0),
        }
    }

    /// The store. A panic in another thread while holding the lock leaves the data usable.
    pub fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Accepts connections until `shutdown` fires.
pub async fn serve(
    listener: std::net::TcpListener,
    shared: Arc<Shared>,
    mut shutdown: tokio::sync::oneshot::Receiver<()>,
) {
    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
        return;
    };
    let client = proxy::client();
    loop {
        let stream = tokio::select! {
            _ = &mut shutdown => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => continue,
            },
        };
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        let client = client.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let shared = shared.clone();
                let client = client.clone();
                async move { Ok::<_, Infallible>(handle(shared, client, req).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades()
                .await;
        });
    }
}

async fn handle(
    shared: Arc<Shared>,
    client: proxy::Client,
    req: Request<Incoming>,
) -> Response<Body> {
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    {
        let mut log = lock(&shared.requests);
        if log.len() < 100_000 {
            let line = if query.is_empty() {
                format!("{} {path}", req.method())
            } else {
                format!("{} {path}?{query}", req.method())
            };
            log.push(line);
        }
    }
    let fault = lock(&shared.faults)
        .iter()
        .find(|r| path.contains(&r.path_contains))
        .map(|r| r.fault.clone());
    match fault {
        Some(Fault::Status(code)) => {
            let reason = if code >= 500 {
                "InternalError"
            } else {
                "BadRequest"
            };
            return error(&ApiError::new(
                code,
                reason,
                format!("injected fault: {code}"),
            ));
        }
        Some(Fault::Hang) => std::future::pending::<()>().await,
        Some(Fault::Delay(d)) => tokio::time::sleep(d).await,
        None => {}
    }
    let params = parse_query(&query);
    match route(&shared, &path) {
        Ok(Route::Static(value)) => json_response(StatusCode::OK, &value),
        Ok(Route::Text(text)) => text_response(text),
        Ok(Route::Resource(target)) => {
            if target.sub.as_deref() == Some("proxy") && target.rt.plural == "pods" {
                return proxy::forward(&shared, &client, &target, req).await;
            }
            if target.sub.as_deref() == Some("portforward") && target.rt.plural == "pods" {
                return portforward::forward(&shared, &target, req);
            }
            if req.method() == Method::GET
                && target.name.is_none()
                && matches!(params.get("watch").map(String::as_str), Some("true" | "1"))
            {
                return watch::watch(&shared, &target, &params);
            }
            let accept = req
                .headers()
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            let content_type = req
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("application/json")
                .to_string();
            let method = req.method().clone();
            let body = match req.into_body().collect().await {
                Ok(body) => body.to_bytes(),
                Err(e) => return error(&ApiError::bad_request(format!("cannot read body: {e}"))),
            };
            // A create goes through the admission webhooks first, without the store's lock.
            let posts = method == Method::POST && target.name.is_none();
            let applies = method == Method::PATCH
                && target.name.is_some()
                && content_type.starts_with("application/apply-patch");
            let creates = (posts || applies) && target.sub.is_none() && !target.rt.create_only;
            let (body, warnings) = if creates {
                match admission::admit_create(&shared, &target, &params, body, applies).await {
                    Ok(admitted) => admitted,
                    Err(e) => return error(&e),
                }
            } else {
                (body, Vec::new())
            };
            let mut resp = match api::handle(
                &shared,
                &target,
                &method,
                &params,
                (&content_type, &accept),
                &body,
            ) {
                Ok((code, bytes)) => bytes_response(code, bytes),
                Err(e) => error(&e),
            };
            for warning in warnings {
                if let Ok(value) = header::HeaderValue::from_str(&warning_header(&warning)) {
                    resp.headers_mut().append(header::WARNING, value);
                }
            }
            resp
        }
        Err(e) => error(&e),
    }
}

/// `299 - "text"`, as the API server writes a warning: quotes and backslashes escaped, and
/// characters a header cannot carry replaced.
fn warning_header(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    out.push_str("299 - \"");
    for c in text.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_ascii_graphic() || c == ' ' => out.push(c),
            _ => out.push('?'),
        }
    }
    out.push('"');
    out
}

/// A request for an API resource, once the path is understood.
#[derive(Debug, Clone)]
pub struct Target {
    pub rt: ResourceType,
    /// The version in the URL, which objects are shown at.
    pub version: String,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub sub: Option<String>,
    /// What follows the subresource, e.g. a proxied path.
    pub rest: String,
}

enum Route {
    Static(Value),
    Text(&'static str),
    Resource(Box<Target>),
}

fn route(shared: &Shared, path: &str) -> Result<Route, ApiError> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let state = shared.state();
    let registry = &state.registry;
    let not_found = ApiError::path_not_found;
    let found = |v: Option<Value>| v.map(Route::Static).ok_or_else(not_found);
    match segs.as_slice() {
        ["version"] => Ok(Route::Static(discovery::version(state.server_version))),
        ["healthz" | "readyz" | "livez"] => Ok(Route::Text("ok")),
        ["api"] => Ok(Route::Static(discovery::core_versions(
            &shared.addr.to_string(),
        ))),
        ["apis"] => Ok(Route::Static(discovery::group_list(registry))),
        ["apis", g] => found(discovery::group(registry, g)),
        ["openapi", "v3"] => Ok(Route::Static(discovery::openapi_index(registry))),
        ["openapi", "v3", "api", v] => found(discovery::openapi_document(registry, "", v)),
        ["openapi", "v3", "apis", g, v] => found(discovery::openapi_document(registry, g, v)),
        ["api", v] => found(discovery::resource_list(registry, "", v)),
        ["apis", g, v] => found(discovery::resource_list(registry, g, v)),
        ["api", v, rest @ ..] => resource_route(&state, "", v, rest),
        ["apis", g, v, rest @ ..] => resource_route(&state, g, v, rest),
        _ => Err(not_found()),
    }
}

fn resource_route(
    state: &State,
    group: &str,
    version: &str,
    segs: &[&str],
) -> Result<Route, ApiError> {
    let namespaced_path = segs.len() >= 3
        && segs[0] == "namespaces"
        && !(group.is_empty() && segs.len() == 3 && matches!(segs[2], "status" | "finalize"));
    let (namespace, segs) = if namespaced_path {
        (Some(segs[1].to_string()), &segs[2..])
    } else {
        (None, segs)
    };
    let (plural, name, sub, rest) = match segs {
        [plural] => (*plural, None, None, String::new()),
        [plural, name] => (*plural, Some(*name), None, String::new()),
        [plural, name, sub, rest @ ..] => (*plural, Some(*name), Some(*sub), rest.join("/")),
        _ => return Err(ApiError::path_not_found()),
    };
    let rt = state
        .registry
        .find(group, version, plural)
        .cloned()
        .ok_or_else(ApiError::path_not_found)?;
    if namespace.is_some() && !rt.namespaced {
        return Err(ApiError::path_not_found());
    }
    if namespace.is_none() && rt.namespaced && name.is_some() {
        return Err(ApiError::path_not_found());
    }
    if let Some(sub) = sub
        && !rt.has_subresource(sub)
    {
        return Err(ApiError::path_not_found());
    }
    Ok(Route::Resource(Box::new(Target {
        rt,
        version: version.to_string(),
        namespace,
        name: name.map(str::to_string),
        sub: sub.map(str::to_string),
        rest,
    })))
}

/// Query parameters, percent-decoded.
pub fn parse_query(query: &str) -> HashMap<String, String> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

pub fn json_response(code: StatusCode, value: &Value) -> Response<Body> {
    let bytes = serde_json::to_vec(value).unwrap_or_default();
    bytes_response(code, Bytes::from(bytes))
}

pub fn bytes_response(code: StatusCode, bytes: Bytes) -> Response<Body> {
    let mut resp = Response::new(full(bytes));
    *resp.status_mut() = code;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    resp
}

fn text_response(text: &'static str) -> Response<Body> {
    let mut resp = Response::new(full(text));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

pub fn error(e: &ApiError) -> Response<Body> {
    let code = StatusCode::from_u16(e.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    json_response(code, &e.to_status())
}

#[cfg(test)]
mod tests {
    #[test]
    fn query_strings_are_decoded() {
        let q = super::parse_query("labelSelector=app%3Dweb%2Ctier+in+%28a%29&limit=5&watch");
        assert_eq!(q["labelSelector"], "app=web,tier in (a)");
        assert_eq!(q["limit"], "5");
        assert_eq!(q["watch"], "");
        assert_eq!(super::parse_query("x=%zz%")["x"], "%zz%");
    }
}
