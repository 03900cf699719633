//! The admin listener (off by default): `/metrics` in Prometheus text
//! format and `/health`. Bound by the caller; served until shutdown.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;

use http::header::CONTENT_TYPE;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::http::body::{full, Body};
use crate::shared::Proxy;

/// Serves the admin endpoints on `listener` until `shutdown` resolves.
pub async fn run<F: Future<Output = ()>>(listener: TcpListener, proxy: Arc<Proxy>, shutdown: F) {
    tokio::pin!(shutdown);
    loop {
        let (stream, _) = tokio::select! {
            _ = &mut shutdown => return,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!("admin accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let proxy = proxy.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let proxy = proxy.clone();
                async move { Ok::<_, Infallible>(answer(&proxy, &request)) }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn answer(proxy: &Proxy, request: &Request<Incoming>) -> Response<Body> {
    let (status, content_type, body) = match (request.method(), request.uri().path()) {
        (&Method::GET, "/metrics") => {
            let dropped = proxy.log.as_ref().map_or(0, |l| l.dropped());
            let mut text = proxy.metrics.render(
                &proxy.cache.store.stats(),
                proxy.cache.coalescer.coalesced(),
                dropped,
            );
            proxy.dns.metrics.render(&mut text);
            (StatusCode::OK, "text/plain; version=0.0.4", text)
        }
        (&Method::GET, "/health") => (StatusCode::OK, "text/plain", "ok\n".to_owned()),
        _ => (
            StatusCode::NOT_FOUND,
            "text/plain",
            "not found: try /metrics or /health\n".to_owned(),
        ),
    };
    let mut response = Response::new(full(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}
