//! Connection I/O: byte counting for the transport metrics, replaying bytes read during
//! protocol detection, socket options, and `SO_ORIGINAL_DST`.

mod orig_dst;
pub mod sockopt;
mod stream;

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

pub use orig_dst::original_dst;
pub use stream::Stream;

/// A connection as the proxy's stages see it: metered, and TCP or mesh TLS.
pub type ProxyIo = MeteredIo<Stream>;

use crate::metrics::{OpenConnection, TcpMetrics};

/// A connection that counts its bytes into the transport metrics, first replays any bytes
/// already read from it (during protocol detection), and keeps the connection counted as
/// open until it is dropped.
#[derive(Debug)]
pub struct MeteredIo<T> {
    inner: T,
    prefix: Bytes,
    metrics: Arc<TcpMetrics>,
    activity: Option<Arc<AtomicU64>>,
    open: OpenConnection,
}

impl<T> MeteredIo<T> {
    /// Wraps a connection that `open` already counted as opened.
    pub fn new(inner: T, open: OpenConnection) -> Self {
        MeteredIo {
            inner,
            prefix: Bytes::new(),
            metrics: open.metrics().clone(),
            activity: None,
            open,
        }
    }

    /// Bytes to return from reads before reading from the connection again. They were
    /// counted when they were first read.
    pub fn with_prefix(mut self, prefix: Bytes) -> Self {
        self.prefix = prefix;
        self
    }

    /// Also counts bytes into `activity`, which an idle timer watches.
    pub fn with_activity(mut self, activity: Arc<AtomicU64>) -> Self {
        self.activity = Some(activity);
        self
    }

    /// Stops counting into the `activity` given by [`with_activity`](Self::with_activity).
    pub fn without_activity(mut self) -> Self {
        self.activity = None;
        self
    }

    /// Records the connection's eventual close as failed, with this errno name.
    pub fn set_close_errno(&mut self, errno: &'static str) {
        self.open.set_errno(errno);
    }

    pub fn get_ref(&self) -> &T {
        &self.inner
    }

    /// Counts bytes read from the connection outside this wrapper (during detection).
    pub fn count_read(&self, n: usize) {
        self.metrics.add_read(n);
    }

    fn touch(&self, n: usize) {
        if let Some(a) = &self.activity {
            a.fetch_add(n as u64 + 1, Relaxed);
        }
    }
}

/// Readiness-based I/O on `&self`, so one task can read and write a connection at once
/// (the HTTP/1 client reads an early response while it still sends the request body).
impl MeteredIo<Stream> {
    pub async fn readable(&self) -> io::Result<()> {
        self.inner.readable().await
    }

    pub async fn writable(&self) -> io::Result<()> {
        self.inner.writable().await
    }

    /// Waits until everything written has left for the socket (see [`Stream::flushed`]).
    pub async fn flushed(&self) -> io::Result<()> {
        self.inner.flushed().await
    }

    /// Reads into `buf`'s spare capacity; `WouldBlock` when nothing is ready.
    pub fn try_read_buf(&self, buf: &mut bytes::BytesMut) -> io::Result<usize> {
        let n = self.inner.try_read_buf(buf)?;
        self.metrics.add_read(n);
        self.touch(n);
        Ok(n)
    }

    pub fn try_write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let n = self.inner.try_write_vectored(bufs)?;
        self.metrics.add_write(n);
        self.touch(n);
        Ok(n)
    }

    /// Waits for the connection to become readable, registering the task's waker.
    pub fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.inner.poll_read_ready(cx)
    }

    /// Whether the reactor has seen the connection become readable (data or EOF) without
    /// a read being attempted: for an idle pooled connection, that means it is unusable.
    pub fn is_read_ready(&self) -> bool {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        self.inner.poll_read_ready(&mut cx).is_ready()
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for MeteredIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.prefix.is_empty() {
            let n = this.prefix.len().min(buf.remaining());
            buf.put_slice(&this.prefix[..n]);
            this.prefix.advance(n);
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        let res = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = res {
            let n = buf.filled().len() - before;
            this.metrics.add_read(n);
            this.touch(n);
        }
        res
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for MeteredIo<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let res = Pin::new(&mut this.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = res {
            this.metrics.add_write(n);
            this.touch(n);
        }
        res
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let res = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = res {
            this.metrics.add_write(n);
            this.touch(n);
        }
        res
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
