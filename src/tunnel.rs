//! CONNECT tunnels: open a TCP connection to the admitted address, answer
//! `200 Connection established`, then copy bytes both ways until both sides
//! are done (half-close respected) or the tunnel sits idle too long.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;
use tokio_util::task::TaskTracker;

use crate::error::ProxyError;
use crate::exchange::Exchange;
use crate::http::body::{empty, Body};
use crate::http::target::{Authority, Host};
use crate::http::via;
use crate::metrics::Metrics;
use crate::shared::Shared;
use crate::upstream::Connect;

/// Bytes buffered per direction of a tunnel.
const BUFFER: usize = 64 * 1024;

/// Opens the tunnel's origin side and schedules the splice once hyper hands
/// over the client connection.
pub async fn open(
    shared: &Shared,
    tasks: &TaskTracker,
    metrics: &Arc<Metrics>,
    request: Request<Incoming>,
    destination: (&Authority, &Connect),
    exchange: &mut Exchange,
) -> Result<Response<Body>, ProxyError> {
    let config = &shared.config;
    if via::contains(request.headers(), &config.server.name) {
        return Err(ProxyError::Loop(config.server.name.clone()));
    }
    exchange.result = "TCP_TUNNEL";
    let (authority, connect) = destination;
    let host = match &authority.host {
        Host::Domain(name) => name.clone(),
        Host::Ip(ip) => ip.to_string(),
    };
    let (origin, peer) = shared
        .upstream
        .connect(connect, &host, authority.port)
        .await?;
    exchange.peer = Some(peer);
    let idle = config.timeouts.tunnel_idle;
    let metrics = metrics.clone();
    tasks.spawn(async move {
        metrics
            .tunnels
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        match hyper::upgrade::on(request).await {
            Ok(upgraded) => match splice(TokioIo::new(upgraded), origin, idle).await {
                Ok((up, down)) => tracing::debug!(%peer, up, down, "tunnel closed"),
                Err(e) => tracing::debug!(%peer, "tunnel ended: {e}"),
            },
            Err(e) => tracing::debug!(%peer, "client left before the tunnel opened: {e}"),
        }
        metrics
            .tunnels
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    });
    let mut response = Response::new(empty());
    *response.status_mut() = StatusCode::OK;
    response
        .extensions_mut()
        .insert(hyper::ext::ReasonPhrase::from_static(
            b"Connection established",
        ));
    Ok(response)
}

/// Copies both ways until both directions reach EOF (each EOF is passed on
/// as a write shutdown: half-close) or nothing moves for `idle`.
async fn splice<A, B>(client: A, origin: B, idle: Duration) -> io::Result<(u64, u64)>
where
    A: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    let start = Instant::now();
    let last = Arc::new(AtomicU64::new(0));
    let mut client = Tracked::new(client, start, last.clone());
    let mut origin = Tracked::new(origin, start, last.clone());
    // Large buffers: a tunnel moves bulk data, and each syscall costs more
    // than the memory (two 64 KiB buffers per open tunnel).
    let copy = tokio::io::copy_bidirectional_with_sizes(&mut client, &mut origin, BUFFER, BUFFER);
    tokio::pin!(copy);
    loop {
        let deadline = start + Duration::from_millis(last.load(Ordering::Relaxed)) + idle;
        tokio::select! {
            result = &mut copy => return result,
            _ = tokio::time::sleep_until(deadline) => {
                let quiet = Instant::now() - start - Duration::from_millis(last.load(Ordering::Relaxed));
                if quiet >= idle {
                    return Err(io::Error::new(io::ErrorKind::TimedOut, "tunnel idle timeout"));
                }
            }
        }
    }
}

/// A stream that records the time of its last successful read.
struct Tracked<T> {
    inner: T,
    start: Instant,
    last: Arc<AtomicU64>,
}

impl<T> Tracked<T> {
    fn new(inner: T, start: Instant, last: Arc<AtomicU64>) -> Self {
        Tracked { inner, start, last }
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
        result
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Tracked<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
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
        let task = tokio::spawn(splice(client, origin, Duration::from_secs(5)));
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
        assert_eq!(task.await.unwrap().unwrap(), (4, 4));
    }

    #[tokio::test(start_paused = true)]
    async fn idle_tunnel_is_closed() {
        let (client, _keep_client) = tokio::io::duplex(64);
        let (origin, _keep_origin) = tokio::io::duplex(64);
        let err = splice(client, origin, Duration::from_secs(30))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    }
}
