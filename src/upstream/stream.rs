//! The sockets the pooled clients use: a TCP stream that tells the pool
//! which peer it reached (and whether it is a parent proxy, so that hyper
//! keeps the absolute-form target), and the connectors that open them.

use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::Uri;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::connect::{connect_any, ConnectError, LocalSockets};
use super::UpstreamPeer;
use crate::dns::Resolver;

/// A connected origin socket that tells the pool which peer it reached.
pub struct UpstreamStream {
    io: TokioIo<TcpStream>,
    peer: SocketAddr,
    /// A parent proxy: requests keep their absolute-form target.
    proxied: bool,
}

impl Connection for UpstreamStream {
    fn connected(&self) -> Connected {
        Connected::new().proxy(self.proxied).extra(UpstreamPeer {
            addr: self.peer,
            parent: self.proxied,
        })
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

/// The connector the pooled client uses: it connects to the address the
/// URI names, always an IP literal (names are resolved before, in
/// [`Upstream::send`]), so that the pool is keyed by address: a request
/// never reuses a connection made to an address its rules did not admit,
/// and a changed DNS answer is seen as soon as its TTL is over.
#[derive(Clone)]
pub struct Connector {
    pub timeout: Duration,
    pub local: LocalSockets,
}

impl tower_service::Service<Uri> for Connector {
    type Response = UpstreamStream;
    type Error = ConnectError;
    type Future = Pin<Box<dyn Future<Output = Result<UpstreamStream, ConnectError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            let host = uri
                .host()
                .map(|h| h.trim_start_matches('[').trim_end_matches(']'))
                .unwrap_or_default();
            let port = uri.port_u16().unwrap_or(80);
            let ip: IpAddr = host.parse().map_err(|_| {
                ConnectError::Other(
                    host.to_owned(),
                    io::Error::new(io::ErrorKind::InvalidInput, "not an address"),
                )
            })?;
            let addrs = [SocketAddr::new(ip, port)];
            let (stream, peer) = connect_any(&addrs, &this.local, this.timeout).await?;
            Ok(UpstreamStream {
                io: TokioIo::new(stream),
                peer,
                proxied: false,
            })
        })
    }
}

/// The connector of one parent proxy's client: whatever the URI (the
/// origin's, kept in absolute form), it connects to the parent. The pool
/// keys connections by origin, so each stays with the origin it served.
#[derive(Clone)]
pub struct ParentConnector {
    pub host: String,
    pub port: u16,
    pub timeout: Duration,
    pub dns: Arc<Resolver>,
    pub local: LocalSockets,
}

impl ParentConnector {
    /// Connects to the parent (its name resolved through the cache).
    pub async fn open(&self) -> Result<(TcpStream, SocketAddr), ConnectError> {
        let addrs = self
            .dns
            .socket_addrs(&self.host, self.port)
            .await
            .map_err(ConnectError::Dns)?;
        connect_any(&addrs, &self.local, self.timeout).await
    }
}

impl tower_service::Service<Uri> for ParentConnector {
    type Response = UpstreamStream;
    type Error = ConnectError;
    type Future = Pin<Box<dyn Future<Output = Result<UpstreamStream, ConnectError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _origin: Uri) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            let (stream, peer) = this.open().await?;
            Ok(UpstreamStream {
                io: TokioIo::new(stream),
                peer,
                proxied: true,
            })
        })
    }
}
