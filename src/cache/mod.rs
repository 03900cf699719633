//! The shared cache (RFC 9111 shared-cache rules, RFC 5861, RFC 9211) on
//! the request path: lookup → (fresh: serve | stale: revalidate | miss:
//! fetch) → tee the origin body to the client while collecting it → store.
//!
//! This file is the only one that knows that order. The pure policy lives in
//! `cache_control`, `policy`, `validation`, `invalidation`, `vary`, `range`,
//! `key`, `serve`, `entry` and `outcome`; the tiers in `memory`, `disk` and
//! `store`; the fan-out of one origin body in `tee`.

pub mod cache_control;
pub mod disk;
pub mod entry;
pub mod fields;
pub mod invalidation;
pub mod key;
pub mod memory;
pub mod outcome;
pub mod policy;
pub mod range;
pub mod serve;
pub mod store;
pub mod tee;
pub mod validation;
pub mod vary;

#[cfg(test)]
mod robustness_tests;

use std::sync::Arc;
use std::time::SystemTime;

use http::header::{
    HeaderName, CONTENT_LENGTH, IF_MATCH, IF_MODIFIED_SINCE, IF_NONE_MATCH, IF_RANGE,
    IF_UNMODIFIED_SINCE, RANGE,
};
use http::{request, HeaderValue, Method, Request, Response, StatusCode, Uri};
use hyper::body::Incoming;
use tokio_util::task::TaskTracker;

use self::cache_control::CacheControl;
use self::entry::Entry;
use self::outcome::Outcome;
use self::policy::{PolicyConfig, StoredTimes, Verdict};
use self::serve::Served;
use self::store::{Found, Lookup, Store, Tier};
use self::tee::Fill;
use crate::config::Config;
use crate::error::ProxyError;
use crate::exchange::Exchange;
use crate::forward::{self, Prepared};
use crate::http::body::{self, empty, Body};
use crate::http::error_page;
use crate::http::target::Authority;
use crate::http::via;
use crate::shared::Shared;

/// The `Cache-Status` field (RFC 9211).
pub static CACHE_STATUS: HeaderName = HeaderName::from_static("cache-status");

/// The cache: its store plus the limits fixed at start.
pub struct Cache {
    pub store: Store,
}

impl Cache {
    /// Opens the tiers described by `[cache]`.
    pub fn open(config: &Config) -> Result<Cache, disk::DiskError> {
        let c = &config.cache;
        let store = Store::open(
            &config.resolve(&c.dir),
            c.memory_size.as_u64(),
            c.disk_size.as_u64(),
        )?;
        Ok(Cache { store })
    }
}

/// Everything one cache decision needs.
struct Ctx<'a> {
    shared: &'a Arc<Shared>,
    cache: &'a Arc<Cache>,
    tasks: &'a TaskTracker,
    url: String,
    policy: PolicyConfig,
}

/// Answers an `http://` request through the cache.
pub async fn handle(
    shared: &Arc<Shared>,
    cache: &Arc<Cache>,
    tasks: &TaskTracker,
    request: Request<Incoming>,
    uri: Uri,
    authority: &Authority,
    exchange: &mut Exchange,
) -> Result<Response<Body>, ProxyError> {
    let (parts, incoming) = request.into_parts();
    exchange.result = Outcome::Bypass.squid_code();
    let parts = match forward::prepare(shared, parts, uri, authority)? {
        Prepared::Answer(response) => return Ok(response),
        Prepared::Send(parts) => parts,
    };
    let Some(url) = key::cache_key(&parts.uri) else {
        return pass_through(shared, parts, body::boxed(incoming), exchange).await;
    };
    let ctx = Ctx {
        shared,
        cache,
        tasks,
        url,
        policy: PolicyConfig {
            heuristic_fraction: shared.config.cache.heuristic_fraction,
            heuristic_max: shared.config.cache.heuristic_max,
        },
    };
    let safe = parts.method == Method::GET || parts.method == Method::HEAD;
    if !safe {
        return ctx.unsafe_method(parts, incoming, exchange).await;
    }
    if !http_body::Body::is_end_stream(&incoming) {
        // A GET/HEAD with a body is unusual; do not cache what we cannot replay.
        return ctx
            .respond(
                parts,
                Outcome::Bypass,
                None,
                body::boxed(incoming),
                exchange,
            )
            .await;
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

/// Forwards without the cache (no usable key).
async fn pass_through(
    shared: &Shared,
    parts: request::Parts,
    body: Body,
    exchange: &mut Exchange,
) -> Result<Response<Body>, ProxyError> {
    let response = forward::send(shared, parts, body, exchange).await?;
    let (mut parts, incoming) = response.into_parts();
    forward::finish(shared, &mut parts);
    Ok(Response::from_parts(parts, body::boxed(incoming)))
}

/// A copy of a request head for the origin, without the client's
/// conditionals and ranges (the cache wants whole, storable answers).
fn upstream_copy(parts: &request::Parts, method: Method) -> request::Parts {
    let mut copy = Request::new(());
    *copy.method_mut() = method;
    *copy.uri_mut() = parts.uri.clone();
    *copy.version_mut() = parts.version;
    *copy.headers_mut() = parts.headers.clone();
    for name in [
        IF_NONE_MATCH,
        IF_MODIFIED_SINCE,
        IF_MATCH,
        IF_UNMODIFIED_SINCE,
        IF_RANGE,
        RANGE,
    ] {
        copy.headers_mut().remove(name);
    }
    copy.into_parts().0
}

/// What a revalidation with the origin came to.
enum Revalidated {
    /// 304: the stored entry, refreshed and stored again.
    NotModified(Arc<Entry>),
    /// A new response (status, head and streaming body).
    Modified(Response<Incoming>, SystemTime),
}

impl Ctx<'_> {
    fn name(&self) -> &str {
        &self.shared.config.server.name
    }

    fn hit_outcome(found: &Found) -> Outcome {
        if found.entry.status.as_u16() >= 400 {
            Outcome::NegativeHit
        } else if found.tier == Tier::Memory {
            Outcome::MemHit
        } else {
            Outcome::DiskHit
        }
    }

    async fn on_hit(
        &self,
        parts: request::Parts,
        found: Found,
        request_cc: &CacheControl,
        exchange: &mut Exchange,
    ) -> Result<Response<Body>, ProxyError> {
        let entry = &found.entry;
        let now = SystemTime::now();
        let verdict = policy::evaluate(
            &parts.headers,
            entry.status,
            &entry.headers,
            &entry.times,
            now,
            &self.policy,
        );
        match verdict {
            Verdict::Fresh | Verdict::StaleAllowed => {
                let outcome = Self::hit_outcome(&found);
                self.serve(parts, entry, outcome, None, exchange).await
            }
            Verdict::StaleWhileRevalidate => {
                self.refresh_in_background(&parts, entry.clone());
                self.serve(parts, entry, Outcome::StaleWhileRevalidate, None, exchange)
                    .await
            }
            Verdict::Revalidate(reason) => {
                if request_cc.only_if_cached {
                    return Ok(self.only_if_cached(exchange));
                }
                let client_asked = matches!(
                    reason,
                    policy::RevalidateReason::RequestNoCache
                        | policy::RevalidateReason::RequestMaxAge
                        | policy::RevalidateReason::RequestMinFresh
                );
                self.revalidate(parts, found, client_asked, exchange).await
            }
        }
    }

    /// Answers from a stored entry, with its current age.
    async fn serve(
        &self,
        parts: request::Parts,
        entry: &Entry,
        outcome: Outcome,
        fwd_status: Option<u16>,
        exchange: &mut Exchange,
    ) -> Result<Response<Body>, ProxyError> {
        let age = policy::current_age(&entry.headers, &entry.times, SystemTime::now());
        match serve::from_entry(entry, &parts.method, &parts.headers, age) {
            Served::PassThrough => {
                let copy = parts;
                self.respond(copy, Outcome::Bypass, None, empty(), exchange)
                    .await
            }
            Served::Response {
                mut response,
                not_modified,
            } => {
                let outcome = if not_modified && outcome.is_hit() && fwd_status.is_none() {
                    Outcome::ImsHit
                } else {
                    outcome
                };
                exchange.result = outcome.squid_code();
                via::append(response.headers_mut(), http::Version::HTTP_11, self.name());
                self.mark(&mut response, outcome, fwd_status, false);
                Ok(response)
            }
        }
    }

    fn mark(
        &self,
        response: &mut Response<Body>,
        outcome: Outcome,
        fwd: Option<u16>,
        stored: bool,
    ) {
        let value = outcome.cache_status(self.name(), fwd, stored);
        if let Ok(value) = HeaderValue::from_str(&value) {
            response.headers_mut().append(CACHE_STATUS.clone(), value);
        }
    }

    fn only_if_cached(&self, exchange: &mut Exchange) -> Response<Body> {
        // RFC 9111 §5.2.1.7: nothing suitable stored → 504.
        exchange.result = Outcome::OnlyIfCachedMiss.squid_code();
        let mut response = error_page::page(
            StatusCode::GATEWAY_TIMEOUT,
            "Not in cache",
            "The request said only-if-cached and no suitable response is stored.",
            self.name(),
        );
        self.mark(&mut response, Outcome::OnlyIfCachedMiss, None, false);
        response
    }

    /// Fetches from the origin for a miss and answers (storing when allowed).
    async fn fetch(
        &self,
        parts: request::Parts,
        outcome: Outcome,
        exchange: &mut Exchange,
    ) -> Result<Response<Body>, ProxyError> {
        if parts.headers.contains_key(RANGE) || parts.method == Method::HEAD {
            // Partial and header-only answers are not stored: pass them through.
            return self.respond(parts, outcome, None, empty(), exchange).await;
        }
        let upstream = upstream_copy(&parts, Method::GET);
        let request_time = SystemTime::now();
        let response = forward::send(self.shared, upstream, empty(), exchange).await?;
        self.answer_from_origin(parts, response, request_time, outcome, exchange)
    }

    /// Forwards the client's own request as is (no store) and marks it.
    async fn respond(
        &self,
        parts: request::Parts,
        outcome: Outcome,
        _fwd: Option<u16>,
        body: Body,
        exchange: &mut Exchange,
    ) -> Result<Response<Body>, ProxyError> {
        exchange.result = outcome.squid_code();
        let response = forward::send(self.shared, parts, body, exchange).await?;
        let status = response.status().as_u16();
        let (mut head, incoming) = response.into_parts();
        forward::finish(self.shared, &mut head);
        let mut response = Response::from_parts(head, body::boxed(incoming));
        self.mark(&mut response, outcome, Some(status), false);
        Ok(response)
    }

    /// Turns an origin response into the client's answer, teeing its body
    /// into the store when a shared cache may keep it.
    fn answer_from_origin(
        &self,
        parts: request::Parts,
        response: Response<Incoming>,
        request_time: SystemTime,
        outcome: Outcome,
        exchange: &mut Exchange,
    ) -> Result<Response<Body>, ProxyError> {
        exchange.result = outcome.squid_code();
        let response_time = SystemTime::now();
        let (mut head, incoming) = response.into_parts();
        let status = head.status;
        let stored_headers = policy::headers_to_store(&head.headers);
        let vary_names = vary::vary_names(&head.headers);
        let length = head
            .headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let max = self.shared.config.cache.max_object_size.as_u64();
        let storable = policy::storability(
            &Method::GET,
            &parts.headers,
            status,
            &head.headers,
            &self.policy,
        )
        .is_ok()
            && vary_names.is_some()
            && length.is_none_or(|n| n <= max);
        forward::finish(self.shared, &mut head);
        let not_modified =
            policy::client_conditional(&parts.method, &parts.headers, &stored_headers, None)
                == policy::Conditional::NotModified;

        let body = if storable {
            let fill = Fill::new(length);
            let reader = fill.reader();
            let store = self.cache.clone();
            let url = self.url.clone();
            let request_headers = parts.headers.clone();
            let names = vary_names.unwrap_or_default();
            self.tasks.spawn(async move {
                if let Some(body) = fill.run(incoming, max).await {
                    let entry = Entry {
                        status,
                        headers: stored_headers,
                        times: StoredTimes {
                            request_time,
                            response_time,
                        },
                        generation: 0,
                        body,
                    };
                    store.store.insert(&url, names, &request_headers, entry);
                }
            });
            match reader {
                Some(reader) => body::boxed(reader),
                None => empty(),
            }
        } else {
            if status.is_success() || status.is_redirection() {
                // The URL now answers with something we may not keep: drop what we had.
                self.cache.store.invalidate(&self.url);
            }
            body::boxed(incoming)
        };
        let mut response = Response::from_parts(head, body);
        if not_modified && status == StatusCode::OK {
            // The client's conditional matches the new response (RFC 9110 §13.1).
            *response.status_mut() = StatusCode::NOT_MODIFIED;
            response.headers_mut().remove(CONTENT_LENGTH);
            *response.body_mut() = empty();
        }
        self.mark(&mut response, outcome, Some(status.as_u16()), storable);
        Ok(response)
    }

    /// Sends a conditional request for a stored entry (RFC 9111 §4.3.1).
    async fn revalidate_upstream(
        &self,
        parts: &request::Parts,
        entry: &Arc<Entry>,
        exchange: &mut Exchange,
    ) -> Result<Revalidated, ProxyError> {
        let mut upstream = upstream_copy(parts, Method::GET);
        for (name, value) in policy::revalidation_headers(&entry.headers) {
            if let Some(name) = name {
                upstream.headers.insert(name, value);
            }
        }
        let request_time = SystemTime::now();
        let response = forward::send(self.shared, upstream, empty(), exchange).await?;
        if response.status() == StatusCode::NOT_MODIFIED
            && policy::validators_match_304(&entry.headers, response.headers())
        {
            // RFC 9111 §4.3.4: freshen the stored header fields and keep the body.
            let mut head = response.into_parts().0;
            crate::http::hop_by_hop::strip(&mut head.headers);
            let headers = policy::update_headers_from_304(&entry.headers, &head.headers);
            let fresh = Entry {
                status: entry.status,
                headers,
                times: StoredTimes {
                    request_time,
                    response_time: SystemTime::now(),
                },
                generation: 0,
                body: entry.body.clone(),
            };
            if let Some(names) = vary::vary_names(&fresh.headers) {
                self.cache
                    .store
                    .insert(&self.url, names, &parts.headers, fresh.clone());
            }
            return Ok(Revalidated::NotModified(Arc::new(fresh)));
        }
        Ok(Revalidated::Modified(response, request_time))
    }

    async fn revalidate(
        &self,
        parts: request::Parts,
        found: Found,
        client_asked: bool,
        exchange: &mut Exchange,
    ) -> Result<Response<Body>, ProxyError> {
        let entry = found.entry.clone();
        let now = SystemTime::now();
        let lifetime = policy::freshness_lifetime(
            entry.status,
            &entry.headers,
            entry.times.response_time,
            &self.policy,
        );
        let age = policy::current_age(&entry.headers, &entry.times, now);
        let stale_ok = policy::stale_if_error_allows(&parts.headers, &entry.headers, lifetime, age);
        let modified_outcome = if client_asked {
            Outcome::ClientRefresh
        } else {
            Outcome::RefreshModified
        };
        match self.revalidate_upstream(&parts, &entry, exchange).await {
            Ok(Revalidated::NotModified(fresh)) => {
                self.serve(
                    parts,
                    &fresh,
                    Outcome::RefreshUnmodified,
                    Some(304),
                    exchange,
                )
                .await
            }
            Ok(Revalidated::Modified(response, _))
                if response.status() == StatusCode::NOT_MODIFIED =>
            {
                // A 304 that does not match what we hold: fetch the whole response.
                drop(response);
                self.fetch(parts, modified_outcome, exchange).await
            }
            Ok(Revalidated::Modified(response, request_time)) => {
                if response.status().is_server_error() {
                    if stale_ok {
                        // RFC 5861 §4: stale-if-error.
                        return self
                            .serve(parts, &entry, Outcome::RefreshFailOld, None, exchange)
                            .await;
                    }
                    return self.answer_from_origin(
                        parts,
                        response,
                        request_time,
                        Outcome::RefreshFailErr,
                        exchange,
                    );
                }
                self.answer_from_origin(parts, response, request_time, modified_outcome, exchange)
            }
            Err(error) => {
                if stale_ok {
                    tracing::debug!(url = %self.url, "serving stale on error: {error}");
                    return self
                        .serve(parts, &entry, Outcome::RefreshFailOld, None, exchange)
                        .await;
                }
                exchange.result = Outcome::RefreshFailErr.squid_code();
                if policy::must_not_serve_stale(&entry.headers) {
                    // RFC 9111 §5.2.2.2: must-revalidate and no origin → 504.
                    return Err(ProxyError::RevalidationFailed(error.to_string()));
                }
                Err(error)
            }
        }
    }

    /// RFC 5861 §3: refresh a stale entry while it is being served.
    fn refresh_in_background(&self, parts: &request::Parts, entry: Arc<Entry>) {
        let parts = upstream_copy(parts, Method::GET);
        let shared = self.shared.clone();
        let cache = self.cache.clone();
        let tasks = self.tasks.clone();
        let url = self.url.clone();
        let policy = self.policy;
        self.tasks.spawn(async move {
            let ctx = Ctx {
                shared: &shared,
                cache: &cache,
                tasks: &tasks,
                url,
                policy,
            };
            let mut exchange = Exchange::new(
                std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
                &Method::GET,
                ctx.url.clone(),
                std::time::Instant::now(),
            );
            match ctx.revalidate_upstream(&parts, &entry, &mut exchange).await {
                Ok(Revalidated::Modified(response, request_time))
                    if !response.status().is_server_error() =>
                {
                    // Store the new response; its body is read by the tee alone.
                    let _ = ctx.answer_from_origin(
                        parts,
                        response,
                        request_time,
                        Outcome::RefreshModified,
                        &mut exchange,
                    );
                }
                Ok(_) => {}
                Err(e) => tracing::debug!(url = %ctx.url, "background refresh failed: {e}"),
            }
        });
    }

    /// POST, PUT, DELETE, PATCH and unknown methods: forward with the body,
    /// then invalidate what a successful answer may have changed (§4.4).
    async fn unsafe_method(
        &self,
        parts: request::Parts,
        incoming: Incoming,
        exchange: &mut Exchange,
    ) -> Result<Response<Body>, ProxyError> {
        let method = parts.method.clone();
        let uri = parts.uri.clone();
        let response = self
            .respond(
                parts,
                Outcome::Bypass,
                None,
                body::boxed(incoming),
                exchange,
            )
            .await?;
        if policy::invalidates(&method, response.status()) {
            for target in policy::invalidation_targets(&uri, response.headers()) {
                if let Some(url) = key::cache_key(&target) {
                    self.cache.store.invalidate(&url);
                }
            }
        }
        Ok(response)
    }
}
