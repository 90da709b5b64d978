//! Reading the server name (SNI) from a TLS ClientHello, so the inbound side can decide
//! whether a connection is mesh TLS for this proxy before it takes part in the handshake.
//!
//! The ClientHello may be split across several handshake records; they are put together
//! again, up to the bytes the caller buffered. Anything that is not a well-formed
//! ClientHello is `NotHello`, and the connection is treated as opaque.

/// What a connection's first bytes say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientHello {
    /// The bytes so far begin a ClientHello; more are needed.
    Incomplete,
    /// Not a TLS ClientHello.
    NotHello,
    /// A whole ClientHello, with the host name it asks for, if any.
    Hello { sni: Option<String> },
}

const HANDSHAKE: u8 = 0x16;
const CLIENT_HELLO: u8 = 0x01;
const SERVER_NAME: u16 = 0x0000;
const HOST_NAME: u8 = 0x00;
/// The largest TLS record payload (RFC 8446 §5.1).
const MAX_RECORD: usize = 1 << 14;

/// Parses the ClientHello at the start of `buf`.
pub fn parse_client_hello(buf: &[u8]) -> ClientHello {
    let mut message = Vec::new();
    let mut rest = buf;
    loop {
        if rest.len() < 5 {
            return ClientHello::Incomplete;
        }
        let (kind, major, len) = (
            rest[0],
            rest[1],
            usize::from(u16::from_be_bytes([rest[3], rest[4]])),
        );
        if kind != HANDSHAKE || major != 3 || len == 0 || len > MAX_RECORD {
            return ClientHello::NotHello;
        }
        let Some(fragment) = rest.get(5..5 + len) else {
            return ClientHello::Incomplete;
        };
        message.extend_from_slice(fragment);
        rest = &rest[5 + len..];
        if message.len() < 4 {
            continue;
        }
        if message[0] != CLIENT_HELLO {
            return ClientHello::NotHello;
        }
        let body_len =
            usize::from(message[1]) << 16 | usize::from(message[2]) << 8 | usize::from(message[3]);
        if let Some(body) = message.get(4..4 + body_len) {
            return match server_name(body) {
                Some(sni) => ClientHello::Hello { sni },
                None => ClientHello::NotHello,
            };
        }
    }
}

/// The host name of a ClientHello body's `server_name` extension; `None` when the body is
/// malformed.
fn server_name(body: &[u8]) -> Option<Option<String>> {
    let mut r = Reader(body);
    r.take(2 + 32)?; // legacy_version, random
    r.vec8()?; // legacy_session_id
    r.vec16()?; // cipher_suites
    r.vec8()?; // legacy_compression_methods
    if r.0.is_empty() {
        return Some(None);
    }
    let mut extensions = Reader(r.vec16()?);
    while !extensions.0.is_empty() {
        let kind = extensions.u16()?;
        let data = extensions.vec16()?;
        if kind != SERVER_NAME {
            continue;
        }
        let mut list = Reader(Reader(data).vec16()?);
        while !list.0.is_empty() {
            let name_type = list.u8()?;
            let name = list.vec16()?;
            if name_type == HOST_NAME {
                let name = std::str::from_utf8(name).ok().filter(|n| n.is_ascii())?;
                return Some(Some(name.to_owned()));
            }
        }
        return Some(None);
    }
    Some(None)
}

/// A cursor over bytes whose every read is bounds-checked.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, tail) = self.0.split_at_checked(n)?;
        self.0 = tail;
        Some(head)
    }

    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }

    fn vec8(&mut self) -> Option<&'a [u8]> {
        let n = self.u8()?;
        self.take(usize::from(n))
    }

    fn vec16(&mut self) -> Option<&'a [u8]> {
        let n = self.u16()?;
        self.take(usize::from(n))
    }
}
