//! The accept loop: bounded concurrent client connections, each served by
//! hyper's HTTP/1 server with upgrades (CONNECT) and our own header and idle
//! timers; on shutdown, stop accepting and drain within `timeouts.drain`.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::conn::{Activity, ClientIo};
use super::park::SharedStream;
use crate::pipeline;
use crate::shared::Proxy;

/// Binds a listening socket with a deep accept backlog (tokio's default of
/// 128 overflows when hundreds of clients connect at once, costing each
/// overflowed client a one-second SYN retransmission).
pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    bind_with(addr, false)
}

/// [`bind`], with `SO_REUSEPORT`: several sockets on one address, one per
/// serving thread (see `workers`).
pub fn bind_shared(addr: SocketAddr) -> std::io::Result<TcpListener> {
    bind_with(addr, true)
}

fn bind_with(addr: SocketAddr, reuse_port: bool) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    if reuse_port {
        socket.set_reuseport(true)?;
    }
    socket.bind(addr)?;
    socket.listen(4096)
}

/// Serves clients from `listener` until `shutdown` resolves, then drains.
pub async fn run<F>(listener: TcpListener, proxy: Arc<Proxy>, shutdown: F)
where
    F: Future<Output = ()>,
{
    let max = proxy.current().config.server.max_connections;
    run_with(listener, proxy, Arc::new(Semaphore::new(max)), shutdown).await;
}

/// [`run`], with the connection limit shared with other listeners.
pub async fn run_with<F>(
    listener: TcpListener,
    proxy: Arc<Proxy>,
    limit: Arc<Semaphore>,
    shutdown: F,
) where
    F: Future<Output = ()>,
{
    let connections = TaskTracker::new();
    let stopping = CancellationToken::new();
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            biased;
            _ = &mut shutdown => break,
            permit = limit.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let (stream, client) = tokio::select! {
            biased;
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Typically EMFILE: back off instead of spinning.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        connections.spawn(serve(
            stream,
            client,
            proxy.clone(),
            permit,
            stopping.clone(),
        ));
    }
    drop(listener);
    let drain = proxy.current().config.timeouts.drain;
    tracing::info!(
        connections = connections.len(),
        tunnels = proxy.tasks.len(),
        "shutting down; draining for up to {drain:?}"
    );
    stopping.cancel();
    connections.close();
    proxy.tasks.close();
    let all = async {
        connections.wait().await;
        proxy.tasks.wait().await;
    };
    if tokio::time::timeout(drain, all).await.is_err() {
        tracing::warn!(
            connections = connections.len(),
            tunnels = proxy.tasks.len(),
            "drain timeout reached; closing what is left"
        );
    }
}

/// The connection hyper serves: a CONNECT tunnel takes it back from
/// hyper's upgrade by this type (to splice its socket).
pub type ServedIo = TokioIo<ClientIo<SharedStream>>;

/// A connection idle this long is parked (hyper's buffers released).
const PARK_AFTER: Duration = Duration::from_millis(10);

/// Serves one client connection until it closes, times out, or drains:
/// hyper serves it while requests come; between bursts it is parked.
async fn serve(
    stream: TcpStream,
    client: SocketAddr,
    proxy: Arc<Proxy>,
    _permit: OwnedSemaphorePermit,
    stopping: CancellationToken,
) {
    let _ = stream.set_nodelay(true);
    let config = proxy.current().config.clone();
    let metrics = proxy.metrics.clone();
    metrics
        .client_connections
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let _open = scopeguard(metrics);
    let stream = SharedStream::new(stream);
    let activity = Activity::new();
    let (header, idle) = (config.timeouts.client_header, config.timeouts.client_idle);
    loop {
        // Parked: only the socket is held until the client sends again.
        tokio::select! {
            more = stream.next_bytes() => if !more { return },
            expiry = activity.expired(header, idle) => {
                tracing::debug!(%client, ?expiry, "closing client connection");
                return;
            }
            _ = stopping.cancelled() => return,
        }
        activity.unpark();
        let served = Box::pin(serve_until_idle(
            stream.clone(),
            client,
            proxy.clone(),
            activity.clone(),
            stopping.clone(),
        ));
        if served.await == Served::Closed {
            return;
        }
    }
}

/// How a stretch of hyper serving a connection ended.
#[derive(Debug, PartialEq, Eq)]
enum Served {
    /// Idle and handed back cleanly: wait for the next request.
    Parked,
    /// Closed, failed, timed out, drained or turned into a tunnel.
    Closed,
}

async fn serve_until_idle(
    stream: SharedStream,
    client: SocketAddr,
    proxy: Arc<Proxy>,
    activity: Arc<Activity>,
    stopping: CancellationToken,
) -> Served {
    let config = proxy.current().config.clone();
    let io: ServedIo = TokioIo::new(ClientIo::new(stream, activity.clone()));
    let service_activity = activity.clone();
    let service = service_fn(move |request: http::Request<hyper::body::Incoming>| {
        let proxy = proxy.clone();
        let activity = service_activity.clone();
        let in_flight = activity.request_started();
        let connect = request.method() == http::Method::CONNECT;
        async move {
            // The request stays in flight until its response is delivered.
            let wire = activity.wire.clone();
            let response = pipeline::handle(proxy, client, request, wire, in_flight).await;
            if connect && response.status().is_success() {
                activity.mark_upgraded();
            }
            Ok::<_, Infallible>(response)
        }
    });
    let header_limit = config.server.max_request_header_size.as_u64() as usize;
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        // A client that sends its request and shuts its side (curl, many
        // scripts) still gets the answer (RFC 9112 §9.6 allows half-close).
        .half_close(true)
        .max_header_size(header_limit)
        .max_buf_size(header_limit.max(400 * 1024) + 8192);
    let conn = builder.serve_connection(io, service).with_upgrades();
    tokio::pin!(conn);
    let (header, idle) = (config.timeouts.client_header, config.timeouts.client_idle);
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(e) = &result {
                tracing::debug!(%client, "client connection ended: {e}");
            }
            return Served::Closed;
        }
        expiry = activity.expired(header, idle) => {
            tracing::debug!(%client, ?expiry, "closing client connection");
            return Served::Closed;
        }
        _ = activity.park_ready(PARK_AFTER) => {
            activity.park();
            // hyper sees end-of-file while idle and finishes at once; an
            // error means it held part of a next request: close instead.
            return match tokio::time::timeout(Duration::from_secs(1), conn.as_mut()).await {
                Ok(Ok(())) if !activity.is_upgraded() => Served::Parked,
                _ => Served::Closed,
            };
        }
        _ = stopping.cancelled() => conn.as_mut().graceful_shutdown(),
    }
    // Draining: finish what is in flight, still bounded by the timers.
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = activity.expired(header, idle) => {}
    }
    Served::Closed
}

/// Decrements the open-connections gauge when the connection task ends.
struct OpenConnection(Arc<crate::metrics::Metrics>);

fn scopeguard(metrics: Arc<crate::metrics::Metrics>) -> OpenConnection {
    OpenConnection(metrics)
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0
            .client_connections
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}
