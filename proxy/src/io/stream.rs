//! The one kind of connection the HTTP and TCP stages read and write: TCP, or mesh TLS
//! over TCP.
//!
//! Every path above (the lean HTTP/1 loop, the HTTP/1 client, hyper, h2, opaque
//! forwarding) works over either. The HTTP/1 paths use readiness-based I/O on `&self` (one
//! task reads an early response while it still writes a request body), so both variants
//! offer `readable`, `writable`, `try_read_buf`, `try_write_vectored` and `poll_read_ready`
//! as well as the `AsyncRead`/`AsyncWrite` poll methods (see `crate::tls::TlsStream` for
//! how TLS does). A TLS write may leave ciphertext waiting for the socket: a path that
//! wrote everything it has and goes on to wait for something else calls
//! [`Stream::flushed`]. For TCP it returns at once.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::tls::TlsStream;

#[derive(Debug)]
pub enum Stream {
    Tcp(TcpStream),
    /// Boxed: the rustls state is large, and plain TCP should not pay for it.
    Tls(Box<TlsStream>),
}

impl From<TcpStream> for Stream {
    fn from(s: TcpStream) -> Self {
        Stream::Tcp(s)
    }
}

impl From<TlsStream> for Stream {
    fn from(s: TlsStream) -> Self {
        Stream::Tls(Box::new(s))
    }
}

impl Stream {
    pub async fn readable(&self) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.readable().await,
            Stream::Tls(s) => s.readable().await,
        }
    }

    pub async fn writable(&self) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.writable().await,
            Stream::Tls(s) => s.writable().await,
        }
    }

    pub fn try_read_buf(&self, buf: &mut BytesMut) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.try_read_buf(buf),
            Stream::Tls(s) => s.try_read_buf(buf),
        }
    }

    pub fn try_write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.try_write_vectored(bufs),
            Stream::Tls(s) => s.try_write_vectored(bufs),
        }
    }

    pub fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            Stream::Tcp(s) => s.poll_read_ready(cx),
            Stream::Tls(s) => s.poll_read_ready(cx),
        }
    }

    /// Waits until everything written has left for the socket (TLS ciphertext a full
    /// socket held back); at once for TCP.
    pub async fn flushed(&self) -> io::Result<()> {
        match self {
            Stream::Tcp(_) => Ok(()),
            Stream::Tls(s) => s.flushed().await,
        }
    }

    pub fn local_addr(&self) -> io::Result<std::net::SocketAddr> {
        match self {
            Stream::Tcp(s) => s.local_addr(),
            Stream::Tls(s) => s.local_addr(),
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(&mut **s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(&mut **s).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls(s) => Pin::new(&mut **s).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Tcp(s) => s.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(&mut **s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(&mut **s).poll_shutdown(cx),
        }
    }
}
