//! The request path, in order, in one place:
//! auth → target (parse/normalize) → resolve + ACL (on the address actually
//! used) → anonymize → CONNECT? tunnel : cache (lookup → upstream → store)
//! → error page → response privacy → record (logged and counted when the
//! body is done). `PURGE <url>` from an admin source removes a URL instead;
//! `GET /proxy.pac` (origin form) answers the PAC file (see `pac`).
//! Each stage is its own module and does not call the next one.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

use http::header::{CONTENT_TYPE, REFERER, USER_AGENT};
use http::{Method, Request, Response, StatusCode, Version};
use hyper::body::Incoming;
use tokio::time::Instant;

use crate::access_log::delivery::{Delivered, Report, Wire};
use crate::access_log::finish::Finish;
use crate::access_log::{LogRecord, TunnelBytes};
use crate::acl::{Decision, Dst, Subject};
use crate::auth::Verdict;
use crate::error::{ProxyError, Side};
use crate::exchange::{Disposition, Exchange};
use crate::http::body::{self, Body};
use crate::http::error_page;
use crate::http::target::{self, Authority, Host, Target};
use crate::metrics::live::{CountedBody, Registration, Transfer};
use crate::metrics::window::Finished;
use crate::metrics::{Counted, Outcome};
use crate::shared::{Proxy, Shared};
use crate::upstream::Connect;
use crate::{cache, tunnel};

/// Answers one request from a client. Never fails: every error becomes a
/// page. The request is logged and counted once `wire` (the connection's
/// write side) has delivered the response or lost the client; `held` is
/// dropped at that moment.
pub async fn handle<H: Send + Unpin + 'static>(
    proxy: Arc<Proxy>,
    client: SocketAddr,
    request: Request<Incoming>,
    wire: Arc<Wire>,
    held: H,
) -> Response<Body> {
    let shared = proxy.current();
    let now = Instant::now().into_std();
    let target = request.uri().to_string();
    let live = proxy
        .metrics
        .live
        .start(client.ip(), request.method(), &target, now);
    let transfer = live.transfer.clone();
    // Logged as aborted if the client leaves before there is an answer.
    let mut pending = Unanswered {
        exchange: Exchange::new(client, request.method(), target, now),
        proxy: proxy.clone(),
        live: Some(live),
        answered: false,
    };
    let record = &mut pending.exchange;
    let text = |name| {
        request
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    record.referer = text(REFERER);
    record.user_agent = text(USER_AGENT);
    if request.version() == Version::HTTP_10 {
        record.version = "HTTP/1.0";
    }
    let connect = request.method() == Method::CONNECT;
    let result = if request.method().as_str() == "PURGE" {
        purge(&proxy, &shared, client, &request, record).await
    } else if crate::pac::wanted(&shared.config.pac, request.method(), request.uri()) {
        record.result = Disposition::Proxy;
        let host = request.headers().get(http::header::HOST);
        let c = &shared.config;
        crate::pac::answer(&c.pac, &c.acl, proxy.listen_addr.port(), host)
    } else {
        run(&proxy, &shared, client, request, record, &transfer).await
    };
    let mut response = match result {
        Ok(response) => response,
        Err(error) => {
            record.result = record.result.after(&error);
            record.error = Some(error.to_string());
            if error.side() == Side::Upstream {
                proxy.metrics.upstream_error(error.kind());
            }
            let mut page = error_page::render(&error, &shared.config.server.name);
            mark_proxy_made(&mut page, &shared.config.server.name, Some(&error), connect);
            page
        }
    };
    if !(connect && response.status().is_success()) {
        // The proxy's own answers (407, PURGE...) say so too (RFC 9211).
        mark_proxy_made(&mut response, &shared.config.server.name, None, connect);
    }
    shared.forwarding.privacy.response(response.headers_mut());
    record.status = Some(response.status());
    let (exchange, live) = pending.answer();
    record_when_done(&proxy, response, (exchange, live), wire, held)
}

/// A request with no answer yet: dropped so (the client left while it was
/// being worked on), it is logged as an aborted transfer of nothing.
struct Unanswered {
    exchange: Exchange,
    proxy: Arc<Proxy>,
    /// Its place among the requests in flight (the status page).
    live: Option<Registration>,
    answered: bool,
}

impl Unanswered {
    /// There is an answer: the record goes with it.
    fn answer(mut self) -> (Exchange, Option<Registration>) {
        self.answered = true;
        (self.take(), self.live.take())
    }

    /// The record, an empty one (no allocation) left in its place.
    fn take(&mut self) -> Exchange {
        let empty = Exchange::new(
            self.exchange.client,
            &Method::GET,
            String::new(),
            self.exchange.started,
        );
        std::mem::replace(&mut self.exchange, empty)
    }
}

impl Drop for Unanswered {
    fn drop(&mut self) {
        if !self.answered {
            let gone = Delivered {
                bytes: 0,
                complete: false,
            };
            let exchange = self.take();
            let done = Done {
                delivered: gone,
                body_bytes: 0,
                tunnel: None,
            };
            log_record(&self.proxy, exchange, self.live.take(), (None, None), done);
        }
    }
}

/// Adds a `Cache-Status` to an answer the proxy made itself, unless it has
/// one: `fwd` when the request went towards the origin and failed there,
/// `detail` naming why the proxy answered.
fn mark_proxy_made(
    response: &mut Response<Body>,
    name: &str,
    error: Option<&ProxyError>,
    connect: bool,
) {
    if response.headers().contains_key("cache-status") {
        return;
    }
    let value = match error {
        Some(error) if error.side() == Side::Upstream => {
            let fwd = match error {
                _ if connect => "bypass",
                ProxyError::RevalidationFailed(_) => "stale",
                _ => "miss",
            };
            format!("{name}; fwd={fwd}; detail={}", error.detail())
        }
        Some(error) => format!("{name}; detail={}", error.detail()),
        None if response.status() == StatusCode::PROXY_AUTHENTICATION_REQUIRED => {
            format!("{name}; detail=auth-required")
        }
        None => format!("{name}; detail=proxy-answer"),
    };
    if let Ok(value) = http::HeaderValue::from_str(&value) {
        response.headers_mut().insert("cache-status", value);
    }
}

/// Wraps the body so that the request is logged and counted when its last
/// byte has been written to the client (or the client went away); a
/// tunnel's `200` hands the record to the tunnel, logged when it closes.
fn record_when_done<H: Send + Unpin + 'static>(
    proxy: &Arc<Proxy>,
    response: Response<Body>,
    (exchange, live): (Exchange, Option<Registration>),
    wire: Arc<Wire>,
    held: H,
) -> Response<Body> {
    let (mut parts, body) = response.into_parts();
    let on_close = parts.extensions.remove::<tunnel::OnClose>();
    // Our own Cache-Status is a small value of its own; a Content-Type parsed
    // from the origin shares its read buffer, so the log keeps a copy.
    let content_type = parts
        .headers
        .get(CONTENT_TYPE)
        .map(crate::http::detach::detach_value);
    let cache_status = parts.headers.get("cache-status").cloned();
    let proxy = proxy.clone();
    let transfer = live.as_ref().map(|l| l.transfer.clone());
    let log = move |delivered: Delivered, body_bytes: u64, tunnel: Option<TunnelBytes>| {
        let done = Done {
            delivered,
            body_bytes,
            tunnel,
        };
        log_record(&proxy, exchange, live, (content_type, cache_status), done);
    };
    let on_body_done = move |body_bytes: u64, complete: bool| {
        let report: Report = match on_close {
            Some(on_close) => Box::new(move |delivered: Delivered| {
                drop(held);
                if delivered.complete {
                    // The 200 is out: the tunnel logs itself when it closes.
                    on_close.send(Box::new(move |bytes| {
                        log(delivered, 0, Some(bytes));
                    }));
                } else {
                    on_close.cancel();
                    log(delivered, 0, Some(TunnelBytes::default()));
                }
            }),
            None => Box::new(move |delivered| {
                drop(held);
                log(delivered, body_bytes, None);
            }),
        };
        wire.body_done(complete, report);
    };
    let body = CountedBody::new(body, transfer);
    Response::from_parts(parts, body::boxed(Finish::new(body, on_body_done)))
}

/// How a response went out.
struct Done {
    delivered: Delivered,
    body_bytes: u64,
    tunnel: Option<TunnelBytes>,
}

/// Writes one request's line and counts it, at the moment it is done.
fn log_record(
    proxy: &Proxy,
    exchange: Exchange,
    live: Option<Registration>,
    (content_type, cache_status): (Option<http::HeaderValue>, Option<http::HeaderValue>),
    done: Done,
) {
    let Done {
        delivered,
        body_bytes,
        tunnel,
    } = done;
    let class = crate::stats::codes::classify(exchange.result.squid_code());
    let hit = class.hit;
    let failed = exchange.error.is_some();
    let connect = exchange.method == Method::CONNECT;
    let reset = tunnel.is_some_and(|t| t.client_reset || t.origin_reset);
    let record = LogRecord {
        time: SystemTime::now(),
        elapsed: exchange.started.elapsed(),
        client: exchange.client.ip(),
        result: exchange.result.squid_code(),
        aborted: !delivered.complete || reset,
        status: exchange.status.map_or(0, |s| s.as_u16()),
        bytes: delivered.bytes + tunnel.map_or(0, |t| t.down),
        method: exchange.method,
        url: exchange.target,
        version: exchange.version,
        user: exchange.user,
        peer: exchange.peer,
        via_parent: exchange.via_parent,
        content_type,
        cache_status,
        coalesced: exchange.coalesced,
        upstream_time: exchange.upstream_time,
        dns_time: exchange.dns_time,
        bytes_from_origin: if hit || exchange.coalesced || exchange.peer.is_none() {
            0
        } else {
            body_bytes
        },
        referer: exchange.referer,
        user_agent: exchange.user_agent,
        error: exchange.error,
        tunnel,
        reason: exchange.not_stored.map(|r| r.as_str()),
    };
    // A tunnel's bytes to the client were counted as they flowed.
    proxy.metrics.request(Counted {
        code: record.result,
        aborted: record.aborted,
        bytes: delivered.bytes,
        from_origin: record.bytes_from_origin,
        hit,
        outcome: Outcome::of(record.result, hit, failed),
        elapsed: record.elapsed,
        not_stored: exchange.not_stored,
    });
    if let Some(live) = live {
        // The hit ratio counts what `cachalot stats` counts: cacheable traffic.
        let counts = class.cacheable && !connect;
        live.finish(counts.then_some(Finished {
            hit,
            bytes: delivered.bytes,
        }));
    }
    if let Some(log) = &proxy.log {
        log.log(record);
    }
}

/// `PURGE <url>`: removes every stored variant of the URL; admin sources only.
async fn purge(
    proxy: &Proxy,
    shared: &Shared,
    client: SocketAddr,
    request: &Request<Incoming>,
    exchange: &mut Exchange,
) -> Result<Response<Body>, ProxyError> {
    let ip = client.ip().to_canonical();
    if !shared
        .config
        .admin
        .purge_from
        .iter()
        .any(|n| n.contains(&ip))
    {
        return Err(ProxyError::Denied(
            "admin.purge_from (PURGE is for admins)".into(),
        ));
    }
    let Target::Http { uri, .. } = target::classify(&Method::GET, request.uri())? else {
        return Err(ProxyError::BadTarget("PURGE needs an http:// URL".into()));
    };
    let url = cache::policy::key::cache_key(&uri)
        .ok_or_else(|| ProxyError::BadTarget(uri.to_string()))?;
    let found = proxy.cache.store.purge(&url).await;
    exchange.result = Disposition::Proxy;
    let (status, detail) = if found {
        (StatusCode::OK, "The URL was removed from the cache.")
    } else {
        (StatusCode::NOT_FOUND, "The URL was not in the cache.")
    };
    let mut response = error_page::page(status, "Purge", detail, &shared.config.server.name);
    *response.status_mut() = status;
    Ok(response)
}

async fn run(
    proxy: &Arc<Proxy>,
    shared: &Arc<Shared>,
    client: SocketAddr,
    request: Request<Incoming>,
    exchange: &mut Exchange,
    transfer: &Arc<Transfer>,
) -> Result<Response<Body>, ProxyError> {
    if let Some(auth) = &shared.auth {
        match auth.check(request.headers(), client.ip()).await {
            Verdict::User(user) => exchange.user = Some(user),
            Verdict::Missing | Verdict::Invalid | Verdict::Throttled => {
                exchange.result = Disposition::Denied;
                return Ok(auth.challenge(&shared.config.server.name));
            }
        }
    }
    let target = target::classify(request.method(), request.uri())?;
    let authority = match &target {
        Target::Connect(authority) => {
            if !shared.config.server.connect_ports.contains(&authority.port) {
                return Err(ProxyError::ConnectPortDenied(authority.port));
            }
            authority
        }
        Target::Http { authority, .. } => authority,
    };
    let connect = admit(proxy, shared, client, authority, request.method(), exchange).await?;
    let (mut parts, body) = request.into_parts();
    shared.forwarding.privacy.request(&mut parts.headers);
    let request = Request::from_parts(parts, body);
    match target {
        Target::Connect(authority) => {
            tunnel::open(
                (&shared.forwarding, shared.config.timeouts.tunnel_idle),
                &proxy.tasks,
                (&proxy.metrics, transfer),
                request,
                (&authority, &connect),
                exchange,
            )
            .await
        }
        Target::Http { uri, authority } => {
            let destination = cache::Destination {
                uri,
                authority,
                connect,
            };
            cache::handle(
                shared,
                &proxy.cache,
                &proxy.tasks,
                request,
                destination,
                exchange,
            )
            .await
        }
    }
}

/// Runs the access rules (see `acl`): without DNS when no rule needs the
/// address; otherwise the name is looked up (through the resolver cache)
/// and each address it resolves to is checked, the admitted ones pinned for
/// the connection. A name that does not resolve matches no `dst` condition;
/// when the rules still allow the request, a cache hit is served and a
/// request that must reach the origin fails with the DNS error.
async fn admit(
    proxy: &Proxy,
    shared: &Shared,
    client: SocketAddr,
    authority: &Authority,
    method: &Method,
    exchange: &mut Exchange,
) -> Result<Connect, ProxyError> {
    let mut subject = Subject {
        src: client.ip(),
        host: &authority.host,
        port: authority.port,
        method,
        user: exchange.user.as_deref(),
        dst: Dst::Unknown,
    };
    let denied = |rule, dst| ProxyError::Denied(shared.acl.explain(rule, dst));
    let name = match &authority.host {
        Host::Ip(ip) => {
            subject.dst = Dst::Known(*ip);
            return match shared.acl.evaluate(&subject) {
                Decision::Allow(_) => Ok(Connect::Address(SocketAddr::new(*ip, authority.port))),
                Decision::Deny(rule) => Err(denied(rule, Some(*ip))),
                Decision::NeedsAddress(_) => Err(ProxyError::Internal(
                    "access rules asked for an address they were given".into(),
                )),
            };
        }
        Host::Domain(name) => name,
    };
    match shared.acl.evaluate(&subject) {
        Decision::Allow(_) => return Ok(Connect::ByName),
        Decision::Deny(rule) => return Err(denied(rule, None)),
        Decision::NeedsAddress(_) => {}
    }
    let started = Instant::now();
    let resolved = proxy.dns.lookup(name).await;
    exchange.dns_time = Some(started.elapsed());
    let addrs = match resolved {
        Ok(resolved) => resolved.addrs,
        Err(e) => {
            subject.dst = Dst::Unresolvable;
            return match shared.acl.evaluate(&subject) {
                Decision::Allow(_) | Decision::NeedsAddress(_) => Ok(Connect::Unresolved(e)),
                Decision::Deny(rule) => Err(denied(rule, None)),
            };
        }
    };
    let mut admitted = Vec::with_capacity(addrs.len());
    let mut first_denial = None;
    for ip in addrs.iter() {
        subject.dst = Dst::Known(*ip);
        match shared.acl.evaluate(&subject) {
            Decision::Allow(_) => admitted.push(SocketAddr::new(*ip, authority.port)),
            Decision::Deny(rule) => {
                first_denial.get_or_insert((rule, *ip));
            }
            Decision::NeedsAddress(_) => {}
        }
    }
    if admitted.is_empty() {
        let (rule, ip) = first_denial.unzip();
        return Err(denied(rule.flatten(), ip));
    }
    Ok(match admitted.as_slice() {
        [one] => Connect::Address(*one),
        _ => Connect::Pinned(admitted.into()),
    })
}
