//! Parsing upstream HTTP/1 responses: the head, and the body's framing.

use std::mem::MaybeUninit;

use bytes::{Bytes, BytesMut};
use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::{StatusCode, Version};

use super::H1Error;

/// The most headers (or trailer fields) a response may have.
use crate::http::MAX_HEADERS;
/// The longest chunk-size line (with extensions, without its line feed) accepted.
const MAX_CHUNK_LINE: usize = 4096;

/// How a response body is delimited (RFC 9112 section 6.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    Empty,
    Length(u64),
    Chunked,
    /// Until the server closes the connection.
    Eof,
}

/// A parsed response head.
#[derive(Debug)]
pub struct Head {
    pub status: StatusCode,
    pub version: Version,
    pub headers: HeaderMap,
    pub framing: Framing,
    /// Whether the connection can carry another request after this response.
    pub keep_alive: bool,
}

/// Parses a response head at the start of `buf`, removing it. `None` means more bytes are
/// needed. Header values share the buffer's memory instead of being copied.
pub fn parse_head(
    buf: &mut BytesMut,
    head_request: bool,
    max: usize,
) -> Result<Option<Head>, H1Error> {
    // Uninitialized slots: zeroing 100 headers for every response costs more than parsing.
    let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut res = httparse::Response::new(&mut []);
    let parsed = httparse::ParserConfig::default()
        .parse_response_with_uninit_headers(&mut res, buf, &mut slots);
    let len = match parsed {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() >= max => return Err(H1Error::HeadTooLarge),
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(H1Error::HeadTooLarge),
        Err(_) => return Err(H1Error::Malformed("invalid response head")),
    };
    if len > max {
        return Err(H1Error::HeadTooLarge);
    }
    let code = res.code.unwrap_or(0);
    let status =
        StatusCode::from_u16(code).map_err(|_| H1Error::Malformed("invalid status code"))?;
    let version = if res.version == Some(0) {
        Version::HTTP_10
    } else {
        Version::HTTP_11
    };
    // Offsets into `buf`, so the head can be frozen and sliced without copying. A head is
    // at most `max` bytes, far below u32::MAX.
    let base = buf.as_ptr() as usize;
    let offset = |p: *const u8| (p as usize - base) as u32;
    let mut spans = [(0u32, 0u32, 0u32, 0u32); MAX_HEADERS];
    let count = res.headers.len();
    for (span, h) in spans.iter_mut().zip(res.headers.iter()) {
        *span = (
            offset(h.name.as_ptr()),
            h.name.len() as u32,
            offset(h.value.as_ptr()),
            h.value.len() as u32,
        );
    }
    let head = buf.split_to(len).freeze();
    let mut headers = HeaderMap::with_capacity(count);
    let mut scan = FramingScan::new(version);
    for &(ns, nl, vs, vl) in &spans[..count] {
        let (ns, nl, vs, vl) = (ns as usize, nl as usize, vs as usize, vl as usize);
        let name = HeaderName::from_bytes(&head[ns..ns + nl])
            .map_err(|_| H1Error::Malformed("invalid header name"))?;
        let value = HeaderValue::from_maybe_shared(head.slice(vs..vs + vl))
            .map_err(|_| H1Error::Malformed("invalid header value"))?;
        if name == http::header::CONTENT_LENGTH {
            scan.content_length(value.as_bytes())?;
        } else if name == http::header::TRANSFER_ENCODING {
            scan.transfer_encoding(value.as_bytes());
        } else if name == http::header::CONNECTION {
            scan.connection(value.as_bytes());
        }
        headers.append(name, value);
    }
    let (framing, keep_alive) = scan.finish(code, head_request);
    Ok(Some(Head {
        status,
        version,
        headers,
        framing,
        keep_alive,
    }))
}

/// What a response's headers say about its body and about the connection after it.
#[derive(Debug)]
pub struct FramingScan {
    length: Option<u64>,
    chunked: bool,
    has_te: bool,
    close: bool,
    http10: bool,
}

impl FramingScan {
    pub fn new(version: Version) -> Self {
        let http10 = version == Version::HTTP_10;
        FramingScan {
            length: None,
            chunked: false,
            has_te: false,
            close: http10,
            http10,
        }
    }

    pub fn content_length(&mut self, value: &[u8]) -> Result<(), H1Error> {
        let n = parse_length(value)?;
        if self.length.is_some_and(|prev| prev != n) {
            return Err(H1Error::Malformed("conflicting Content-Length"));
        }
        self.length = Some(n);
        Ok(())
    }

    pub fn transfer_encoding(&mut self, value: &[u8]) {
        self.has_te = true;
        self.chunked = value
            .rsplit(|b| *b == b',')
            .next()
            .is_some_and(|last| last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
    }

    pub fn connection(&mut self, value: &[u8]) {
        for token in value.split(|b| *b == b',') {
            let token = token.trim_ascii();
            if token.eq_ignore_ascii_case(b"close") {
                self.close = true;
            } else if token.eq_ignore_ascii_case(b"keep-alive") && self.http10 {
                self.close = false;
            }
        }
    }

    /// The body's framing (RFC 9112 section 6.3), and whether the connection can carry
    /// another request after it.
    pub fn finish(&self, code: u16, head_request: bool) -> (Framing, bool) {
        let framing = if head_request || (100..200).contains(&code) || code == 204 || code == 304 {
            Framing::Empty
        } else if self.has_te {
            // A Transfer-Encoding overrides Content-Length; one not ending in chunked runs
            // until the connection closes.
            if self.chunked {
                Framing::Chunked
            } else {
                Framing::Eof
            }
        } else {
            match self.length {
                Some(0) => Framing::Empty,
                Some(n) => Framing::Length(n),
                None => Framing::Eof,
            }
        };
        let keep_alive =
            !self.close && framing != Framing::Eof && !(self.has_te && self.length.is_some());
        (framing, keep_alive)
    }
}

fn parse_length(v: &[u8]) -> Result<u64, H1Error> {
    let v = v.trim_ascii();
    if v.is_empty() || v.len() > 19 || !v.iter().all(u8::is_ascii_digit) {
        return Err(H1Error::Malformed("invalid Content-Length"));
    }
    Ok(v.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0')))
}

/// What the decoder produced from the buffered bytes.
#[derive(Debug, PartialEq)]
pub enum Decoded {
    Data(Bytes),
    Trailers(HeaderMap),
    End,
    /// Read more from the connection.
    NeedMore,
}

/// Incremental body decoding over a connection's read buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decoder {
    Length(u64),
    Chunked(Chunk),
    Eof,
    Done,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Chunk {
    Size,
    Data(u64),
    DataEnd,
    Trailers,
}

impl Decoder {
    pub fn new(framing: Framing) -> Self {
        match framing {
            Framing::Empty | Framing::Length(0) => Decoder::Done,
            Framing::Length(n) => Decoder::Length(n),
            Framing::Chunked => Decoder::Chunked(Chunk::Size),
            Framing::Eof => Decoder::Eof,
        }
    }

    pub fn is_done(&self) -> bool {
        *self == Decoder::Done
    }

    /// Bytes still expected, when known.
    pub fn remaining(&self) -> Option<u64> {
        match self {
            Decoder::Length(n) => Some(*n),
            Decoder::Done => Some(0),
            _ => None,
        }
    }

    /// Decodes the next frame from `buf`.
    pub fn decode(&mut self, buf: &mut BytesMut, max_trailers: usize) -> Result<Decoded, H1Error> {
        loop {
            match self {
                Decoder::Done => return Ok(Decoded::End),
                Decoder::Length(remaining) => {
                    if buf.is_empty() {
                        return Ok(Decoded::NeedMore);
                    }
                    let n = (*remaining).min(buf.len() as u64) as usize;
                    *remaining -= n as u64;
                    if *remaining == 0 {
                        *self = Decoder::Done;
                    }
                    return Ok(Decoded::Data(buf.split_to(n).freeze()));
                }
                Decoder::Eof => {
                    if buf.is_empty() {
                        return Ok(Decoded::NeedMore);
                    }
                    return Ok(Decoded::Data(buf.split().freeze()));
                }
                Decoder::Chunked(state) => match state {
                    Chunk::Size => {
                        // The limit is on the line, whether or not its end has arrived, so
                        // the same bytes pass or fail however the reads cut them. Only the
                        // bytes the line may occupy are searched.
                        let window = &buf[..buf.len().min(MAX_CHUNK_LINE + 1)];
                        let Some(eol) = window.iter().position(|b| *b == b'\n') else {
                            if buf.len() > MAX_CHUNK_LINE {
                                return Err(H1Error::Malformed("chunk size line too long"));
                            }
                            return Ok(Decoded::NeedMore);
                        };
                        let size = parse_chunk_size(&buf[..eol])?;
                        let _ = buf.split_to(eol + 1);
                        *state = if size == 0 {
                            Chunk::Trailers
                        } else {
                            Chunk::Data(size)
                        };
                    }
                    Chunk::Data(remaining) => {
                        if buf.is_empty() {
                            return Ok(Decoded::NeedMore);
                        }
                        let n = (*remaining).min(buf.len() as u64) as usize;
                        *remaining -= n as u64;
                        if *remaining == 0 {
                            *state = Chunk::DataEnd;
                        }
                        return Ok(Decoded::Data(buf.split_to(n).freeze()));
                    }
                    Chunk::DataEnd => {
                        if buf.len() < 2 {
                            return Ok(Decoded::NeedMore);
                        }
                        if &buf[..2] != b"\r\n" {
                            return Err(H1Error::Malformed("chunk data not followed by CRLF"));
                        }
                        let _ = buf.split_to(2);
                        *state = Chunk::Size;
                    }
                    Chunk::Trailers => {
                        if buf.starts_with(b"\r\n") {
                            let _ = buf.split_to(2);
                            *self = Decoder::Done;
                            return Ok(Decoded::End);
                        }
                        if buf.len() < 2 {
                            return Ok(Decoded::NeedMore);
                        }
                        // The block, with its closing blank line, is at most `max_trailers`
                        // bytes however the reads cut it: only that much is searched.
                        let window = &buf[..buf.len().min(max_trailers)];
                        let Some(end) = find(window, b"\r\n\r\n") else {
                            if buf.len() >= max_trailers {
                                return Err(H1Error::HeadTooLarge);
                            }
                            return Ok(Decoded::NeedMore);
                        };
                        let block = buf.split_to(end + 4);
                        *self = Decoder::Done;
                        return Ok(Decoded::Trailers(parse_trailers(&block)?));
                    }
                },
            }
        }
    }
}

fn parse_chunk_size(line: &[u8]) -> Result<u64, H1Error> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    let rest = &line[digits..];
    if digits == 0
        || digits > 15
        || !(rest.is_empty() || rest[0] == b';' || rest[0] == b' ' || rest[0] == b'\t')
    {
        return Err(H1Error::Malformed("invalid chunk size"));
    }
    let mut size = 0u64;
    for d in &line[..digits] {
        let v = (*d as char).to_digit(16).unwrap_or(0);
        size = size * 16 + u64::from(v);
    }
    Ok(size)
}

fn parse_trailers(block: &[u8]) -> Result<HeaderMap, H1Error> {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    match httparse::parse_headers(block, &mut slots) {
        Ok(httparse::Status::Complete((_, fields))) => {
            let mut map = HeaderMap::with_capacity(fields.len());
            for f in fields {
                let name = HeaderName::from_bytes(f.name.as_bytes())
                    .map_err(|_| H1Error::Malformed("invalid trailer name"))?;
                let value = HeaderValue::from_bytes(f.value)
                    .map_err(|_| H1Error::Malformed("invalid trailer value"))?;
                map.append(name, value);
            }
            Ok(map)
        }
        _ => Err(H1Error::Malformed("invalid trailers")),
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
