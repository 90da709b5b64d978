//! Clients that keep one connection: HTTP/1 keep-alive over a raw socket, and HTTP/2
//! (prior knowledge) with the h2 crate. Both talk to the outbound listener as an HTTP proxy
//! client: each request names its target.

use std::io::{BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use bytes::Bytes;

use super::{RawResponse, read_response};

/// One HTTP/1 keep-alive connection.
pub struct H1Client {
    reader: BufReader<TcpStream>,
    /// Whether the server said it closes the connection after the last response.
    pub closed: bool,
}

impl H1Client {
    pub fn connect(addr: SocketAddr) -> H1Client {
        let stream = TcpStream::connect(addr).expect("connect to the proxy");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream.set_nodelay(true).unwrap();
        H1Client {
            reader: BufReader::new(stream),
            closed: false,
        }
    }

    /// `GET url` (absolute: `http://host:port/path`).
    pub fn get(&mut self, url: &str) -> std::io::Result<RawResponse> {
        self.send("GET", url, b"")
    }

    /// `method url` with `body` (sent with a `Content-Length` when not empty).
    pub fn send(&mut self, method: &str, url: &str, body: &[u8]) -> std::io::Result<RawResponse> {
        if self.closed {
            return Err(std::io::Error::other("the server closed the connection"));
        }
        let host = url
            .split("://")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .unwrap_or("");
        let mut head = format!("{method} {url} HTTP/1.1\r\nHost: {host}\r\n");
        if !body.is_empty() {
            head.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        head.push_str("\r\n");
        let stream = self.reader.get_mut();
        stream.write_all(head.as_bytes())?;
        stream.write_all(body)?;
        let res = read_response(&mut self.reader)?;
        self.closed = res.closes();
        Ok(res)
    }
}

/// What an HTTP/2 response said.
#[derive(Debug)]
pub struct H2Response {
    pub status: u16,
    pub backend: Option<String>,
    pub proxy_error: Option<String>,
}

/// One HTTP/2 connection; requests are sent one after another on it.
pub struct H2Client {
    send: h2::client::SendRequest<Bytes>,
}

impl H2Client {
    pub async fn connect(addr: SocketAddr) -> H2Client {
        let tcp = tokio::net::TcpStream::connect(addr)
            .await
            .expect("connect to the proxy");
        tcp.set_nodelay(true).unwrap();
        let (send, conn) = h2::client::handshake(tcp).await.expect("h2 handshake");
        tokio::spawn(async move {
            let _ = conn.await;
        });
        H2Client { send }
    }

    /// `GET url` (absolute: its authority is `:authority`).
    pub async fn get(&mut self, url: &str) -> Result<H2Response, h2::Error> {
        let req = http::Request::get(url).body(()).unwrap();
        let mut send = self.send.clone().ready().await?;
        let (response, _) = send.send_request(req, true)?;
        let response = response.await?;
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let (backend, proxy_error) = (header(super::replica::HEADER), header("l5d-proxy-error"));
        let status = response.status().as_u16();
        let mut body = response.into_body();
        while let Some(chunk) = body.data().await {
            let chunk = chunk?;
            let _ = body.flow_control().release_capacity(chunk.len());
        }
        Ok(H2Response {
            status,
            backend,
            proxy_error,
        })
    }
}
