//! The request path, in order, in one place:
//! auth → target (parse/normalize) → resolve + ACL (on the address actually
//! used) → anonymize → CONNECT? tunnel : cache (lookup → upstream → store)
//! → error page → response privacy → record.
//! Each stage is its own module and does not call the next one.

use std::net::SocketAddr;
use std::sync::Arc;

use http::{Method, Request, Response};
use hyper::body::Incoming;
use tokio::time::Instant;

use crate::acl::{Decision, Subject};
use crate::auth::Verdict;
use crate::error::ProxyError;
use crate::exchange::Exchange;
use crate::http::body::Body;
use crate::http::error_page;
use crate::http::target::{self, Authority, Target};
use crate::shared::{Proxy, Shared};
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
    let mut response = match run(&proxy, &shared, client, request, &mut exchange).await {
        Ok(response) => response,
        Err(error) => {
            exchange.result = error.squid_code();
            exchange.error = Some(error.to_string());
            error_page::render(&error, &shared.config.server.name)
        }
    };
    shared.privacy.response(response.headers_mut());
    exchange.status = Some(response.status());
    tracing::debug!(
        client = %exchange.client,
        method = %exchange.method,
        target = %exchange.target,
        result = exchange.result,
        status = response.status().as_u16(),
        user = exchange.user.as_deref().unwrap_or("-"),
        error = exchange.error.as_deref().unwrap_or("-"),
        "request"
    );
    response
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
    let connect_to = admit(proxy, shared, client, authority, request.method(), exchange).await?;
    let (mut parts, body) = request.into_parts();
    shared.privacy.request(&mut parts.headers, client.ip());
    let request = Request::from_parts(parts, body);
    match target {
        Target::Connect(_) => {
            tunnel::open(shared, &proxy.tasks, request, connect_to, exchange).await
        }
        Target::Http { uri, authority } => {
            let destination = cache::Destination {
                uri,
                authority,
                connect_to,
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

/// Resolves the destination and runs the access rules on each address it
/// resolves to; returns the first admitted address, which is the one the
/// request will use (a later DNS answer cannot redirect it).
async fn admit(
    proxy: &Proxy,
    shared: &Shared,
    client: SocketAddr,
    authority: &Authority,
    method: &Method,
    exchange: &Exchange,
) -> Result<SocketAddr, ProxyError> {
    let addrs = shared
        .upstream
        .resolve(&authority.host.connect_name(), authority.port)
        .await?;
    let mut denied_by = None;
    for addr in addrs {
        if proxy.is_own_address(addr) {
            return Err(ProxyError::Loop(format!(
                "{} (the destination is this proxy)",
                shared.config.server.name
            )));
        }
        let subject = Subject {
            src: client.ip(),
            host: &authority.host,
            port: authority.port,
            method,
            user: exchange.user.as_deref(),
            dst: addr.ip(),
        };
        match shared.acl.evaluate(&subject) {
            Decision::Allow(_) => return Ok(addr),
            Decision::Deny(rule) => {
                denied_by.get_or_insert(rule);
            }
        }
    }
    Err(ProxyError::Denied(shared.acl.label(denied_by.flatten())))
}
