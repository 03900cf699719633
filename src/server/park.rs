//! Parking idle keep-alive client connections. hyper keeps an 8 KiB read
//! and an 8 KiB write buffer for every connection it serves, idle or not;
//! ten thousand idle browsers would cost 160 MiB. So a connection idle for a
//! moment is handed back: hyper is told the client went quiet (a read that
//! returns end-of-file while nothing is buffered), finishes cleanly, and the
//! socket waits for its next request with nothing allocated but itself.
//! The socket is shared (`Arc<Mutex<_>>`) so that hyper's handle can go
//! while ours stays.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// A client socket shared between the connection loop and hyper.
#[derive(Clone)]
pub struct SharedStream(Arc<Mutex<TcpStream>>);

impl SharedStream {
    pub fn new(stream: TcpStream) -> SharedStream {
        SharedStream(Arc::new(Mutex::new(stream)))
    }

    fn lock(&self) -> MutexGuard<'_, TcpStream> {
        match self.0.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Waits until the client sends something; false when it closed or failed.
    pub async fn next_bytes(&self) -> bool {
        std::future::poll_fn(|cx| {
            let mut one = [0u8; 1];
            let mut buf = ReadBuf::new(&mut one);
            match self.lock().poll_peek(cx, &mut buf) {
                Poll::Ready(Ok(n)) => Poll::Ready(n > 0),
                Poll::Ready(Err(_)) => Poll::Ready(false),
                Poll::Pending => Poll::Pending,
            }
        })
        .await
    }
}

#[cfg(target_os = "linux")]
impl crate::tunnel::splice::Socket for SharedStream {
    fn poll_ready(
        &self,
        cx: &mut Context<'_>,
        interest: tokio::io::Interest,
    ) -> Poll<io::Result<()>> {
        self.lock().poll_ready(cx, interest)
    }

    fn try_io<R>(
        &self,
        interest: tokio::io::Interest,
        f: impl FnOnce(std::os::fd::BorrowedFd<'_>) -> io::Result<R>,
    ) -> io::Result<R> {
        crate::tunnel::splice::Socket::try_io(&*self.lock(), interest, f)
    }

    fn shutdown_write(&self) -> io::Result<()> {
        self.lock().shutdown_write()
    }
}

impl AsyncRead for SharedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.lock()).poll_read(cx, buf)
    }
}

impl AsyncWrite for SharedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.lock()).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.lock()).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.lock()).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.lock()).poll_shutdown(cx)
    }
}
