//! The pod port-forward subresource: `GET /api/v1/namespaces/NS/pods/NAME/portforward?ports=P`
//! upgraded to a WebSocket, as the API server and kubelet serve it to kube-rs and kubectl.
//!
//! The wire format is the kubelet's "channel" protocol (`v4.channel.k8s.io`; the API server also
//! accepts the older `channel.k8s.io`): every binary message starts with a channel byte; port
//! number `i` of the request owns channel `2i` (data) and `2i + 1` (errors). The server first
//! writes each port number, 2 bytes little-endian, on both of its channels, then pumps data both
//! ways. A port it cannot reach gets the kubelet's error text on its error channel. Port
//! forwarding has no `v5` protocol, so a client offering `v5` and `v4` gets `v4`, as from a
//! real cluster.
//!
//! The targets are the ones [`crate::FakeKube::set_pod_proxy`] registers for the pod proxy.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use http::{HeaderValue, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::{Message, handshake::derive_accept_key};

use crate::server::{Body, Shared, Target, error, full, lock};
use crate::status::ApiError;
use crate::store::core;

/// The subprotocols the kubelet's WebSocket port forwarding speaks, in its order of preference.
/// The base64 variants are left out: kube-rs and kubectl use binary frames.
const PROTOCOLS: [&str; 2] = ["v4.channel.k8s.io", "channel.k8s.io"];

/// At most this many ports per request; more is a client bug, not a test.
const MAX_PORTS: usize = 16;

/// How long the kubelet waits to connect to the pod's port.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// One port of a request and where it goes.
struct Forward {
    port: u16,
    target: Option<SocketAddr>,
}

pub fn forward(
    shared: &Arc<Shared>,
    target: &Target,
    mut req: Request<Incoming>,
) -> Response<Body> {
    let ns = target.namespace.clone().unwrap_or_default();
    let pod = target.name.clone().unwrap_or_default();
    let uid = {
        let state = shared.state();
        match state.get(&core("pods"), &ns, &pod) {
            Some(obj) => obj
                .value
                .pointer("/metadata/uid")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            None => return error(&ApiError::not_found("", "pods", &pod)),
        }
    };
    let params = crate::server::parse_query(req.uri().query().unwrap_or(""));
    let ports = match parse_ports(params.get("ports").map(String::as_str)) {
        Ok(ports) => ports,
        Err(e) => return error(&e),
    };
    let Some(key) = websocket_key(&req) else {
        return error(&ApiError::bad_request(
            "unable to upgrade connection: missing websocket upgrade headers",
        ));
    };
    let offered = req
        .headers()
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .map(str::to_string)
        .collect::<Vec<_>>();
    let Some(protocol) = PROTOCOLS
        .iter()
        .find(|p| offered.iter().any(|o| o == *p))
        .copied()
    else {
        return error(&ApiError::bad_request(format!(
            "unable to upgrade connection: none of the requested subprotocols {offered:?} are supported"
        )));
    };
    let forwards: Vec<Forward> = {
        let proxies = lock(&shared.proxies);
        let registered = proxies.get(&(ns.clone(), pod.clone()));
        ports
            .iter()
            .map(|&port| Forward {
                port,
                target: registered
                    .and_then(|t| t.iter().find(|(p, _)| *p == port))
                    .map(|(_, a)| *a),
            })
            .collect()
    };
    let upgrade = hyper::upgrade::on(&mut req);
    let who = PodRef { pod, ns, uid };
    tokio::spawn(async move {
        let Ok(upgraded) = upgrade.await else {
            return;
        };
        let ws = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
        serve(ws, forwards, who).await;
    });
    let mut resp = Response::new(full(Bytes::new()));
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = resp.headers_mut();
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    headers.insert(
        header::SEC_WEBSOCKET_PROTOCOL,
        HeaderValue::from_static(protocol),
    );
    if let Ok(accept) = HeaderValue::from_str(&derive_accept_key(key.as_bytes())) {
        headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    }
    resp
}

/// `ports=4143` or `ports=80,443`, as `PodPortForwardOptions` puts them in the query.
fn parse_ports(raw: Option<&str>) -> Result<Vec<u16>, ApiError> {
    let raw = raw.unwrap_or("").trim();
    if raw.is_empty() {
        return Err(ApiError::bad_request(
            "query parameter \"ports\" is required",
        ));
    }
    let mut ports = Vec::new();
    for part in raw.split(',') {
        let port = part
            .trim()
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| ApiError::bad_request(format!("invalid port {part:?}")))?;
        ports.push(port);
    }
    if ports.len() > MAX_PORTS {
        return Err(ApiError::bad_request(format!(
            "at most {MAX_PORTS} ports per request"
        )));
    }
    Ok(ports)
}

fn websocket_key(req: &Request<Incoming>) -> Option<String> {
    let upgrade = req.headers().get(header::UPGRADE)?.to_str().ok()?;
    if !upgrade.eq_ignore_ascii_case("websocket") {
        return None;
    }
    let key = req
        .headers()
        .get(header::SEC_WEBSOCKET_KEY)?
        .to_str()
        .ok()?;
    Some(key.to_string())
}

struct PodRef {
    pod: String,
    ns: String,
    uid: String,
}

type Ws = WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>;

/// Runs one upgraded connection until the client closes it or every port is done.
async fn serve(ws: Ws, forwards: Vec<Forward>, who: PodRef) {
    let (mut sink, mut stream) = ws.split();
    // Every channel first carries its port number.
    for (i, f) in forwards.iter().enumerate() {
        for ch in [data_channel(i), data_channel(i) + 1] {
            let mut frame = vec![ch];
            frame.extend_from_slice(&f.port.to_le_bytes());
            if sink.send(Message::binary(frame)).await.is_err() {
                return;
            }
        }
    }
    // Messages for the client from every port's task go through one queue to the one sink.
    let (to_client, mut outbox) = tokio::sync::mpsc::channel::<Message>(16);
    let mut writers = Vec::with_capacity(forwards.len());
    for (i, f) in forwards.iter().enumerate() {
        let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(16);
        writers.push(tx);
        tokio::spawn(pump(
            i,
            f.port,
            f.target,
            rx,
            to_client.clone(),
            describe(&who),
        ));
    }
    drop(to_client);
    let mut open = forwards.len();
    loop {
        tokio::select! {
            out = outbox.recv() => match out {
                Some(msg) => {
                    if sink.send(msg).await.is_err() {
                        return;
                    }
                }
                None => break,
            },
            incoming = stream.next() => match incoming {
                Some(Ok(Message::Binary(mut bytes))) if !bytes.is_empty() => {
                    let ch = usize::from(bytes[0]);
                    let _ = bytes.split_to(1);
                    // Data for a port; anything sent on an error channel is ignored, as the
                    // kubelet does.
                    if ch % 2 == 0
                        && let Some(tx) = writers.get(ch / 2)
                        && !bytes.is_empty()
                    {
                        let _ = tx.send(bytes).await;
                    }
                }
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => {
                    writers.clear();
                    open = 0;
                }
                Some(Ok(_)) => {}
            },
        }
        if open == 0 {
            break;
        }
    }
    // Writes the reply to a client's close, or starts the closing handshake when the ports
    // are done; either way the client sees a close frame before the connection ends.
    let _ = sink.flush().await;
    let _ = sink.close().await;
}

fn data_channel(index: usize) -> u8 {
    u8::try_from(2 * index).unwrap_or(u8::MAX)
}

fn describe(who: &PodRef) -> (String, String) {
    (format!("{}_{}", who.pod, who.ns), who.uid.clone())
}

/// One port: connect to its target, then copy both ways. A failure to connect becomes the
/// kubelet's message on the port's error channel.
async fn pump(
    index: usize,
    port: u16,
    target: Option<SocketAddr>,
    mut from_client: tokio::sync::mpsc::Receiver<Bytes>,
    to_client: tokio::sync::mpsc::Sender<Message>,
    (pod, uid): (String, String),
) {
    let data = data_channel(index);
    let fail = |why: String| {
        let mut frame = vec![data + 1];
        frame.extend_from_slice(
            format!("error forwarding port {port} to pod {pod}, uid {uid}: {why}").as_bytes(),
        );
        Message::binary(frame)
    };
    let connected = match target {
        None => Err(format!(
            "failed to connect to localhost:{port} inside namespace: dial tcp 127.0.0.1:{port}: connect: connection refused"
        )),
        Some(addr) => {
            match tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(addr)).await
            {
                Ok(Ok(stream)) => Ok(stream),
                Ok(Err(e)) => Err(format!("dial tcp 127.0.0.1:{port}: {e}")),
                Err(_) => Err(format!("dial tcp 127.0.0.1:{port}: i/o timeout")),
            }
        }
    };
    let stream = match connected {
        Ok(stream) => stream,
        Err(why) => {
            let _ = to_client.send(fail(why)).await;
            return;
        }
    };
    let (mut read, mut write) = stream.into_split();
    let upstream = async move {
        while let Some(bytes) = from_client.recv().await {
            if write.write_all(&bytes).await.is_err() {
                break;
            }
        }
        let _ = write.shutdown().await;
    };
    let downstream = async move {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match read.read(&mut buf[1..]).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    buf[0] = data;
                    if to_client
                        .send(Message::binary(buf[..=n].to_vec()))
                        .await
                        .is_err()
                    {
                        break;
                    }
                }
            }
        }
    };
    // The port is done when the pod's side closes, as with the kubelet; the client's side
    // closing only ends what is sent to the pod.
    tokio::pin!(upstream, downstream);
    tokio::select! {
        () = &mut downstream => {}
        () = &mut upstream => downstream.await,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn ports_come_from_a_comma_separated_list() {
        assert_eq!(super::parse_ports(Some("4143")).unwrap(), vec![4143]);
        assert_eq!(super::parse_ports(Some("80,443")).unwrap(), vec![80, 443]);
        assert!(super::parse_ports(None).is_err());
        assert!(super::parse_ports(Some("0")).is_err());
        assert!(super::parse_ports(Some("x")).is_err());
    }
}
