//! CONNECT tunnels: open a TCP connection to the admitted address, answer
//! `200 Connection established`, then move bytes both ways until both sides
//! are done (half-close respected) or the tunnel sits idle too long: with
//! `splice(2)` between two TCP sockets on Linux (see `splice`), else with a
//! copy loop (a tunnel through a parent proxy). Bytes are counted in
//! `/metrics` as they flow; the tunnel is logged when it closes, through
//! the [`OnClose`] the response carries.

#[cfg(target_os = "linux")]
pub(crate) mod splice;

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::oneshot;
use tokio::time::Instant;
use tokio_util::task::TaskTracker;

use crate::access_log::TunnelBytes;
use crate::error::ProxyError;
use crate::exchange::Exchange;
use crate::forward::Forwarding;
use crate::http::body::{empty, Body};
use crate::http::target::Authority;
use crate::http::via;
use crate::metrics::live::Transfer;
use crate::metrics::Metrics;
use crate::server::listener::ServedIo;
use crate::upstream::{Connect, TunnelStream};

/// Bytes buffered per direction of a tunnel.
const BUFFER: usize = 64 * 1024;

/// What runs when a tunnel has closed, with what it carried.
pub type CloseReport = Box<dyn FnOnce(TunnelBytes) + Send>;

/// In the extensions of a tunnel's `200`: hand it the [`CloseReport`] once
/// the `200` has reached the client; dropping it unsent means nobody waits.
#[derive(Clone)]
pub struct OnClose(Arc<Mutex<Option<oneshot::Sender<CloseReport>>>>);

impl OnClose {
    /// Sends the report to the tunnel task (at most once).
    pub fn send(&self, report: CloseReport) {
        let sender = match self.0.lock() {
            Ok(mut g) => g.take(),
            Err(p) => p.into_inner().take(),
        };
        if let Some(sender) = sender {
            let _ = sender.send(report);
        }
    }

    /// Nobody will report on this tunnel.
    pub fn cancel(&self) {
        match self.0.lock() {
            Ok(mut g) => drop(g.take()),
            Err(p) => drop(p.into_inner().take()),
        }
    }
}

/// Opens the tunnel's origin side and schedules the splice once hyper hands
/// over the client connection; the response carries an [`OnClose`].
pub async fn open(
    (fwd, idle): (&Forwarding, Duration),
    tasks: &TaskTracker,
    (metrics, transfer): (&Arc<Metrics>, &Arc<Transfer>),
    request: Request<Incoming>,
    destination: (&Authority, &Connect),
    exchange: &mut Exchange,
) -> Result<Response<Body>, ProxyError> {
    if via::contains(request.headers(), &fwd.name) {
        return Err(ProxyError::Loop(fwd.name.clone()));
    }
    exchange.result = crate::exchange::Disposition::Tunnel;
    let (authority, connect) = destination;
    let host = authority.host.connect_name();
    let (origin, peer) = fwd.upstream.connect(connect, &host, authority.port).await?;
    exchange.peer = Some(peer.addr);
    exchange.via_parent = peer.parent;
    let peer = peer.addr;
    let metrics = metrics.clone();
    let transfer = transfer.clone();
    transfer.set_tunnel();
    let (report_to, report) = oneshot::channel::<CloseReport>();
    tasks.spawn(async move {
        metrics.tunnels.fetch_add(1, Ordering::Relaxed);
        let tally = Tally::new(metrics.clone(), Some(transfer));
        match hyper::upgrade::on(request).await {
            Ok(upgraded) => match carry(upgraded, origin, idle, &tally).await {
                Ok(()) => tracing::debug!(%peer, "tunnel closed"),
                Err(e) => tracing::debug!(%peer, "tunnel ended: {e}"),
            },
            Err(e) => tracing::debug!(%peer, "client left before the tunnel opened: {e}"),
        }
        metrics.tunnels.fetch_sub(1, Ordering::Relaxed);
        // The report comes once the 200 is out; an error-ended connection
        // drops it instead, so this never waits for long.
        if let Ok(report) = report.await {
            report(tally.bytes());
        }
    });
    let mut response = Response::new(empty());
    response
        .extensions_mut()
        .insert(OnClose(Arc::new(Mutex::new(Some(report_to)))));
    *response.status_mut() = StatusCode::OK;
    response
        .extensions_mut()
        .insert(hyper::ext::ReasonPhrase::from_static(
            b"Connection established",
        ));
    Ok(response)
}

/// One tunnel's traffic so far, both directions, shared by its two sides.
struct Tally {
    up: AtomicU64,
    down: AtomicU64,
    client_reset: AtomicBool,
    origin_reset: AtomicBool,
    metrics: Arc<Metrics>,
    /// The tunnel's entry among the requests in flight (the status page).
    transfer: Option<Arc<Transfer>>,
}

impl Tally {
    fn new(metrics: Arc<Metrics>, transfer: Option<Arc<Transfer>>) -> Arc<Tally> {
        Arc::new(Tally {
            up: AtomicU64::new(0),
            down: AtomicU64::new(0),
            client_reset: AtomicBool::new(false),
            origin_reset: AtomicBool::new(false),
            metrics,
            transfer,
        })
    }

    /// `n` bytes were written to `end`.
    fn wrote(&self, end: End, n: u64) {
        let up = end == End::Origin;
        let total = if up { &self.up } else { &self.down };
        total.fetch_add(n, Ordering::Relaxed);
        self.metrics.tunnel_bytes(up, n);
        if let Some(t) = &self.transfer {
            if up {
                t.up(n);
            } else {
                t.down(n);
            }
        }
    }

    /// `end` failed (a reset, typically).
    fn failed(&self, end: End) {
        let flag = match end {
            End::Client => &self.client_reset,
            End::Origin => &self.origin_reset,
        };
        flag.store(true, Ordering::Relaxed);
    }

    fn bytes(&self) -> TunnelBytes {
        TunnelBytes {
            up: self.up.load(Ordering::Relaxed),
            down: self.down.load(Ordering::Relaxed),
            client_reset: self.client_reset.load(Ordering::Relaxed),
            origin_reset: self.origin_reset.load(Ordering::Relaxed),
        }
    }
}

/// Which end of the tunnel a stream is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum End {
    Client,
    Origin,
}

/// Moves the tunnel's bytes between the client's upgraded connection and
/// the far side: spliced when both are TCP sockets of ours, else copied.
async fn carry(
    upgraded: hyper::upgrade::Upgraded,
    origin: TunnelStream,
    idle: Duration,
    tally: &Arc<Tally>,
) -> io::Result<()> {
    let mut origin = match origin {
        TunnelStream::Tcp(origin) => origin,
        TunnelStream::Parent(origin) => {
            return copied(TokioIo::new(upgraded), origin, idle, tally).await
        }
    };
    let parts = match upgraded.downcast::<ServedIo>() {
        Ok(parts) => parts,
        Err(upgraded) => return copied(TokioIo::new(upgraded), origin, idle, tally).await,
    };
    // What the client sent after its CONNECT head, before the 200: passed
    // on first, within the same idle bound as the rest.
    if !parts.read_buf.is_empty() {
        use tokio::io::AsyncWriteExt;
        let written = tokio::time::timeout(idle, origin.write_all(&parts.read_buf))
            .await
            .unwrap_or_else(|_| {
                Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "tunnel idle timeout",
                ))
            });
        written.inspect_err(|_| tally.failed(End::Origin))?;
        tally.wrote(End::Origin, parts.read_buf.len() as u64);
    }
    let client = parts.io.into_inner();
    #[cfg(target_os = "linux")]
    if let (Ok(up), Ok(down)) = (splice::Pipe::new(BUFFER), splice::Pipe::new(BUFFER)) {
        return spliced(client.get_ref(), &origin, (&up, &down), idle, tally).await;
    }
    copied(client, origin, idle, tally).await
}

/// Runs `work` until it ends, or fails it once nothing was read for `idle`
/// (`last`: milliseconds after `start` of the last read).
async fn until_idle<F>(work: F, idle: Duration, start: Instant, last: &AtomicU64) -> io::Result<()>
where
    F: std::future::Future<Output = io::Result<()>>,
{
    tokio::pin!(work);
    loop {
        let deadline = start + Duration::from_millis(last.load(Ordering::Relaxed)) + idle;
        tokio::select! {
            result = &mut work => return result,
            _ = tokio::time::sleep_until(deadline) => {
                let quiet = Instant::now() - start - Duration::from_millis(last.load(Ordering::Relaxed));
                if quiet >= idle {
                    return Err(io::Error::new(io::ErrorKind::TimedOut, "tunnel idle timeout"));
                }
            }
        }
    }
}

/// Splices both ways between two sockets until both directions reach EOF
/// (each passed on as a write shutdown) or nothing moves for `idle`.
#[cfg(target_os = "linux")]
async fn spliced<A, B>(
    client: &A,
    origin: &B,
    (up, down): (&splice::Pipe, &splice::Pipe),
    idle: Duration,
    tally: &Arc<Tally>,
) -> io::Result<()>
where
    A: splice::Socket,
    B: splice::Socket,
{
    let start = Instant::now();
    let last = AtomicU64::new(0);
    let read = || last.store(start.elapsed().as_millis() as u64, Ordering::Relaxed);
    let direction = |from: End, to: End, result: Result<(), splice::Failed>| {
        result.map_err(|failed| match failed {
            splice::Failed::Read(e) => {
                tally.failed(from);
                e
            }
            splice::Failed::Write(e) => {
                tally.failed(to);
                e
            }
        })
    };
    let client_to_origin = async {
        let wrote = |n| tally.wrote(End::Origin, n as u64);
        let result = splice::pump(client, origin, up, BUFFER, read, wrote).await;
        direction(End::Client, End::Origin, result)
    };
    let origin_to_client = async {
        let wrote = |n| tally.wrote(End::Client, n as u64);
        let result = splice::pump(origin, client, down, BUFFER, read, wrote).await;
        direction(End::Origin, End::Client, result)
    };
    let both = async { tokio::try_join!(client_to_origin, origin_to_client).map(drop) };
    until_idle(both, idle, start, &last).await
}

/// Copies both ways until both directions reach EOF (each EOF is passed on
/// as a write shutdown: half-close) or nothing moves for `idle`.
async fn copied<A, B>(client: A, origin: B, idle: Duration, tally: &Arc<Tally>) -> io::Result<()>
where
    A: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    let start = Instant::now();
    let last = Arc::new(AtomicU64::new(0));
    let mut client = Tracked::new(client, End::Client, start, last.clone(), tally.clone());
    let mut origin = Tracked::new(origin, End::Origin, start, last.clone(), tally.clone());
    // Large buffers: a tunnel moves bulk data, and each syscall costs more
    // than the memory (two 64 KiB buffers per open tunnel).
    let copy = tokio::io::copy_bidirectional_with_sizes(&mut client, &mut origin, BUFFER, BUFFER);
    until_idle(async { copy.await.map(drop) }, idle, start, &last).await
}

/// One end of a tunnel: records the time of its last successful read,
/// counts what is written to it, and notes an error (a reset) on it.
struct Tracked<T> {
    inner: T,
    end: End,
    start: Instant,
    last: Arc<AtomicU64>,
    tally: Arc<Tally>,
}

impl<T> Tracked<T> {
    fn new(inner: T, end: End, start: Instant, last: Arc<AtomicU64>, tally: Arc<Tally>) -> Self {
        Tracked {
            inner,
            end,
            start,
            last,
            tally,
        }
    }

    fn note<R>(&self, result: &Poll<io::Result<R>>) {
        if let Poll::Ready(Err(_)) = result {
            self.tally.failed(self.end);
        }
    }

    fn wrote(&self, result: &Poll<io::Result<usize>>) {
        if let Poll::Ready(Ok(n)) = result {
            self.tally.wrote(self.end, *n as u64);
        }
        self.note(result);
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Tracked<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            let ms = self.start.elapsed().as_millis() as u64;
            self.last.store(ms, Ordering::Relaxed);
        }
        self.note(&result);
        result
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Tracked<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.wrote(&result);
        result
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let result = Pin::new(&mut self.inner).poll_flush(cx);
        self.note(&result);
        result
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let result = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.note(&result);
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn half_close_passes_through_and_other_direction_continues() {
        let (client, mut client_peer) = tokio::io::duplex(1024);
        let (origin, mut origin_peer) = tokio::io::duplex(1024);
        let tally = Tally::new(Arc::new(Metrics::default()), None);
        let t = tally.clone();
        let task =
            tokio::spawn(async move { copied(client, origin, Duration::from_secs(5), &t).await });
        client_peer.write_all(b"ping").await.unwrap();
        client_peer.shutdown().await.unwrap();
        let mut got = Vec::new();
        origin_peer.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"ping");
        origin_peer.write_all(b"pong").await.unwrap();
        origin_peer.shutdown().await.unwrap();
        let mut back = Vec::new();
        client_peer.read_to_end(&mut back).await.unwrap();
        assert_eq!(back, b"pong");
        task.await.unwrap().unwrap();
        let bytes = tally.bytes();
        assert_eq!((bytes.up, bytes.down), (4, 4));
        assert!(!bytes.client_reset && !bytes.origin_reset);
    }

    #[tokio::test(start_paused = true)]
    async fn idle_tunnel_is_closed() {
        let (client, _keep_client) = tokio::io::duplex(64);
        let (origin, _keep_origin) = tokio::io::duplex(64);
        let tally = Tally::new(Arc::new(Metrics::default()), None);
        let err = copied(client, origin, Duration::from_secs(30), &tally)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    }
}
