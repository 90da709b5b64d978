//! Moving a body from one HTTP/2 stream to another, with flow control on both sides.

use std::future::{Future as _, poll_fn};
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use h2::{Reason, RecvStream, SendStream};
use http::HeaderMap;
use tokio::time::{Instant, Sleep};

use crate::http::pace::BodyPace;

/// Which side of a pipe failed.
#[derive(Debug)]
pub enum PipeError {
    /// Reading: the sending peer reset the stream, or its connection failed.
    Recv(h2::Error),
    /// Writing: the receiving peer reset the stream, or its connection failed.
    Send(h2::Error),
    /// The sending peer kept the body waiting longer than its pace allows.
    Stalled(Duration),
}

impl PipeError {
    /// The reason to reset the other stream with.
    pub fn reason(&self) -> Reason {
        match self {
            PipeError::Recv(e) | PipeError::Send(e) => e.reason().unwrap_or(Reason::CANCEL),
            PipeError::Stalled(_) => Reason::CANCEL,
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
///
/// With a `pace`, the sender must keep to it (see [`BodyPace`]): only the time spent
/// waiting for `from` counts, not the time spent waiting for `to`'s window.
pub async fn pipe(
    from: &mut RecvStream,
    to: &mut SendStream<Bytes>,
    mut on_data: impl FnMut(usize),
    pace: Option<BodyPace>,
) -> Result<Option<HeaderMap>, PipeError> {
    let mut waiting: Option<(Bytes, bool)> = None;
    let mut pacer = pace.filter(|p| !p.timeout().is_zero()).map(Pacer::new);
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
            let polled = from.poll_data(cx);
            if let Some(pacer) = &mut pacer {
                ready!(pacer.poll(cx, &polled))?;
            }
            match ready!(polled) {
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

/// A [`BodyPace`] kept while a body is piped: a timer runs only while the pipe waits for
/// the sender.
struct Pacer {
    pace: BodyPace,
    /// When the current wait began, if the pipe is waiting for the sender.
    since: Option<Instant>,
    /// One timer for the whole body, reset at each wait.
    timer: Pin<Box<Sleep>>,
}

impl Pacer {
    fn new(pace: BodyPace) -> Self {
        Pacer {
            timer: Box::pin(tokio::time::sleep(pace.left())),
            since: None,
            pace,
        }
    }

    /// Accounts for one poll of the sender: `Pending` while it may still keep the pipe
    /// waiting, an error once it has taken too long, ready when its frame can be used.
    fn poll(
        &mut self,
        cx: &mut Context<'_>,
        polled: &Poll<Option<Result<Bytes, h2::Error>>>,
    ) -> Poll<Result<(), PipeError>> {
        match polled {
            Poll::Pending => {
                let since = *self.since.get_or_insert_with(|| {
                    let now = Instant::now();
                    self.timer.as_mut().reset(now + self.pace.left());
                    now
                });
                if self.timer.as_mut().poll(cx).is_ready() {
                    self.pace.waited(since.elapsed());
                    return Poll::Ready(Err(PipeError::Stalled(self.pace.timeout())));
                }
                Poll::Pending
            }
            Poll::Ready(frame) => {
                if let Some(since) = self.since.take() {
                    self.pace.waited(since.elapsed());
                }
                let n = match frame {
                    Some(Ok(data)) => data.len(),
                    // The end (or a failure) is progress enough: nothing more is awaited.
                    _ => usize::MAX,
                };
                self.pace.arrived(n);
                Poll::Ready(Ok(()))
            }
        }
    }
}

/// Copies a body of another kind (an HTTP/1 body, a client's hyper body) to an HTTP/2
/// stream, with its trailers, waiting for send capacity as `pipe` does.
pub async fn pipe_body<B>(from: &mut B, to: &mut SendStream<Bytes>) -> Result<(), PipeError>
where
    B: hyper::body::Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Display,
{
    loop {
        let frame = poll_fn(|cx| Pin::new(&mut *from).poll_frame(cx)).await;
        let frame = match frame {
            None => {
                to.send_data(Bytes::new(), true).map_err(PipeError::Send)?;
                return Ok(());
            }
            Some(Err(e)) => {
                tracing::debug!(error = %e, "body failed while piped to an HTTP/2 stream");
                return Err(PipeError::Recv(Reason::INTERNAL_ERROR.into()));
            }
            Some(Ok(frame)) => frame,
        };
        let frame = match frame.into_data() {
            Ok(data) if data.is_empty() => continue,
            Ok(data) => data,
            Err(frame) => {
                if let Ok(trailers) = frame.into_trailers() {
                    to.send_trailers(trailers).map_err(PipeError::Send)?;
                    return Ok(());
                }
                continue;
            }
        };
        to.reserve_capacity(frame.len());
        let mut data = frame;
        while !data.is_empty() {
            let granted = poll_fn(|cx| to.poll_capacity(cx)).await;
            let n = match granted {
                Some(Ok(n)) => n.min(data.len()),
                Some(Err(e)) => return Err(PipeError::Send(e)),
                None => return Err(PipeError::Send(Reason::CANCEL.into())),
            };
            if n == 0 {
                continue;
            }
            to.send_data(data.split_to(n), false)
                .map_err(PipeError::Send)?;
        }
    }
}
