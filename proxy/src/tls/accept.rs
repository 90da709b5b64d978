//! The inbound side's first look at a connection: mesh TLS for this proxy, or not.
//!
//! Linkerd's rule: a ClientHello whose SNI is this proxy's identity is terminated here;
//! anything else (plaintext, a ClientHello for another name or with none) is left for
//! protocol detection, with the bytes read so far replayed.

use bytes::{BufMut, Bytes, BytesMut};
use rustls::{Connection, ServerConnection};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout, timeout_at};

use super::transport_header::{ALPN, HeaderError, MAX_PREFACED, TransportHeader};
use super::{ClientHello, ClientTls, MeshTls, TlsError, TlsStream, parse_client_hello};
use crate::identity::leaf_dns_names;
use crate::io::Stream;

/// The most bytes read looking for a whole ClientHello (a proxy's is about 300 bytes, a
/// post-quantum key share adds about 1.2 KiB); a longer one is treated as opaque.
pub const MAX_CLIENT_HELLO: usize = 16 * 1024;

/// The first byte of a TLS handshake record.
const HANDSHAKE_RECORD: u8 = 0x16;

/// An accepted connection after the mesh TLS check.
#[derive(Debug)]
pub struct Accepted {
    /// The decrypted stream when mesh TLS was terminated, else the socket.
    pub stream: Stream,
    /// Bytes read from the socket that were not terminated: detection reads them first.
    pub prefix: Bytes,
    pub client: ClientTls,
    /// The client sent nothing within the first-bytes window: the server-speaks-first
    /// check has already waited that window, and need not wait it again.
    pub silent: bool,
    /// The transport header, when the client negotiated it; `prefix` then holds the bytes
    /// read after it.
    pub header: Option<TransportHeader>,
}

impl Accepted {
    /// A connection that is not mesh TLS for this proxy, with the bytes looked at.
    pub fn plain(sock: TcpStream, prefix: Bytes) -> Accepted {
        Accepted {
            stream: Stream::from(sock),
            prefix,
            client: ClientTls::Plain,
            silent: false,
            header: None,
        }
    }
}

impl MeshTls {
    /// Decides whether an accepted connection is mesh TLS for this proxy, and terminates it
    /// if so.
    ///
    /// The client has the first-bytes window to start sending: one that stays silent (a
    /// protocol where the server speaks first) is not mesh TLS, since a proxy sends its
    /// ClientHello at once. A first byte that cannot begin a TLS record costs a peek and
    /// nothing else. A ClientHello is read whole (at most [`MAX_CLIENT_HELLO`] bytes, by
    /// `deadline`, which also bounds the handshake). A ClientHello for this identity that
    /// cannot be served (no certificate yet) is an error: the connection is closed, never
    /// passed to the application.
    ///
    /// A client that negotiated the transport header ([`ALPN`]) must send a whole, valid
    /// one by `deadline`; anything else is an error.
    pub async fn accept(
        &self,
        mut sock: TcpStream,
        deadline: Instant,
    ) -> Result<Accepted, TlsError> {
        let mut first = [0u8; 1];
        match timeout(self.first_bytes, sock.peek(&mut first)).await {
            Err(_) => {
                return Ok(Accepted {
                    silent: true,
                    ..Accepted::plain(sock, Bytes::new())
                });
            }
            Ok(Ok(0)) => return Ok(Accepted::plain(sock, Bytes::new())),
            Ok(Ok(_)) if first[0] != HANDSHAKE_RECORD => {
                return Ok(Accepted::plain(sock, Bytes::new()));
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(TlsError::Handshake(e)),
        }
        let mut buf = BytesMut::with_capacity(1024);
        let sni = loop {
            match parse_client_hello(&buf) {
                ClientHello::Hello { sni } => break sni,
                ClientHello::NotHello => return Ok(Accepted::plain(sock, buf.freeze())),
                ClientHello::Incomplete if buf.len() >= MAX_CLIENT_HELLO => {
                    return Ok(Accepted::plain(sock, buf.freeze()));
                }
                ClientHello::Incomplete => {}
            }
            let room = MAX_CLIENT_HELLO - buf.len();
            buf.reserve(room.min(4096));
            match timeout_at(deadline, sock.read_buf(&mut (&mut buf).limit(room))).await {
                // Detection decides what a slow or closed client's bytes are.
                Err(_) | Ok(Ok(0)) => return Ok(Accepted::plain(sock, buf.freeze())),
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return Err(TlsError::Handshake(e)),
            }
        };
        let configs = self.configs();
        let ours = configs
            .credentials
            .as_ref()
            .map(|c| c.name.as_str())
            .or(self.local_name.as_deref());
        let for_us =
            matches!((&sni, ours), (Some(sni), Some(ours)) if sni.eq_ignore_ascii_case(ours));
        if !for_us {
            tracing::debug!(?sni, "TLS for another name; passing it through");
            return Ok(Accepted::plain(sock, buf.freeze()));
        }
        let Some(server) = configs.server.clone() else {
            return Err(TlsError::Config(
                "a client asked for this proxy's identity before it has a certificate".into(),
            ));
        };
        let conn = ServerConnection::new(server).map_err(|e| TlsError::Config(e.to_string()))?;
        let handshake = TlsStream::handshake(sock, Connection::Server(conn), &buf);
        let stream = match timeout_at(deadline, handshake).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(TlsError::Handshake(e)),
            Err(_) => {
                return Err(TlsError::Handshake(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "the TLS handshake did not finish within the detect timeout",
                )));
            }
        };
        let client = match stream.peer_certificate() {
            None => ClientTls::Unauthenticated,
            Some(cert) => match leaf_dns_names(&cert)
                .ok()
                .and_then(|n| n.into_iter().next())
            {
                Some(id) => ClientTls::Authenticated(id),
                None => ClientTls::Unauthenticated,
            },
        };
        let (header, prefix) = if stream.alpn_protocol().as_deref() == Some(ALPN) {
            let (header, rest) = read_header(&stream, deadline).await?;
            (Some(header), rest)
        } else {
            (None, Bytes::new())
        };
        Ok(Accepted {
            stream: Stream::from(stream),
            prefix,
            client,
            silent: false,
            header,
        })
    }
}

/// Reads the transport header from the start of the decrypted stream, by `deadline`:
/// the header, and the bytes read after it.
async fn read_header(
    stream: &TlsStream,
    deadline: Instant,
) -> Result<(TransportHeader, Bytes), HeaderError> {
    let mut buf = BytesMut::with_capacity(256);
    loop {
        if let Some((header, used)) = TransportHeader::decode(&buf)? {
            let _ = buf.split_to(used);
            return Ok((header, buf.freeze()));
        }
        // decode fails on a message longer than the bound, so reading past it is needless.
        if buf.len() >= MAX_PREFACED {
            return Err(HeaderError::TooLong(buf.len()));
        }
        match timeout_at(deadline, stream.readable()).await {
            Err(_) => return Err(HeaderError::Timeout),
            Ok(Err(e)) => return Err(HeaderError::Io(e.to_string())),
            Ok(Ok(())) => {}
        }
        buf.reserve(1024);
        match stream.try_read_buf(&mut buf) {
            Ok(0) => return Err(HeaderError::Truncated),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(HeaderError::Io(e.to_string())),
        }
    }
}
