//! An HTTP/2 stream's body as an `http_body::Body`, releasing flow-control capacity as its
//! data is taken: what an HTTP/1 connection reads when HTTP/2 meets HTTP/1 (the
//! `l5d-orig-proto` upgrade between meshed proxies).

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use h2::RecvStream;
use http::HeaderMap;
use hyper::body::{Body, Frame, SizeHint};

#[derive(Debug)]
pub struct H2Body {
    stream: RecvStream,
    /// The data has ended; trailers, if any, are next.
    data_done: bool,
    done: bool,
}

impl H2Body {
    pub fn new(stream: RecvStream) -> H2Body {
        let done = stream.is_end_stream();
        H2Body {
            stream,
            data_done: done,
            done,
        }
    }
}

impl Body for H2Body {
    type Data = Bytes;
    type Error = h2::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, h2::Error>>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        if !this.data_done {
            match ready!(this.stream.poll_data(cx)) {
                Some(Ok(data)) => {
                    let _ = this.stream.flow_control().release_capacity(data.len());
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Some(Err(e)) => {
                    this.done = true;
                    return Poll::Ready(Some(Err(e)));
                }
                None => this.data_done = true,
            }
        }
        let trailers: Option<HeaderMap> = match ready!(this.stream.poll_trailers(cx)) {
            Ok(t) => t,
            Err(e) => {
                this.done = true;
                return Poll::Ready(Some(Err(e)));
            }
        };
        this.done = true;
        Poll::Ready(trailers.map(|t| Ok(Frame::trailers(t))))
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }

    fn size_hint(&self) -> SizeHint {
        if self.done {
            SizeHint::with_exact(0)
        } else {
            SizeHint::default()
        }
    }
}
