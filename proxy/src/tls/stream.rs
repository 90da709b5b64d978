//! A TLS connection with the I/O a TCP stream offers: readiness-based reads and writes on
//! `&self` (what the lean HTTP/1 paths use) as well as `AsyncRead` and `AsyncWrite`.
//!
//! rustls is driven by hand over the socket's non-blocking `try_read` and `try_write`:
//! ciphertext is read only when no decrypted bytes are waiting, and a write first sends
//! whatever ciphertext is still pending, so at most one write's worth (rustls' 64 KiB
//! buffer limit) waits in memory. A write may leave ciphertext pending when the socket is
//! full; [`TlsStream::flushed`] waits until it is out, and waiting for readability also
//! sends it, so nothing written stays behind while the connection waits to read.
//!
//! The rustls state sits behind a mutex that is never held across an await. A peer that
//! closes without `close_notify` reads as a normal end of stream: the protocols carried
//! have their own framing, and a network attacker who can cut a connection can as well
//! reset it.

use std::io::{self, BufRead, IoSlice, Read, Write};
use std::pin::Pin;
use std::sync::{Mutex, MutexGuard};
use std::task::{Context, Poll, ready};

use bytes::BytesMut;
use rustls::Connection;
use rustls::pki_types::CertificateDer;
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::TcpStream;

/// Slices gathered into one write, so a head and its body leave in one record, not one each.
const GATHER: usize = 16 * 1024;

/// Room offered to a read into a buffer that is full, as tokio's `try_read_buf` does.
const MIN_READ: usize = 1024;

/// A TLS connection over TCP, handshake done.
pub struct TlsStream {
    tcp: TcpStream,
    state: Mutex<State>,
}

struct State {
    conn: Connection,
    close_sent: bool,
}

impl std::fmt::Debug for TlsStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsStream")
            .field("peer", &self.tcp.peer_addr().ok())
            .finish_non_exhaustive()
    }
}

impl TlsStream {
    /// Completes `conn`'s handshake over `tcp`. `prefix` holds bytes already read from the
    /// socket (the ClientHello the inbound side looked at).
    pub async fn handshake(
        tcp: TcpStream,
        conn: Connection,
        prefix: &[u8],
    ) -> io::Result<TlsStream> {
        let stream = TlsStream {
            tcp,
            state: Mutex::new(State {
                conn,
                close_sent: false,
            }),
        };
        let mut rest = prefix;
        while !rest.is_empty() {
            let mut st = stream.lock();
            if st.conn.read_tls(&mut rest)? == 0 {
                break;
            }
            stream.process(&mut st)?;
        }
        loop {
            let (handshaking, wants_write) = {
                let st = stream.lock();
                (st.conn.is_handshaking(), st.conn.wants_write())
            };
            if wants_write {
                stream.flushed().await?;
                continue;
            }
            if !handshaking {
                return Ok(stream);
            }
            stream.tcp.readable().await?;
            let read = {
                let mut st = stream.lock();
                stream.fill(&mut st)
            };
            match read {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the peer closed the connection during the TLS handshake",
                    ));
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// The peer's end-entity certificate, if it sent one.
    pub fn peer_certificate(&self) -> Option<CertificateDer<'static>> {
        let st = self.lock();
        st.conn
            .peer_certificates()
            .and_then(|c| c.first())
            .map(|c| c.clone().into_owned())
    }

    /// The ALPN protocol the handshake agreed on, if any.
    pub fn alpn_protocol(&self) -> Option<Vec<u8>> {
        self.lock().conn.alpn_protocol().map(<[u8]>::to_vec)
    }

    pub fn local_addr(&self) -> io::Result<std::net::SocketAddr> {
        self.tcp.local_addr()
    }

    /// Waits until decrypted bytes (or the end of the stream) may be read.
    pub async fn readable(&self) -> io::Result<()> {
        loop {
            let wants_write = {
                let mut st = self.lock();
                if has_plaintext(&mut st.conn) {
                    return Ok(());
                }
                st.conn.wants_write()
            };
            let interest = if wants_write {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            let ready = self.tcp.ready(interest).await?;
            if wants_write && ready.is_writable() {
                let flushed = {
                    let mut st = self.lock();
                    self.flush_tls(&mut st)
                };
                would_block_ok(flushed)?;
            }
            if ready.is_readable() {
                return Ok(());
            }
        }
    }

    /// Waits until a write may be accepted: the ciphertext still pending is out.
    pub async fn writable(&self) -> io::Result<()> {
        self.flushed().await
    }

    /// Waits until every byte written has left as ciphertext.
    pub async fn flushed(&self) -> io::Result<()> {
        loop {
            let flushed = {
                let mut st = self.lock();
                self.flush_tls(&mut st)
            };
            match flushed {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.tcp.writable().await?,
                r => return r,
            }
        }
    }

    /// Reads decrypted bytes into `buf`'s spare room; `WouldBlock` when none are ready.
    pub fn try_read_buf(&self, buf: &mut BytesMut) -> io::Result<usize> {
        let room = (buf.capacity() - buf.len()).max(MIN_READ);
        self.try_read_with(room, &mut |b| buf.extend_from_slice(b))
    }

    /// Encrypts as much of `bufs` as the buffer limit takes; `WouldBlock` while earlier
    /// ciphertext is still waiting for the socket.
    pub fn try_write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let mut st = self.lock();
        self.flush_tls(&mut st)?;
        let n = write_plaintext(&mut st.conn, bufs)?;
        would_block_ok(self.flush_tls(&mut st))?;
        Ok(n)
    }

    /// Polls for decrypted bytes (or the end), sending pending ciphertext meanwhile.
    pub fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let wants_write = {
            let mut st = self.lock();
            if has_plaintext(&mut st.conn) {
                return Poll::Ready(Ok(()));
            }
            st.conn.wants_write()
        };
        if wants_write {
            while let Poll::Ready(ready) = self.tcp.poll_write_ready(cx) {
                ready?;
                let flushed = {
                    let mut st = self.lock();
                    self.flush_tls(&mut st)
                };
                match flushed {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    r => {
                        r?;
                        break;
                    }
                }
            }
        }
        self.tcp.poll_read_ready(cx)
    }

    fn try_read_with(&self, room: usize, out: &mut dyn FnMut(&[u8])) -> io::Result<usize> {
        let mut st = self.lock();
        loop {
            if let Some(read) = take_plaintext(&mut st.conn, room, out) {
                return read;
            }
            // Nothing decrypted: read ciphertext (`WouldBlock` when the socket has none).
            self.fill(&mut st)?;
        }
    }

    /// Reads ciphertext from the socket and decrypts it; the count read, 0 at its end.
    fn fill(&self, st: &mut State) -> io::Result<usize> {
        let n = st.conn.read_tls(&mut TcpRead(&self.tcp))?;
        self.process(st)?;
        Ok(n)
    }

    /// Decrypts what was read; a TLS error is sent to the peer as an alert, if it can be.
    fn process(&self, st: &mut State) -> io::Result<()> {
        match st.conn.process_new_packets() {
            Ok(_) => {
                // Handshake messages or a key update may want an answer.
                would_block_ok(self.flush_tls(st))
            }
            Err(error) => {
                let _ = self.flush_tls(st);
                Err(io::Error::new(io::ErrorKind::InvalidData, error))
            }
        }
    }

    /// Sends pending ciphertext; `WouldBlock` if the socket fills first.
    fn flush_tls(&self, st: &mut State) -> io::Result<()> {
        while st.conn.wants_write() {
            if st.conn.write_tls(&mut TcpWrite(&self.tcp))? == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
        }
        Ok(())
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Whether a read would return something other than `WouldBlock`.
fn has_plaintext(conn: &mut Connection) -> bool {
    !matches!(conn.reader().fill_buf(), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
}

/// Copies up to `room` decrypted bytes out; `None` when none are waiting. The end of the
/// stream, with or without `close_notify`, reads as 0.
fn take_plaintext(
    conn: &mut Connection,
    room: usize,
    out: &mut dyn FnMut(&[u8]),
) -> Option<io::Result<usize>> {
    let mut reader = conn.reader();
    let n = match reader.fill_buf() {
        Ok(chunk) => {
            let n = chunk.len().min(room);
            out(&chunk[..n]);
            n
        }
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Some(Ok(0)),
        Err(e) => return Some(Err(e)),
    };
    reader.consume(n);
    Some(Ok(n))
}

/// Hands plaintext to rustls, gathering small slices into one record.
fn write_plaintext(conn: &mut Connection, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
    let mut non_empty = bufs.iter().filter(|b| !b.is_empty());
    match (non_empty.next(), non_empty.next()) {
        (None, _) => Ok(0),
        (Some(only), None) => conn.writer().write(only),
        _ => {
            let total: usize = bufs.iter().map(|b| b.len()).sum();
            let mut gathered = Vec::with_capacity(total.min(GATHER));
            for b in bufs {
                let take = b.len().min(GATHER - gathered.len());
                gathered.extend_from_slice(&b[..take]);
            }
            conn.writer().write(&gathered)
        }
    }
}

/// `WouldBlock` is not an error where pending bytes may wait for the next call.
fn would_block_ok(r: io::Result<()>) -> io::Result<()> {
    match r {
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
        r => r,
    }
}

/// The socket as rustls reads it: non-blocking.
struct TcpRead<'a>(&'a TcpStream);

impl Read for TcpRead<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.try_read(buf)
    }
}

/// The socket as rustls writes it: non-blocking.
struct TcpWrite<'a>(&'a TcpStream);

impl Write for TcpWrite<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.try_write(buf)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.0.try_write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl AsyncRead for TlsStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            let room = buf.remaining();
            match this.try_read_with(room, &mut |b| buf.put_slice(b)) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    ready!(this.poll_read_ready(cx))?;
                }
                r => return Poll::Ready(r.map(|_| ())),
            }
        }
    }
}

impl AsyncWrite for TlsStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_vectored(cx, &[IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        loop {
            match this.try_write_vectored(bufs) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    ready!(this.tcp.poll_write_ready(cx))?;
                }
                r => return Poll::Ready(r),
            }
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            let flushed = {
                let mut st = this.lock();
                this.flush_tls(&mut st)
            };
            match flushed {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    ready!(this.tcp.poll_write_ready(cx))?;
                }
                r => return Poll::Ready(r),
            }
        }
    }

    /// Sends `close_notify`, then shuts the socket's write side.
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        {
            let mut st = self.lock();
            if !st.close_sent {
                st.conn.send_close_notify();
                st.close_sent = true;
            }
        }
        ready!(self.as_mut().poll_flush(cx))?;
        Pin::new(&mut self.get_mut().tcp).poll_shutdown(cx)
    }
}
