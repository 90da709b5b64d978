//! The body decoder, chunked above all: valid encodings decode to the bytes encoded, however
//! the bytes arrive; no input panics or loops.

use bytes::{Bytes, BytesMut};
use http::HeaderMap;
use http::header::{HeaderName, HeaderValue};
use proptest::prelude::*;

use crate::fuzz_runner::fuzz;
use crate::http::h1::decode::{Decoded, Decoder, Framing};

/// The trailer limit the decoder is given (the proxy passes its header limit).
const MAX_TRAILERS: usize = 4096;

/// What may follow a response on a kept-alive connection.
const NEXT: &[&[u8]] = &[b"", b"HTTP/1.1 200 OK\r\n\r\n"];

/// What decoding a whole input produced.
#[derive(Debug, PartialEq)]
struct Outcome {
    data: Vec<u8>,
    trailers: Option<HeaderMap>,
    /// `Some(error)` if the decoder refused the input; `None` if it ended or wanted more.
    error: Option<String>,
    ended: bool,
    /// Bytes left in the buffer after the end.
    rest: Vec<u8>,
}

/// Feeds `input` to a decoder in pieces of the given sizes (cycled), as reads would deliver it.
fn decode(framing: Framing, input: &[u8], pieces: &[usize]) -> Result<Outcome, TestCaseError> {
    let mut decoder = Decoder::new(framing);
    let mut buf = BytesMut::new();
    let mut fed = 0;
    let mut sizes = pieces.iter().cycle();
    let mut out = Outcome {
        data: Vec::new(),
        trailers: None,
        error: None,
        ended: false,
        rest: Vec::new(),
    };
    // Every call consumes bytes, ends, or asks for more: a bound on calls catches a loop.
    let mut calls = 0usize;
    loop {
        calls += 1;
        prop_assert!(
            calls <= 2 * input.len() + 16,
            "no progress after {calls} calls"
        );
        match decoder.decode(&mut buf, MAX_TRAILERS) {
            Ok(Decoded::Data(bytes)) => {
                prop_assert!(!bytes.is_empty(), "empty data frame");
                out.data.extend_from_slice(&bytes);
            }
            Ok(Decoded::Trailers(map)) => {
                prop_assert!(out.trailers.is_none(), "trailers twice");
                out.trailers = Some(map);
            }
            Ok(Decoded::End) => {
                out.ended = true;
                break;
            }
            Ok(Decoded::NeedMore) => {
                if fed == input.len() {
                    break;
                }
                let n = (*sizes.next().unwrap_or(&1)).clamp(1, input.len() - fed);
                buf.extend_from_slice(&input[fed..fed + n]);
                fed += n;
            }
            Err(e) => {
                out.error = Some(e.to_string());
                break;
            }
        }
        if decoder.is_done() && out.trailers.is_some() {
            out.ended = true;
            break;
        }
    }
    out.rest = buf.to_vec();
    out.rest.extend_from_slice(&input[fed..]);
    Ok(out)
}

#[test]
fn arbitrary_bytes() {
    fuzz(
        "h1 body: arbitrary bytes",
        512,
        (
            prop::collection::vec(any::<u8>(), 0..600),
            prop::collection::vec(1usize..64, 1..8),
            prop::sample::select(
                &[
                    Framing::Chunked,
                    Framing::Length(10),
                    Framing::Eof,
                    Framing::Empty,
                ][..],
            ),
        ),
        |(input, pieces, framing)| decode(framing, &input, &pieces).map(drop),
    );
}

/// Chunked text made of the encoding's own tokens.
#[test]
fn chunked_token_soup() {
    let token = prop::sample::select(
        &[
            "0",
            "1",
            "a",
            "F",
            "10",
            "fffffffffffffff",
            "ffffffffffffffff",
            "\r\n",
            "\n",
            "\r",
            ";",
            ";a=b",
            "; q=\"x y\"",
            " ",
            "\t",
            "x",
            "abc",
            "0\r\n\r\n",
            "t: v\r\n",
            ":",
            "-",
        ][..],
    );
    fuzz(
        "h1 body: chunked token soup",
        512,
        (
            prop::collection::vec(token, 0..40),
            prop::collection::vec(1usize..16, 1..8),
        ),
        |(tokens, pieces)| {
            let input = tokens.concat();
            let whole = decode(Framing::Chunked, input.as_bytes(), &[usize::MAX])?;
            let split = decode(Framing::Chunked, input.as_bytes(), &pieces)?;
            prop_assert_eq!(
                whole.error.is_some(),
                split.error.is_some(),
                "how the bytes arrived changed the outcome of {:?}",
                input
            );
            if whole.error.is_none() {
                prop_assert_eq!(whole, split, "{:?}", input);
            }
            Ok(())
        },
    );
}

/// A chunk-size line: size digits (any case, leading zeros) and extensions.
#[derive(Debug, Clone)]
struct SizeLine {
    zeros: usize,
    upper: bool,
    extensions: Vec<String>,
}

fn size_line() -> impl Strategy<Value = SizeLine> {
    (
        0usize..4,
        any::<bool>(),
        prop::collection::vec(
            prop_oneof![
                "[a-z]{1,6}",
                "[a-z]{1,4}=[a-z0-9]{1,6}",
                "[a-z]{1,4}=\"[ a-z;=]{0,8}\"",
            ],
            0..3,
        ),
    )
        .prop_map(|(zeros, upper, extensions)| SizeLine {
            zeros,
            upper,
            extensions,
        })
}

impl SizeLine {
    fn write(&self, size: usize, out: &mut Vec<u8>) {
        let digits = if self.upper {
            format!("{size:X}")
        } else {
            format!("{size:x}")
        };
        out.extend_from_slice("0".repeat(self.zeros).as_bytes());
        out.extend_from_slice(digits.as_bytes());
        for ext in &self.extensions {
            out.extend_from_slice(b";");
            out.extend_from_slice(ext.as_bytes());
        }
        out.extend_from_slice(b"\r\n");
    }
}

fn trailers() -> impl Strategy<Value = Vec<(String, String)>> {
    prop::collection::vec(("[a-z][a-z0-9-]{0,10}", "[ -~]{0,20}"), 0..4)
}

/// Valid chunked encodings of random bodies, in random chunk sizes, with extensions and
/// trailers, and a pipelined response after them, arriving in random pieces.
#[test]
fn valid_encodings_decode_to_the_body() {
    fuzz(
        "h1 body: valid chunked encodings",
        384,
        (
            prop::collection::vec(any::<u8>(), 0..2000),
            prop::collection::vec(1usize..300, 1..10),
            prop::collection::vec(size_line(), 1..4),
            trailers(),
            prop::collection::vec(1usize..700, 1..6),
            prop::sample::select(NEXT),
        ),
        |(body, chunk_sizes, lines, trailers, pieces, next)| {
            let mut input = Vec::new();
            let mut rest = &body[..];
            let mut sizes = chunk_sizes.iter().cycle();
            let mut lines_iter = lines.iter().cycle();
            while !rest.is_empty() {
                let n = (*sizes.next().unwrap_or(&1)).min(rest.len());
                let line = lines_iter.next().unwrap_or(&lines[0]);
                line.write(n, &mut input);
                input.extend_from_slice(&rest[..n]);
                input.extend_from_slice(b"\r\n");
                rest = &rest[n..];
            }
            lines[0].write(0, &mut input);
            let mut expected_trailers = HeaderMap::new();
            for (name, value) in &trailers {
                input.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
                expected_trailers.append(
                    HeaderName::from_bytes(name.as_bytes()).unwrap_or(HeaderName::from_static("x")),
                    HeaderValue::from_str(value.trim()).unwrap_or(HeaderValue::from_static("")),
                );
            }
            input.extend_from_slice(b"\r\n");
            input.extend_from_slice(next);

            let out = decode(Framing::Chunked, &input, &pieces)?;
            prop_assert_eq!(out.error, None);
            prop_assert!(out.ended, "no end");
            prop_assert!(out.data == body, "decoded body differs");
            let got = out.trailers.unwrap_or_default();
            prop_assert_eq!(got, expected_trailers);
            prop_assert_eq!(Bytes::from(out.rest), Bytes::from_static(next));
            Ok(())
        },
    );
}

/// Content-Length and close-delimited bodies pass through exactly.
#[test]
fn length_and_eof_bodies_pass_through() {
    fuzz(
        "h1 body: length and eof",
        256,
        (
            prop::collection::vec(any::<u8>(), 0..2000),
            0usize..100,
            prop::collection::vec(1usize..500, 1..6),
        ),
        |(body, extra, pieces)| {
            let mut input = body.clone();
            input.extend(std::iter::repeat_n(b'x', extra));
            let out = decode(Framing::Length(body.len() as u64), &input, &pieces)?;
            prop_assert!(out.ended || body.is_empty(), "no end");
            prop_assert!(out.data == body, "length body differs");
            prop_assert_eq!(out.rest.len(), extra);
            let eof = decode(Framing::Eof, &input, &pieces)?;
            prop_assert!(eof.data == input, "eof body differs");
            Ok(())
        },
    );
}

/// Found by thinking through the split property above: the chunk-size line limit (4096 bytes)
/// and the trailer limit were checked only while the line or block was incomplete, so a long
/// chunk extension arriving in one read passed and the same line arriving in two failed. The
/// limits must hold whatever the reads.
#[test]
fn limits_do_not_depend_on_how_reads_split_the_input() {
    let mut line = format!("5;ext={}\r\n", "x".repeat(5000)).into_bytes();
    line.extend_from_slice(b"hello\r\n0\r\n\r\n");
    let whole = decode(Framing::Chunked, &line, &[usize::MAX]).unwrap();
    let split = decode(Framing::Chunked, &line, &[4500, usize::MAX]).unwrap();
    assert_eq!(
        whole.error.is_some(),
        split.error.is_some(),
        "one read: {:?}; two reads: {:?}",
        whole.error,
        split.error
    );

    let mut trailers = b"0\r\n".to_vec();
    trailers.extend_from_slice(format!("x: {}\r\n\r\n", "y".repeat(MAX_TRAILERS)).as_bytes());
    let whole = decode(Framing::Chunked, &trailers, &[usize::MAX]).unwrap();
    let split = decode(Framing::Chunked, &trailers, &[MAX_TRAILERS, usize::MAX]).unwrap();
    assert_eq!(
        whole.error.is_some(),
        split.error.is_some(),
        "one read: {:?}; two reads: {:?}",
        whole.error,
        split.error
    );
}

/// Lines and trailer blocks at and around the limits pass or fail the same way for every cut.
#[test]
fn limits_hold_at_the_boundary_for_every_cut() {
    // A chunk-size line of exactly `len` bytes before its line feed ("5;e=xxx\r").
    let chunk_line = |len: usize| {
        let mut v = format!("5;e={}\r\n", "x".repeat(len - 5)).into_bytes();
        v.extend_from_slice(b"hello\r\n0\r\n\r\n");
        v
    };
    // A trailer block of exactly `len` bytes with its closing blank line ("x: yyy\r\n\r\n").
    let trailer_block = |len: usize| {
        let mut v = b"0\r\n".to_vec();
        v.extend_from_slice(format!("x: {}\r\n\r\n", "y".repeat(len - 7)).as_bytes());
        v
    };
    for (input, limit) in [
        (chunk_line(4095), 4096),
        (chunk_line(4096), 4096),
        (chunk_line(4097), 4096),
        (trailer_block(MAX_TRAILERS - 1), MAX_TRAILERS),
        (trailer_block(MAX_TRAILERS), MAX_TRAILERS),
        (trailer_block(MAX_TRAILERS + 1), MAX_TRAILERS),
    ] {
        let whole = decode(Framing::Chunked, &input, &[usize::MAX]).unwrap();
        for cut in (limit - 8..limit + 8).chain([1, 2, 3, 4, 5]) {
            let split = decode(Framing::Chunked, &input, &[cut, usize::MAX]).unwrap();
            assert_eq!(
                whole.error,
                split.error,
                "input of {} bytes, cut at {cut}",
                input.len()
            );
        }
    }
    // And the boundary is where the docs put it: a line or block of exactly the limit passes.
    assert!(
        decode(Framing::Chunked, &chunk_line(4096), &[usize::MAX])
            .unwrap()
            .error
            .is_none()
    );
    assert!(
        decode(Framing::Chunked, &chunk_line(4097), &[usize::MAX])
            .unwrap()
            .error
            .is_some()
    );
    let at = decode(
        Framing::Chunked,
        &trailer_block(MAX_TRAILERS),
        &[usize::MAX],
    )
    .unwrap();
    assert!(at.error.is_none(), "{:?}", at.error);
    let over = decode(
        Framing::Chunked,
        &trailer_block(MAX_TRAILERS + 1),
        &[usize::MAX],
    )
    .unwrap();
    assert!(over.error.is_some());
}
