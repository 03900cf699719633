//! The way to origins: TCP connect to resolved or pinned addresses with a
//! deadline (Happy Eyeballs across several), a pooled keep-alive HTTP/1.1
//! client over them, the refusal of this proxy's own sockets (loops), and
//! the classification of every failure into a [`ProxyError`]. Owns all
//! outbound sockets; names go through `dns`.

use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::{request, Request, Response, Uri};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpStream;

use crate::config::Config;
use crate::dns::{DnsError, Resolver};
use crate::error::ProxyError;
use crate::http::body::Body;

/// The address an upstream connection actually reached (response extension).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpstreamPeer(pub SocketAddr);

/// How a request finds its origin's address, as the access rules left it.
#[derive(Debug, Clone)]
pub enum Connect {
    /// The rules needed no address: the name is resolved when a connection
    /// is opened (through the resolver cache), never for a cache hit.
    ByName,
    /// The addresses the rules admitted, in the order to try them: a later
    /// DNS answer cannot send the request elsewhere (DNS rebinding).
    Pinned(Arc<[SocketAddr]>),
    /// The rules needed an address and the name did not resolve: a request
    /// that must reach the origin fails with this (a cache hit is served).
    Unresolved(DnsError),
}

/// Why a connection to an origin could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("cannot resolve {0}")]
    Dns(DnsError),
    #[error("connection to {0} refused")]
    Refused(String),
    #[error("timed out connecting to {0}")]
    Timeout(String),
    #[error("cannot connect to {0}: {1}")]
    Other(String, io::Error),
    /// The address is this proxy's own listening socket.
    #[error("{0} is this proxy")]
    Loop(SocketAddr),
    /// The address is the admin listener.
    #[error("{0} is the admin listener")]
    Admin(SocketAddr),
}

impl ConnectError {
    /// Failed before any byte was sent, fast: another address may work.
    fn try_next(&self) -> bool {
        matches!(self, ConnectError::Refused(_) | ConnectError::Other(..))
    }
}

/// This proxy's own sockets: connecting to them would loop (the listener)
/// or reach what clients must not (the admin listener).
#[derive(Debug, Clone, Copy)]
pub struct LocalSockets {
    pub listen: SocketAddr,
    pub admin: Option<SocketAddr>,
}

impl LocalSockets {
    fn refuse(&self, addr: SocketAddr) -> Option<ConnectError> {
        if self.admin.is_some_and(|admin| same_socket(addr, admin)) {
            return Some(ConnectError::Admin(addr));
        }
        same_socket(addr, self.listen).then_some(ConnectError::Loop(addr))
    }
}

/// Whether connecting to `addr` reaches the socket listening on `listen`.
fn same_socket(addr: SocketAddr, listen: SocketAddr) -> bool {
    let ip = addr.ip().to_canonical();
    if addr.port() != listen.port() {
        return false;
    }
    let own = listen.ip().to_canonical();
    ip == own || (own.is_unspecified() && (ip.is_loopback() || ip.is_unspecified()))
}

/// Maps a connect failure to the request's error; `name` is our pseudonym.
fn connect_error(e: &ConnectError, name: &str) -> ProxyError {
    match e {
        ConnectError::Dns(d) => ProxyError::Dns(d.to_string()),
        ConnectError::Refused(h) => ProxyError::ConnectRefused(h.clone()),
        ConnectError::Timeout(h) => ProxyError::ConnectTimeout(h.clone()),
        ConnectError::Other(h, e) => ProxyError::ConnectFailed(h.clone(), e.to_string()),
        ConnectError::Loop(_) => {
            ProxyError::Loop(format!("{name} (the destination is this proxy)"))
        }
        ConnectError::Admin(_) => {
            ProxyError::Denied("the admin listener (not reachable through the proxy)".into())
        }
    }
}

/// RFC 8305 §5: the next address is tried when the previous attempt has
/// neither succeeded nor failed within this delay.
const STAGGER: Duration = Duration::from_millis(250);

/// Connects to the first of `addrs` that accepts, Happy-Eyeballs style
/// (attempts started `STAGGER` apart, or as soon as one fails), refusing
/// this proxy's own sockets, all within `deadline`.
pub async fn connect_any(
    addrs: &[SocketAddr],
    local: &LocalSockets,
    deadline: Duration,
) -> Result<(TcpStream, SocketAddr), ConnectError> {
    let mut refused = None;
    let allowed: Vec<SocketAddr> = addrs
        .iter()
        .copied()
        .filter(|a| match local.refuse(*a) {
            Some(e) => {
                refused.get_or_insert(e);
                false
            }
            None => true,
        })
        .collect();
    let label = match addrs.first() {
        Some(a) => a.to_string(),
        None => String::new(),
    };
    let Some(&first) = allowed.first() else {
        return Err(refused.unwrap_or(ConnectError::Refused(label)));
    };
    let attempt = async {
        if allowed.len() == 1 {
            return TcpStream::connect(first).await.map(|s| (s, first));
        }
        race(&allowed).await
    };
    match tokio::time::timeout(deadline, attempt).await {
        Ok(Ok((stream, addr))) => {
            // Latency matters more than packet count for a proxy.
            let _ = stream.set_nodelay(true);
            Ok((stream, addr))
        }
        Ok(Err(e)) if e.kind() == io::ErrorKind::ConnectionRefused => {
            Err(ConnectError::Refused(label))
        }
        Ok(Err(e)) => Err(ConnectError::Other(label, e)),
        Err(_) => Err(ConnectError::Timeout(label)),
    }
}

/// Races connection attempts to several addresses (RFC 8305 §5).
async fn race(addrs: &[SocketAddr]) -> io::Result<(TcpStream, SocketAddr)> {
    let mut attempts = tokio::task::JoinSet::new();
    let mut next = addrs.iter().copied();
    let mut last = io::Error::new(io::ErrorKind::NotFound, "no address");
    let start = |set: &mut tokio::task::JoinSet<_>, next: &mut dyn Iterator<Item = SocketAddr>| {
        next.next().map(|a| {
            set.spawn(async move { TcpStream::connect(a).await.map(|s| (s, a)) });
        })
    };
    start(&mut attempts, &mut next);
    loop {
        tokio::select! {
            done = attempts.join_next() => match done {
                Some(Ok(Ok(found))) => return Ok(found),
                Some(Ok(Err(e))) => {
                    last = e;
                    if start(&mut attempts, &mut next).is_none() && attempts.is_empty() {
                        return Err(last);
                    }
                }
                Some(Err(e)) => last = io::Error::other(e.to_string()),
                None => return Err(last),
            },
            () = tokio::time::sleep(STAGGER) => {
                start(&mut attempts, &mut next);
            }
        }
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

/// The connector the pooled client uses: it connects to the address the
/// URI names, always an IP literal (names are resolved before, in
/// [`Upstream::send`]), so that the pool is keyed by address: a request
/// never reuses a connection made to an address its rules did not admit,
/// and a changed DNS answer is seen as soon as its TTL is over.
#[derive(Clone)]
pub struct Connector {
    timeout: Duration,
    local: LocalSockets,
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
            })
        })
    }
}

/// Pooled HTTP/1.1 client to origins, with the configured deadlines.
#[derive(Clone)]
pub struct Upstream {
    client: Client<Connector, Body>,
    connector: Connector,
    dns: Arc<Resolver>,
    response_timeout: Duration,
    name: String,
}

impl Upstream {
    /// Builds the client from the `[timeouts]` section.
    pub fn new(config: &Config, dns: Arc<Resolver>, local: LocalSockets) -> Upstream {
        let t = &config.timeouts;
        let connector = Connector {
            timeout: t.upstream_connect,
            local,
        };
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .pool_idle_timeout(t.upstream_idle)
            .pool_max_idle_per_host(64)
            .build(connector.clone());
        Upstream {
            client,
            connector,
            dns,
            response_timeout: t.upstream_response,
            name: config.server.name.clone(),
        }
    }

    /// The addresses to try for `host:port`, as `connect` says.
    async fn addresses(
        &self,
        connect: &Connect,
        host: &str,
        port: u16,
    ) -> Result<Arc<[SocketAddr]>, ProxyError> {
        match connect {
            Connect::Pinned(addrs) => Ok(addrs.clone()),
            Connect::Unresolved(e) => Err(ProxyError::Dns(e.to_string())),
            Connect::ByName => {
                if let Ok(ip) = host.parse::<IpAddr>() {
                    return Ok(vec![SocketAddr::new(ip, port)].into());
                }
                let resolved = self
                    .dns
                    .lookup(host)
                    .await
                    .map_err(|e| ProxyError::Dns(e.to_string()))?;
                Ok(resolved
                    .addrs
                    .iter()
                    .map(|ip| SocketAddr::new(*ip, port))
                    .collect())
            }
        }
    }

    /// Opens a raw TCP connection for a CONNECT tunnel to `host:port`, as
    /// `connect` says (Happy Eyeballs across the addresses); returns the
    /// address reached.
    pub async fn connect(
        &self,
        connect: &Connect,
        host: &str,
        port: u16,
    ) -> Result<(TcpStream, SocketAddr), ProxyError> {
        let addrs = self.addresses(connect, host, port).await?;
        connect_any(&addrs, &self.connector.local, self.connector.timeout)
            .await
            .map_err(|e| connect_error(&e, &self.name))
    }

    /// Sends a request head and body to `host:port`, as `connect` says,
    /// and waits for the response head. A request without a body whose
    /// connection to one address fails at once is sent to the next one.
    pub async fn send(
        &self,
        connect: &Connect,
        (host, port): (&str, u16),
        parts: request::Parts,
        body: Body,
    ) -> Result<Response<Incoming>, ProxyError> {
        let path = parts
            .uri
            .path_and_query()
            .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned());
        let uri = |authority: &dyn std::fmt::Display| -> Result<Uri, ProxyError> {
            format!("http://{authority}{path}")
                .parse()
                .map_err(|_| ProxyError::BadTarget(format!("{authority}{path}")))
        };
        let addrs = self.addresses(connect, host, port).await?;
        let replayable = http_body::Body::is_end_stream(&body);
        let mut body = Some(body);
        for (i, addr) in addrs.iter().enumerate() {
            let last = i + 1 == addrs.len() || !replayable;
            let mut head = Request::new(());
            *head.method_mut() = parts.method.clone();
            *head.version_mut() = parts.version;
            *head.headers_mut() = parts.headers.clone();
            *head.uri_mut() = uri(addr)?;
            let b = match (last, body.take()) {
                (true, Some(b)) => b,
                (false, b) => {
                    body = b;
                    crate::http::body::empty()
                }
                (true, None) => crate::http::body::empty(),
            };
            let (result, retry) = self.send_once(head.map(|()| b)).await;
            if last || !retry {
                return result;
            }
            tracing::debug!(%addr, "origin address failed; trying the next one");
        }
        Err(ProxyError::Internal("no address to send to".into()))
    }

    /// One attempt; also says whether the failure was a fast connect
    /// failure, so that another address may be tried.
    async fn send_once(
        &self,
        request: Request<Body>,
    ) -> (Result<Response<Incoming>, ProxyError>, bool) {
        let label = request
            .uri()
            .authority()
            .map(|a| a.to_string())
            .unwrap_or_default();
        match tokio::time::timeout(self.response_timeout, self.client.request(request)).await {
            Err(_) => (Err(ProxyError::ResponseTimeout(label)), false),
            Ok(Ok(response)) => (Ok(response), false),
            Ok(Err(e)) => {
                let connect = find_connect_error(&e);
                let retry = connect.is_some_and(ConnectError::try_next);
                let error = match connect {
                    Some(c) => connect_error(c, &self.name),
                    None if e.is_connect() => ProxyError::ConnectFailed(label, e.to_string()),
                    None => ProxyError::UpstreamReset(label),
                };
                (Err(error), retry)
            }
        }
    }
}

/// The connect failure behind a client error, found by type, never by text.
fn find_connect_error(error: &hyper_util::client::legacy::Error) -> Option<&ConnectError> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if let Some(connect) = e.downcast_ref::<ConnectError>() {
            return Some(connect);
        }
        source = e.source();
    }
    None
}
