//! When a frame reached this machine, as opposed to when the generator got round to reading
//! it. One process plays every client on one core, so under load a frame can wait in its
//! socket while the generator reads the frames of other clients: a delay no real client
//! (with a CPU of its own) would see, which inflates every latency it measures (the echo
//! server's p99 shows how much). The kernel stamps each packet as it is received
//! (`SO_TIMESTAMPNS`); a read reports the stamp of the newest packet it took, so a frame
//! is never counted earlier than it arrived.

use std::cell::Cell;
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::TcpStream;

/// A TCP stream that remembers the kernel's receive time of the last bytes read.
pub struct StampedStream {
    inner: TcpStream,
    /// Microseconds since the Unix epoch (CLOCK_REALTIME, the kernel's stamp clock).
    last_arrival_us: Cell<Option<u64>>,
}

impl StampedStream {
    /// Asks the kernel to stamp what `inner` receives. Without stamps (the option refused)
    /// the stream still works and reports no arrival times.
    pub fn new(inner: TcpStream) -> StampedStream {
        let on: libc::c_int = 1;
        // SAFETY: a valid socket descriptor and an int option of the right size.
        let _ = unsafe {
            libc::setsockopt(
                inner.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_TIMESTAMPNS,
                (&on as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        StampedStream { inner, last_arrival_us: Cell::new(None) }
    }

    /// When the newest bytes read so far arrived, in µs since the Unix epoch.
    pub fn last_arrival_us(&self) -> Option<u64> {
        self.last_arrival_us.get()
    }
}

/// The wall clock now, in µs since the Unix epoch (to place the kernel's stamps on the
/// generator's own timeline).
pub fn unix_now_us() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros() as u64).unwrap_or(0)
}

/// One `recvmsg` into `buf`: the bytes read and the kernel's stamp of the newest of them.
fn recv_stamped(fd: RawFd, buf: &mut [MaybeUninit<u8>]) -> io::Result<(usize, Option<u64>)> {
    let mut iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
    // Room for one timespec control message (u64s keep it aligned for cmsghdr).
    let mut control = [0u64; 8];
    // SAFETY: msghdr is plain data; all-zero is a valid empty header.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control) as _;
    // SAFETY: iov points into `buf` (writable for its length) and control into `control`,
    // both alive across the call.
    let n = unsafe { libc::recvmsg(fd, &mut msg, 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut stamp = None;
    // SAFETY: the CMSG_* walk stays within msg_controllen, which the kernel set.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_TIMESTAMPNS {
                let ts: libc::timespec = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast());
                stamp = Some(ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1_000);
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    Ok((n as usize, stamp))
}

impl AsyncRead for StampedStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            ready!(this.inner.poll_read_ready(cx))?;
            let fd = this.inner.as_raw_fd();
            // SAFETY: recvmsg only writes the bytes it reports; those are marked filled below.
            let unfilled = unsafe { buf.unfilled_mut() };
            match this.inner.try_io(Interest::READABLE, || recv_stamped(fd, unfilled)) {
                Ok((n, stamp)) => {
                    // A read without a stamp must not reuse an older one.
                    this.last_arrival_us.set(stamp);
                    // SAFETY: the kernel wrote n bytes at the start of the unfilled part.
                    unsafe { buf.assume_init(n) };
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                // Readiness was stale: try_io cleared it, wait again.
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => continue,
                Err(error) => return Poll::Ready(Err(error)),
            }
        }
    }
}

impl AsyncWrite for StampedStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, data)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test(flavor = "current_thread")]
    async fn bytes_read_carry_the_kernel_arrival_time() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (client, server) = tokio::join!(TcpStream::connect(addr), listener.accept());
        let mut stamped = StampedStream::new(client.unwrap());
        let (mut server, _) = server.unwrap();
        assert_eq!(stamped.last_arrival_us(), None);
        // The kernel turns stamping on for the whole stack a moment after it is asked.
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let before = unix_now_us();
        server.write_all(b"hello").await.unwrap();
        // Arrived, then read a while later: the stamp is the arrival, not the read.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let mut buf = [0u8; 16];
        let n = stamped.read(&mut buf).await.unwrap();
        let after = unix_now_us();
        assert_eq!(&buf[..n], b"hello");
        let at = stamped.last_arrival_us().expect("a kernel stamp");
        assert!(at >= before.saturating_sub(1_000) && at + 40_000 <= after, "stamp {at} not at arrival (sent at {before}, read at {after})");
    }
}
