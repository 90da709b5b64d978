//! Linkerd's opaque transport header (`transport.l5d.io/v1`).
//!
//! A client that negotiated the ALPN protocol [`ALPN`] on mesh TLS to a proxy's inbound
//! port starts the decrypted stream with a header naming the port the connection is really
//! for; the rest of the stream is the application's bytes. On the wire:
//!
//! ```text
//! "transport.l5d.io/v1\r\n\r\n"   the preface, 23 bytes
//! u32, big-endian                 the length of the message that follows
//! protobuf `transport.l5d.io.Header`:
//!   1: int32 port                 1..=65535
//!   2: string name                empty, or a name for a gateway to forward to
//!   3: SessionProtocol            absent for opaque traffic; else { oneof http1 = 1, http2 = 2 }
//! ```
//!
//! A message longer than [`MAX_MESSAGE`] is refused before it is read: a real header is a
//! port, a DNS name at most and a two-byte protocol, well under it.

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// The ALPN protocol a client offers to send the header.
pub const ALPN: &[u8] = b"transport.l5d.io/v1";

/// What the decrypted stream starts with when the header was negotiated.
pub const PREFACE: &[u8] = b"transport.l5d.io/v1\r\n\r\n";

/// The longest header message accepted (the bytes after the length).
pub const MAX_MESSAGE: usize = 4 * 1024;

/// The protobuf message (`transport.l5d.io.Header`).
#[derive(Clone, PartialEq, prost::Message)]
struct HeaderProto {
    #[prost(int32, tag = "1")]
    port: i32,
    #[prost(string, tag = "2")]
    name: String,
    #[prost(message, optional, tag = "3")]
    session_protocol: Option<SessionProtocolProto>,
}

/// `transport.l5d.io.SessionProtocol`.
#[derive(Clone, PartialEq, prost::Message)]
struct SessionProtocolProto {
    #[prost(oneof = "Kind", tags = "1, 2")]
    kind: Option<Kind>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
enum Kind {
    #[prost(message, tag = "1")]
    Http1(Empty),
    #[prost(message, tag = "2")]
    Http2(Empty),
}

#[derive(Clone, PartialEq, prost::Message)]
struct Empty {}

/// The protocol a header says the stream carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionProtocol {
    Http1,
    Http2,
}

/// A decoded header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransportHeader {
    /// The port the connection is for.
    pub port: u16,
    /// A name for a gateway to forward to; `None` when the header carries none.
    pub name: Option<String>,
    /// `None`: the stream is opaque.
    pub protocol: Option<SessionProtocol>,
}

/// Why a header could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HeaderError {
    #[error("the stream does not start with the transport header preface")]
    Preface,
    #[error("the transport header message is {0} bytes, more than {MAX_MESSAGE}")]
    TooLong(usize),
    #[error("the transport header message does not decode: {0}")]
    Decode(String),
    #[error("the transport header names port {0}, not 1..=65535")]
    Port(i32),
    #[error("the stream ended within the transport header")]
    Truncated,
    #[error("the transport header did not arrive within the detect timeout")]
    Timeout,
    #[error("reading the transport header: {0}")]
    Io(String),
}

impl TransportHeader {
    /// The preface, the length and the message.
    pub fn encode(&self) -> Bytes {
        let proto = HeaderProto {
            port: i32::from(self.port),
            name: self.name.clone().unwrap_or_default(),
            session_protocol: self.protocol.map(|p| SessionProtocolProto {
                kind: Some(match p {
                    SessionProtocol::Http1 => Kind::Http1(Empty {}),
                    SessionProtocol::Http2 => Kind::Http2(Empty {}),
                }),
            }),
        };
        let len = prost::Message::encoded_len(&proto);
        let mut buf = BytesMut::with_capacity(PREFACE.len() + 4 + len);
        buf.put_slice(PREFACE);
        // A port, and a name the caller chose: far below u32::MAX.
        buf.put_u32(u32::try_from(len).unwrap_or(u32::MAX));
        prost::Message::encode_raw(&proto, &mut buf);
        buf.freeze()
    }

    /// Decodes a header at the start of `buf`: `Ok(None)` while more bytes are needed,
    /// else the header and how many bytes it took. Fails as soon as the bytes so far
    /// cannot begin a header.
    pub fn decode(buf: &[u8]) -> Result<Option<(TransportHeader, usize)>, HeaderError> {
        let seen = buf.len().min(PREFACE.len());
        if buf[..seen] != PREFACE[..seen] {
            return Err(HeaderError::Preface);
        }
        let Some(mut rest) = buf.get(PREFACE.len()..).filter(|r| r.len() >= 4) else {
            return Ok(None);
        };
        let len = rest.get_u32() as usize;
        if len > MAX_MESSAGE {
            return Err(HeaderError::TooLong(len));
        }
        let Some(msg) = rest.get(..len) else {
            return Ok(None);
        };
        let proto = <HeaderProto as prost::Message>::decode(msg)
            .map_err(|e| HeaderError::Decode(e.to_string()))?;
        let port = u16::try_from(proto.port)
            .ok()
            .filter(|p| *p != 0)
            .ok_or(HeaderError::Port(proto.port))?;
        let protocol = proto
            .session_protocol
            .and_then(|p| p.kind)
            .map(|k| match k {
                Kind::Http1(_) => SessionProtocol::Http1,
                Kind::Http2(_) => SessionProtocol::Http2,
            });
        let header = TransportHeader {
            port,
            name: (!proto.name.is_empty()).then_some(proto.name),
            protocol,
        };
        Ok(Some((header, PREFACE.len() + 4 + len)))
    }
}

/// The most bytes a whole header can take.
pub const MAX_PREFACED: usize = PREFACE.len() + 4 + MAX_MESSAGE;

#[cfg(test)]
mod tests {
    use super::*;

    /// Assembled by hand from the format: preface, length 7, then field 1 (varint) 8080,
    /// field 3 (length-delimited, 2 bytes) holding field 2 (length-delimited, empty).
    const PORT_8080_HTTP2: &[u8] =
        b"transport.l5d.io/v1\r\n\r\n\x00\x00\x00\x07\x08\x90\x3f\x1a\x02\x12\x00";

    #[test]
    fn decodes_a_hand_assembled_header() {
        let mut wire = PORT_8080_HTTP2.to_vec();
        wire.extend_from_slice(b"after");
        let (header, used) = TransportHeader::decode(&wire).unwrap().unwrap();
        assert_eq!(
            header,
            TransportHeader {
                port: 8080,
                name: None,
                protocol: Some(SessionProtocol::Http2)
            }
        );
        assert_eq!(&wire[used..], b"after");
    }

    #[test]
    fn encodes_the_hand_assembled_header() {
        let header = TransportHeader {
            port: 8080,
            name: None,
            protocol: Some(SessionProtocol::Http2),
        };
        assert_eq!(&header.encode()[..], PORT_8080_HTTP2);
        // Opaque, port 5432: the message is field 1 alone.
        let opaque = TransportHeader {
            port: 5432,
            name: None,
            protocol: None,
        };
        assert_eq!(
            &opaque.encode()[..],
            b"transport.l5d.io/v1\r\n\r\n\x00\x00\x00\x03\x08\xb8\x2a"
        );
    }

    #[test]
    fn round_trips_a_name_and_http1() {
        let header = TransportHeader {
            port: 443,
            name: Some("web.ns.svc.cluster.local".into()),
            protocol: Some(SessionProtocol::Http1),
        };
        let wire = header.encode();
        assert_eq!(
            TransportHeader::decode(&wire).unwrap(),
            Some((header, wire.len()))
        );
    }

    #[test]
    fn asks_for_more_until_the_header_is_whole() {
        for end in 0..PORT_8080_HTTP2.len() {
            assert_eq!(
                TransportHeader::decode(&PORT_8080_HTTP2[..end]),
                Ok(None),
                "{end}"
            );
        }
    }

    #[test]
    fn refuses_another_preface_at_its_first_wrong_byte() {
        assert_eq!(
            TransportHeader::decode(b"GET / HTTP/1.1\r\n"),
            Err(HeaderError::Preface)
        );
        assert_eq!(
            TransportHeader::decode(b"transport.l5d.io/v2"),
            Err(HeaderError::Preface)
        );
    }

    #[test]
    fn refuses_an_oversized_length_before_reading_it() {
        let mut wire = PREFACE.to_vec();
        wire.extend_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(
            TransportHeader::decode(&wire),
            Err(HeaderError::TooLong(u32::MAX as usize))
        );
        let mut wire = PREFACE.to_vec();
        wire.extend_from_slice(&((MAX_MESSAGE + 1) as u32).to_be_bytes());
        assert_eq!(
            TransportHeader::decode(&wire),
            Err(HeaderError::TooLong(MAX_MESSAGE + 1))
        );
    }

    #[test]
    fn refuses_bad_ports_and_bad_messages() {
        let with = |msg: &[u8]| {
            let mut wire = PREFACE.to_vec();
            wire.extend_from_slice(&(msg.len() as u32).to_be_bytes());
            wire.extend_from_slice(msg);
            TransportHeader::decode(&wire)
        };
        // No port at all: 0.
        assert_eq!(with(b""), Err(HeaderError::Port(0)));
        // 65536.
        assert_eq!(with(b"\x08\x80\x80\x04"), Err(HeaderError::Port(65536)));
        // -1, as a ten-byte varint.
        assert_eq!(
            with(b"\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"),
            Err(HeaderError::Port(-1))
        );
        // A truncated varint inside the message.
        assert!(matches!(with(b"\x08\x90"), Err(HeaderError::Decode(_))));
    }
}
