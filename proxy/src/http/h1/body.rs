//! Response bodies read from an upstream HTTP/1 connection.

use std::future::Future as _;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use tokio::io::AsyncReadExt;

use super::{Checkin, Decoded, Decoder, H1Conn, H1Error, reserve};

/// A response body read from an upstream HTTP/1 connection. When it ends on a reusable
/// connection, the connection is checked in for the next request.
pub struct H1Body {
    pub(super) conn: Option<Box<H1Conn>>,
    pub(super) decoder: Decoder,
    pub(super) keep_alive: bool,
    pub(super) checkin: Option<(Arc<dyn Checkin>, SocketAddr)>,
}

impl std::fmt::Debug for H1Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("H1Body")
            .field("decoder", &self.decoder)
            .field("keep_alive", &self.keep_alive)
            .finish()
    }
}

impl H1Body {
    /// Where to return the connection once the body completes.
    pub fn checkin(mut self, to: Arc<dyn Checkin>, endpoint: SocketAddr) -> Self {
        self.checkin = Some((to, endpoint));
        if self.decoder.is_done() {
            self.finish();
        }
        self
    }

    fn finish(&mut self) {
        self.decoder = Decoder::Done;
        let Some(conn) = self.conn.take() else { return };
        if self.keep_alive
            && conn.read_buf.is_empty()
            && let Some((to, target)) = &self.checkin
        {
            to.checkin(*target, conn);
        }
    }
}

impl Body for H1Body {
    type Data = Bytes;
    type Error = H1Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, H1Error>>> {
        let this = self.get_mut();
        loop {
            let Some(conn) = this.conn.as_mut() else {
                return Poll::Ready(None);
            };
            match this.decoder.decode(&mut conn.read_buf, conn.max_head) {
                Err(e) => {
                    this.conn = None;
                    return Poll::Ready(Some(Err(e)));
                }
                Ok(Decoded::Data(data)) => {
                    if this.decoder.is_done() {
                        this.finish();
                    }
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Ok(Decoded::Trailers(trailers)) => {
                    this.finish();
                    return Poll::Ready(Some(Ok(Frame::trailers(trailers))));
                }
                Ok(Decoded::End) => {
                    this.finish();
                    return Poll::Ready(None);
                }
                Ok(Decoded::NeedMore) => {
                    reserve(&mut conn.read_buf);
                    let read = std::pin::pin!(conn.io.read_buf(&mut conn.read_buf)).poll(cx);
                    match ready!(read) {
                        Ok(0) if this.decoder == Decoder::Eof => {
                            this.keep_alive = false;
                            this.finish();
                            return Poll::Ready(None);
                        }
                        Ok(0) => {
                            this.conn = None;
                            return Poll::Ready(Some(Err(H1Error::Truncated)));
                        }
                        Ok(_) => {}
                        Err(e) => {
                            this.conn = None;
                            return Poll::Ready(Some(Err(H1Error::Io(e))));
                        }
                    }
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.conn.is_none() || self.decoder.is_done()
    }

    fn size_hint(&self) -> SizeHint {
        match self.decoder.remaining() {
            Some(n) => SizeHint::with_exact(n),
            None => SizeHint::default(),
        }
    }
}
