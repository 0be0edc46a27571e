//! Connections whose peer stops reading are closed after [`WRITE_STALL_LIMIT`].
//!
//! A client that never reads fills the kernel's buffers, then the WebSocket writer waits
//! on it forever. The session's queue stays bounded (see [`crate::send_buffer`]), but the
//! connection's task never gets past its pending write (nor to its heartbeat), so the
//! session never closes: the socket, its queue and its TCP connection stay. Every accepted connection is therefore wrapped: a write (or flush)
//! that makes no progress for the limit fails, and the connection then fails its reads
//! too, so both halves end and the session closes as if the peer had gone.

use axum::serve::Listener;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Sleep;

/// How long a write may wait for the peer to read anything. Longer than any pause a
/// working client has (the heartbeat allows 25 s + 20 s for a pong, which a client that
/// reads sends long before); short enough that a stuck peer does not stay for long.
pub const WRITE_STALL_LIMIT: Duration = Duration::from_secs(30);

/// A TCP listener whose connections close when their peer stops reading.
pub struct GuardedListener {
    inner: TcpListener,
    limit: Duration,
}

impl GuardedListener {
    pub fn new(inner: TcpListener, limit: Duration) -> Self {
        Self { inner, limit }
    }
}

impl Listener for GuardedListener {
    type Io = StallGuard<TcpStream>;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (stream, addr) = Listener::accept(&mut self.inner).await;
        // Chat frames are small and each is awaited by someone: with Nagle on, a frame
        // written while the previous one is unacknowledged waits for the peer's delayed
        // ACK (40 ms on Linux). Failing to set it only costs latency.
        let _ = stream.set_nodelay(true);
        (StallGuard::new(stream, self.limit), addr)
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// An IO stream whose writes fail after `limit` without progress; it then stays failed.
pub struct StallGuard<T> {
    inner: T,
    limit: Duration,
    /// Running while a write waits for the peer.
    stalled: Option<Pin<Box<Sleep>>>,
    failed: bool,
    /// A read waiting for the peer, woken when the stream fails.
    reader: Option<Waker>,
}

impl<T> StallGuard<T> {
    pub fn new(inner: T, limit: Duration) -> Self {
        Self { inner, limit, stalled: None, failed: false, reader: None }
    }

    fn timed_out() -> io::Error {
        io::Error::new(io::ErrorKind::TimedOut, "the peer has stopped reading")
    }

    /// The outcome of a write that returned `poll`.
    fn watch<R>(&mut self, cx: &mut Context<'_>, poll: Poll<io::Result<R>>) -> Poll<io::Result<R>> {
        match poll {
            Poll::Ready(result) => {
                self.stalled = None;
                Poll::Ready(result)
            }
            Poll::Pending => {
                let limit = self.limit;
                let timer = self.stalled.get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
                match timer.as_mut().poll(cx) {
                    Poll::Pending => Poll::Pending,
                    Poll::Ready(()) => {
                        tracing::info!(limit_ms = limit.as_millis() as u64, "closing a connection whose peer stopped reading");
                        self.failed = true;
                        if let Some(reader) = self.reader.take() {
                            reader.wake();
                        }
                        Poll::Ready(Err(Self::timed_out()))
                    }
                }
            }
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for StallGuard<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if self.failed {
            return Poll::Ready(Err(Self::timed_out()));
        }
        let poll = Pin::new(&mut self.inner).poll_read(cx, buf);
        if poll.is_pending() {
            self.reader = Some(cx.waker().clone());
        }
        poll
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for StallGuard<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if self.failed {
            return Poll::Ready(Err(Self::timed_out()));
        }
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.watch(cx, poll)
    }

    fn poll_write_vectored(mut self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
        if self.failed {
            return Poll::Ready(Err(Self::timed_out()));
        }
        let poll = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.watch(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.failed {
            return Poll::Ready(Err(Self::timed_out()));
        }
        let poll = Pin::new(&mut self.inner).poll_flush(cx);
        self.watch(cx, poll)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.failed {
            return Poll::Ready(Ok(()));
        }
        let poll = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.watch(cx, poll)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A connected pair of TCP streams on loopback.
    async fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        (server, client)
    }

    #[tokio::test]
    async fn a_write_the_peer_never_reads_fails_after_the_limit() {
        let (server, _client_that_never_reads) = pair().await;
        let mut guarded = StallGuard::new(server, Duration::from_millis(200));
        let chunk = vec![0u8; 64 * 1024];
        let error = loop {
            match tokio::time::timeout(Duration::from_secs(30), guarded.write(&chunk)).await {
                Ok(Ok(_)) => continue,
                Ok(Err(error)) => break error,
                Err(_) => panic!("the write neither progressed nor failed"),
            }
        };
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        let mut buf = [0u8; 8];
        assert_eq!(guarded.read(&mut buf).await.unwrap_err().kind(), io::ErrorKind::TimedOut, "reads fail too");
    }

    #[tokio::test]
    async fn a_peer_that_reads_slowly_is_kept() {
        let (server, mut client) = pair().await;
        let mut guarded = StallGuard::new(server, Duration::from_secs(5));
        let reader = tokio::spawn(async move {
            let mut buf = vec![0u8; 64 * 1024];
            let mut total = 0;
            while total < 8 * 1024 * 1024 {
                tokio::time::sleep(Duration::from_millis(5)).await;
                total += client.read(&mut buf).await.unwrap();
            }
            total
        });
        let chunk = vec![1u8; 64 * 1024];
        for _ in 0..128 {
            guarded.write_all(&chunk).await.expect("a reading peer is never cut off");
        }
        guarded.flush().await.unwrap();
        assert_eq!(reader.await.unwrap(), 8 * 1024 * 1024);
    }
}
