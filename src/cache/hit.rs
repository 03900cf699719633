//! A stored entry was found: serve it fresh, serve it stale while
//! refreshing it in the background, or revalidate it with the origin first
//! (coalesced per URL), falling back on stale-if-error when allowed.

use std::sync::Arc;
use std::time::SystemTime;

use http::{request, HeaderValue, Method, Response, StatusCode};

use crate::cache::flight::coalesce::{Published, Role};
use crate::cache::miss::{upstream_copy, Joined, Revalidated};
use crate::cache::outcome::Outcome;
use crate::cache::policy::cache_control::CacheControl;
use crate::cache::policy::serve::{self, Served};
use crate::cache::policy::{self, NotStorable, Verdict};
use crate::cache::store::object::ChunkBody;
use crate::cache::store::record::Entry;
use crate::cache::store::{Found, Tier};
use crate::cache::{Ctx, CACHE_STATUS};
use crate::error::ProxyError;
use crate::exchange::Exchange;
use crate::http::body::{boxed, empty, full, Body};
use crate::http::error_page;

impl Ctx<'_> {
    pub(super) fn name(&self) -> &str {
        &self.shared.config.server.name
    }

    pub(super) fn hit_outcome(found: &Found) -> Outcome {
        if found.entry.status.as_u16() >= 400 {
            Outcome::NegativeHit
        } else if found.tier == Tier::Memory && found.entry.body.is_some() {
            // A head in memory whose body streams from its file is a disk hit.
            Outcome::MemHit
        } else {
            Outcome::DiskHit
        }
    }

    pub(super) async fn on_hit(
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
    pub(super) async fn serve(
        &self,
        parts: request::Parts,
        entry: &Entry,
        outcome: Outcome,
        fwd_status: Option<u16>,
        exchange: &mut Exchange,
    ) -> Result<Response<Body>, ProxyError> {
        self.serve_with_ttl(parts, entry, outcome, fwd_status, false, exchange)
            .await
    }

    /// [`Ctx::serve`], with the entry's remaining freshness (`ttl`, RFC 9211
    /// §2.4) in its `Cache-Status` when `show_ttl`.
    pub(super) async fn serve_with_ttl(
        &self,
        parts: request::Parts,
        entry: &Entry,
        outcome: Outcome,
        fwd_status: Option<u16>,
        show_ttl: bool,
        exchange: &mut Exchange,
    ) -> Result<Response<Body>, ProxyError> {
        let age = policy::current_age(&entry.headers, &entry.times, SystemTime::now());
        let ttl = show_ttl.then(|| {
            let lifetime = policy::freshness_lifetime(
                entry.status,
                &entry.headers,
                entry.times.response_time,
                &self.policy,
            );
            policy::cache_status_ttl(lifetime, age)
        });
        // The body: from memory, or streamed from its object file.
        let file = match (&entry.body, entry.length) {
            (None, n) if n > 0 => match self.cache.store.open_object(entry).await {
                Some(file) => Some(file),
                None => {
                    // Gone (evicted meanwhile, or removed by hand): a miss.
                    self.cache.store.damaged(&self.url, &parts.headers, entry);
                    return self
                        .respond(
                            parts,
                            Outcome::UriMiss,
                            NotStorable::DiskOff,
                            empty(),
                            exchange,
                        )
                        .await;
                }
            },
            _ => None,
        };
        let disk_io = self.cache.store.disk_io();
        let content = |start: u64, end: u64| match (&entry.body, &file, &entry.object) {
            (Some(bytes), ..) => full(bytes.slice(start as usize..end as usize)),
            (None, Some(file), Some(object)) => {
                let file = file.clone();
                let cache = self.cache.clone();
                let key = self
                    .cache
                    .store
                    .entry_key_for(&self.url, &parts.headers, entry);
                let body = ChunkBody::new(file, object.clone(), entry.length, start, end, disk_io)
                    .on_damage(move || cache.store.damaged_key(key));
                boxed(body)
            }
            _ => empty(),
        };
        match serve::from_entry(entry, &parts.method, &parts.headers, age, content) {
            Served::PassThrough => {
                let copy = parts;
                self.respond(copy, Outcome::Bypass, NotStorable::Range, empty(), exchange)
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
                exchange.result = crate::exchange::Disposition::Cache(outcome);
                if self.shared.forwarding.privacy.via() {
                    response
                        .headers_mut()
                        .append(http::header::VIA, self.shared.forwarding.via.clone());
                }
                self.mark_with_ttl(&mut response, outcome, fwd_status, ttl);
                Ok(response)
            }
        }
    }

    pub(super) fn mark(&self, response: &mut Response<Body>, outcome: Outcome, fwd: Option<u16>) {
        if fwd.is_none() && outcome == Outcome::MemHit {
            // The most common answer: built once per configuration.
            let value = self.shared.hit_status.clone();
            response.headers_mut().append(CACHE_STATUS.clone(), value);
            return;
        }
        let value = outcome.cache_status(self.name(), fwd);
        if let Ok(value) = HeaderValue::from_str(&value) {
            response.headers_mut().append(CACHE_STATUS.clone(), value);
        }
    }

    /// [`Ctx::mark`] with a `detail` parameter (RFC 9211 §2.8) when given.
    pub(super) fn mark_with_detail(
        &self,
        response: &mut Response<Body>,
        outcome: Outcome,
        fwd: Option<u16>,
        detail: Option<&str>,
    ) {
        let Some(detail) = detail else {
            return self.mark(response, outcome, fwd);
        };
        let mut value = outcome.cache_status(self.name(), fwd);
        value.push_str("; detail=");
        value.push_str(detail);
        if let Ok(value) = HeaderValue::from_str(&value) {
            response.headers_mut().append(CACHE_STATUS.clone(), value);
        }
    }

    fn mark_with_ttl(
        &self,
        response: &mut Response<Body>,
        outcome: Outcome,
        fwd: Option<u16>,
        ttl: Option<i64>,
    ) {
        if ttl.is_none() {
            return self.mark(response, outcome, fwd);
        }
        let value = outcome.cache_status_with(self.name(), fwd, ttl);
        if let Ok(value) = HeaderValue::from_str(&value) {
            response.headers_mut().append(CACHE_STATUS.clone(), value);
        }
    }

    pub(super) fn only_if_cached(&self, exchange: &mut Exchange) -> Response<Body> {
        // RFC 9111 §5.2.1.7: nothing suitable stored → 504.
        exchange.result = crate::exchange::Disposition::Cache(Outcome::OnlyIfCachedMiss);
        let mut response = error_page::page(
            StatusCode::GATEWAY_TIMEOUT,
            "Not in cache",
            "The request said only-if-cached and no suitable response is stored.",
            self.name(),
        );
        self.mark(&mut response, Outcome::OnlyIfCachedMiss, None);
        response
    }

    pub(super) async fn revalidate(
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
        // Revalidations of one URL are coalesced like misses: one conditional request.
        let (parts, mut leader) = match self.join_flight(parts, modified_outcome, exchange).await {
            Joined::Answered(answer) => return answer,
            Joined::Go(parts, leader) => (parts, leader),
        };
        match self.revalidate_upstream(&parts, &entry, exchange).await {
            Ok(Revalidated::NotModified(fresh)) => {
                if let Some(leader) = leader.as_mut() {
                    leader.publish(Published::refreshed(fresh.clone(), &parts.headers));
                }
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
                self.fetch_from_origin(parts, modified_outcome, leader, exchange)
                    .await
            }
            Ok(Revalidated::Modified(response, request_time)) => {
                if response.status().is_server_error() {
                    if stale_ok {
                        // RFC 5861 §4: stale-if-error; RFC 9211 §2.3: what failed.
                        let failed = Some(response.status().as_u16());
                        return self
                            .serve(parts, &entry, Outcome::RefreshFailOld, failed, exchange)
                            .await;
                    }
                    return self.answer_from_origin(
                        parts,
                        *response,
                        request_time,
                        Outcome::RefreshFailErr,
                        leader,
                        exchange,
                    );
                }
                self.answer_from_origin(
                    parts,
                    *response,
                    request_time,
                    modified_outcome,
                    leader,
                    exchange,
                )
            }
            Err(error) => {
                if stale_ok {
                    tracing::debug!(url = %self.url, "serving stale on error: {error}");
                    // No status came back: the one the failure would have had.
                    let failed = Some(error.status().as_u16());
                    return self
                        .serve(parts, &entry, Outcome::RefreshFailOld, failed, exchange)
                        .await;
                }
                // RFC 9111 §4.2.4: no answer at all (a name that does not
                // resolve included) is a disconnected cache, which may serve
                // stale within cache.max_stale unless a directive forbids it.
                if error.is_unreachable()
                    && policy::stale_on_unreachable_allows(
                        &parts.headers,
                        &entry.headers,
                        lifetime,
                        age,
                        &self.policy,
                    )
                {
                    tracing::debug!(url = %self.url, "origin unreachable, serving stale: {error}");
                    exchange.error = Some(error.to_string());
                    return self
                        .serve_with_ttl(
                            parts,
                            &entry,
                            Outcome::UnreachableStale,
                            None,
                            true,
                            exchange,
                        )
                        .await;
                }
                exchange.result = crate::exchange::Disposition::Cache(Outcome::RefreshFailErr);
                if policy::must_not_serve_stale(&entry.headers) {
                    // RFC 9111 §5.2.2.2: must-revalidate and no origin → 504.
                    return Err(ProxyError::RevalidationFailed(error.to_string()));
                }
                Err(error)
            }
        }
    }

    /// RFC 5861 §3: refresh a stale entry while it is being served.
    pub(super) fn refresh_in_background(&self, parts: &request::Parts, entry: Arc<Entry>) {
        let Role::Leader(leader) = self.cache.coalescer.join(&self.url) else {
            return; // a refresh of this URL is already under way
        };
        let parts = upstream_copy(parts, Method::GET);
        let shared = self.shared.clone();
        let cache = self.cache.clone();
        let tasks = self.tasks.clone();
        let url = self.url.clone();
        let target = self.target.clone();
        let route = self.route.clone();
        let policy = self.policy;
        self.tasks.spawn(async move {
            let ctx = Ctx {
                shared: &shared,
                cache: &cache,
                tasks: &tasks,
                url,
                target,
                route,
                policy,
            };
            let mut exchange = Exchange::new(
                std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
                &Method::GET,
                ctx.url.clone(),
                std::time::Instant::now(),
            );
            let mut leader = leader;
            match ctx.revalidate_upstream(&parts, &entry, &mut exchange).await {
                Ok(Revalidated::NotModified(fresh)) => {
                    leader.publish(Published::refreshed(fresh, &parts.headers));
                }
                Ok(Revalidated::Modified(response, request_time))
                    if !response.status().is_server_error() =>
                {
                    // Store the new response; its body is read by the tee alone.
                    let _ = ctx.answer_from_origin(
                        parts,
                        *response,
                        request_time,
                        Outcome::RefreshModified,
                        Some(leader),
                        &mut exchange,
                    );
                }
                Ok(_) => {}
                Err(e) => tracing::debug!(url = %ctx.url, "background refresh failed: {e}"),
            }
        });
    }
}
