//! The way to origins: TCP connect to resolved or pinned addresses with a
//! deadline (Happy Eyeballs across several), a pooled keep-alive HTTP/1.1
//! client over them, the refusal of this proxy's own sockets (loops), and
//! the classification of every failure into a [`ProxyError`]. Owns all
//! outbound sockets; names go through `dns`.

mod connect;
mod idle;
mod pool;
mod stream;
mod via_parent;

use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{request, Request, Response};
use tokio::time::Instant;

use self::connect::connect_error;
pub use self::connect::{connect_any, ConnectError, LocalSockets};
pub use self::idle::{IdleTimeout, OriginBody, Stalled};
use self::pool::{Conn, Key, Pool, PooledBody};
use self::stream::{Connector, ParentConnector};
pub use self::via_parent::TunnelStream;
use crate::config::Config;
use crate::dns::{DnsError, Resolver};
use crate::error::ProxyError;
use crate::http::body::Body;
use crate::parent::Parents;

/// The address an upstream connection actually reached (response extension).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpstreamPeer {
    pub addr: SocketAddr,
    /// A parent proxy, not the origin.
    pub parent: bool,
}

/// How a request finds its origin's address, as the access rules left it.
#[derive(Debug, Clone)]
pub enum Connect {
    /// The rules needed no address: the name is resolved when a connection
    /// is opened (through the resolver cache), never for a cache hit.
    ByName,
    /// The one address the rules admitted (an IP literal, or a name with
    /// one admitted address): a later DNS answer cannot send the request
    /// elsewhere (DNS rebinding). Kept apart from `Pinned` so that the
    /// common case, decided for every request hits included, allocates
    /// nothing.
    Address(SocketAddr),
    /// The addresses the rules admitted, in the order to try them.
    Pinned(Arc<[SocketAddr]>),
    /// The rules needed an address and the name did not resolve: a request
    /// that must reach the origin fails with this (a cache hit is served).
    Unresolved(DnsError),
}

/// What went wrong with one attempt, for the choice of the next one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    /// Not a connect failure (or no failure): do not try elsewhere.
    Final,
    /// The connection could not be opened: nothing was sent.
    Connect {
        /// Refused or unreachable at once (not a timeout).
        fast: bool,
    },
}

/// Pooled keep-alive HTTP/1.1 connections to origins and parent proxies.
#[derive(Clone)]
pub struct Upstream {
    pool: Pool,
    connector: Connector,
    /// `via_parent[i]` opens connections to `parents.list[i]`.
    via_parent: Vec<ParentConnector>,
    parents: Arc<Parents>,
    dns: Arc<Resolver>,
    response_timeout: Duration,
    body_timeout: Duration,
    name: String,
}

impl Upstream {
    /// Builds the clients from the `[timeouts]` section and the parents.
    pub fn new(
        config: &Config,
        dns: Arc<Resolver>,
        local: LocalSockets,
        parents: Arc<Parents>,
    ) -> Upstream {
        let t = &config.timeouts;
        let connector = Connector {
            timeout: t.upstream_connect,
            local,
        };
        let via_parent = parents
            .list
            .iter()
            .map(|p| ParentConnector {
                host: p.host.clone(),
                port: p.port,
                timeout: t.upstream_connect,
                dns: dns.clone(),
                local,
            })
            .collect();
        Upstream {
            pool: Pool::new(t.upstream_idle),
            connector,
            via_parent,
            parents,
            dns,
            response_timeout: t.upstream_response,
            body_timeout: t.upstream_body,
            name: config.server.name.clone(),
        }
    }

    /// The addresses to try for `host:port`, as `connect` says: borrowed
    /// from it when the rules fixed them (nothing allocated per request).
    async fn addresses<'a>(
        &self,
        connect: &'a Connect,
        host: &str,
        port: u16,
    ) -> Result<Cow<'a, [SocketAddr]>, ProxyError> {
        match connect {
            Connect::Address(addr) => Ok(Cow::Borrowed(std::slice::from_ref(addr))),
            Connect::Pinned(addrs) => Ok(Cow::Borrowed(addrs)),
            Connect::Unresolved(e) => Err(ProxyError::Dns(e.to_string())),
            Connect::ByName => Ok(Cow::Owned(
                self.dns
                    .socket_addrs(host, port)
                    .await
                    .map_err(|e| ProxyError::Dns(e.to_string()))?,
            )),
        }
    }

    /// Notes that a parent failed: skipped for `parents.down_for`.
    fn parent_failed(&self, index: usize, error: &ProxyError) {
        let Some(parent) = self.parents.list.get(index) else {
            return;
        };
        let now = Instant::now();
        if parent.mark_down((now + self.parents.down_for()).into_std(), now.into_std()) {
            tracing::warn!(
                parent = %parent.name,
                "parent proxy failed ({error}); its share goes to the others for {:?}",
                self.parents.down_for()
            );
        }
    }

    /// Opens a CONNECT tunnel's far side to `host:port`: through a parent
    /// (chosen by the same hashing, `CONNECT` sent to it), or a direct TCP
    /// connection as `connect` says (Happy Eyeballs across the addresses).
    /// Returns the stream and the address of the peer reached.
    pub async fn connect(
        &self,
        connect: &Connect,
        host: &str,
        port: u16,
    ) -> Result<(TunnelStream, UpstreamPeer), ProxyError> {
        let authority = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        let plan = self
            .parents
            .plan(&authority, host, Instant::now().into_std());
        let mut last = None;
        for &i in &plan.parents {
            let (Some(parent), Some(connector)) =
                (self.parents.list.get(i), self.via_parent.get(i))
            else {
                continue;
            };
            let opened =
                via_parent::open(parent, connector, &authority, self.response_timeout).await;
            match opened {
                Ok((stream, addr)) => return Ok((stream, UpstreamPeer { addr, parent: true })),
                Err((error, Failure::Connect { .. })) => {
                    let error = connect_error(&error, &self.name);
                    self.parent_failed(i, &error);
                    last = Some(error);
                }
                Err((error, Failure::Final)) => return Err(connect_error(&error, &self.name)),
            }
        }
        if !plan.direct {
            return Err(no_parent(last));
        }
        let addrs = self.addresses(connect, host, port).await?;
        let (stream, peer) = connect_any(&addrs, &self.connector.local, self.connector.timeout)
            .await
            .map_err(|e| connect_error(&e, &self.name))?;
        Ok((
            TunnelStream::Tcp(stream),
            UpstreamPeer {
                addr: peer,
                parent: false,
            },
        ))
    }

    /// Sends a request head (absolute URI) and body to `host:port` and
    /// waits for the response head: through the URL's parents when there
    /// are any, else (or when they fail and going direct is allowed) to
    /// the origin as `connect` says. A request without a body whose
    /// connection fails is sent to the next parent or address.
    pub async fn send(
        &self,
        connect: &Connect,
        (host, port): (&str, u16),
        parts: request::Parts,
        body: Body,
    ) -> Result<Response<OriginBody>, ProxyError> {
        let idle = self.body_timeout;
        self.send_via(connect, (host, port), parts, body)
            .await
            .map(|response| response.map(|b| IdleTimeout::new(b, idle)))
    }

    async fn send_via(
        &self,
        connect: &Connect,
        (host, port): (&str, u16),
        parts: request::Parts,
        body: Body,
    ) -> Result<Response<PooledBody>, ProxyError> {
        let replayable = http_body::Body::is_end_stream(&body);
        let mut body = Some(body);
        // A replayable request has no body: every attempt gets an empty one.
        let mut take = |last: bool| match (last || !replayable, body.take()) {
            (true, Some(b)) => b,
            (false, b) => {
                body = b;
                crate::http::body::empty()
            }
            (true, None) => crate::http::body::empty(),
        };
        let head = |uri: http::Uri| {
            let mut head = Request::new(());
            *head.method_mut() = parts.method.clone();
            *head.version_mut() = parts.version;
            *head.headers_mut() = parts.headers.clone();
            *head.uri_mut() = uri;
            head
        };
        let plan = if self.parents.list.is_empty() {
            crate::parent::Plan {
                parents: Vec::new(),
                direct: true,
            }
        } else {
            let key = parts.uri.to_string();
            self.parents.plan(&key, host, Instant::now().into_std())
        };
        let mut last_error = None;
        for (k, &i) in plan.parents.iter().enumerate() {
            let (Some(parent), Some(open)) = (self.parents.list.get(i), self.via_parent.get(i))
            else {
                continue;
            };
            let last = !replayable || (k + 1 == plan.parents.len() && !plan.direct);
            let mut request = head(parts.uri.clone()).map(|()| take(last));
            if let Some(auth) = &parent.authorization {
                request
                    .headers_mut()
                    .insert(http::header::PROXY_AUTHORIZATION, auth.clone());
            }
            let (result, failure) = self
                .send_once(Key::Parent(i), || open.open(), request, &parent.name)
                .await;
            match (result, failure) {
                (Err(e), Failure::Connect { .. }) => {
                    self.parent_failed(i, &e);
                    if last {
                        return Err(if plan.direct { e } else { no_parent(Some(e)) });
                    }
                    last_error = Some(e);
                }
                (result, _) => return result,
            }
        }
        if !plan.direct {
            return Err(no_parent(last_error));
        }
        // RFC 9112 §3.2.1: origin-form to an origin (Host is already set).
        let path = parts
            .uri
            .path_and_query()
            .map_or_else(|| http::Uri::from_static("/"), |p| p.clone().into());
        let addrs = self.addresses(connect, host, port).await?;
        for (i, &addr) in addrs.iter().enumerate() {
            let last = i + 1 == addrs.len() || !replayable;
            let request = head(path.clone()).map(|()| take(last));
            let (result, failure) = self
                .send_once(
                    Key::Origin(addr),
                    || self.connector.open(addr),
                    request,
                    &addr,
                )
                .await;
            if last || failure != (Failure::Connect { fast: true }) {
                return result;
            }
            tracing::debug!(%addr, "origin address failed; trying the next one");
        }
        Err(ProxyError::Internal("no address to send to".into()))
    }

    /// One attempt on a pooled connection to `key` (or one `open` makes),
    /// within `timeouts.upstream_response`; also says whether the
    /// connection could not be opened, so that another address or parent
    /// may be tried. A request that a pooled connection could not send (the
    /// peer had closed it) goes on the next one, or a new one.
    async fn send_once<F, O>(
        &self,
        key: Key,
        open: F,
        request: Request<Body>,
        label: &(dyn std::fmt::Display + Sync),
    ) -> (Result<Response<PooledBody>, ProxyError>, Failure)
    where
        F: Fn() -> O,
        O: std::future::Future<Output = Result<(tokio::net::TcpStream, SocketAddr), ConnectError>>,
    {
        let parent = matches!(key, Key::Parent(_));
        let attempt = async {
            let mut request = request;
            loop {
                let mut conn = match self.pool.take(key) {
                    Some(conn) => conn,
                    None => {
                        let (stream, addr) = match open().await {
                            Ok(opened) => opened,
                            Err(e) => {
                                let failure = Failure::Connect { fast: e.try_next() };
                                return (Err(connect_error(&e, &self.name)), failure);
                            }
                        };
                        let peer = UpstreamPeer { addr, parent };
                        match Conn::handshake(stream, peer, key).await {
                            Ok(conn) => conn,
                            Err(e) => {
                                let error =
                                    ProxyError::ConnectFailed(label.to_string(), e.to_string());
                                return (Err(error), Failure::Connect { fast: true });
                            }
                        }
                    }
                };
                match conn.send(request).await {
                    Ok(mut response) => {
                        response.extensions_mut().insert(conn.peer);
                        return (Ok(self.pool.on_end(conn, response)), Failure::Final);
                    }
                    Err((_, Some(unsent))) if conn.reused => request = unsent,
                    Err((e, _)) => {
                        tracing::debug!(%label, "upstream exchange failed: {e}");
                        return (
                            Err(ProxyError::UpstreamReset(label.to_string())),
                            Failure::Final,
                        );
                    }
                }
            }
        };
        match tokio::time::timeout(self.response_timeout, attempt).await {
            Err(_) => (
                Err(ProxyError::ResponseTimeout(label.to_string())),
                Failure::Final,
            ),
            Ok(done) => done,
        }
    }
}

/// The error when no parent could be reached and going direct is refused.
fn no_parent(last: Option<ProxyError>) -> ProxyError {
    let why = last.map_or_else(|| "none is configured".to_owned(), |e| e.to_string());
    ProxyError::ConnectFailed(
        "a parent proxy".into(),
        format!("no parent proxy could be reached ({why}) and parents.never_direct forbids going direct"),
    )
}
