//! Moving a tunnel's bytes with `splice(2)` (Linux): each direction goes
//! socket → pipe → socket inside the kernel, never copied through this
//! process. Readiness comes from tokio's reactor (`try_io`), so the sockets
//! stay in the runtime as before; each direction owns a pipe of `BUFFER`
//! bytes, the same bound as the copy loop's buffers. The caller keeps the
//! idle timer and is told of every read and write for the byte counts.

use std::future::poll_fn;
use std::io;
use std::net::Shutdown;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::task::{ready, Context, Poll};

use tokio::io::Interest;
use tokio::net::TcpStream;

/// A socket in the runtime whose descriptor can be spliced.
pub trait Socket {
    /// Waits until the socket may be `interest` (readable or writable).
    fn poll_ready(&self, cx: &mut Context<'_>, interest: Interest) -> Poll<io::Result<()>>;
    /// Runs `f` on the descriptor; a `WouldBlock` from it clears readiness.
    fn try_io<R>(
        &self,
        interest: Interest,
        f: impl FnOnce(BorrowedFd<'_>) -> io::Result<R>,
    ) -> io::Result<R>;
    /// Shuts the writing side (passes an end-of-file on: half-close).
    fn shutdown_write(&self) -> io::Result<()>;
}

impl Socket for TcpStream {
    fn poll_ready(&self, cx: &mut Context<'_>, interest: Interest) -> Poll<io::Result<()>> {
        if interest.is_readable() {
            self.poll_read_ready(cx)
        } else {
            self.poll_write_ready(cx)
        }
    }

    fn try_io<R>(
        &self,
        interest: Interest,
        f: impl FnOnce(BorrowedFd<'_>) -> io::Result<R>,
    ) -> io::Result<R> {
        TcpStream::try_io(self, interest, || f(self.as_fd()))
    }

    fn shutdown_write(&self) -> io::Result<()> {
        socket2::SockRef::from(self).shutdown(Shutdown::Write)
    }
}

/// Which side of one direction failed.
#[derive(Debug)]
pub enum Failed {
    /// Reading the source.
    Read(io::Error),
    /// Writing the destination.
    Write(io::Error),
}

/// One direction's pipe.
pub struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
}

impl Pipe {
    /// A non-blocking pipe of `size` bytes (the kernel may round it up).
    pub fn new(size: usize) -> io::Result<Pipe> {
        use rustix::pipe::{fcntl_setpipe_size, pipe_with, PipeFlags};
        let (read, write) = pipe_with(PipeFlags::NONBLOCK | PipeFlags::CLOEXEC)?;
        // Best effort: a smaller pipe only means more calls.
        let _ = fcntl_setpipe_size(&write, size);
        Ok(Pipe { read, write })
    }
}

/// `splice(2)` of up to `len` bytes, never blocking.
fn splice(from: BorrowedFd<'_>, to: BorrowedFd<'_>, len: usize) -> io::Result<usize> {
    use rustix::pipe::SpliceFlags;
    let flags = SpliceFlags::MOVE | SpliceFlags::NONBLOCK;
    Ok(rustix::pipe::splice(from, None, to, None, len, flags)?)
}

/// Runs `op` on `socket` whenever it is ready, until it does not block.
async fn on_ready<S: Socket>(
    socket: &S,
    interest: Interest,
    mut op: impl FnMut(BorrowedFd<'_>) -> io::Result<usize>,
) -> io::Result<usize> {
    poll_fn(|cx: &mut Context<'_>| loop {
        ready!(socket.poll_ready(cx, interest))?;
        match socket.try_io(interest, &mut op) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            done => return Poll::Ready(done),
        }
    })
    .await
}

/// Moves bytes from `from` to `to` through `pipe` until `from` ends, then
/// shuts `to`'s writing side. `read` is told of each read, `wrote` of the
/// bytes each write delivered.
pub async fn pump<A: Socket, B: Socket>(
    from: &A,
    to: &B,
    pipe: &Pipe,
    chunk: usize,
    read: impl Fn(),
    wrote: impl Fn(usize),
) -> Result<(), Failed> {
    let (pipe_in, pipe_out) = (pipe.write.as_fd(), pipe.read.as_fd());
    loop {
        let n = on_ready(from, Interest::READABLE, |fd| splice(fd, pipe_in, chunk))
            .await
            .map_err(Failed::Read)?;
        if n == 0 {
            // Not connected any more is as good as shut.
            return match to.shutdown_write() {
                Err(e) if e.kind() != io::ErrorKind::NotConnected => Err(Failed::Write(e)),
                _ => Ok(()),
            };
        }
        read();
        let mut left = n;
        while left > 0 {
            let m = on_ready(to, Interest::WRITABLE, |fd| splice(pipe_out, fd, left))
                .await
                .map_err(Failed::Write)?;
            left -= m;
            wrote(m);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// Two connected loopback sockets.
    async fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (a, b) = tokio::join!(TcpStream::connect(addr), listener.accept());
        (a.unwrap(), b.unwrap().0)
    }

    #[tokio::test]
    async fn bytes_cross_through_the_pipe_exactly_and_the_end_is_passed_on() {
        let (mut writer, from) = pair().await;
        let (to, mut reader) = pair().await;
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let sent = data.clone();
        let feed = tokio::spawn(async move {
            writer.write_all(&sent).await.unwrap();
            writer.shutdown().await.unwrap();
        });
        let (reads, written) = (AtomicUsize::new(0), AtomicUsize::new(0));
        let pipe = Pipe::new(64 * 1024).unwrap();
        let pumped = pump(
            &from,
            &to,
            &pipe,
            64 * 1024,
            || {
                reads.fetch_add(1, Ordering::Relaxed);
            },
            |n| {
                written.fetch_add(n, Ordering::Relaxed);
            },
        );
        let mut got = Vec::new();
        let (result, read) = tokio::join!(pumped, reader.read_to_end(&mut got));
        result.unwrap();
        read.unwrap();
        feed.await.unwrap();
        assert_eq!(
            got, data,
            "byte-exact, and read to EOF (the shutdown passed on)"
        );
        assert_eq!(written.load(Ordering::Relaxed), data.len());
        assert!(reads.load(Ordering::Relaxed) >= 1);
    }

    #[tokio::test]
    async fn a_destination_that_hung_up_is_a_write_failure() {
        let (mut writer, from) = pair().await;
        let (to, reader) = pair().await;
        drop(reader);
        let feed = tokio::spawn(async move {
            let chunk = vec![7u8; 64 * 1024];
            for _ in 0..64 {
                if writer.write_all(&chunk).await.is_err() {
                    return;
                }
            }
        });
        let pipe = Pipe::new(64 * 1024).unwrap();
        let result = pump(&from, &to, &pipe, 64 * 1024, || {}, |_| {}).await;
        assert!(matches!(result, Err(Failed::Write(_))), "{result:?}");
        feed.abort();
    }
}
