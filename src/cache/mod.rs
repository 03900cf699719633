//! The shared cache (RFC 9111 shared-cache rules, RFC 5861, RFC 9211) on
//! the request path: lookup → (fresh: serve | stale: revalidate | miss:
//! fetch) → tee the origin body to the client while collecting it → store.
//!
//! The tree says which part is which:
//! - flow (orchestration): this file and its two private children, `hit`
//!   (a stored entry was found) and `miss` (going to the origin,
//!   coalesced), the only ones that know the order of things;
//! - `policy/` (pure, RFC 9111 + 5861): cache_control, fields, storability
//!   and freshness (`policy` itself), validation, vary, range,
//!   invalidation, key, serve (answers built from a stored entry);
//! - `outcome` (pure): what the cache did, as Cache-Status, Squid code and
//!   metrics label;
//! - `store/` (one resource each): the memory tier, the disk tier, the
//!   record format, and the store that puts them together;
//! - `flight/` (composition): coalescing of identical requests and the tee
//!   of one origin body into the client, the followers and the store.

pub mod flight;
mod hit;
mod miss;
pub mod outcome;
mod partial;
pub mod policy;
pub mod store;

#[cfg(test)]
mod robustness_tests;

use std::sync::Arc;

use http::header::HeaderName;
use http::{Method, Request, Response, Uri};
use hyper::body::Incoming;
use tokio_util::task::TaskTracker;

use self::flight::coalesce::Coalescer;
use self::outcome::Outcome;
use self::policy::cache_control::CacheControl;
use self::policy::PolicyConfig;
use self::store::{Lookup, Store};
use crate::config::Config;
use crate::error::ProxyError;
use crate::exchange::Exchange;
use crate::forward::{self, Prepared, Route};
use crate::http::body::{self, Body, ClientBody, ClientBodyWatch};
use crate::http::target::Authority;
use crate::shared::Shared;
use crate::upstream::Connect;

/// The `Cache-Status` field (RFC 9211).
pub static CACHE_STATUS: HeaderName = HeaderName::from_static("cache-status");

/// The cache: its store, its flights in progress, and the byte budget the
/// fills in progress share (`cache.fill_budget`, in KiB permits).
pub struct Cache {
    pub store: Store,
    pub coalescer: Arc<Coalescer>,
    pub budget: Arc<tokio::sync::Semaphore>,
}

impl Cache {
    /// Opens the tiers described by `[cache]`.
    pub fn open(config: &Config) -> Result<Cache, store::disk::DiskError> {
        let c = &config.cache;
        let store = Store::open(
            &config.resolve(&c.dir),
            store::StoreConfig {
                memory_size: c.memory_size.as_u64(),
                disk_size: c.disk_size.as_u64(),
                memory_object_size: c.memory_object_size.as_u64(),
                disk_io: config.timeouts.disk_io,
            },
        )?;
        let kib = usize::try_from(c.fill_budget.as_u64().div_ceil(1024)).unwrap_or(usize::MAX);
        Ok(Cache {
            store,
            coalescer: Arc::new(Coalescer::default()),
            budget: Arc::new(tokio::sync::Semaphore::new(
                kib.min(tokio::sync::Semaphore::MAX_PERMITS),
            )),
        })
    }

    /// Bytes of `cache.fill_budget` held by fills in progress.
    pub fn budget_in_use(&self, total: u64) -> u64 {
        total.saturating_sub(self.budget.available_permits() as u64 * 1024)
    }
}

/// Everything one cache decision needs.
struct Ctx<'a> {
    shared: &'a Arc<Shared>,
    cache: &'a Arc<Cache>,
    tasks: &'a TaskTracker,
    url: String,
    /// The request's normalized absolute URI (named host, not the address).
    target: Uri,
    /// How requests for it reach the origin.
    route: Route,
    policy: PolicyConfig,
}

/// Where a request goes: its normalized URI (the cache key), its authority
/// (the Host field) and how its address is found (see `upstream::Connect`).
pub struct Destination {
    pub uri: Uri,
    pub authority: Authority,
    pub connect: Connect,
}

/// Answers an `http://` request through the cache.
pub async fn handle(
    shared: &Arc<Shared>,
    cache: &Arc<Cache>,
    tasks: &TaskTracker,
    request: Request<Incoming>,
    destination: Destination,
    exchange: &mut Exchange,
) -> Result<Response<Body>, ProxyError> {
    let Destination {
        uri,
        authority,
        connect,
    } = destination;
    let (parts, incoming) = request.into_parts();
    let url = policy::key::cache_key(&uri);
    let target = uri.clone();
    let parts = match forward::prepare(&shared.forwarding, parts, uri)? {
        Prepared::Answer(response) => {
            exchange.result = crate::exchange::Disposition::Proxy;
            return Ok(response);
        }
        Prepared::Send(parts) => parts,
    };
    exchange.result = crate::exchange::Disposition::Cache(Outcome::Bypass);
    let route = Route {
        authority,
        connect,
        client: exchange.client.ip(),
    };
    let has_body = !http_body::Body::is_end_stream(&incoming);
    let Some(url) = url else {
        let (body, watch) = client_body(shared, incoming).await?;
        return miss::pass_through(shared, &route, parts, body, exchange)
            .await
            .map_err(|e| watch.blame(e));
    };
    let ctx = Ctx {
        shared,
        cache,
        tasks,
        url,
        target,
        route,
        policy: PolicyConfig {
            heuristic_fraction: shared.config.cache.heuristic_fraction,
            heuristic_max: shared.config.cache.heuristic_max,
            max_stale: shared.config.cache.max_stale,
        },
    };
    let safe = parts.method == Method::GET || parts.method == Method::HEAD;
    if !safe {
        let (body, watch) = client_body(shared, incoming).await?;
        return ctx
            .unsafe_method(parts, body, exchange)
            .await
            .map_err(|e| watch.blame(e));
    }
    if has_body {
        // A GET/HEAD with a body is unusual; do not cache what we cannot replay.
        let (body, watch) = client_body(shared, incoming).await?;
        return ctx
            .respond(
                parts,
                Outcome::Bypass,
                policy::NotStorable::RequestBody,
                body,
                exchange,
            )
            .await
            .map_err(|e| watch.blame(e));
    }
    let request_cc = CacheControl::from_headers(&parts.headers);
    match cache.store.lookup(&ctx.url, &parts.headers).await {
        Lookup::Hit(found) => ctx.on_hit(parts, found, &request_cc, exchange).await,
        miss => {
            let outcome = match miss {
                Lookup::VaryMiss => Outcome::VaryMiss,
                _ => Outcome::UriMiss,
            };
            if request_cc.only_if_cached {
                return Ok(ctx.only_if_cached(exchange));
            }
            ctx.fetch(parts, outcome, exchange).await
        }
    }
}

/// Readies a client's request body for the origin. The first frame is read
/// before anything is forwarded, so that a body whose framing is broken
/// from the start (a bad chunk-size digit, a chunk size that overflows: RFC
/// 9112 §7.1) is answered 400 and the origin sees nothing. A client that
/// sends nothing within `timeouts.client_header` is streamed as it comes.
async fn client_body(
    shared: &Shared,
    mut incoming: Incoming,
) -> Result<(Body, ClientBodyWatch), ProxyError> {
    let mut first = None;
    if !http_body::Body::is_end_stream(&incoming) {
        let wait = shared.config.timeouts.client_header;
        match tokio::time::timeout(wait, http_body_util::BodyExt::frame(&mut incoming)).await {
            Ok(Some(Err(e))) => {
                tracing::debug!("refusing a malformed request body: {e}");
                return Err(ProxyError::BadRequest(body::MALFORMED_BODY.to_owned()));
            }
            Ok(Some(Ok(frame))) => first = Some(frame),
            Ok(None) | Err(_) => {}
        }
    }
    // A client that stops sending in the middle of its body is cut after
    // `timeouts.client_body`: the origin request is aborted, the client
    // gets 400 (or a close, once the answer has begun).
    let idle = crate::upstream::IdleTimeout::new(incoming, shared.config.timeouts.client_body);
    let (body, watch) = ClientBody::new(first, idle);
    Ok((body::boxed(body), watch))
}
