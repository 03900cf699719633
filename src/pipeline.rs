//! The request path, in order, in one place:
//! target (parse/normalize) → CONNECT? tunnel : cache (lookup → upstream →
//! store) → error page → record.
//! Each stage is its own module and does not call the next one.

use std::net::SocketAddr;
use std::sync::Arc;

use http::{Request, Response};
use hyper::body::Incoming;
use tokio::time::Instant;

use crate::exchange::Exchange;
use crate::http::body::Body;
use crate::http::error_page;
use crate::http::target::{self, Target};
use crate::shared::Proxy;
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
    let result = match target::classify(request.method(), request.uri()) {
        Err(e) => Err(e),
        Ok(Target::Connect(authority)) => {
            tunnel::open(&shared, &proxy.tasks, request, &authority, &mut exchange).await
        }
        Ok(Target::Http { uri, authority }) => {
            cache::handle(
                &shared,
                &proxy.cache,
                &proxy.tasks,
                request,
                uri,
                &authority,
                &mut exchange,
            )
            .await
        }
    };
    let response = match result {
        Ok(response) => response,
        Err(error) => {
            exchange.result = error.squid_code();
            exchange.error = Some(error.to_string());
            error_page::render(&error, &shared.config.server.name)
        }
    };
    exchange.status = Some(response.status());
    tracing::debug!(
        client = %exchange.client,
        method = %exchange.method,
        target = %exchange.target,
        result = exchange.result,
        status = response.status().as_u16(),
        error = exchange.error.as_deref().unwrap_or("-"),
        "request"
    );
    response
}
