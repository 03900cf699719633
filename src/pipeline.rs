//! The request path, in order, in one place:
//! auth → target (parse/normalize) → resolve + ACL (on the address actually
//! used) → anonymize → CONNECT? tunnel : cache (lookup → upstream → store)
//! → error page → response privacy → record (logged and counted when the
//! body is done). `PURGE <url>` from an admin source removes a URL instead.
//! Each stage is its own module and does not call the next one.

use std::net::SocketAddr;
use std::sync::Arc;

use http::header::{CONTENT_TYPE, REFERER, USER_AGENT};
use http::{Method, Request, Response, StatusCode, Version};
use hyper::body::Incoming;
use tokio::time::Instant;

use crate::access_log::finish::Finish;
use crate::access_log::LogRecord;
use crate::acl::{Decision, Dst, Subject};
use crate::auth::Verdict;
use crate::error::{ProxyError, Side};
use crate::exchange::Exchange;
use crate::http::body::{self, Body};
use crate::http::error_page;
use crate::http::target::{self, Authority, Host, Target};
use crate::shared::{Proxy, Shared};
use crate::upstream::Connect;
use crate::{cache, tunnel};

/// Answers one request from a client. Never fails: every error becomes a page.
pub async fn handle(
    proxy: Arc<Proxy>,
    client: SocketAddr,
    request: Request<Incoming>,
) -> Response<Body> {
    let shared = proxy.current();
    let mut exchange = Exchange::new(
        client,
        request.method(),
        request.uri().to_string(),
        Instant::now().into_std(),
    );
    let text = |name| {
        request
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    exchange.referer = text(REFERER);
    exchange.user_agent = text(USER_AGENT);
    if request.version() == Version::HTTP_10 {
        exchange.version = "HTTP/1.0";
    }
    let result = if request.method().as_str() == "PURGE" {
        purge(&proxy, &shared, client, &request, &mut exchange).await
    } else {
        run(&proxy, &shared, client, request, &mut exchange).await
    };
    let mut response = match result {
        Ok(response) => response,
        Err(error) => {
            exchange.result = error.squid_code();
            exchange.error = Some(error.to_string());
            if error.side() == Side::Upstream {
                proxy.metrics.upstream_error(error.kind());
            }
            error_page::render(&error, &shared.config.server.name)
        }
    };
    shared.privacy.response(response.headers_mut());
    exchange.status = Some(response.status());
    record_when_done(&proxy, response, exchange)
}

/// Wraps the body so that the request is logged and counted when the last
/// byte has gone out (or the transfer was aborted).
fn record_when_done(
    proxy: &Arc<Proxy>,
    response: Response<Body>,
    exchange: Exchange,
) -> Response<Body> {
    let (parts, body) = response.into_parts();
    let head_bytes = 17
        + parts
            .headers
            .iter()
            .map(|(k, v)| k.as_str().len() + v.len() + 4)
            .sum::<usize>() as u64;
    // Our own Cache-Status is a small value of its own; a Content-Type parsed
    // from the origin shares its read buffer, so the log keeps a copy.
    let content_type = parts
        .headers
        .get(CONTENT_TYPE)
        .map(crate::cache::policy::detach_value);
    let cache_status = parts.headers.get("cache-status").cloned();
    let proxy = proxy.clone();
    let on_finish = move |body_bytes: u64, complete: bool| {
        let hit = crate::stats::codes::is_hit(exchange.result);
        let tunnel = exchange.result == "TCP_TUNNEL";
        let record = LogRecord {
            time: exchange.wall,
            elapsed: exchange.started.elapsed(),
            client: exchange.client.ip(),
            result: exchange.result,
            aborted: !complete && !tunnel,
            status: exchange.status.map_or(0, |s| s.as_u16()),
            bytes: head_bytes + body_bytes,
            method: exchange.method,
            url: exchange.target,
            version: exchange.version,
            user: exchange.user,
            peer: exchange.peer,
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
        };
        proxy.metrics.request(
            record.result,
            record.aborted,
            record.bytes,
            record.bytes_from_origin,
        );
        if let Some(log) = &proxy.log {
            log.log(record);
        }
    };
    Response::from_parts(parts, body::boxed(Finish::new(body, on_finish)))
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
    let url = cache::key::cache_key(&uri).ok_or_else(|| ProxyError::BadTarget(uri.to_string()))?;
    let found = proxy.cache.store.purge(&url).await;
    exchange.result = "NONE_NONE";
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
) -> Result<Response<Body>, ProxyError> {
    if let Some(auth) = &shared.auth {
        match auth.check(request.headers(), client.ip()).await {
            Verdict::User(user) => exchange.user = Some(user),
            Verdict::Missing | Verdict::Invalid | Verdict::Throttled => {
                exchange.result = "TCP_DENIED";
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
    shared.privacy.request(&mut parts.headers);
    let request = Request::from_parts(parts, body);
    match target {
        Target::Connect(authority) => {
            tunnel::open(
                shared,
                &proxy.tasks,
                &proxy.metrics,
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
                Decision::Allow(_) => Ok(Connect::Pinned(
                    vec![SocketAddr::new(*ip, authority.port)].into(),
                )),
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
    Ok(Connect::Pinned(admitted.into()))
}
