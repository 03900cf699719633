//! The way to origins: name resolution and TCP connect with a deadline,
//! a pooled keep-alive HTTP/1.1 client over them, and the classification of
//! every failure into a [`ProxyError`]. Owns all outbound sockets.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use http::{Request, Response, Uri};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpStream;

use crate::config::Config;
use crate::error::ProxyError;
use crate::http::body::Body;

/// The address an upstream connection actually reached (response extension).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpstreamPeer(pub SocketAddr);

/// Why a connection to an origin could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("cannot resolve {0}")]
    Dns(String),
    #[error("connection to {0} refused")]
    Refused(String),
    #[error("timed out connecting to {0}")]
    Timeout(String),
    #[error("cannot connect to {0}: {1}")]
    Other(String, io::Error),
}

impl From<&ConnectError> for ProxyError {
    fn from(e: &ConnectError) -> Self {
        match e {
            ConnectError::Dns(h) => ProxyError::Dns(h.clone()),
            ConnectError::Refused(h) => ProxyError::ConnectRefused(h.clone()),
            ConnectError::Timeout(h) => ProxyError::ConnectTimeout(h.clone()),
            ConnectError::Other(h, e) => ProxyError::ConnectFailed(h.clone(), e.to_string()),
        }
    }
}

impl From<ConnectError> for ProxyError {
    fn from(e: ConnectError) -> Self {
        ProxyError::from(&e)
    }
}

/// Resolves `host` and connects to the first address that accepts, all
/// within `deadline`. `host` is a name or an IP literal (IPv6 unbracketed).
pub async fn connect_tcp(
    host: &str,
    port: u16,
    deadline: Duration,
) -> Result<(TcpStream, SocketAddr), ConnectError> {
    let label = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let attempt = async {
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
            .await
            .map_err(|_| ConnectError::Dns(host.to_owned()))?
            .collect();
        if addrs.is_empty() {
            return Err(ConnectError::Dns(host.to_owned()));
        }
        let mut last = None;
        for addr in addrs {
            match TcpStream::connect(addr).await {
                Ok(stream) => {
                    // Latency matters more than packet count for a proxy.
                    let _ = stream.set_nodelay(true);
                    return Ok((stream, addr));
                }
                Err(e) => last = Some(e),
            }
        }
        Err(match last {
            Some(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                ConnectError::Refused(label.clone())
            }
            Some(e) => ConnectError::Other(label.clone(), e),
            None => ConnectError::Dns(host.to_owned()),
        })
    };
    match tokio::time::timeout(deadline, attempt).await {
        Ok(result) => result,
        Err(_) => Err(ConnectError::Timeout(label)),
    }
}

/// A connected origin socket that tells the pool which peer it reached.
pub struct UpstreamStream {
    io: TokioIo<TcpStream>,
    peer: SocketAddr,
}

impl Connection for UpstreamStream {
    fn connected(&self) -> Connected {
        Connected::new().extra(UpstreamPeer(self.peer))
    }
}

impl hyper::rt::Read for UpstreamStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for UpstreamStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

/// The connector the pooled client uses: [`connect_tcp`] as a tower service.
#[derive(Clone)]
pub struct Connector {
    timeout: Duration,
}

impl tower_service::Service<Uri> for Connector {
    type Response = UpstreamStream;
    type Error = ConnectError;
    type Future = Pin<Box<dyn Future<Output = Result<UpstreamStream, ConnectError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let timeout = self.timeout;
        Box::pin(async move {
            let host = uri
                .host()
                .map(|h| h.trim_start_matches('[').trim_end_matches(']').to_owned())
                .unwrap_or_default();
            let port = uri.port_u16().unwrap_or(80);
            let (stream, peer) = connect_tcp(&host, port, timeout).await?;
            Ok(UpstreamStream {
                io: TokioIo::new(stream),
                peer,
            })
        })
    }
}

/// Pooled HTTP/1.1 client to origins, with the configured deadlines.
#[derive(Clone)]
pub struct Upstream {
    client: Client<Connector, Body>,
    connect_timeout: Duration,
    response_timeout: Duration,
}

impl Upstream {
    /// Builds the client from the `[timeouts]` section.
    pub fn new(config: &Config) -> Upstream {
        let t = &config.timeouts;
        let connector = Connector {
            timeout: t.upstream_connect,
        };
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .pool_idle_timeout(t.upstream_idle)
            .pool_max_idle_per_host(64)
            .build(connector);
        Upstream {
            client,
            connect_timeout: t.upstream_connect,
            response_timeout: t.upstream_response,
        }
    }

    /// Resolves a destination within the connect deadline; IPv4 first, so
    /// that hosts without IPv6 routes still reach dual-stack origins.
    pub async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, ProxyError> {
        let lookup = tokio::net::lookup_host((host, port));
        let mut addrs: Vec<SocketAddr> =
            match tokio::time::timeout(self.connect_timeout, lookup).await {
                Err(_) => return Err(ProxyError::ConnectTimeout(host.to_owned())),
                Ok(Err(_)) => return Err(ProxyError::Dns(host.to_owned())),
                Ok(Ok(addrs)) => addrs.collect(),
            };
        if addrs.is_empty() {
            return Err(ProxyError::Dns(host.to_owned()));
        }
        addrs.sort_by_key(|a| a.is_ipv6());
        Ok(addrs)
    }

    /// Opens a raw TCP connection to an admitted address (CONNECT tunnels).
    pub async fn connect(&self, addr: SocketAddr) -> Result<TcpStream, ProxyError> {
        let host = addr.ip().to_string();
        Ok(connect_tcp(&host, addr.port(), self.connect_timeout)
            .await?
            .0)
    }

    /// Sends a request (absolute URI) and waits for the response head.
    pub async fn send(&self, request: Request<Body>) -> Result<Response<Incoming>, ProxyError> {
        let label = request
            .uri()
            .authority()
            .map(|a| a.to_string())
            .unwrap_or_default();
        match tokio::time::timeout(self.response_timeout, self.client.request(request)).await {
            Err(_) => Err(ProxyError::ResponseTimeout(label)),
            Ok(Ok(response)) => Ok(response),
            Ok(Err(e)) => Err(classify(&e, label)),
        }
    }
}

/// Maps a client error to the failure it stands for, by type, never by text.
fn classify(error: &hyper_util::client::legacy::Error, label: String) -> ProxyError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if let Some(connect) = e.downcast_ref::<ConnectError>() {
            return ProxyError::from(connect);
        }
        source = e.source();
    }
    if error.is_connect() {
        return ProxyError::ConnectFailed(label, error.to_string());
    }
    ProxyError::UpstreamReset(label)
}
