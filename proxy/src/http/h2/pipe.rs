//! Moving a body from one HTTP/2 stream to another, with flow control on both sides.

use std::future::poll_fn;
use std::task::{Poll, ready};

use bytes::Bytes;
use h2::{Reason, RecvStream, SendStream};
use http::HeaderMap;

/// Which side of a pipe failed.
#[derive(Debug)]
pub enum PipeError {
    /// Reading: the sending peer reset the stream, or its connection failed.
    Recv(h2::Error),
    /// Writing: the receiving peer reset the stream, or its connection failed.
    Send(h2::Error),
}

impl PipeError {
    /// The reason to reset the other stream with.
    pub fn reason(&self) -> Reason {
        match self {
            PipeError::Recv(e) | PipeError::Send(e) => e.reason().unwrap_or(Reason::CANCEL),
        }
    }
}

/// Copies `from`'s data and trailers to `to` until the body ends, and returns the
/// trailers. `on_data` sees each data frame's length.
///
/// Receive capacity is released as soon as a frame is taken, and a frame waits for send
/// capacity before the next is taken, so at most one frame per stream waits in the proxy
/// beyond what h2 buffers. As hyper does, a frame claims one byte of send capacity, not
/// its length, so a stream waiting for a window cannot starve the connection's others.
pub async fn pipe(
    from: &mut RecvStream,
    to: &mut SendStream<Bytes>,
    mut on_data: impl FnMut(usize),
) -> Result<Option<HeaderMap>, PipeError> {
    let mut waiting: Option<(Bytes, bool)> = None;
    poll_fn(|cx| {
        loop {
            if let Poll::Ready(reset) = to.poll_reset(cx) {
                let e = match reset {
                    Ok(reason) => h2::Error::from(reason),
                    Err(e) => e,
                };
                return Poll::Ready(Err(PipeError::Send(e)));
            }
            if let Some((data, end)) = waiting.take() {
                while to.capacity() == 0 {
                    match to.poll_capacity(cx) {
                        Poll::Ready(Some(Ok(0))) => {}
                        Poll::Ready(Some(Ok(_))) => break,
                        Poll::Ready(Some(Err(e))) => return Poll::Ready(Err(PipeError::Send(e))),
                        Poll::Ready(None) => {
                            return Poll::Ready(Err(PipeError::Send(Reason::CANCEL.into())));
                        }
                        Poll::Pending => {
                            waiting = Some((data, end));
                            return Poll::Pending;
                        }
                    }
                }
                to.send_data(data, end).map_err(PipeError::Send)?;
                if end {
                    return Poll::Ready(Ok(None));
                }
                continue;
            }
            match ready!(from.poll_data(cx)) {
                Some(Ok(data)) => {
                    let len = data.len();
                    let _ = from.flow_control().release_capacity(len);
                    on_data(len);
                    let end = from.is_end_stream();
                    if len == 0 {
                        // An empty frame needs no capacity (it may carry the end).
                        to.send_data(data, end).map_err(PipeError::Send)?;
                        if end {
                            return Poll::Ready(Ok(None));
                        }
                        continue;
                    }
                    to.reserve_capacity(1);
                    waiting = Some((data, end));
                }
                Some(Err(e)) => return Poll::Ready(Err(PipeError::Recv(e))),
                None => {
                    let trailers = ready!(from.poll_trailers(cx)).map_err(PipeError::Recv)?;
                    to.reserve_capacity(0);
                    match &trailers {
                        Some(t) => to.send_trailers(t.clone()).map_err(PipeError::Send)?,
                        None => to.send_data(Bytes::new(), true).map_err(PipeError::Send)?,
                    }
                    return Poll::Ready(Ok(trailers));
                }
            }
        }
    })
    .await
}
