//! The admin listener (off by default): `/metrics` in the Prometheus text
//! format, the live status page (`/status`, `/status.json`) and `/health`.
//! Bound by the caller; served until shutdown. While it runs, the bytes of
//! requests in flight are credited to the bandwidth windows once a second.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::http::body::{full, Body};
use crate::metrics::encode::{self, Scrape};
use crate::server::status;
use crate::shared::Proxy;

/// Serves the admin endpoints on `listener` until `shutdown` resolves.
pub async fn run<F: Future<Output = ()>>(listener: TcpListener, proxy: Arc<Proxy>, shutdown: F) {
    tokio::pin!(shutdown);
    let mut sweep = tokio::time::interval(Duration::from_secs(1));
    sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        let (stream, _) = tokio::select! {
            _ = &mut shutdown => return,
            _ = sweep.tick() => {
                proxy.metrics.live.sweep();
                continue;
            }
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!("admin accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let proxy = proxy.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let proxy = proxy.clone();
                async move { Ok::<_, Infallible>(answer(&proxy, &request).await) }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn answer(proxy: &Arc<Proxy>, request: &Request<Incoming>) -> Response<Body> {
    let (capacity, fill_budget) = {
        let c = &proxy.current().config.cache;
        (
            (c.memory_size.as_u64(), c.disk_size.as_u64()),
            c.fill_budget.as_u64(),
        )
    };
    let (status, content_type, body) = match (request.method(), request.uri().path()) {
        (&Method::GET, "/metrics") => {
            let scrape = Scrape {
                store: proxy.cache.store.stats(),
                memory_capacity: capacity.0,
                disk_capacity: capacity.1,
                coalesced: proxy.cache.coalescer.coalesced(),
                log_dropped: proxy.log.as_ref().map_or(0, |l| l.dropped()),
                fill_used: proxy.cache.budget_in_use(fill_budget),
                fill_budget,
            };
            let text = encode::render(&proxy.metrics, Some(&proxy.dns.metrics), scrape);
            (StatusCode::OK, encode::CONTENT_TYPE, text)
        }
        (&Method::GET, "/status.json") => {
            let s = status::snapshot(&proxy.metrics, &proxy.cache.store.stats(), capacity);
            match serde_json::to_string_pretty(&s) {
                Ok(json) => (StatusCode::OK, "application/json", json + "\n"),
                Err(e) => (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "text/plain",
                    format!("{e}\n"),
                ),
            }
        }
        (&Method::GET, "/status") => {
            let s = status::snapshot(&proxy.metrics, &proxy.cache.store.stats(), capacity);
            let name = proxy.current().config.server.name.clone();
            (
                StatusCode::OK,
                "text/html; charset=utf-8",
                status::html(&s, &name),
            )
        }
        (&Method::GET, "/health") => (StatusCode::OK, "text/plain", "ok\n".to_owned()),
        _ => (
            StatusCode::NOT_FOUND,
            "text/plain",
            "not found: try /status, /status.json, /metrics or /health\n".to_owned(),
        ),
    };
    let mut response = Response::new(full(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
