//! Per-connection timing for client connections: a request head must be
//! complete within `client_header` once started (slow-loris), and a
//! keep-alive connection with nothing in flight closes after `client_idle`.
//! The socket wrapper notes when a new head starts and counts what is
//! written, flushed and lost (`access_log::delivery::Wire`); the service
//! notes when a request arrives, and the connection is idle again once its
//! response has been delivered.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::access_log::delivery::Wire;

const NONE: u64 = u64::MAX;

/// What a connection is doing, shared by its socket, service and watchdog.
pub struct Activity {
    start: Instant,
    in_flight: AtomicUsize,
    /// Milliseconds since `start` when the current request head began, or NONE.
    head_started: AtomicU64,
    /// Milliseconds since `start` when the connection last became idle.
    idle_since: AtomicU64,
    /// Wakes the watchdog when a head starts: its deadline moves earlier.
    head_began: Notify,
    /// Set to hand the connection back (see `park`): reads return end-of-file.
    parking: AtomicBool,
    /// hyper's pending read, woken when parking.
    read_waker: Mutex<Option<Waker>>,
    /// The connection became a CONNECT tunnel: the socket is the tunnel's.
    upgraded: AtomicBool,
    /// The last write or flush could not complete: hyper still holds output,
    /// so the connection must not be parked (it would be lost).
    write_pending: AtomicBool,
    /// The write side: bytes out, and responses waiting for them.
    pub wire: Arc<Wire>,
    /// Some byte has arrived: until then the connection gets the header
    /// timeout, not the keep-alive one (a connection that sends nothing).
    spoke: AtomicBool,
}

/// Why the watchdog closed a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// The request head did not arrive in time.
    HeaderTimeout,
    /// No request for too long on an idle keep-alive connection.
    IdleTimeout,
    /// A response in flight could not be written for `client_idle`: the
    /// client stopped reading.
    WriteStalled,
}

impl Activity {
    pub fn new() -> Arc<Activity> {
        Arc::new(Activity {
            start: Instant::now(),
            in_flight: AtomicUsize::new(0),
            head_started: AtomicU64::new(NONE),
            idle_since: AtomicU64::new(0),
            head_began: Notify::new(),
            parking: AtomicBool::new(false),
            read_waker: Mutex::new(None),
            upgraded: AtomicBool::new(false),
            write_pending: AtomicBool::new(false),
            wire: Wire::new(),
            spoke: AtomicBool::new(false),
        })
    }

    /// Resolves once the connection has been idle (nothing in flight, no
    /// head begun) for `after`.
    pub async fn park_ready(&self, after: Duration) {
        let after = after.as_millis() as u64;
        loop {
            let now = self.now_ms();
            let idle = self.in_flight.load(Ordering::Relaxed) == 0
                && self.head_started.load(Ordering::Relaxed) == NONE
                && !self.write_pending.load(Ordering::Relaxed);
            let since = self.idle_since.load(Ordering::Relaxed);
            if idle && now >= since.saturating_add(after) {
                return;
            }
            let wait = if idle {
                since.saturating_add(after) - now
            } else {
                after
            };
            tokio::time::sleep(Duration::from_millis(wait.max(1))).await;
        }
    }

    /// Tells hyper the client went quiet: its pending read ends (EOF).
    pub fn park(&self) {
        self.parking.store(true, Ordering::Relaxed);
        let waker = match self.read_waker.lock() {
            Ok(mut g) => g.take(),
            Err(p) => p.into_inner().take(),
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// A new hyper connection takes over the socket.
    pub fn unpark(&self) {
        self.parking.store(false, Ordering::Relaxed);
    }

    pub fn is_parking(&self) -> bool {
        self.parking.load(Ordering::Relaxed)
    }

    /// The connection was handed to a CONNECT tunnel.
    pub fn mark_upgraded(&self) {
        self.upgraded.store(true, Ordering::Relaxed);
    }

    pub fn is_upgraded(&self) -> bool {
        self.upgraded.load(Ordering::Relaxed)
    }

    fn now_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    /// A request head was parsed: its response is now in flight.
    pub fn request_started(self: &Arc<Self>) -> InFlight {
        self.spoke.store(true, Ordering::Relaxed);
        self.head_started.store(NONE, Ordering::Relaxed);
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self.clone())
    }

    fn bytes_read(&self) {
        if !self.spoke.load(Ordering::Relaxed) {
            self.spoke.store(true, Ordering::Relaxed);
        }
        if self.in_flight.load(Ordering::Relaxed) == 0
            && self.head_started.load(Ordering::Relaxed) == NONE
        {
            self.head_started.store(self.now_ms(), Ordering::Relaxed);
            // The watchdog may be asleep until a later idle deadline; a
            // stored permit covers the gap before it starts waiting.
            self.head_began.notify_one();
        }
    }

    /// Resolves when the connection has waited too long; while a response
    /// is in flight, only when the client has taken none of it for at least
    /// `idle` (a response stays in flight until it is written out).
    pub async fn expired(&self, header: Duration, idle: Duration) -> Expiry {
        let header = header.as_millis() as u64;
        let idle = idle.as_millis() as u64;
        let mut written = None;
        loop {
            let now = self.now_ms();
            let head = self.head_started.load(Ordering::Relaxed);
            let (deadline, kind) = if self.in_flight.load(Ordering::Relaxed) > 0 {
                // Blocked on a write, and no byte taken for `idle` (the
                // loop also wakes early, when a head begins elsewhere).
                let now_written = self.wire.written();
                match written {
                    Some((seen, since))
                        if seen == now_written
                            && now.saturating_sub(since) >= idle
                            && self.write_pending.load(Ordering::Relaxed) =>
                    {
                        return Expiry::WriteStalled;
                    }
                    Some((seen, _)) if seen == now_written => {}
                    _ => written = Some((now_written, now)),
                }
                (now.saturating_add(idle), None)
            } else if head != NONE {
                (head.saturating_add(header), Some(Expiry::HeaderTimeout))
            } else if !self.spoke.load(Ordering::Relaxed) {
                // A new connection's first request head: `header` from accept.
                (header, Some(Expiry::HeaderTimeout))
            } else {
                let since = self.idle_since.load(Ordering::Relaxed);
                (since.saturating_add(idle), Some(Expiry::IdleTimeout))
            };
            match kind {
                Some(kind) if deadline <= now => return kind,
                _ => {
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(deadline - now)) => {}
                        _ = self.head_began.notified() => {}
                    }
                }
            }
        }
    }
}

/// Held until a response has been delivered (see `pipeline::handle`); the
/// connection is idle again once it drops.
pub struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.idle_since.store(self.0.now_ms(), Ordering::Relaxed);
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The client socket, reporting the first bytes of each new request head
/// and counting, for the access log, what the socket really took.
pub struct ClientIo<T> {
    inner: T,
    activity: Arc<Activity>,
}

impl<T> ClientIo<T> {
    pub fn new(inner: T, activity: Arc<Activity>) -> Self {
        activity.wire.reopened();
        ClientIo { inner, activity }
    }

    /// The stream underneath (a tunnel splicing its socket).
    pub fn get_ref(&self) -> &T {
        &self.inner
    }
}

impl<T> Drop for ClientIo<T> {
    fn drop(&mut self) {
        // hyper (or the tunnel) is done with the socket: a response still
        // waiting for its bytes did not get them out.
        self.activity.wire.closed();
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for ClientIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.activity.is_parking() {
            return Poll::Ready(Ok(())); // end-of-file: hyper finishes cleanly
        }
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        match &result {
            Poll::Pending => {
                let mut slot = match self.activity.read_waker.lock() {
                    Ok(g) => g,
                    Err(p) => p.into_inner(),
                };
                if !slot.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                    *slot = Some(cx.waker().clone());
                }
            }
            Poll::Ready(_) if buf.filled().len() > before => self.activity.bytes_read(),
            Poll::Ready(_) => {}
        }
        result
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for ClientIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.note_write(&result);
        result
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.note_write(&result);
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let result = Pin::new(&mut self.inner).poll_flush(cx);
        self.activity
            .write_pending
            .store(result.is_pending(), Ordering::Relaxed);
        if let Poll::Ready(Ok(())) = result {
            // hyper flushes the socket only with its own buffer empty.
            self.activity.wire.flushed();
        }
        result
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.activity.is_parking() {
            return Poll::Ready(Ok(())); // keep the socket: it is only parked
        }
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl<T> ClientIo<T> {
    fn note_write(&self, result: &Poll<io::Result<usize>>) {
        self.activity
            .write_pending
            .store(result.is_pending(), Ordering::Relaxed);
        if let Poll::Ready(Ok(n)) = result {
            self.activity.wire.wrote(*n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn idle_connection_expires_after_idle_timeout() {
        let a = Activity::new();
        drop(a.request_started());
        let kind = a
            .expired(Duration::from_secs(30), Duration::from_secs(120))
            .await;
        assert_eq!(kind, Expiry::IdleTimeout);
        assert!(a.start.elapsed() >= Duration::from_secs(120));
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_that_never_spoke_expires_after_header_timeout() {
        let a = Activity::new();
        let kind = a
            .expired(Duration::from_secs(30), Duration::from_secs(120))
            .await;
        assert_eq!(kind, Expiry::HeaderTimeout);
        assert!(a.start.elapsed() < Duration::from_secs(31));
    }

    #[tokio::test(start_paused = true)]
    async fn started_head_expires_after_header_timeout() {
        let a = Activity::new();
        a.bytes_read();
        let kind = a
            .expired(Duration::from_secs(30), Duration::from_secs(120))
            .await;
        assert_eq!(kind, Expiry::HeaderTimeout);
        assert!(a.start.elapsed() < Duration::from_secs(31));
    }

    #[tokio::test(start_paused = true)]
    async fn head_started_during_a_long_idle_wait_expires_after_header_timeout() {
        // Slow-loris on a fresh or kept-alive connection: the watchdog is
        // asleep until the idle deadline when the first bytes arrive.
        let a = Activity::new();
        let watchdog = a.clone();
        let wait = tokio::spawn(async move {
            watchdog
                .expired(Duration::from_secs(1), Duration::from_secs(120))
                .await
        });
        tokio::time::sleep(Duration::from_secs(5)).await;
        a.bytes_read();
        let kind = wait.await.unwrap();
        assert_eq!(kind, Expiry::HeaderTimeout);
        assert!(a.start.elapsed() < Duration::from_secs(7));
    }

    #[tokio::test(start_paused = true)]
    async fn a_response_the_client_does_not_read_expires_and_one_it_reads_does_not() {
        let a = Activity::new();
        let _guard = a.request_started();
        a.write_pending.store(true, Ordering::Relaxed);
        let reading = a.clone();
        let progress = tokio::spawn(async move {
            for _ in 0..10 {
                tokio::time::sleep(Duration::from_secs(1)).await;
                reading.wire.wrote(100);
            }
        });
        let wait = a.expired(Duration::from_secs(1), Duration::from_secs(2));
        let kind = tokio::time::timeout(Duration::from_secs(30), wait).await;
        progress.await.unwrap();
        assert_eq!(kind, Ok(Expiry::WriteStalled));
        let elapsed = a.start.elapsed();
        assert!(
            elapsed >= Duration::from_secs(10),
            "not while it reads: {elapsed:?}"
        );
        assert!(elapsed <= Duration::from_secs(15), "{elapsed:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn an_early_wake_does_not_count_as_a_stall() {
        let a = Activity::new();
        let _guard = a.request_started();
        a.write_pending.store(true, Ordering::Relaxed);
        a.head_began.notify_one();
        let wait = a.expired(Duration::from_secs(1), Duration::from_secs(60));
        assert!(tokio::time::timeout(Duration::from_secs(30), wait)
            .await
            .is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn in_flight_request_never_expires() {
        let a = Activity::new();
        let guard = a.request_started();
        let wait = a.expired(Duration::from_secs(1), Duration::from_secs(1));
        assert!(tokio::time::timeout(Duration::from_secs(600), wait)
            .await
            .is_err());
        drop(guard);
        let kind = a
            .expired(Duration::from_secs(1), Duration::from_secs(1))
            .await;
        assert_eq!(kind, Expiry::IdleTimeout);
    }
}
